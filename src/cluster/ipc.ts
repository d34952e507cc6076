/**
 * Messages between the primary process of `--workers` and its workers.
 *
 * Without Redis the primary owns the event log (memory or SQLite): workers
 * send it their appends and resume reads, and it sends every worker each
 * batch it stored. One owner assigns every position (and every id not chosen
 * by a publisher), so the order is one across workers exactly as in a single
 * process. Drafts and stored events cross as plain data, their optional
 * fields (a chosen `id`, `alsoTopics`, `retry`, `private`) with them.
 */

import type { ErrorCode } from '../errors.js';
import type { EventDraft, EventLogStats, ReadPage, ReadRequest, StoredEvent } from '../log/event-log.js';
import type { PresenceRecord } from '../presence/presence.js';

/** An error crossing the process boundary: a `HeraldError`'s code and the facts the HTTP layer needs. */
export interface WireError {
  readonly code?: ErrorCode;
  readonly message: string;
  /** `ErrorDetails.retryAfter`: a refused publish keeps its `Retry-After` across IPC. */
  readonly retryAfter?: number;
}

/** What the primary's log gave each event of a batch (the data stays with the worker, which has it); `id` is the chosen one if the draft had it. */
export interface StoredPlace {
  readonly id: string;
  readonly position: string;
  readonly time: number;
}

/** One change of a worker's presence records. */
export type PresenceChange = { readonly join: PresenceRecord } | { readonly leave: string };

export type AppendOutcome = { readonly stored: readonly StoredPlace[] } | { readonly error: WireError };

export type WorkerMessage =
  /** The publishes of one event-loop turn, each an atomic batch, stored in order. */
  | { readonly herald: 'append'; readonly id: number; readonly batches: readonly (readonly EventDraft[])[] }
  /** One page of a resume: the primary's log reads it, bounded as any read. */
  | { readonly herald: 'read'; readonly id: number; readonly request: ReadRequest }
  /** The presence changes of one event-loop turn, in order; answered once the primary holds them. */
  | { readonly herald: 'presence'; readonly id: number; readonly changes: readonly PresenceChange[] }
  /** Every worker's presence records. */
  | { readonly herald: 'presence-list'; readonly id: number }
  /** The worker serves connections from now on. */
  | { readonly herald: 'ready' };

export type PrimaryMessage =
  /** One outcome per batch of the `append`, in order. */
  | { readonly herald: 'appended'; readonly id: number; readonly results: readonly AppendOutcome[] }
  | { readonly herald: 'read-result'; readonly id: number; readonly page?: ReadPage; readonly error?: WireError }
  | { readonly herald: 'events'; readonly events: readonly StoredEvent[]; readonly stats: EventLogStats }
  | { readonly herald: 'presence-done'; readonly id: number }
  | { readonly herald: 'presence-listed'; readonly id: number; readonly records: readonly PresenceRecord[] }
  /** The records of a worker that died with its streams, for this worker to report (once, to one worker). */
  | { readonly herald: 'presence-lost'; readonly records: readonly PresenceRecord[] }
  /** Sent with a client connection's socket as the handle. */
  | { readonly herald: 'connection' };

const WORKER_MESSAGES: ReadonlySet<string> = new Set(['append', 'read', 'presence', 'presence-list', 'ready']);
const PRIMARY_MESSAGES: ReadonlySet<string> = new Set(['appended', 'read-result', 'events', 'presence-done', 'presence-listed', 'presence-lost', 'connection']);

function isTagged(value: unknown): value is { herald: string } {
  return typeof value === 'object' && value !== null && typeof (value as { herald?: unknown }).herald === 'string';
}

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  return isTagged(value) && WORKER_MESSAGES.has(value.herald);
}

export function isPrimaryMessage(value: unknown): value is PrimaryMessage {
  return isTagged(value) && PRIMARY_MESSAGES.has(value.herald);
}
