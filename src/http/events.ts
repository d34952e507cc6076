/**
 * `GET /events`: a request becomes a hub subscriber. One flow for every
 * path that opens streams (the front door, `node:http`, HTTP/2, `hub.fetch`):
 * read the subscription, check the token, count the client's address, then
 * let the hub open the transport with the one shared head.
 */

import type { Hub } from '../hub/hub.js';
import type { StreamSink } from '../hub/sink.js';
import type { Subscriber } from '../hub/subscriber.js';
import type { AccessPolicy, SubscriberAccess } from './access.js';
import type { AddressLimit } from './address-limit.js';
import type { HeaderFields, RequestView } from './exchange.js';
import { streamHead, type StreamFraming } from './stream-head.js';
import { newSubscriberId, type PresenceRecord } from '../presence/presence.js';

/** What a `GET /events` asks for. */
export interface Subscription {
  /** Topic selectors (`topic`, repeatable); none: every event. */
  readonly selectors: string[];
  /** Where to resume: the `Last-Event-ID` header, else `?lastEventId=` (an `EventSource` cannot set headers on its first connection). */
  readonly lastEventId: string | undefined;
}

export function subscriptionOf(query: URLSearchParams, lastEventIdHeader: string | undefined): Subscription {
  const header = lastEventIdHeader !== undefined && lastEventIdHeader !== '' ? lastEventIdHeader : undefined;
  return { selectors: query.getAll('topic'), lastEventId: header ?? (query.get('lastEventId') || undefined) };
}

/** How one transport opens the stream once the hub accepted it. */
export interface StreamOpening {
  readonly requestId: string;
  readonly cors: HeaderFields;
  readonly framing: StreamFraming;
  /** Writes the head (the fields given) and returns the stream's sink. */
  readonly open: (fields: HeaderFields) => StreamSink;
}

export class EventStreams {
  constructor(
    private readonly hub: Hub,
    private readonly access: AccessPolicy,
    private readonly addresses: AddressLimit,
  ) {}

  /**
   * Opens a stream for the request, or rejects with a HeraldError (bad
   * token, bad selector, too many connections, shutdown) before any byte is
   * written. Resolves `undefined` when the client left during the token check.
   */
  async open(request: RequestView, opening: StreamOpening, isGone: () => boolean): Promise<Subscriber | undefined> {
    const subscription = subscriptionOf(request.url.searchParams, request.header('last-event-id'));
    const access = await this.access.checkSubscribe(request, subscription.selectors);
    if (isGone()) return undefined;
    return this.subscribe(request, subscription, access, opening);
  }

  /**
   * The synchronous rest of {@link open}, which the front door calls itself
   * for requests without credentials: the address count, then the hub.
   */
  subscribe(request: RequestView, subscription: Subscription, access: SubscriberAccess, opening: StreamOpening): Subscriber {
    const release = this.addresses.take(request.remoteAddress);
    let subscriber: Subscriber;
    try {
      subscriber = this.hub.subscribe({
        ...subscription,
        ...access,
        client: request.remoteAddress,
        requestId: opening.requestId,
        open: () => opening.open(streamHead(opening.requestId, opening.cors, opening.framing)),
      });
    } catch (error) {
      release();
      throw error;
    }
    subscriber.onClose(release);
    trackPresence(this.hub, subscriber, access.subject);
    return subscriber;
  }
}

/**
 * Records the stream in the hub's presence until it closes. Best effort (a
 * store that is down resynchronises when it is back): nothing waits for it.
 * A function of its own, not a closure in `subscribe`: a closure there would
 * share that call's context and keep the request's opening (its head, its
 * `open` callback) alive for the stream's whole life, some 1.3 KiB a stream.
 */
function trackPresence(hub: Hub, subscriber: Subscriber, subject: string | undefined): void {
  const record: PresenceRecord = {
    subscriber: newSubscriberId(),
    protocol: 'herald',
    selectors: subscriber.selectors,
    ...(subject === undefined ? {} : { subject }),
    since: subscriber.connectedAt,
    node: hub.node,
  };
  subscriber.protocol = record.protocol;
  // Each store applies changes in the order they are made: the leave need not wait for the join.
  void hub.presence.join(record);
  subscriber.onClose(() => hub.track(hub.presence.leave(record)));
}
