/**
 * The event log: the seam between the hub and where events are kept.
 *
 * The log owns ids and order. Appending assigns ids and positions (in one
 * atomic step per batch), reading serves resume one bounded page at a time,
 * and the tail feeds live delivery. The hub dispatches only what the tail
 * reports, so one path serves events appended here and, for shared logs,
 * events appended by other processes.
 *
 * The hub never parses an id. It orders events by their `position`, a string
 * the log assigns: positions of one log sort, as plain strings, in the log's
 * order. So an engine with plain sequence numbers, or a protocol whose
 * publishers choose the ids, plugs in without faking an id scheme.
 *
 * Every log must pass the contract suite in `test/log-contract.test.ts`.
 */

/** An event as a publisher hands it to the log, before it has an id. */
export interface EventDraft {
  /**
   * An id the publisher chose (Mercure's `id`), kept verbatim as the SSE
   * `id`: the publisher's own systems know the update by it, and clients
   * resume with it. Not a key: several events may carry the same one (a
   * resume then goes on after the newest). Absent: the log assigns one of its
   * own. Present: not empty, and no CR, LF or NUL, which the SSE `id` field
   * cannot carry.
   */
  readonly id?: string | undefined;
  /** Absent: the event reaches only subscribers without topic selectors. */
  readonly topic?: string | undefined;
  /**
   * More topics the event is published to besides `topic` (Mercure's
   * alternate topics: one update, several URLs naming the same resource).
   * A subscriber of any of them receives it, once, and a topic filter
   * passes it for any of them; `topic` stays the canonical one, so an event
   * with alternates always has a `topic`. Each is a non-empty string; an
   * empty list is as good as none.
   */
  readonly alsoTopics?: readonly string[] | undefined;
  /** The SSE `event` field; absent means the client's default `message`. */
  readonly event?: string | undefined;
  /** The `data` text exactly as subscribers will receive it. */
  readonly data: string;
  /** Only subscribers whose token allows the topic receive it (see `--jwt-*`). */
  readonly private?: boolean | undefined;
  /**
   * The SSE `retry` the publisher asks clients to use, in ms (a non-negative
   * integer): it travels with the event, so a replayed event tells a client
   * what a live one would have. Absent: the hub's own setting applies.
   */
  readonly retry?: number | undefined;
}

/** An event the log has accepted. It belongs to the log: nobody else changes it. */
export interface StoredEvent extends EventDraft {
  /** The SSE id: what clients see, and resume from with `Last-Event-ID`. */
  readonly id: string;
  /**
   * The event's place in the log. Positions of one log compare as plain
   * strings in the log's order (`a.position < b.position`: `a` came first),
   * and no two events share one.
   */
  readonly position: string;
  /** When the log stored the event, in ms since the epoch (delivery-lag metrics). */
  readonly time: number;
}

/**
 * Topics a reader wants, for a log that can skip other events at the source
 * (an index on topic). Only a hint: the hub checks every event it is given,
 * so a log may return more than asked (or ignore the filter altogether), but
 * never less.
 */
export interface TopicFilter {
  /** Topics wanted exactly. */
  readonly exact: readonly string[];
  /** Every topic starting with one of these is wanted. */
  readonly prefixes: readonly string[];
}

/** Where a read starts: after a client's `Last-Event-ID`, or after the cursor of the page before. */
export type ReadStart = { readonly id: string } | { readonly cursor: string };

export interface ReadRequest {
  readonly after: ReadStart;
  /** Absent: every event, including events without a topic. */
  readonly topics?: TopicFilter | undefined;
  /** Events per page at most (at least 1). */
  readonly limit: number;
  /** Bytes of `data` per page at most; a page holds at least one event all the same. */
  readonly maxBytes: number;
}

/**
 * One page of a read:
 * - `complete`: `events` are the retained events after the start, in order,
 *   up to `cursor` (those the filter skipped left out);
 * - `expired`: the start is older than what the log retains, so events may
 *   be missing before the first one returned (trimmed, or from before the log
 *   existed); `events` go on from the oldest retained;
 * - `unknown` (first pages only): the id is not one this log could have
 *   issued (malformed, or ahead of the newest event).
 *
 * `cursor` is the position through which the page looked, events skipped by
 * the filter included: the next page starts after it. `end` is true when
 * nothing was retained after `cursor` when the page was read.
 */
export type ReadPage =
  | { readonly status: 'unknown' }
  | {
      readonly status: 'complete' | 'expired';
      readonly events: readonly StoredEvent[];
      readonly cursor: string;
      readonly end: boolean;
    };

export interface EventLogStats {
  /** Events retained. */
  readonly size: number;
  readonly oldestId: string | undefined;
  readonly newestId: string | undefined;
}

export type TailListener = (events: readonly StoredEvent[]) => void;

/** Whether a log can take appends and feed its tail right now. */
export type LogHealth = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface EventLog {
  /**
   * Whether other processes append to this log too (Redis). A shared log's
   * tail may bring events a read has already returned, and the other way
   * round; the hub reconciles them by position.
   */
  readonly shared: boolean;
  /** Stores the drafts as one atomic batch, in order; resolves once they are kept. */
  append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent[]>;
  /**
   * Reads one bounded page of retained events, for resume.
   *
   * The guarantee the hub builds on: an event appended after a read was
   * called is either in that read's page or is passed to every tail listener
   * registered before the call. A log that cannot promise it yet (a shared
   * log whose tail has not started following) rejects instead.
   */
  read(request: ReadRequest): Promise<ReadPage>;
  /** Registers a listener for every appended batch, in order; returns the unsubscribe function. */
  tail(listener: TailListener): () => void;
  stats(): EventLogStats;
  /** For logs that open or connect somewhere: resolves once ready, or once waiting longer is pointless; rejects if the log cannot open at all. */
  ready?(): Promise<void>;
  /** For logs that live elsewhere (Redis, another process); absent means always healthy. */
  health?(): LogHealth;
  /**
   * For shared logs: registers a listener called when this node's tail may
   * have skipped events (it fell behind trimming, or the store lost data).
   * The hub then ends its streams so every client resumes from its last id
   * and learns exactly what it missed. Returns the unsubscribe function.
   */
  onGap?(listener: () => void): () => void;
  close(): Promise<void>;
}

/** The `private` flag of a draft, as a field to spread into an event: absent unless set, so public events carry nothing extra. */
export function privacy(draft: EventDraft): { private?: true } {
  return draft.private === true ? { private: true } : {};
}

/** Whether a topic passes a filter (absent: everything passes). Logs without an index filter with it. */
export function passesFilter(filter: TopicFilter | undefined, topic: string | undefined): boolean {
  if (filter === undefined) return true;
  if (topic === undefined) return false;
  if (filter.exact.includes(topic)) return true;
  for (const prefix of filter.prefixes) if (topic.startsWith(prefix)) return true;
  return false;
}
