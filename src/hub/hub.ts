/**
 * The hub: who listens to what, and getting every event to them.
 *
 * - Each event is framed once, as one Buffer shared by every subscriber.
 * - Matching goes through a selector index, not a scan of every subscriber.
 * - Deliveries gathered in one event-loop turn leave in one write per
 *   subscriber, so a busy hub makes few syscalls and an idle hub sends at once.
 * - A subscriber whose unread bytes pass `maxBuffer` is dropped; it can come
 *   back and resume from history. Nobody else waits for it.
 * - A resume reads history in bounded pages, written as the client takes
 *   them; live events that arrive meanwhile are held (counted against
 *   `maxBuffer`), then released minus what the replay covered. Order comes
 *   from the log's positions: the hub never parses an id.
 */

import { performance } from 'node:perf_hooks';
import { HeraldError } from '../errors.js';
import { settleWithin } from '../settle.js';
import { frameComment, frameEvent, frameRetry } from '../protocol/framing.js';
import type { EventDraft, EventLog, LogHealth, ReadPage, ReadRequest, StoredEvent } from '../log/event-log.js';
import { FrameCache } from './frame-cache.js';
import { draftFromText, draftsFromBody, type PublishMessage, type TextMessageMeta } from './messages.js';
import type { CloseReason, StreamSink } from './sink.js';
import { Subscriber } from './subscriber.js';
import { heraldSelector, matchesTopic, sourceFilterOf, type TopicSelector } from '../topics/selectors.js';
import { segmentsMatch } from '../topics/herald.js';
import { TopicIndex } from '../topics/topic-index.js';
import { LocalPresence, nodeName, type PresenceStore } from '../presence/presence.js';

/** The event type that tells a resuming client it may have missed events. */
export const RESYNC_EVENT = 'herald-resync';

export interface HubSettings {
  readonly heartbeat: number;
  readonly retry: number;
  readonly maxConnections: number;
  /** Topic selectors one subscription may name. */
  readonly maxTopics: number;
  readonly maxBuffer: number;
  readonly shutdownTimeout: number;
}

export interface SubscribeRequest {
  /**
   * Topic selectors; none means every event, including events without a
   * topic. A string is one of Herald's own (`orders/*`); other front ends
   * (Mercure) hand selectors of their kinds.
   */
  readonly selectors: readonly (string | TopicSelector)[];
  /** Resume after this id (from `Last-Event-ID` or `?lastEventId=`). */
  readonly lastEventId?: string | undefined;
  /** Called once the request is accepted, to open the transport (e.g. send the response headers). */
  readonly open: () => StreamSink;
  /**
   * The topics a token lets this subscriber receive (public or private
   * events); absent for a subscriber without a token, who gets public events only.
   */
  readonly scope?: readonly TopicSelector[] | undefined;
  /**
   * What the scope limits: `every-event` (Herald's tokens: a token holder
   * gets only its scope's topics, public or private), or `private-events`
   * (Mercure's: the token's selectors only open private updates; public ones
   * reach anyone whose selectors match). Default `every-event`.
   */
  readonly scopeLimits?: 'every-event' | 'private-events' | undefined;
  /**
   * Whether a replay that cannot fill the gap says so with a `herald-resync`
   * event (Herald's API). Mercure clients know no such event: a front end
   * for them turns it off. Default `true`.
   */
  readonly resyncNotices?: boolean | undefined;
  /** When the token expires (ms since the epoch): the stream ends then. */
  readonly expiresAt?: number | undefined;
  /** The client's address, for logs and the dashboard. */
  readonly client?: string | undefined;
  /** The request's id, for logs. */
  readonly requestId?: string | undefined;
}

/** The id a publish was given. */
export interface Published {
  readonly id: string;
}

export interface HubCounters {
  readonly connections: number;
  readonly published: number;
  readonly delivered: number;
  readonly dropped: number;
  /** Bytes handed to subscribers' transports (events, notices, heartbeats). */
  readonly bytesWritten: number;
}

/**
 * What the hub tells observers (metrics, logs). Every hook is optional and
 * called synchronously, so each must be cheap.
 */
export interface HubObserver {
  connected?(subscriber: Subscriber): void;
  disconnected?(subscriber: Subscriber, reason: CloseReason): void;
  /** A batch was stored; `seconds` is how long the log took. */
  published?(events: readonly StoredEvent[], seconds: number): void;
  /** An event went out to `deliveries` subscribers. */
  dispatched?(event: StoredEvent, deliveries: number): void;
}

const HEARTBEAT = Buffer.from(frameComment('heartbeat'));

/** A replay reads history in pages of at most this many events... */
const REPLAY_PAGE_EVENTS = 500;
/** ...and this many bytes of data, so one resume holds at most a page in memory. */
const REPLAY_PAGE_BYTES = 256 * 1024;

/** Resolves after the event loop has had a turn: replays let live delivery run between pages. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Adaptive coalescing: flushing may take at most this share of the time. A
 * flush that took `d` ms is followed by the next one no sooner than `d / share`
 * ms after it began. An idle hub flushes at once (d is microseconds); a busy
 * one gathers every event that arrives meanwhile into one write per
 * subscriber, trading a little latency for far fewer system calls.
 */
const FLUSH_SHARE = 0.5;
/** The longest delay a Node timer takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Below this wait, waiting is not worth a timer. */
const MIN_FLUSH_WAIT_MS = 0.5;

export class Hub {
  private readonly subscribers = new Set<Subscriber>();
  /** Subscribers without selectors: they get everything. */
  private readonly everything = new Set<Subscriber>();
  private readonly index = new TopicIndex<Subscriber>();
  private readonly hello: Buffer;
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Frames of recent events, so a reconnect storm frames each replayed event once. */
  private readonly frames = new FrameCache();
  private readonly stopTail: () => void;
  private readonly stopGap: () => void;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private dirty: Subscriber[] = [];
  private flushScheduled = false;
  private lastFlushStart = 0;
  private lastFlushDuration = 0;
  private dispatchStamp = 0;
  private closing: Promise<void> | undefined;
  /** Set once the streams have ended at shutdown: from then on not even the hub's own events are taken. */
  private logClosing = false;
  /** Work a stream's end started (Mercure's `active: false` event): shutdown waits for it before the log closes. */
  private readonly afterStreams = new Set<Promise<unknown>>();
  private published = 0;
  private delivered = 0;
  private dropped = 0;
  private bytesWritten = 0;
  private readonly observers: HubObserver[] = [];

  /** Who is subscribed to what, on every node sharing the log (this process's own without a shared log). */
  readonly presence: PresenceStore;
  /** This process's name in presence records. */
  readonly node = nodeName();

  constructor(
    private readonly settings: HubSettings,
    readonly log: EventLog,
  ) {
    this.presence = log.presence?.(this.node) ?? new LocalPresence();
    this.hello = Buffer.from(frameRetry(settings.retry) + frameComment('connected'));
    this.stopTail = log.tail((events) => this.dispatch(events));
    this.stopGap = log.onGap?.(() => this.endAll('log-gap')) ?? (() => {});
    if (settings.heartbeat > 0) {
      this.heartbeatTimer = setInterval(() => this.sweep(), settings.heartbeat);
      this.heartbeatTimer.unref();
    }
  }

  /** Open streams. */
  get connections(): number {
    return this.subscribers.size;
  }

  get isClosing(): boolean {
    return this.closing !== undefined;
  }

  /** Whether the log can take publishes; open streams are served either way. */
  health(): LogHealth {
    return this.log.health?.() ?? { ok: true };
  }

  counters(): HubCounters {
    return {
      connections: this.subscribers.size,
      published: this.published,
      delivered: this.delivered,
      dropped: this.dropped,
      bytesWritten: this.bytesWritten,
    };
  }

  /** Adds an observer (metrics, logs) of connections, publishes and deliveries. */
  observe(observer: HubObserver): void {
    this.observers.push(observer);
  }

  /** Every subscriber's stream, for the dashboard: a snapshot. */
  streams(): readonly Subscriber[] {
    return [...this.subscribers];
  }

  /**
   * Publishes one JSON message or a batch (atomically, in order).
   * @example
   * const { id } = await hub.publish({ event: 'order', topic: 'orders/42', data: { status: 'paid' } });
   */
  publish(message: PublishMessage): Promise<Published>;
  publish(messages: readonly PublishMessage[]): Promise<Published[]>;
  async publish(input: PublishMessage | readonly PublishMessage[]): Promise<Published | Published[]> {
    const published = await this.append(draftsFromBody(input));
    return Array.isArray(input) ? published : published[0]!;
  }

  /** Publishes text as the data, verbatim (line breaks become several `data:` lines). */
  async publishText(text: string, meta: TextMessageMeta = {}): Promise<Published> {
    const [published] = await this.append([draftFromText(text, meta)]);
    return published!;
  }

  /** Appends checked drafts to the log; resolves once the log has kept them. */
  async append(drafts: readonly EventDraft[]): Promise<Published[]> {
    if (this.closing !== undefined) throw new HeraldError('HERALD_ERR_SHUTTING_DOWN', 'the hub is shutting down; publish to another node', { retryAfter: 1 });
    return this.store(drafts);
  }

  /**
   * Appends the hub's own events (Mercure's subscription events): taken
   * also while shutdown ends the streams, since ending a stream is what
   * they report; refused only once the log is closing.
   */
  async appendOwn(drafts: readonly EventDraft[]): Promise<Published[]> {
    if (this.logClosing) throw new HeraldError('HERALD_ERR_SHUTTING_DOWN', 'the hub has closed its event log');
    return this.store(drafts);
  }

  /** Keeps shutdown from closing the log before `work` (started by a stream's end) settles. */
  track(work: Promise<unknown>): void {
    if (this.logClosing) return;
    this.afterStreams.add(work);
    void work.then(
      () => this.afterStreams.delete(work),
      () => this.afterStreams.delete(work),
    );
  }

  private async store(drafts: readonly EventDraft[]): Promise<Published[]> {
    const started = performance.now();
    const appending = this.log.append(drafts);
    this.inFlight.add(appending);
    try {
      const stored = await appending;
      this.published += stored.length;
      const seconds = (performance.now() - started) / 1000;
      for (const observer of this.observers) observer.published?.(stored, seconds);
      return stored.map((event) => ({ id: event.id }));
    } finally {
      this.inFlight.delete(appending);
    }
  }

  /**
   * Opens a stream: checks the request, calls `open()` for the transport,
   * sends the `retry:` line, replays history after `lastEventId`, then goes live.
   * @throws HeraldError for bad selectors, too many connections, or shutdown; `open()` is not called then.
   */
  subscribe(request: SubscribeRequest): Subscriber {
    if (request.selectors.length > this.settings.maxTopics) {
      throw new HeraldError(
        'HERALD_ERR_INVALID_SELECTOR',
        `a subscription names at most ${this.settings.maxTopics} topic selectors (--max-topics); this one names ${request.selectors.length}`,
      );
    }
    const selectors = request.selectors.map((selector) => (typeof selector === 'string' ? heraldSelector(selector) : selector));
    if (this.closing !== undefined) {
      throw new HeraldError('HERALD_ERR_SHUTTING_DOWN', 'the hub is shutting down; reconnect to another node', { retryAfter: 1 });
    }
    if (this.subscribers.size >= this.settings.maxConnections) {
      throw new HeraldError('HERALD_ERR_TOO_MANY_CONNECTIONS', `the hub already holds ${this.settings.maxConnections} streams (--max-connections); retry later`, {
        retryAfter: Math.max(1, Math.ceil(this.settings.retry / 1000)),
      });
    }
    const sink = request.open();
    const subscriber = new Subscriber(sink, selectors, request.scope, request.scopeLimits === 'private-events');
    subscriber.requestId = request.requestId;
    subscriber.address = request.client;
    if (request.expiresAt !== undefined) {
      // Timers hold at most 2^31-1 ms (~24.8 days); a token lasting longer is ended then and reconnects.
      const delay = Math.min(Math.max(0, request.expiresAt - Date.now()), MAX_TIMER_MS);
      subscriber.expiry = setTimeout(() => this.end(subscriber, 'token-expired'), delay);
      subscriber.expiry.unref();
    }
    this.subscribers.add(subscriber);
    if (selectors.length === 0) this.everything.add(subscriber);
    for (const selector of selectors) this.index.add(selector, subscriber);
    // However the transport closes, the hub forgets the subscriber (a no-op if the hub closed it).
    sink.onClose(() => this.unsubscribe(subscriber, 'client-closed'));
    this.writeNow(subscriber, this.hello);
    for (const observer of this.observers) observer.connected?.(subscriber);
    if (request.lastEventId === undefined) this.goLive(subscriber, undefined);
    else void this.replay(subscriber, request.lastEventId, request.resyncNotices ?? true);
    return subscriber;
  }

  /** Forgets a subscriber; safe to call more than once. Transports need not call it: their sink's close does. */
  unsubscribe(subscriber: Subscriber, reason: CloseReason = 'client-closed'): void {
    if (!subscriber.markClosed(reason)) return;
    this.subscribers.delete(subscriber);
    for (const observer of this.observers) observer.disconnected?.(subscriber, reason);
    this.everything.delete(subscriber);
    for (const selector of subscriber.selectors) this.index.delete(selector, subscriber);
  }

  private drop(subscriber: Subscriber): void {
    if (subscriber.state === 'closed') return;
    this.dropped++;
    this.unsubscribe(subscriber, 'slow-consumer');
    subscriber.sink.destroy();
  }

  /**
   * Sends the retained events after `lastEventId` that the subscriber wants,
   * page by page, each page as fast as the client takes it, then goes live.
   * Live events that arrive meanwhile are held; the positions tell which the
   * replay already covered. A page that says events were lost (trimmed
   * before the replay reached them) is announced with `herald-resync`.
   */
  private async replay(subscriber: Subscriber, lastEventId: string, notices: boolean): Promise<void> {
    const notice = (reason: 'expired' | 'unknown'): void => {
      if (notices) this.writeNow(subscriber, frameEvent({ event: RESYNC_EVENT, data: JSON.stringify({ reason, lastEventId: lastEventId.slice(0, 256) }) }));
    };
    const request: Omit<ReadRequest, 'after'> = { topics: sourceFilterOf(subscriber.selectors), limit: REPLAY_PAGE_EVENTS, maxBytes: REPLAY_PAGE_BYTES };
    try {
      let page: ReadPage = await this.log.read({ ...request, after: { id: lastEventId } });
      if (subscriber.isClosed()) return;
      if (page.status === 'unknown') {
        notice('unknown');
        this.goLive(subscriber, undefined);
        return;
      }
      for (;;) {
        if (page.status === 'unknown') throw new HeraldError('HERALD_ERR_INTERNAL', 'the event log lost its place in the middle of a replay');
        if (page.status === 'expired') notice('expired');
        // A page leaves in one corked write (a page is bounded): one system call, not one per event, and no copy.
        const frames: Buffer[] = [];
        for (const event of page.events) if (wants(subscriber, event)) frames.push(this.frameOf(event));
        if (frames.length > 0 && !this.writeFramesNow(subscriber, frames)) await subscriber.drained();
        if (subscriber.isClosed()) return;
        const covered = page.cursor;
        if (page.end) {
          if (!subscriber.isClosed()) this.goLive(subscriber, covered);
          return;
        }
        // Between pages, live delivery and other replays get their turn.
        await nextTurn();
        if (subscriber.isClosed()) return;
        page = await this.log.read({ ...request, after: { cursor: covered } });
        if (subscriber.isClosed()) return;
      }
    } catch {
      // The log could not serve the history: end the stream, so the client reconnects and asks again.
      this.end(subscriber, 'replay-failed');
    }
  }

  /** Releases what was held during the replay, minus what the replay covered, and turns the subscriber live. */
  private goLive(subscriber: Subscriber, covered: string | undefined): void {
    const held = subscriber.held;
    subscriber.held = [];
    subscriber.heldBytes = 0;
    subscriber.state = 'live';
    subscriber.skipThrough = covered;
    for (const event of held) {
      if (covered !== undefined && event.position <= covered) continue;
      this.enqueue(subscriber, this.frameOf(event));
    }
  }

  /** Writes several frames outside the flush (a replay page), counting the bytes. */
  private writeFramesNow(subscriber: Subscriber, frames: readonly Buffer[]): boolean {
    if (frames.length === 1) return this.writeNow(subscriber, frames[0]!);
    for (const frame of frames) this.bytesWritten += frame.length;
    subscriber.wroteSinceSweep = true;
    return subscriber.sink.writeMany(frames);
  }

  /** Writes outside the flush (hello, notices, replay, heartbeats), counting the bytes. */
  private writeNow(subscriber: Subscriber, chunk: Buffer | string): boolean {
    this.bytesWritten += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    return subscriber.writeNow(chunk);
  }

  private frameOf(event: StoredEvent): Buffer {
    let frame = this.frames.get(event.position);
    if (frame === undefined) {
      frame = Buffer.from(frameEvent(event));
      this.frames.set(event.position, frame);
    }
    return frame;
  }

  private dispatch(events: readonly StoredEvent[]): void {
    for (const event of events) {
      const stamp = ++this.dispatchStamp;
      const frame = this.frameOf(event);
      const topics = topicsOf(event);
      // Split lazily, once per event: every token holder's check of a Herald scope reads the same segments.
      let segments: (readonly string[])[] | undefined;
      const segmentsOf = (): (readonly string[])[] => (segments ??= topics.map((topic) => topic.split('/')));
      const deliver = (subscriber: Subscriber): void => {
        if (subscriber.lastDispatch === stamp) return;
        subscriber.lastDispatch = stamp;
        if (!mayReceive(subscriber, event, topics, segmentsOf)) return;
        if (subscriber.state === 'live') {
          if (subscriber.skipThrough !== undefined) {
            if (event.position <= subscriber.skipThrough) return;
            // The tail has passed the replay; later events are all newer.
            subscriber.skipThrough = undefined;
          }
          this.enqueue(subscriber, frame);
        } else if (subscriber.state === 'replaying') {
          subscriber.held.push(event);
          subscriber.heldBytes += frame.length;
          if (subscriber.heldBytes > this.settings.maxBuffer) this.drop(subscriber);
        }
      };
      const before = this.delivered;
      for (const subscriber of this.everything) deliver(subscriber);
      for (const topic of topics) this.index.forEachMatch(topic, deliver);
      for (const observer of this.observers) observer.dispatched?.(event, this.delivered - before);
    }
  }

  private enqueue(subscriber: Subscriber, frame: Buffer): void {
    subscriber.pending.push(frame);
    subscriber.pendingBytes += frame.length;
    this.delivered++;
    if (!subscriber.dirty) {
      subscriber.dirty = true;
      this.dirty.push(subscriber);
    }
    if (!this.flushScheduled) this.scheduleFlush();
  }

  private scheduleFlush(): void {
    this.flushScheduled = true;
    const wait = this.lastFlushStart + this.lastFlushDuration / FLUSH_SHARE - performance.now();
    if (wait < MIN_FLUSH_WAIT_MS) setImmediate(this.flushNow);
    else setTimeout(this.flushNow, wait);
  }

  private readonly flushNow = (): void => {
    const start = performance.now();
    this.flush();
    this.lastFlushStart = start;
    this.lastFlushDuration = performance.now() - start;
  };

  /** Writes what each subscriber gathered this turn, in one call each. */
  private flush(): void {
    this.flushScheduled = false;
    const dirty = this.dirty;
    this.dirty = [];
    for (const subscriber of dirty) {
      subscriber.dirty = false;
      if (subscriber.state !== 'live') continue;
      // Bytes still unread from earlier turns: past the bound, the client is not keeping up.
      if (subscriber.sink.pendingBytes > this.settings.maxBuffer) {
        this.drop(subscriber);
        continue;
      }
      const { pending } = subscriber;
      subscriber.wroteSinceSweep = true;
      this.bytesWritten += subscriber.pendingBytes;
      if (pending.length === 1) subscriber.sink.write(pending[0]!);
      else subscriber.sink.writeMany(pending);
      subscriber.pending = [];
      subscriber.pendingBytes = 0;
    }
  }

  /** One timer for every stream: a comment on each that was idle since the last sweep. */
  private sweep(): void {
    for (const subscriber of this.subscribers) {
      if (subscriber.state === 'live' && !subscriber.wroteSinceSweep && !subscriber.dirty) {
        if (subscriber.sink.pendingBytes > this.settings.maxBuffer) this.drop(subscriber);
        else this.writeNow(subscriber, HEARTBEAT);
      }
      subscriber.wroteSinceSweep = false;
    }
  }

  /** Ends every stream after what is queued for it; clients reconnect and resume. */
  private endAll(reason: CloseReason): void {
    this.flush();
    for (const subscriber of [...this.subscribers]) this.end(subscriber, reason);
  }

  /** Ends one stream cleanly (the client reconnects); what was flushed before is delivered. */
  private end(subscriber: Subscriber, reason: CloseReason): void {
    this.unsubscribe(subscriber, reason);
    subscriber.sink.end();
  }

  /**
   * Stops taking subscribers and publishes, waits for in-flight publishes
   * (up to `shutdownTimeout`), delivers them, then ends every stream cleanly.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    await settleWithin(this.inFlight, this.settings.shutdownTimeout);
    this.flush();
    this.endAll('shutdown');
    // What the streams' ends started (their presence leaves, Mercure's `active: false`) reaches the log first.
    await settleWithin(this.afterStreams, this.settings.shutdownTimeout);
    this.logClosing = true;
    await this.presence.close();
    this.stopTail();
    this.stopGap();
    await this.log.close();
  }
}

/** Every topic of an event: its topic and the alternates a Mercure publisher may add. */
function topicsOf(event: StoredEvent): readonly string[] {
  const also = event.alsoTopics;
  if (event.topic === undefined) return NO_TOPICS;
  return also === undefined || also.length === 0 ? [event.topic] : [event.topic, ...also];
}
const NO_TOPICS: readonly string[] = Object.freeze([]);

/** Whether the subscriber receives the event: its selectors match, and its token (if any) allows it. */
function wants(subscriber: Subscriber, event: StoredEvent): boolean {
  const { selectors } = subscriber;
  const topics = topicsOf(event);
  if (selectors.length > 0 && !topics.some((topic) => selectors.some((selector) => matchesTopic(selector, topic)))) return false;
  return mayReceive(subscriber, event, topics, () => topics.map((topic) => topic.split('/')));
}

/**
 * Whether the subscriber's token lets it receive the event. Without a token:
 * public events only. With one: public and private events on the topics its
 * scope names, any of the event's topics sufficing (an event without a topic
 * needs the scope `**` or `*`).
 */
function mayReceive(subscriber: Subscriber, event: StoredEvent, topics: readonly string[], segmentsOf: () => (readonly string[])[]): boolean {
  const { scope } = subscriber;
  if (scope === undefined || (subscriber.scopeOnlyPrivate && event.private !== true)) return event.private !== true;
  if (topics.length === 0) return scope.some((selector) => selector.kind === 'any' || (selector.kind === 'herald' && selector.segments.length === 1 && selector.segments[0] === '**'));
  return scope.some((selector) => {
    if (selector.kind !== 'herald') return topics.some((topic) => matchesTopic(selector, topic));
    return segmentsOf().some((segments) => segmentsMatch(selector.segments, segments));
  });
}
