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

import { HeraldError } from '../errors.js';
import { randomUuidUrn } from '../uuid.js';
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
import { newSubscriberId, type PresenceRecord } from '../presence/presence.js';
import { parseSubscriptionsPath, subscriptionEvents, subscriptionsDocument } from './subscriptions.js';
import { withResourceMetadata } from './challenge.js';
import { subscriptionPayload } from './grant.js';
import {
  anyMatcherMatches,
  hasMercureKey,
  insufficientScopeError,
  MERCURE_PATH,
  mercureHubUrl,
  mercureTokenRequiredError,
  readMercureToken,
  verifyMercureToken,
  DEFAULT_MERCURE_CARRIERS,
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
  /** `--mercure-subscriptions`: whether subscriptions are announced as `active` updates. */
  readonly subscriptionEvents: boolean;
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
/** Where the protected resource metadata of the hub URL lives (RFC 9728 §3.1: the well-known prefix, then the resource's path). */
export const RESOURCE_METADATA_PATH = `/.well-known/oauth-protected-resource${MERCURE_PATH}`;
/** A refused report of subscription events is tried again this many times, after 1, 2, 4, 8 and 16 s. */
const REPORT_RETRIES = 5;
const REPORT_RETRY_MS = 1000;
/** Subscription events of many streams (a dead node's, a thawed one's) stored per append. */
const REPORT_BATCH = 500;
/** The revision of the protocol this hub speaks, as the metadata's `mercure_version` names it. */
const MERCURE_VERSION = 8;

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
  ) {
    // Streams of a node that died ended without a word: this node, told once for the whole hub, says they ended.
    hub.presence.onLost((records) => this.reportMany(records, false));
    // This node's streams, reaped by another after a freeze (and maybe reported ended), are still open: say so again.
    hub.presence.onRestored?.((records) => this.reportMany(records, true));
  }

  /** Reports many streams' subscriptions in batches of bounded size: a node that held thousands takes several appends. */
  private reportMany(records: readonly PresenceRecord[], active: boolean): void {
    if (!this.settings.subscriptionEvents) return;
    const drafts = records.flatMap((record) => subscriptionEvents(record, active));
    for (let at = 0; at < drafts.length; at += REPORT_BATCH) this.hub.track(this.report(drafts.slice(at, at + REPORT_BATCH)));
  }

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
    this.announce(subscriber, {
      subscriber: newSubscriberId(),
      protocol: subscription.generation === 'classic' ? 'mercure-classic' : 'mercure',
      selectors,
      ...(subscription.generation === 'classic' ? {} : { matchTypes: subscription.matchTypes.map((type) => type ?? null) }),
      ...payloadsOf(grant, subscription.matchers.map((matcher) => matcher.source), enginesFor(hubUrl)),
      ...(grant?.subject === undefined ? {} : { subject: grant.subject }),
      since: subscriber.connectedAt,
      node: this.hub.node,
    });
    return subscriber;
  }

  /**
   * Makes the stream's subscriptions known: its presence record, then the
   * `active: true` events; when it closes, the record goes, then the
   * `active: false` events. In that order, so the API's `lastEventID`
   * never names an event newer than the listing it came with.
   */
  private announce(subscriber: Subscriber, record: PresenceRecord): void {
    const { hub } = this;
    subscriber.protocol = record.protocol;
    const report = (active: boolean): Promise<void> => this.report(subscriptionEvents(record, active));
    // A stream gone before it was announced is never announced, nor its end. The end waits for the start's
    // report, retries included, so a watcher never sees them out of order.
    let announced = false;
    const joined = hub.presence.join(record).then(() => {
      if (subscriber.isClosed()) return undefined;
      announced = true;
      return report(true);
    });
    subscriber.onClose(() => hub.track(joined.then(() => hub.presence.leave(record)).then(() => (announced ? report(false) : undefined))));
  }

  /**
   * Stores subscription events. A log that refuses them (Redis away, the
   * primary restarting) is asked again a few times, with growing delays, so
   * a watcher is not left believing a stream is still open; past that, or
   * once the hub is shutting down, they are given up (the listing, from the
   * presence store, stays right either way). Never rejects.
   */
  private async report(drafts: readonly EventDraft[]): Promise<void> {
    if (!this.settings.subscriptionEvents || drafts.length === 0) return;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.hub.appendOwn(drafts);
        return;
      } catch {
        if (attempt >= REPORT_RETRIES || this.hub.isClosing) return;
        await new Promise((resolve) => setTimeout(resolve, REPORT_RETRY_MS * 2 ** attempt).unref());
      }
    }
  }

  /**
   * `GET /.well-known/mercure/subscriptions[/…]` (SPEC "Subscription API"):
   * what every node of the hub serves. The token must allow subscribing to
   * the URL's path as a topic; without a subscriber key, only this machine
   * may ask.
   */
  async subscriptions(request: MercureRequest, path: string): Promise<void> {
    const { exchange } = request;
    const hubUrl = this.hubUrl(exchange);
    const query = parseSubscriptionsPath(path);
    if (hasMercureKey(this.settings.tokens, 'subscribe')) {
      const grant = await this.grantOf(exchange, 'subscribe', hubUrl);
      if (grant === undefined) throw this.challenged(mercureTokenRequiredError(DEFAULT_MERCURE_CARRIERS), hubUrl);
      if (!anyMatcherMatches(grant.subscribe, path, enginesFor(hubUrl))) throw insufficientScopeError('subscribe', path);
    } else if (!isLoopbackClient(exchange)) {
      throw new HeraldError('HERALD_ERR_FORBIDDEN', 'without a subscriber key (--jwt-key, --jwt-subscriber-key, ...) only clients on this machine may read the subscriptions');
    }
    // Read before the records: a subscription that starts meanwhile is listed and announced again, never missed.
    const lastEventId = this.hub.log.stats().newestId ?? EARLIEST;
    const records = await this.hub.presence.list();
    if (exchange.isGone()) return;
    const document = subscriptionsDocument(query, path, records, lastEventId);
    if (document === undefined) throw new HeraldError('HERALD_ERR_NOT_FOUND', `no active subscription at ${path.slice(0, 200)}`);
    const body = JSON.stringify(document);
    exchange.respond(
      200,
      {
        ...request.fields,
        'Content-Type': 'application/ld+json',
        // What a token may see, and volatile: no shared cache keeps it, and every use revalidates (SPEC).
        'Cache-Control': 'private, no-cache',
        Vary: 'Authorization, Cookie',
        Link: `<${hubUrl}>; rel="mercure"`,
        'Content-Length': String(Buffer.byteLength(body)),
      },
      exchange.method === 'HEAD' ? undefined : body,
    );
  }

  /**
   * `GET /.well-known/oauth-protected-resource/.well-known/mercure`
   * (SPEC-08 "Protected Resource Metadata", RFC 9728): what a client needs
   * to get a token for this hub.
   */
  resourceMetadata(request: MercureRequest): void {
    const { exchange } = request;
    const hubUrl = this.hubUrl(exchange);
    const { tokens } = this.settings;
    const document = {
      resource: tokens.audience ?? hubUrl,
      ...(tokens.issuers === undefined ? {} : { authorization_servers: tokens.issuers }),
      bearer_methods_supported: DEFAULT_MERCURE_CARRIERS.queryParameters.includes('access_token') ? ['header', 'query'] : ['header'],
      mercure_cookie: true,
      mercure_version: MERCURE_VERSION,
    };
    const body = JSON.stringify(document);
    exchange.respond(
      200,
      { ...request.fields, 'Content-Type': 'application/json', 'Cache-Control': 'max-age=3600', 'Content-Length': String(Buffer.byteLength(body)) },
      exchange.method === 'HEAD' ? undefined : body,
    );
  }

  /** A 401 with the metadata's URL in its challenge, so a client can find out how to get a token (RFC 9728 §5.1). */
  challenged(error: HeraldError, hubUrl: string): HeraldError {
    return withResourceMetadata(error, new URL(this.metadataPath(), hubUrl).href);
  }

  /** The metadata's path on this hub: behind `--base-path`, under it, where the hub's router sees it. */
  private metadataPath(): string {
    return `${this.settings.basePath ?? ''}${RESOURCE_METADATA_PATH}`;
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
      if (grant === undefined) throw this.challenged(mercureTokenRequiredError(), hubUrl);
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
      id: update.id ?? randomUuidUrn(),
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

/**
 * The payload of each subscription (SPEC "Payloads"), as a record's
 * `payloads`: nothing when no subscription has one.
 */
function payloadsOf(grant: MercureGrant | undefined, matches: readonly string[], engines: MatcherEngines): { payloads?: readonly unknown[] } {
  if (grant === undefined) return {};
  const payloads = matches.map((match) => subscriptionPayload(grant, match, engines));
  return payloads.every((payload) => payload === undefined) ? {} : { payloads };
}
