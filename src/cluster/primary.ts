/**
 * `--workers n`: the primary process forks n workers that share the port
 * (`node:cluster`) and serve the streams; together they are one hub.
 *
 * Without Redis the primary owns the event log (memory, or SQLite with
 * `--store`): it assigns every id, answers resume reads and sends each stored
 * batch to every worker, so a publish on any worker reaches subscribers on
 * all of them. With Redis, each worker follows Redis itself and the primary
 * only supervises.
 */

import cluster, { type Worker } from 'node:cluster';
import { isHeraldError } from '../errors.js';
import { defaultEventLog } from '../herald.js';
import type { ResolvedOptions } from '../config/options.js';
import type { EventLog, StoredEvent } from '../log/event-log.js';
import { settleWithin } from '../settle.js';
import { isWorkerMessage, plainEvent, type PrimaryMessage, type WireError, type WorkerMessage } from './ipc.js';

export interface PrimaryOutput {
  /** A line for the operator (ready, stopping, a worker restarted). */
  info(line: string): void;
  warn(line: string): void;
}

/** A worker that dies this soon after it started is not restarted (it would fail again). */
const RESTART_DELAY_MS = 500;

export class ClusterPrimary {
  private readonly log: EventLog | undefined;
  private readonly workers = new Set<Worker>();
  private readonly listening = new Set<number>();
  private outbox: StoredEvent[] = [];
  private announced = false;
  private stopping: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly ready: Promise<string>;
  private settleReady!: { resolve: (url: string) => void; reject: (error: Error) => void };

  constructor(
    private readonly options: ResolvedOptions,
    private readonly output: PrimaryOutput,
  ) {
    this.log = options.redis === '' ? defaultEventLog(options, (line) => output.warn(line)) : undefined;
    this.log?.tail((events) => this.broadcast(events));
    this.ready = new Promise((resolve, reject) => (this.settleReady = { resolve, reject }));
  }

  /** Forks the workers; resolves with the URL once every one listens, rejects if one fails to start. */
  start(): Promise<string> {
    for (let i = 0; i < this.options.workers; i++) this.fork();
    return this.ready;
  }

  private fork(): void {
    const worker = cluster.fork();
    this.workers.add(worker);
    worker.on('message', (message: unknown) => {
      if (isWorkerMessage(message)) this.receive(worker, message);
    });
    worker.once('exit', (code, signal) => this.exited(worker, code, signal));
  }

  private receive(worker: Worker, message: WorkerMessage): void {
    switch (message.herald) {
      case 'listening':
        this.listening.add(worker.id);
        if (!this.announced && this.listening.size === this.options.workers) {
          this.announced = true;
          this.settleReady.resolve(message.url);
        }
        return;
      case 'append':
        this.track(
          this.requireLog().append(message.drafts).then(
            (events) => send(worker, { herald: 'appended', id: message.id, ids: events.map((event) => event.id) }),
            (error: unknown) => send(worker, { herald: 'appended', id: message.id, error: toWire(error) }),
          ),
        );
        return;
      case 'read':
        this.track(
          this.requireLog().readAfter(message.after).then(
            (result) => send(worker, { herald: 'read-result', id: message.id, result: { status: result.status, events: result.events.map(plainEvent) } }),
            (error: unknown) => send(worker, { herald: 'read-result', id: message.id, error: toWire(error) }),
          ),
        );
        return;
    }
  }

  private requireLog(): EventLog {
    if (this.log === undefined) throw new Error('workers with --redis keep their own event log');
    return this.log;
  }

  private track(work: Promise<unknown>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  /** Batches stored in one event-loop turn go to each worker in one message. */
  private broadcast(events: readonly StoredEvent[]): void {
    if (this.outbox.length === 0) setImmediate(this.flush);
    for (const event of events) this.outbox.push(plainEvent(event));
  }

  private readonly flush = (): void => {
    const events = this.outbox;
    this.outbox = [];
    const message: PrimaryMessage = { herald: 'events', events, stats: this.log!.stats() };
    for (const worker of this.workers) send(worker, message);
  };

  private exited(worker: Worker, code: number | null, signal: string | null): void {
    this.workers.delete(worker);
    const wasListening = this.listening.delete(worker.id);
    if (this.stopping !== undefined) return;
    const how = signal ?? `code ${code}`;
    if (!this.announced && !wasListening) {
      // A worker that cannot start (port taken, bad Redis URL) would fail again: give up.
      this.settleReady.reject(new Error(`a worker exited (${how}) before listening`));
      void this.stop();
      return;
    }
    this.output.warn(`herald: worker ${worker.process.pid} exited (${how}); starting another`);
    setTimeout(() => {
      if (this.stopping === undefined) this.fork();
    }, RESTART_DELAY_MS).unref();
  }

  /** Stops every worker (each ends its streams and finishes its publishes), then closes the log. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const exits = [...this.workers].map((worker) => new Promise<void>((resolve) => {
      if (worker.isDead()) resolve();
      else worker.once('exit', () => resolve());
      worker.process.kill('SIGTERM');
    }));
    await settleWithin(new Set(exits), this.options.shutdownTimeout + 1000);
    await settleWithin(this.inFlight, this.options.shutdownTimeout);
    await this.log?.close();
  }
}

function send(worker: Worker, message: PrimaryMessage): void {
  if (worker.isConnected()) worker.send(message);
}

function toWire(error: unknown): WireError {
  if (isHeraldError(error)) return { code: error.code, message: error.message };
  return { message: (error as Error)?.message ?? String(error) };
}
