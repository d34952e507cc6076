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
 * Ids are labels. The log gives each event one of its own (which it can
 * parse back to a place in the log), unless the publisher chose one (Mercure
 * lets it): a chosen id is kept verbatim, need not be unique, and the log
 * remembers which retained event carries it, so a client resumes after it
 * as after any other id (see {@link ReadStart}).
 *
 * Every log must pass the contract suite in `test/log-contract.test.ts`.
 */

import type { PresenceStore } from '../presence/presence.js';

import { HeraldError } from '../errors.js';

/**
 * An event as a publisher hands it to the log, usually before it has an id.
 * The publishing edge validates what it accepts; the log refuses (with
 * `HERALD_ERR_INVALID_EVENT`, the whole batch) only what it could not keep
 * faithfully: see {@link checkDrafts}.
 */
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
  /**
   * The SSE id: what clients see, and resume from with `Last-Event-ID`. The
   * draft's chosen id if it had one, else the log's own. Never parse it for
   * order (a chosen id says nothing about it): that is what `position` is for.
   */
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

/**
 * Where a read starts: after a client's `Last-Event-ID`, or after the cursor
 * of the page before.
 *
 * An `id` is resolved in this order, the same in every log:
 * 1. the newest retained event whose id is exactly this one (a chosen id, or
 *    the log's own): the read goes on after it. A chosen id that happens to
 *    look like one of the log's own (`1764032400000-3`) is found here, by
 *    what it is, not by what it looks like;
 * 2. else, if it has the log's own format (`parseEventId`), the place it
 *    names: a read after it is `expired` when that is older than what the
 *    log retains, `unknown` when it is ahead of the newest event;
 * 3. else `unknown`: a chosen id whose events were all trimmed, or an id
 *    this log never gave out. The log cannot tell where it stood, so it does
 *    not guess (the hub resynchronises the client).
 */
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
 * - `unknown` (first pages only): the id names no place in this log (no
 *   retained event carries it, and it is malformed, or ahead of the newest
 *   event; see {@link ReadStart}).
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
   * Reads one bounded page of retained events, for resume. A first page
   * starts after a client's id, resolved as {@link ReadStart} says.
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
  /**
   * For logs shared between processes: the presence store of the processes
   * sharing it (who is subscribed to what, on every node), named `node` in
   * its records. Absent: presence is this process's own (`LocalPresence`).
   * Called once per hub; the store is closed by its caller, before the log.
   */
  presence?(node: string): PresenceStore;
  close(): Promise<void>;
}

/**
 * The `private` flag of a draft, as a field to spread into an event: absent
 * unless set, so public events carry nothing extra. The logs spread
 * {@link extras}, which holds it with the other optional fields.
 */
export function privacy(draft: EventDraft): { private?: true } {
  return draft.private === true ? { private: true } : {};
}

/** What a stored event carries over from its draft besides its topic, type and data. */
export interface DraftExtras {
  readonly private?: true;
  readonly alsoTopics?: readonly string[];
  readonly retry?: number;
}

const NO_EXTRAS: DraftExtras = Object.freeze({});

/**
 * The optional fields of a draft a stored event keeps (`private`,
 * `alsoTopics`, `retry`; the chosen `id` is the log's to place), to spread
 * into the event: each absent unless set, so Herald's own events carry
 * nothing extra. Copies `alsoTopics`: the stored event belongs to the log.
 */
export function extras(draft: EventDraft): DraftExtras {
  const { alsoTopics, retry } = draft;
  const hasAlso = alsoTopics !== undefined && alsoTopics.length > 0;
  if (draft.private !== true && !hasAlso && retry === undefined) return NO_EXTRAS;
  return {
    ...(draft.private === true ? { private: true } : {}),
    ...(hasAlso ? { alsoTopics: [...alsoTopics] } : {}),
    ...(retry === undefined ? {} : { retry }),
  };
}

/** CR, LF and NUL: what no SSE field value can carry. */
const NOT_IN_A_FIELD = /[\r\n\0]/;
/** Lone surrogates: text that is not Unicode, which a store keeping UTF-8 (SQLite, Redis) would change. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Refuses a batch holding a draft the log could not keep faithfully (see
 * {@link EventDraft}): an empty chosen id or one with CR, LF or NUL,
 * alternates without a canonical topic or holding an empty string, either
 * with a lone surrogate, a `retry` that is not a non-negative integer. Every log calls it before
 * storing anything, so a batch is kept whole or not at all.
 * @throws HeraldError `HERALD_ERR_INVALID_EVENT`
 */
export function checkDrafts(drafts: readonly EventDraft[]): void {
  for (const [index, draft] of drafts.entries()) {
    const problem = draftProblem(draft);
    if (problem !== undefined) throw new HeraldError('HERALD_ERR_INVALID_EVENT', `event ${index}: ${problem}; nothing was stored`);
  }
}

function draftProblem({ id, topic, alsoTopics, retry }: EventDraft): string | undefined {
  if (id !== undefined && (typeof id !== 'string' || id === '' || NOT_IN_A_FIELD.test(id) || LONE_SURROGATE.test(id))) {
    return 'a chosen id must be a non-empty string of well-formed Unicode without CR, LF or NUL';
  }
  if (alsoTopics !== undefined) {
    if (!Array.isArray(alsoTopics) || alsoTopics.some((also) => typeof also !== 'string' || also === '' || LONE_SURROGATE.test(also))) {
      return 'alsoTopics must be a list of non-empty strings of well-formed Unicode';
    }
    if (alsoTopics.length > 0 && topic === undefined) return 'an event with alsoTopics needs a topic';
  }
  if (retry !== undefined && !(Number.isSafeInteger(retry) && retry >= 0)) return 'retry must be a non-negative integer (ms)';
  return undefined;
}

/**
 * Whether an event passes a filter (absent: everything passes): its topic
 * or any of its `alsoTopics` does. Logs without an index filter with it.
 */
export function passesFilter(filter: TopicFilter | undefined, event: Pick<EventDraft, 'topic' | 'alsoTopics'>): boolean {
  if (filter === undefined) return true;
  if (event.topic === undefined) return false;
  if (topicPasses(filter, event.topic)) return true;
  const also = event.alsoTopics;
  if (also !== undefined) for (const topic of also) if (topicPasses(filter, topic)) return true;
  return false;
}

function topicPasses(filter: TopicFilter, topic: string): boolean {
  if (filter.exact.includes(topic)) return true;
  for (const prefix of filter.prefixes) if (topic.startsWith(prefix)) return true;
  return false;
}
