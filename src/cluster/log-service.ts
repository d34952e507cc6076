/**
 * The primary's side of the workers' event log (`--workers` without Redis):
 * it stores the appends workers send, answers their resume reads one page
 * per message, and sends every batch its log stores to every worker.
 *
 * Kept apart from the process plumbing of `primary.ts` so the contract suite
 * (`test/log-contract.test.ts`) drives a `WorkerEventLog` against the very
 * code the primary runs, over an in-process channel.
 */

import { isHeraldError } from '../errors.js';
import type { EventLog, StoredEvent } from '../log/event-log.js';
import type { AppendOutcome, PrimaryMessage, WireError, WorkerMessage } from './ipc.js';

/** Where the primary's answers to one worker go (`worker.send` in the primary). */
export interface WorkerEnd {
  send(message: PrimaryMessage): void;
}

/** The requests a worker sends about the log (the rest of its messages are the primary's business). */
export type LogRequest = Extract<WorkerMessage, { readonly herald: 'append' | 'read' }>;

export class PrimaryLogService {
  private readonly workers = new Set<WorkerEnd>();
  private outbox: StoredEvent[] = [];
  private readonly stopTail: () => void;

  constructor(private readonly log: EventLog) {
    this.stopTail = log.tail((events) => this.broadcast(events));
  }

  /** From now on, this worker gets every stored batch. */
  add(worker: WorkerEnd): void {
    this.workers.add(worker);
  }

  remove(worker: WorkerEnd): void {
    this.workers.delete(worker);
  }

  /** Serves one request; resolves once the answer is sent (it never rejects: failures are answers too). */
  serve(worker: WorkerEnd, message: LogRequest): Promise<void> {
    switch (message.herald) {
      case 'append': {
        // Appended in one go, in order: a SQLite store commits them together.
        const outcomes = message.batches.map((drafts) =>
          this.log.append(drafts).then(
            (events): AppendOutcome => ({ stored: events.map(({ id, position, time }) => ({ id, position, time })) }),
            (error: unknown): AppendOutcome => ({ error: toWire(error) }),
          ),
        );
        return Promise.all(outcomes).then((results) => worker.send({ herald: 'appended', id: message.id, results }));
      }
      case 'read':
        return this.log.read(message.request).then(
          (page) => worker.send({ herald: 'read-result', id: message.id, page }),
          (error: unknown) => worker.send({ herald: 'read-result', id: message.id, error: toWire(error) }),
        );
    }
  }

  /** Batches stored in one event-loop turn go to each worker in one message. */
  private broadcast(events: readonly StoredEvent[]): void {
    if (this.outbox.length === 0) setImmediate(this.flush);
    for (const event of events) this.outbox.push(event);
  }

  private readonly flush = (): void => {
    const events = this.outbox;
    this.outbox = [];
    const message: PrimaryMessage = { herald: 'events', events, stats: this.log.stats() };
    for (const worker of this.workers) worker.send(message);
  };

  /** Stops passing batches on (the log itself is the caller's to close). */
  close(): void {
    this.stopTail();
    this.workers.clear();
  }
}

/** An error as it crosses to a worker: its code and retry delay survive, so the worker rethrows the same `HeraldError`. */
export function toWire(error: unknown): WireError {
  if (!isHeraldError(error)) return { message: (error as Error)?.message ?? String(error) };
  const { retryAfter } = error.details;
  return retryAfter === undefined ? { code: error.code, message: error.message } : { code: error.code, message: error.message, retryAfter };
}
