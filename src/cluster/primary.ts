/**
 * `--workers n`: the primary process listens on the port and hands each
 * connection to the next of n worker processes (`node:cluster`), which serve
 * the streams; together they are one hub.
 *
 * The primary accepts and passes sockets itself rather than using cluster's
 * round-robin: Node holds a handle in transit to a worker until that worker
 * acknowledges it, so a connection sent to a worker that dies just then hangs
 * forever. Here the primary keeps its own copy of each socket until the send
 * completes: a socket whose worker died first goes to another worker,
 * untouched; one already delivered dies with its worker and is reset, so the
 * client retries.
 *
 * Without Redis the primary owns the event log (memory, or SQLite with
 * `--store`): it assigns every id, answers resume reads and sends each stored
 * batch to every worker, so a publish on any worker reaches subscribers on
 * all of them. With Redis, each worker follows Redis itself and the primary
 * only supervises.
 */

import cluster, { type Worker } from 'node:cluster';
import type { Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { AggregatorRegistry } from 'prom-client';
import { listenForMetrics } from '../http/metrics-port.js';
import { HeraldError } from '../errors.js';
import { LISTEN_BACKLOG, urlOf } from '../http/server.js';
import { createEventLog, engineOf } from '../log/create.js';
import type { ResolvedOptions } from '../config/options.js';
import type { EventLog } from '../log/event-log.js';
import { settleWithin } from '../settle.js';
import { isWorkerMessage, type PrimaryMessage, type WorkerMessage } from './ipc.js';
import { PrimaryLogService, toWire, type WorkerEnd } from './log-service.js';
import { PrimaryPresenceService } from './presence-service.js';

export interface PrimaryOutput {
  /** A line for the operator (ready, stopping, a worker restarted). */
  info(line: string): void;
  warn(line: string): void;
}

/** A worker that dies this soon after it started is not restarted (it would fail again). */
const RESTART_DELAY_MS = 500;

export class ClusterPrimary {
  private readonly log: EventLog | undefined;
  /** Serves the log to the workers; absent with a shared log, which each worker follows itself. */
  private readonly logService: PrimaryLogService | undefined;
  /** Holds the workers' presence records; absent with a shared log, whose own store (Redis) they use. */
  private readonly presence: PrimaryPresenceService | undefined;
  /** Each worker's end of the log service. */
  private readonly workers = new Map<Worker, WorkerEnd>();
  /** Workers serving connections, in hand-out order. */
  private ready: Worker[] = [];
  private nextWorker = 0;
  /** Connections accepted before any worker was ready (at start, or all restarting). */
  private waiting: Socket[] = [];
  private server: Server | undefined;
  private metricsServer: HttpServer | undefined;
  /** Sockets whose send to a worker has not completed yet; the primary still holds them. */
  private readonly inTransit = new Map<Worker, Set<Socket>>();
  private url = '';
  private announced = false;
  private stopping: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly allReady: Promise<string>;
  private settleReady!: { resolve: (url: string) => void; reject: (error: Error) => void };

  constructor(
    private readonly options: ResolvedOptions,
    private readonly output: PrimaryOutput,
  ) {
    // A log every process can open (Redis) is followed by each worker; any other is the primary's, shared over IPC.
    this.log = engineOf(options).shared ? undefined : createEventLog(options, (line) => output.warn(line));
    this.logService = this.log === undefined ? undefined : new PrimaryLogService(this.log);
    this.presence = this.log === undefined ? undefined : new PrimaryPresenceService();
    this.allReady = new Promise((resolve, reject) => (this.settleReady = { resolve, reject }));
    // Settled only through the promise returned by start().
    this.allReady.catch(() => undefined);
  }

  /** Listens, forks the workers; resolves with the URL once every one is ready, rejects if one fails to start. */
  async start(): Promise<string> {
    // A log that cannot open (an unusable --store) stops the start before anything listens.
    await this.log?.ready?.();
    const server = createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.distribute(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: this.options.port, host: this.options.host, backlog: LISTEN_BACKLOG }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((error: NodeJS.ErrnoException) => {
      const why = error.code === 'EADDRINUSE' ? `port ${this.options.port} on ${this.options.host} is already in use` : error.message;
      throw new Error(`cannot listen: ${why}`);
    });
    this.url = urlOf(server.address() as AddressInfo, this.options.tlsCert !== undefined);
    for (let i = 0; i < this.options.workers; i++) this.fork();
    if (this.options.metricsPort !== undefined) await this.serveMetrics(this.options.metricsPort);
    return this.allReady;
  }

  /** `--metrics-port`: every worker's metrics, gathered over IPC (each series keeps its worker's `node` label). */
  private async serveMetrics(port: number): Promise<void> {
    const aggregator = new AggregatorRegistry();
    const gathered = {
      contentType: aggregator.contentType,
      render: () =>
        aggregator.clusterMetrics().catch((error: unknown) => {
          throw new HeraldError('HERALD_ERR_INTERNAL', `the workers' metrics could not be gathered: ${(error as Error).message}`);
        }),
    };
    this.metricsServer = await listenForMetrics(gathered, port, this.options.host);
  }

  /** Hands a new connection to the next ready worker; if sending fails, to the one after. */
  private distribute(socket: Socket, attempts = 0): void {
    if (socket.destroyed) return;
    if (this.ready.length === 0 || attempts >= this.ready.length + 1) {
      this.waiting.push(socket);
      return;
    }
    const worker = this.ready[this.nextWorker++ % this.ready.length]!;
    socket.on('error', ignore);
    let pending = this.inTransit.get(worker);
    if (pending === undefined) this.inTransit.set(worker, (pending = new Set()));
    pending.add(socket);
    worker.send({ herald: 'connection' } satisfies PrimaryMessage, socket, { keepOpen: true }, (error: Error | null) => {
      if (!pending.delete(socket)) return; // the worker died first; the socket went elsewhere
      // Sent: the worker holds its own descriptor, so the primary's copy can go.
      // Not sent (the worker is going away): another one takes it.
      if (error === null) socket.destroy();
      else this.distribute(socket, attempts + 1);
    });
  }

  /** Connections sent to a worker that died before the send completed go to the others. */
  private rescue(worker: Worker): void {
    const pending = this.inTransit.get(worker);
    this.inTransit.delete(worker);
    for (const socket of pending ?? []) this.distribute(socket);
  }

  private fork(): void {
    const worker = cluster.fork();
    const end: WorkerEnd = { send: (message) => send(worker, message) };
    this.workers.set(worker, end);
    this.logService?.add(end);
    worker.on('message', (message: unknown) => {
      if (isWorkerMessage(message)) this.receive(worker, message);
    });
    worker.once('exit', (code, signal) => this.exited(worker, code, signal));
  }

  private receive(worker: Worker, message: WorkerMessage): void {
    switch (message.herald) {
      case 'ready': {
        this.ready.push(worker);
        const readyEnd = this.workers.get(worker);
        if (readyEnd !== undefined) this.presence?.ready(readyEnd);
        const waiting = this.waiting;
        this.waiting = [];
        for (const socket of waiting) this.distribute(socket);
        if (!this.announced && this.ready.length === this.options.workers) {
          this.announced = true;
          this.settleReady.resolve(this.url);
        }
        return;
      }
      case 'append':
      case 'read': {
        const end = this.workers.get(worker);
        if (end === undefined) return;
        if (this.logService === undefined) {
          // Workers of a shared log (--redis) keep their own event log; answer rather than leave one waiting.
          const error = toWire(new HeraldError('HERALD_ERR_INVALID_STATE', 'workers of a shared log (--redis) keep their own event log'));
          end.send(message.herald === 'append' ? { herald: 'appended', id: message.id, results: message.batches.map(() => ({ error })) } : { herald: 'read-result', id: message.id, error });
          return;
        }
        this.track(this.logService.serve(end, message));
        return;
      }
      case 'presence':
      case 'presence-list': {
        const end = this.workers.get(worker);
        if (end === undefined || this.presence === undefined) return;
        this.presence.serve(end, message);
        return;
      }
    }
  }

  private track(work: Promise<unknown>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private exited(worker: Worker, code: number | null, signal: string | null): void {
    const end = this.workers.get(worker);
    if (end !== undefined) this.logService?.remove(end);
    this.workers.delete(worker);
    const wasReady = this.ready.includes(worker);
    this.ready = this.ready.filter((other) => other !== worker);
    // Its lost records go to a worker that lives (the service keeps its own list of them).
    if (end !== undefined) this.presence?.remove(end);
    this.rescue(worker);
    if (this.stopping !== undefined) return;
    const how = signal ?? `code ${code}`;
    if (!this.announced && !wasReady) {
      // A worker that cannot start (port taken, bad Redis URL) would fail again: give up.
      this.settleReady.reject(new Error(`a worker exited (${how}) before it was ready`));
      void this.stop();
      return;
    }
    this.output.warn(`worker ${worker.process.pid} exited (${how}); starting another`);
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
    this.server?.close();
    this.metricsServer?.close();
    this.metricsServer?.closeAllConnections();
    for (const socket of this.waiting.splice(0)) socket.destroy();
    const exits = [...this.workers.keys()].map((worker) => new Promise<void>((resolve) => {
      if (worker.isDead()) resolve();
      else worker.once('exit', () => resolve());
      worker.process.kill('SIGTERM');
    }));
    await settleWithin(new Set(exits), this.options.shutdownTimeout + 1000);
    await settleWithin(this.inFlight, this.options.shutdownTimeout);
    this.logService?.close();
    await this.log?.close();
  }
}

function ignore(): void {}

function send(worker: Worker, message: PrimaryMessage): void {
  if (worker.isConnected()) worker.send(message);
}
