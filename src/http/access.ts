/**
 * Who may publish and who may listen, decided per request.
 *
 * - Publishing: with a publisher key configured, a token allowing each
 *   event's topic is required (401 without one, 403 for a topic it does not
 *   cover). Without a key, only loopback clients may publish: safe by default.
 *   The token is checked from the request's head, before its body is read;
 *   the topics once the body is parsed.
 * - Subscribing: a token is optional. Without one, a stream gets public
 *   events. With one, it gets public and private events on the topics the
 *   token's `subscribe` selectors name, and nothing else; asking for topics
 *   entirely outside them is a 403.
 */

import { assertMayPublish, forbiddenError, missingTokenError, selectorsOverlap, subscriptionScope, tokenFromRequest, type Grant, type TokenVerifier } from '../auth/index.js';
import { challenge } from '../auth/challenge.js';
import { HeraldError } from '../errors.js';
import type { EventDraft } from '../log/event-log.js';
import { parseSelector } from '../hub/topics.js';
import { heraldSelector, type TopicSelector } from '../topics/selectors.js';
import type { RequestView } from './exchange.js';

/** What a subscription's token allows, for the hub. */
export interface SubscriberAccess {
  /** Topics the token lets the stream receive; `undefined` without a token (public events only). */
  readonly scope: readonly TopicSelector[] | undefined;
  readonly expiresAt: number | undefined;
  /** The token's `sub`, for presence; absent without a token or a `sub`. */
  readonly subject?: string | undefined;
}

/** Who is publishing: a token's grant, or a loopback client of a hub without publisher keys. */
export type Publisher = { readonly kind: 'token'; readonly grant: Grant } | { readonly kind: 'loopback' };

const ANONYMOUS: SubscriberAccess = Object.freeze({ scope: undefined, expiresAt: undefined });
const LOOPBACK: Publisher = Object.freeze({ kind: 'loopback' });

/** Whether the request comes from this machine, and not through a proxy on it. */
export function isLoopbackClient(request: RequestView): boolean {
  // A reverse proxy on the same machine makes every client look local; its forwarding headers give it away.
  if (request.header('x-forwarded-for') !== undefined || request.header('forwarded') !== undefined) return false;
  const address = request.remoteAddress ?? '';
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export class AccessPolicy {
  constructor(
    /** Undefined when no key is configured at all. */
    private readonly verifier: TokenVerifier | undefined,
    private readonly cookieName: string,
  ) {}

  /** Whether publishers need a token (else: loopback only). */
  get publishersNeedTokens(): boolean {
    return this.verifier?.hasKey('publish') === true;
  }

  /** Whether subscriber tokens are checked (else subscribing is open). */
  get subscribersNeedTokens(): boolean {
    return this.verifier?.hasKey('subscribe') === true;
  }

  /**
   * Who is publishing, from the request's head alone (nothing of the body is read).
   * @throws HeraldError 401: no or bad token, or not loopback without a key
   */
  async authenticatePublisher(request: RequestView): Promise<Publisher> {
    if (!this.publishersNeedTokens) {
      if (isLoopbackClient(request)) return LOOPBACK;
      throw new HeraldError(
        'HERALD_ERR_UNAUTHORIZED',
        'publishing from another machine needs a token: start Herald with --jwt-key (or --jwt-public-key, --jwt-jwks, --jwt-publisher-key) and send Authorization: Bearer <token>',
        { challenge: challenge(undefined, '') },
      );
    }
    return { kind: 'token', grant: await this.grantOf(request, 'publish') };
  }

  /**
   * Checks that the publisher may publish every one of these drafts; nothing is stored otherwise.
   * @throws HeraldError 403 naming the first topic the token does not cover
   */
  authorizePublish(publisher: Publisher, drafts: readonly EventDraft[]): void {
    if (publisher.kind === 'loopback') return;
    for (const draft of drafts) assertMayPublish(publisher.grant, draft.topic);
  }

  /**
   * Admits an operator (the dashboard): a subscriber token whose scope is everything (`**`).
   * @throws HeraldError 401 without a valid token, 403 for a narrower scope
   */
  async checkAdmin(request: RequestView, what = 'the dashboard'): Promise<void> {
    const grant = await this.grantOf(request, 'subscribe');
    const everything = subscriptionScope(grant).some((selector) => selector.segments.length === 1 && selector.segments[0] === '**');
    if (!everything) throw forbiddenError(`${what} needs a token that may subscribe to "**"`);
  }

  /**
   * What a subscription may receive.
   * @throws HeraldError 401 (a bad token), 403 (selectors entirely outside the token's scope)
   */
  async checkSubscribe(request: RequestView, selectors: readonly string[]): Promise<SubscriberAccess> {
    if (this.verifier?.hasKey('subscribe') !== true) return ANONYMOUS;
    const found = tokenFromRequest(request, this.cookieName);
    if (found === undefined) return ANONYMOUS;
    const grant = await this.verifier.verify(found.token, 'subscribe');
    const scope = subscriptionScope(grant);
    for (const source of selectors) {
      const selector = parseSelector(source);
      if (!scope.some((allowed) => selectorsOverlap(allowed, selector))) {
        throw forbiddenError(`the token does not allow topic selector ${JSON.stringify(source.slice(0, 200))}`);
      }
    }
    if (scope.length === 0) throw forbiddenError('the token allows no topics to subscribe to');
    return { scope: scope.map((selector) => heraldSelector(selector.source)), expiresAt: grant.expiresAt, subject: grant.subject };
  }

  /** Whether a request carries something this policy would read as a token (the front door leaves those to the routes). */
  static mayCarryToken(request: RequestView): boolean {
    return request.header('authorization') !== undefined || request.header('cookie') !== undefined || request.url.searchParams.has('access_token');
  }

  private async grantOf(request: RequestView, role: 'publish' | 'subscribe'): Promise<Grant> {
    const found = tokenFromRequest(request, this.cookieName);
    if (found === undefined) throw missingTokenError(this.cookieName);
    return this.verifier!.verify(found.token, role);
  }
}
