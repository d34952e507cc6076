/**
 * Mercure's front end: `GET` and `POST /.well-known/mercure` on Herald's hub.
 *
 * A front end is thin: it reads the protocol's request (`requests.ts`), its
 * tokens (`tokens.ts`), turns Mercure's selectors into the hub's kinds of
 * selector, and hands the rest to the hub and the event log, which own
 * fan-out, backpressure, history and order. So everything Herald does for
 * `/events` (workers, Redis, `--store`, limits, heartbeats, metrics, the
 * dashboard) applies to Mercure streams too.
 */

import { randomUUID } from 'node:crypto';
import { HeraldError } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import type { Subscriber } from '../hub/subscriber.js';
import type { EventDraft } from '../log/event-log.js';
import { anySelector, exactSelector, matchesTopic, uriTemplateSelector, urlPatternSelector, type TopicSelector } from '../topics/selectors.js';
import type { HeaderFields, HttpExchange } from '../http/exchange.js';
import type { AddressLimit } from '../http/address-limit.js';
import type { PublishRateLimiter } from '../http/rate-limit.js';
import { isLoopbackClient } from '../http/access.js';
import { streamHead } from '../http/stream-head.js';
import { decodeUtf8, rateLimited } from '../http/trigger.js';
import { parseSubscription, parseUpdate } from './requests.js';
import {
  anyMatcherMatches,
  hasMercureKey,
  insufficientScopeError,
  MERCURE_PATH,
  mercureHubUrl,
  mercureTokenRequiredError,
  readMercureToken,
  verifyMercureToken,
  type MatcherEngines,
  type MercureGrant,
  type MercureTokenSettings,
  type TopicMatcher,
} from './tokens.js';

export interface MercureSettings {
  readonly tokens: MercureTokenSettings;
  /** Selectors one subscription may name (`--max-topics`). */
  readonly maxTopics: number;
  readonly maxBody: number;
  readonly bodyTimeout: number;
  readonly basePath: string | undefined;
  /** Whether the hub is served over TLS: part of the hub URL tokens are issued for. */
  readonly secure: boolean;
  /** Origins listed in `--cors-origin` (not `*`): pages there may publish with a cookie. */
  readonly trustedOrigins: readonly string[];
  readonly rate: PublishRateLimiter;
  readonly addresses: AddressLimit;
}

/** What a route hands the front end: the request and the fields every answer carries (request id, CORS). */
export interface MercureRequest {
  readonly exchange: HttpExchange;
  readonly requestId: string;
  readonly cors: HeaderFields;
  readonly fields: HeaderFields;
}

const FORM = /^application\/x-www-form-urlencoded\s*(?:;|$)/i;
/**
 * What `earliest` resumes after: an id of the log's own format older than
 * any event, so the log replays everything it retains (as an `expired`
 * read, whose notice Mercure streams do not get).
 */
const BEFORE_EVERYTHING = '0-0';
/** The reserved resume value: the whole retained history (SPEC). */
const EARLIEST = 'earliest';
/** Where the hub URL cannot be told from the request (no `Host`): resolves relative selectors all the same. */
const FALLBACK_ORIGIN = 'http://localhost';

/** The engines a token's matchers are checked with: the hub's own selectors, relative patterns resolved against the hub URL. */
function enginesFor(hubUrl: string): MatcherEngines {
  return {
    uriTemplate: (template, topic) => matchesTopic(uriTemplateSelector(template), topic),
    urlPattern: (pattern, topic) => matchesTopic(urlPatternSelector(pattern, hubUrl), topic),
  };
}

/** Whether a token's URL Pattern is one the hub would take (the cost gate included). */
export function validUrlPattern(pattern: string, hubUrl: string): boolean {
  try {
    urlPatternSelector(pattern, hubUrl);
    return true;
  } catch {
    return false;
  }
}

/** The hub's kind of selector for a Mercure matcher; relative URL Patterns resolve against the hub URL. */
export function selectorOf(matcher: TopicMatcher, hubUrl: string): TopicSelector {
  switch (matcher.kind) {
    case 'any':
      return anySelector();
    case 'exact':
      return exactSelector(matcher.source);
    case 'uri-template':
      return uriTemplateSelector(matcher.source);
    case 'url-pattern':
      return urlPatternSelector(matcher.source, hubUrl);
  }
}

export class MercureFrontEnd {
  constructor(
    private readonly hub: Hub,
    private readonly settings: MercureSettings,
  ) {}

  private hubUrl(exchange: HttpExchange): string {
    return mercureHubUrl(exchange, { secure: this.settings.secure, basePath: this.settings.basePath }) ?? FALLBACK_ORIGIN + MERCURE_PATH;
  }

  /** A token's grant for the role, `undefined` for none; a token that is there must be valid. */
  private async grantOf(exchange: HttpExchange, role: 'publish' | 'subscribe', hubUrl: string): Promise<MercureGrant | undefined> {
    if (!hasMercureKey(this.settings.tokens, role)) return undefined;
    const found = readMercureToken(exchange);
    if (found === undefined) return undefined;
    // A browser sends cookies with any page's form post: a cookie may publish only from a page the hub trusts.
    if (role === 'publish' && found.source === 'cookie') this.checkCookieOrigin(exchange, hubUrl);
    return verifyMercureToken(found.token, role, this.settings.tokens, hubUrl);
  }

  /**
   * The cross-site request forgery check (SPEC: a publish authorized by a
   * cookie): its `Origin`, else its `Referer`'s origin, is the hub's own or
   * one listed in `--cors-origin`. `*` there does not count: it opens reads
   * to every page, and must not let every page publish with a visitor's cookie.
   * @throws HeraldError `HERALD_ERR_FORBIDDEN`
   */
  private checkCookieOrigin(exchange: HttpExchange, hubUrl: string): void {
    let origin = exchange.header('origin');
    if (origin === undefined) {
      const referer = exchange.header('referer');
      try {
        origin = referer === undefined ? undefined : new URL(referer).origin;
      } catch {
        origin = undefined;
      }
    }
    if (origin !== undefined && (origin === new URL(hubUrl).origin || this.settings.trustedOrigins.includes(origin))) return;
    throw new HeraldError(
      'HERALD_ERR_FORBIDDEN',
      origin === undefined
        ? 'a publish authorized by a cookie must say where it comes from (Origin or Referer)'
        : `a publish authorized by a cookie from origin ${JSON.stringify(origin.slice(0, 200))} is refused; list the origin in --cors-origin, or send the token in Authorization`,
    );
  }

  /**
   * Opens a stream. The subscription is in the hub before the head leaves
   * (the hub opens the transport from `subscribe`), so an update published
   * the moment the client sees the stream open reaches it.
   */
  async subscribe(request: MercureRequest, isGone: () => boolean): Promise<Subscriber | undefined> {
    const { exchange } = request;
    const hubUrl = this.hubUrl(exchange);
    const subscription = parseSubscription(exchange.url.searchParams, exchange.header('last-event-id'), this.settings.maxTopics);
    const selectors = subscription.matchers.map((matcher) => selectorOf(matcher, hubUrl));
    const grant = await this.grantOf(exchange, 'subscribe', hubUrl);
    const scope = grant?.subscribe.map((matcher) => selectorOf(matcher, hubUrl));

    // The answer names where the stream resumed: the client's id when the log holds it, else `earliest` (SPEC: an
    // id the hub cannot place gets no history, and the header says so).
    let resumeAfter: string | undefined;
    let resumedFrom: string | undefined;
    if (subscription.lastEventId === EARLIEST) {
      resumeAfter = BEFORE_EVERYTHING;
      resumedFrom = EARLIEST;
    } else if (subscription.lastEventId !== undefined) {
      const page = await this.hub.log.read({ after: { id: subscription.lastEventId }, limit: 1, maxBytes: 1 });
      if (page.status === 'complete') {
        resumeAfter = subscription.lastEventId;
        resumedFrom = subscription.lastEventId;
      } else {
        resumedFrom = EARLIEST;
      }
    }
    if (isGone()) return undefined;

    const release = this.settings.addresses.take(exchange.remoteAddress);
    const resumeHeader: HeaderFields =
      resumedFrom === undefined ? {} : subscription.generation === 'classic' ? { 'Last-Event-ID': resumedFrom } : { 'Mercure-Last-Event-ID': resumedFrom };
    let subscriber: Subscriber;
    try {
      subscriber = this.hub.subscribe({
        selectors,
        lastEventId: resumeAfter,
        scope,
        scopeLimits: 'private-events',
        resyncNotices: false,
        expiresAt: grant?.expiresAt,
        client: exchange.remoteAddress,
        requestId: request.requestId,
        open: () => exchange.openStream({ ...streamHead(request.requestId, request.cors, exchange.streamFraming), ...resumeHeader }),
      });
    } catch (error) {
      release();
      throw error;
    }
    subscriber.onClose(release);
    return subscriber;
  }

  /**
   * Publishes one update. The token is checked from the head, before the body
   * is read; every topic of the update must be allowed, or nothing is stored.
   * @returns the update's id, or `undefined` when the publisher left before anything was stored
   */
  async publish(request: MercureRequest): Promise<string | undefined> {
    const { exchange } = request;
    const type = exchange.header('content-type') ?? '';
    if (!FORM.test(type)) {
      throw new HeraldError('HERALD_ERR_UNSUPPORTED_MEDIA_TYPE', 'a Mercure update is sent as application/x-www-form-urlencoded');
    }
    const hubUrl = this.hubUrl(exchange);
    let grant: MercureGrant | undefined;
    if (hasMercureKey(this.settings.tokens, 'publish')) {
      grant = await this.grantOf(exchange, 'publish', hubUrl);
      if (grant === undefined) throw mercureTokenRequiredError();
    } else if (!isLoopbackClient(exchange)) {
      throw new HeraldError('HERALD_ERR_FORBIDDEN', 'without a publisher key (--jwt-key, --jwt-publisher-key, ...) only clients on this machine may publish');
    }
    const client = exchange.remoteAddress ?? '';
    const wait = this.settings.rate.peek(client);
    if (wait > 0) throw rateLimited(wait, 1);

    const body = await exchange.readBody(this.settings.maxBody, this.settings.bodyTimeout);
    const update = parseUpdate(new URLSearchParams(decodeUtf8(body)), hubUrl);
    const taken = this.settings.rate.take(client, 1);
    if (taken > 0) throw rateLimited(taken, 1);
    if (grant !== undefined) {
      const engines = enginesFor(hubUrl);
      for (const topic of update.topics) {
        if (!anyMatcherMatches(grant.publish, topic, engines)) throw insufficientScopeError('publish', topic);
      }
    }
    if (exchange.isGone()) return undefined;

    const [topic, ...alsoTopics] = update.topics;
    const draft: EventDraft = {
      // The spec's suggestion: a random IRI, which says nothing of when or in which order updates were made.
      id: update.id ?? `urn:uuid:${randomUUID()}`,
      topic,
      ...(alsoTopics.length > 0 ? { alsoTopics } : {}),
      ...(update.type === undefined ? {} : { event: update.type }),
      data: update.data,
      ...(update.private ? { private: true } : {}),
      ...(update.retry === undefined ? {} : { retry: update.retry }),
    };
    const [published] = await this.hub.append([draft]);
    return published!.id;
  }
}
