/**
 * The embedded default: the last `capacity` events in a ring, in memory.
 *
 * Chosen ids are found through a map from each id to the newest retained
 * event carrying it; an event leaving the ring takes its entry with it
 * (unless a newer event carries the same id), so the map never holds more
 * entries than the ring holds events.
 */

import { HeraldError } from '../errors.js';
import { checkDrafts, extras, passesFilter, type EventDraft, type EventLog, type EventLogStats, type ReadPage, type ReadRequest, type StoredEvent, type TailListener } from './event-log.js';
import { compareEventIds, EventIdGenerator, formatEventId, parseEventId, positionOf, type EventId } from './event-id.js';

export interface MemoryLogOptions {
  /** How many events to keep for resume; 0 keeps none. */
  readonly capacity: number;
  /** Events older than this many ms are dropped; 0 or absent keeps them regardless of age. */
  readonly maxAgeMs?: number;
  /** The clock; tests replace it. */
  readonly now?: () => number;
}

/** Entries one read looks at, at most: a filtered read over a large ring returns in bounded time. */
const SCAN_BUDGET = 10_000;

export class MemoryEventLog implements EventLog {
  readonly shared = false;
  private readonly capacity: number;
  private readonly now: () => number;
  private readonly ids: EventIdGenerator;
  private readonly ring: (StoredEvent | undefined)[];
  private head = 0;
  private size = 0;
  /**
   * Everything at or before this position is unknown to this log: events of
   * a previous run, or events trimmed from the ring. Reading after a position
   * at or after it is complete; before it, events may be missing.
   */
  private horizon: string;
  private newest: EventId;
  /** The newest retained event of each chosen id. */
  private readonly chosen = new Map<string, StoredEvent>();
  private readonly listeners = new Set<TailListener>();
  private readonly maxAgeMs: number;
  private readonly trimTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: MemoryLogOptions) {
    this.capacity = options.capacity;
    this.now = options.now ?? Date.now;
    // Ids of this run start at the current millisecond, so any id from an
    // earlier run (or an earlier millisecond) falls before the horizon.
    const start: EventId = { ms: this.now(), seq: -1 };
    this.horizon = positionOf(start);
    this.newest = start;
    this.ids = new EventIdGenerator(start);
    this.ring = new Array<StoredEvent | undefined>(this.capacity);
    this.maxAgeMs = options.maxAgeMs ?? 0;
    if (this.maxAgeMs > 0) {
      this.trimTimer = setInterval(() => this.trimByAge(), Math.min(1000, this.maxAgeMs));
      this.trimTimer.unref();
    }
  }

  /** Drops events older than `maxAgeMs` from the head of the ring. */
  trimByAge(): void {
    const cutoff = this.now() - this.maxAgeMs;
    while (this.size > 0 && this.at(0).time < cutoff) this.dropOldest();
  }

  private dropOldest(): void {
    const oldest = this.at(0);
    if (this.chosen.get(oldest.id) === oldest) this.chosen.delete(oldest.id);
    this.horizon = oldest.position;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.size--;
  }

  async append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent[]> {
    // As every log: an append after close is refused, never silently kept where nobody reads it.
    if (this.closed) throw new HeraldError('HERALD_ERR_STORE_UNAVAILABLE', 'the event log is closed; the publish was not acknowledged', { retryAfter: 1 });
    checkDrafts(drafts);
    const stored: StoredEvent[] = [];
    const time = this.now();
    for (const draft of drafts) {
      const key = this.ids.next(time);
      const event: StoredEvent = { id: draft.id ?? formatEventId(key), position: positionOf(key), time, topic: draft.topic, event: draft.event, data: draft.data, ...extras(draft) };
      this.keep(event, draft.id !== undefined);
      this.newest = key;
      stored.push(event);
    }
    for (const listener of this.listeners) listener(stored);
    return stored;
  }

  private keep(event: StoredEvent, chosenId: boolean): void {
    if (this.capacity === 0) {
      this.horizon = event.position;
      return;
    }
    if (this.size === this.capacity) this.dropOldest();
    this.ring[(this.head + this.size) % this.capacity] = event;
    this.size++;
    if (chosenId) this.chosen.set(event.id, event);
  }

  private at(index: number): StoredEvent {
    return this.ring[(this.head + index) % this.capacity]!;
  }

  /** The index of the first retained event after `position` (binary search). */
  private indexAfter(position: string): number {
    let low = 0;
    let high = this.size;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.at(mid).position <= position) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Where a read after a client's id starts (see `ReadStart`): a position, or `undefined` for none. */
  private startOf(id: string): string | undefined {
    const chosen = this.chosen.get(id);
    const key = parseEventId(id);
    if (chosen !== undefined) {
      // The id also names a place of the log's own: the event there carries it too only if nobody chose it another id.
      if (key === undefined || chosen.position >= positionOf(key)) return chosen.position;
      const index = this.indexAfter(positionOf(key)) - 1;
      const there = index >= 0 ? this.at(index) : undefined;
      if (there?.position !== positionOf(key) || there.id !== id) return chosen.position;
    }
    if (key === undefined || compareEventIds(key, this.newest) > 0) return undefined;
    return positionOf(key);
  }

  async read(request: ReadRequest): Promise<ReadPage> {
    let after: string;
    if ('id' in request.after) {
      const start = this.startOf(request.after.id);
      if (start === undefined) return { status: 'unknown' };
      after = start;
    } else {
      after = request.after.cursor;
    }
    const expired = after < this.horizon;
    const low = this.indexAfter(after);
    const events: StoredEvent[] = [];
    let bytes = 0;
    let cursor = expired ? this.horizon : after;
    let index = low;
    const last = Math.min(this.size, low + SCAN_BUDGET);
    for (; index < last; index++) {
      const event = this.at(index);
      if (passesFilter(request.topics, event)) {
        if (events.length > 0 && (events.length >= request.limit || bytes + event.data.length > request.maxBytes)) break;
        events.push(event);
        bytes += event.data.length;
      }
      cursor = event.position;
    }
    return { status: expired ? 'expired' : 'complete', events, cursor, end: index === this.size };
  }

  tail(listener: TailListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stats(): EventLogStats {
    return {
      size: this.size,
      oldestId: this.size > 0 ? this.at(0).id : undefined,
      newestId: this.size > 0 ? this.at(this.size - 1).id : undefined,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.trimTimer);
    this.listeners.clear();
  }
}
