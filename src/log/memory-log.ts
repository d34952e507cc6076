/**
 * The embedded default: the last `capacity` events in a ring, in memory.
 */

import { privacy, type EventDraft, type EventLog, type EventLogStats, type ResumeResult, type StoredEvent, type TailListener } from './event-log.js';
import { compareEventIds, EventIdGenerator, formatEventId, parseEventId, type EventId } from './event-id.js';

interface Entry {
  readonly key: EventId;
  readonly event: StoredEvent;
}

export interface MemoryLogOptions {
  /** How many events to keep for resume; 0 keeps none. */
  readonly capacity: number;
  /** Events older than this many ms are dropped; 0 or absent keeps them regardless of age. */
  readonly maxAgeMs?: number;
  /** The clock; tests replace it. */
  readonly now?: () => number;
}

export class MemoryEventLog implements EventLog {
  private readonly capacity: number;
  private readonly now: () => number;
  private readonly ids: EventIdGenerator;
  private readonly ring: (Entry | undefined)[];
  private head = 0;
  private size = 0;
  /**
   * Everything at or before this id is unknown to this log: events of a
   * previous run, or events trimmed from the ring. Resuming from an id at or
   * after it is complete; from an id before it, events may be missing.
   */
  private horizon: EventId;
  private newest: EventId;
  private readonly listeners = new Set<TailListener>();
  private readonly maxAgeMs: number;
  private readonly trimTimer: NodeJS.Timeout | undefined;

  constructor(options: MemoryLogOptions) {
    this.capacity = options.capacity;
    this.now = options.now ?? Date.now;
    // Ids of this run start at the current millisecond, so any id from an
    // earlier run (or an earlier millisecond) falls before the horizon.
    this.horizon = { ms: this.now(), seq: -1 };
    this.newest = this.horizon;
    this.ids = new EventIdGenerator(this.horizon);
    this.ring = new Array<Entry | undefined>(this.capacity);
    this.maxAgeMs = options.maxAgeMs ?? 0;
    if (this.maxAgeMs > 0) {
      this.trimTimer = setInterval(() => this.trimByAge(), Math.min(1000, this.maxAgeMs));
      this.trimTimer.unref();
    }
  }

  /** Drops events older than `maxAgeMs` from the head of the ring. */
  trimByAge(): void {
    const cutoff = this.now() - this.maxAgeMs;
    while (this.size > 0 && this.at(0).key.ms < cutoff) {
      this.horizon = this.at(0).key;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.size--;
    }
  }

  async append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent[]> {
    const stored: StoredEvent[] = [];
    for (const draft of drafts) {
      const key = this.ids.next(this.now());
      const event: StoredEvent = { id: formatEventId(key), topic: draft.topic, event: draft.event, data: draft.data, ...privacy(draft) };
      this.keep({ key, event });
      this.newest = key;
      stored.push(event);
    }
    for (const listener of this.listeners) listener(stored);
    return stored;
  }

  private keep(entry: Entry): void {
    if (this.capacity === 0) {
      this.horizon = entry.key;
      return;
    }
    const tail = (this.head + this.size) % this.capacity;
    if (this.size === this.capacity) {
      this.horizon = this.ring[this.head]!.key;
      this.head = (this.head + 1) % this.capacity;
    } else {
      this.size++;
    }
    this.ring[tail] = entry;
  }

  private at(index: number): Entry {
    return this.ring[(this.head + index) % this.capacity]!;
  }

  async readAfter(lastEventId: string): Promise<ResumeResult> {
    const after = parseEventId(lastEventId);
    if (after === undefined || compareEventIds(after, this.newest) > 0) return { status: 'unknown', events: [] };
    const status = compareEventIds(after, this.horizon) < 0 ? 'expired' : 'complete';
    // Binary search for the first retained entry after `after`.
    let low = 0;
    let high = this.size;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareEventIds(this.at(mid).key, after) <= 0) low = mid + 1;
      else high = mid;
    }
    const events: StoredEvent[] = [];
    for (let i = low; i < this.size; i++) events.push(this.at(i).event);
    return { status, events };
  }

  tail(listener: TailListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stats(): EventLogStats {
    return {
      size: this.size,
      oldestId: this.size > 0 ? this.at(0).event.id : undefined,
      newestId: this.size > 0 ? this.at(this.size - 1).event.id : undefined,
    };
  }

  async close(): Promise<void> {
    clearInterval(this.trimTimer);
    this.listeners.clear();
  }
}
