/**
 * Who may publish and who may listen, decided per request.
 *
 * - Publishing: with a publisher key configured, a token allowing each
 *   event's topic is required (401 without one, 403 for a topic it does not
 *   cover). Without a key, only loopback clients may publish: safe by default.
 * - Subscribing: a token is optional. Without one, a stream gets public
 *   events. With one, it gets public and private events on the topics the
 *   token's `subscribe` selectors name, and nothing else; asking for topics
 *   entirely outside them is a 403.
 */

import type { IncomingMessage } from 'node:http';
import { forbiddenError, missingTokenError, selectorsOverlap, subscriptionScope, tokenFromRequest, type Grant, type TokenVerifier } from '../auth/index.js';
import { HeraldError } from '../errors.js';
import type { EventDraft } from '../log/event-log.js';
import { assertMayPublish } from '../auth/index.js';
import { parseSelector, type Selector } from '../hub/topics.js';

/** What a subscription's token allows, for the hub. */
export interface SubscriberAccess {
  /** Topics the token lets the stream receive; `undefined` without a token (public events only). */
  readonly scope: readonly Selector[] | undefined;
  readonly expiresAt: number | undefined;
}

const ANONYMOUS: SubscriberAccess = Object.freeze({ scope: undefined, expiresAt: undefined });

/** Whether the request comes from this machine, and not through a proxy on it. */
export function isLoopbackClient(req: IncomingMessage): boolean {
  // A reverse proxy on the same machine makes every client look local; its forwarding headers give it away.
  if (req.headers['x-forwarded-for'] !== undefined || req.headers.forwarded !== undefined) return false;
  const address = req.socket.remoteAddress ?? '';
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

  /**
   * Checks that the request may publish these drafts.
   * @throws HeraldError 401 (no or bad token, or not loopback without a key), 403 (a topic the token does not cover)
   */
  async checkPublish(req: IncomingMessage, url: URL, drafts: readonly EventDraft[]): Promise<void> {
    if (!this.publishersNeedTokens) {
      if (isLoopbackClient(req)) return;
      throw new HeraldError(
        'HERALD_ERR_UNAUTHORIZED',
        'publishing from another machine needs a token: start Herald with --jwt-key (or --jwt-public-key, --jwt-jwks, --jwt-publisher-key) and send Authorization: Bearer <token>',
        { 'WWW-Authenticate': 'Bearer realm="herald"' },
      );
    }
    const grant = await this.grantOf(req, url, 'publish');
    for (const draft of drafts) assertMayPublish(grant, draft.topic);
  }

  /** Whether subscriber tokens are checked (else subscribing is open). */
  get subscribersNeedTokens(): boolean {
    return this.verifier?.hasKey('subscribe') === true;
  }

  /**
   * Admits an operator (the dashboard): a subscriber token whose scope is everything (`**`).
   * @throws HeraldError 401 without a valid token, 403 for a narrower scope
   */
  async checkAdmin(req: IncomingMessage, url: URL): Promise<void> {
    const grant = await this.grantOf(req, url, 'subscribe');
    const everything = subscriptionScope(grant).some((selector) => selector.segments.length === 1 && selector.segments[0] === '**');
    if (!everything) throw forbiddenError('the dashboard needs a token that may subscribe to "**"');
  }

  /**
   * What a subscription may receive.
   * @throws HeraldError 401 (a bad token), 403 (selectors entirely outside the token's scope)
   */
  async checkSubscribe(req: IncomingMessage, url: URL, selectors: readonly string[]): Promise<SubscriberAccess> {
    if (this.verifier?.hasKey('subscribe') !== true) return ANONYMOUS;
    const found = tokenFromRequest(req, url, this.cookieName);
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
    return { scope, expiresAt: grant.expiresAt };
  }

  private async grantOf(req: IncomingMessage, url: URL, role: 'publish' | 'subscribe'): Promise<Grant> {
    const found = tokenFromRequest(req, url, this.cookieName);
    if (found === undefined) throw missingTokenError(this.cookieName);
    return this.verifier!.verify(found.token, role);
  }
}
