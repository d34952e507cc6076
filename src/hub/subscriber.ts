/**
 * One subscriber: its selectors, its stream and its bounded queue.
 *
 * A subscriber starts in `replaying`: live events that arrive while its
 * history is read and written are held, then released (minus any already
 * replayed) when it goes `live`. Live deliveries are gathered during one
 * event-loop turn and written in one call by the hub's flush.
 */

import type { CloseReason, StreamSink } from './sink.js';
import type { TopicSelector } from '../topics/selectors.js';
import type { StoredEvent } from '../log/event-log.js';

export type SubscriberState = 'replaying' | 'live' | 'closed';

export class Subscriber {
  state: SubscriberState = 'replaying';
  /** Live events that arrived during replay. */
  held: StoredEvent[] = [];
  heldBytes = 0;
  /**
   * Set when going live after a replay: the position the replay covered. A
   * shared log's tail may still bring events the replay already sent; those
   * are skipped.
   */
  skipThrough: string | undefined;
  /** Frames gathered for the next flush. */
  pending: Buffer[] = [];
  pendingBytes = 0;
  /** Set when the subscriber is in the hub's list of streams to flush. */
  dirty = false;
  /** Whether anything was written since the last heartbeat sweep. */
  wroteSinceSweep = false;
  /** The last publish batch this subscriber was matched in; avoids double delivery when several selectors match. */
  lastDispatch = 0;
  readonly connectedAt = Date.now();
  /** The client's address and the request's id, for logs and the dashboard. */
  address: string | undefined;
  requestId: string | undefined;
  /** Which API opened the stream (`herald`, `mercure`, `mercure-classic`), for the dashboard; set by the front end. */
  protocol: string | undefined;
  /** Ends the stream when the subscriber's token expires. */
  expiry: NodeJS.Timeout | undefined;
  closeReason: CloseReason | undefined;
  private readonly closeListeners: ((reason: CloseReason) => void)[] = [];
  /** Created on first use only: most subscribers never wait for drain. */
  private closed: Promise<void> | undefined;

  constructor(
    readonly sink: StreamSink,
    /** Empty: every event, including events without a topic. */
    readonly selectors: readonly TopicSelector[],
    /**
     * What the subscriber's token lets it receive, public or private;
     * `undefined` for a subscriber without a token: public events only.
     */
    readonly scope?: readonly TopicSelector[],
    /** Whether the scope only opens private events (Mercure), public ones passing whatever it names. */
    readonly scopeOnlyPrivate = false,
  ) {}

  /** A method rather than a `state` check, so it is re-read after every `await`. */
  isClosed(): boolean {
    return this.state === 'closed';
  }

  onClose(listener: (reason: CloseReason) => void): void {
    if (this.closeReason !== undefined) listener(this.closeReason);
    else this.closeListeners.push(listener);
  }

  /** Marks the subscriber closed and notifies listeners once; the transport is handled by the caller. */
  markClosed(reason: CloseReason): boolean {
    if (this.state === 'closed') return false;
    this.state = 'closed';
    this.closeReason = reason;
    clearTimeout(this.expiry);
    this.held = [];
    this.pending = [];
    this.heldBytes = this.pendingBytes = 0;
    for (const listener of this.closeListeners.splice(0)) listener(reason);
    return true;
  }

  /** Writes directly, bypassing the pending queue (hello, replay, heartbeat). */
  writeNow(chunk: Buffer | string): boolean {
    this.wroteSinceSweep = true;
    return this.sink.write(chunk);
  }

  /** Resolves once the transport can take more, or the subscriber closed. */
  drained(): Promise<void> {
    this.closed ??= new Promise((resolve) => this.onClose(() => resolve()));
    return Promise.race([new Promise<void>((resolve) => this.sink.onDrain(resolve)), this.closed]);
  }
}
