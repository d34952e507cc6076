/**
 * One benchmark run of one scenario against one server: start the server
 * fresh, connect subscribers from worker processes, publish, measure.
 */

import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, rssBytes, sum } from './proc.js';
import { Publisher } from './publisher.js';
import { startServer, type ServerName, type ServerUnderTest } from './servers.js';
import type { ConnectCommand, CountReport, WorkerReport } from './subscriber-worker.js';

export type ScenarioKind = 'idle' | 'fanout' | 'storm' | 'publish';

export interface Scenario {
  readonly id: string;
  readonly title: string;
  readonly kind: ScenarioKind;
  readonly subscribers: number;
  /** Events per second (fanout). */
  readonly rate?: number;
  /** Events per request (publish). */
  readonly batch?: number;
}

export interface Latency {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** What one run measured; fields depend on the scenario's kind. */
export interface RunMetrics {
  readonly connected: number;
  readonly failedConnections: number;
  readonly connectSeconds: number;
  readonly rssPerConnectionKiB?: number;
  readonly published?: number;
  readonly deliveries?: number;
  readonly lost?: number;
  readonly deliveriesPerSecond?: number;
  readonly cpuPerMillionDeliveries?: number;
  readonly latencyMs?: Latency;
  readonly publishedPerSecond?: number;
  readonly cpuPerMillionPublished?: number;
  /** CPU seconds per wall second of the server's processes during the window (1 = one core busy). */
  readonly serverCpuLoad?: number;
  /** The same for the load generator (its workers and the publisher); near 1, the client limits the figures. */
  readonly clientCpuLoad?: number;
  /** Subscribers whose selectors match nothing published ({@link Endpoint.bystanders}) that stayed connected... */
  readonly bystanders?: number;
  /** ...and the events they received over the whole run, warm-up included: 0 unless the server delivers to selectors that do not match. */
  readonly bystanderEvents?: number;
}

/**
 * Another way into the same server than its default subscribe and publish
 * requests: Mercure's endpoint on Herald, say, or `/events` with other
 * selectors. The measured subscribers all send `subscribeRequest` and must
 * receive every event published to `topic`.
 */
export interface Endpoint {
  /** The topic every event is published to. */
  readonly topic: string;
  /** The raw HTTP request of each measured subscriber. */
  subscribeRequest(server: ServerUnderTest): string;
  publishRequest: ServerUnderTest['publishRequest'];
  /**
   * Raw requests of more subscribers, one each, whose selectors match no
   * event published to `topic`: they load the server's index, and must
   * receive nothing. Opened before the measured subscribers; fanout only.
   */
  bystanders?(server: ServerUnderTest): readonly string[];
}

export interface RunSettings {
  /** Measurement window of a fanout or publish run. */
  readonly durationMs: number;
  /** Core the server is pinned to, or undefined. */
  readonly serverCpu: string | undefined;
  readonly heraldArgs?: readonly string[];
  /** Processes the server depends on (Redis): their CPU counts as the server's. */
  readonly companionPids?: () => readonly number[];
  /** Connections per generator process. */
  readonly perWorker?: number;
  /** Subscribe and publish through this endpoint instead of the server's default ones. */
  readonly endpoint?: Endpoint;
  /** Node's flags for Herald (see `StartOptions.nodeArgs`). */
  readonly nodeArgs?: readonly string[];
  /** Herald's CLI to run instead of this checkout's (see `StartOptions.heraldCli`). */
  readonly heraldCli?: string;
}

const WORKER = fileURLToPath(new URL('./subscriber-worker.js', import.meta.url));
const TOPIC = 'bench';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Each generator takes a fresh /24 of loopback source addresses. Binding to an
 * address whose ports are full of TIME_WAIT sockets from an earlier run makes
 * the kernel's port search crawl, which would slow every connect that follows.
 */
let generation = Math.floor(Math.random() * 250);

/** Subscriber processes, each holding its share of the connections from its own source address. */
export class LoadGenerator {
  private readonly subnet = `127.${(generation++ % 250) + 1}`;

  private constructor(private readonly workers: ChildProcess[]) {}

  static async start(connections: number, perWorker = 4000): Promise<LoadGenerator> {
    const count = Math.max(1, Math.ceil(connections / perWorker));
    const workers = Array.from({ length: count }, () => fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    await Promise.all(workers.map((worker) => new Promise((resolve) => worker.once('spawn', resolve))));
    return new LoadGenerator(workers);
  }

  pids(): number[] {
    return this.workers.map((worker) => worker.pid!).filter((pid) => pid !== undefined);
  }

  private ask<T extends WorkerReport>(worker: ChildProcess, message: object, type: T['type']): Promise<T> {
    return new Promise((resolve) => {
      const onMessage = (report: WorkerReport): void => {
        if (report.type !== type) return;
        worker.off('message', onMessage);
        resolve(report as T);
      };
      worker.on('message', onMessage);
      worker.send(message);
    });
  }

  /**
   * Opens `total` subscribers spread over the workers; resolves when every one has its response headers or failed.
   * With `requests` (one per subscriber, `total` of them), each sends its own; else all send `server.subscribeRequest`.
   */
  async connect(server: ServerUnderTest, total: number, concurrency: number, requests?: readonly string[]): Promise<{ connected: number; failed: number; seconds: number; firstError?: string }> {
    const started = performance.now();
    const shares = this.workers.map((_, i) => Math.floor(total / this.workers.length) + (i < total % this.workers.length ? 1 : 0));
    const firsts = shares.map((_, i) => shares.slice(0, i).reduce((n, share) => n + share, 0));
    const reports = await Promise.all(
      this.workers.map((worker, i) => {
        const command: ConnectCommand = {
          type: 'connect',
          host: server.host,
          port: server.port,
          request: server.subscribeRequest(TOPIC),
          ...(requests === undefined ? {} : { requests: requests.slice(firsts[i]!, firsts[i]! + shares[i]!) }),
          count: shares[i]!,
          localAddresses: [`${this.subnet}.${i}.10`],
          concurrency,
          sampleEvery: 10,
        };
        return this.ask<Extract<WorkerReport, { type: 'connected' }>>(worker, command, 'connected');
      }),
    );
    return {
      connected: reports.reduce((n, r) => n + r.connected, 0),
      failed: reports.reduce((n, r) => n + r.failed, 0),
      seconds: (performance.now() - started) / 1000,
      ...(reports.find((r) => r.firstError !== undefined) ? { firstError: reports.find((r) => r.firstError)!.firstError! } : {}),
    };
  }

  reset(): void {
    for (const worker of this.workers) worker.send({ type: 'reset' });
  }

  async counts(): Promise<{ events: number; latencies: number[]; open: number; lost: number }> {
    const reports = await Promise.all(this.workers.map((worker) => this.ask<CountReport>(worker, { type: 'report' }, 'report')));
    return {
      events: reports.reduce((n, r) => n + r.events, 0),
      latencies: reports.flatMap((r) => r.latencies),
      open: reports.reduce((n, r) => n + r.open, 0),
      lost: reports.reduce((n, r) => n + r.lost, 0),
    };
  }

  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.exitCode !== null) return resolve();
            worker.once('exit', () => resolve());
            worker.send({ type: 'close' });
            setTimeout(() => worker.kill('SIGKILL'), 2000).unref();
          }),
      ),
    );
  }
}

/** Waits until `expected` events arrived, or until the count stops moving for a second. */
async function settle(generator: LoadGenerator, expected: number): Promise<Awaited<ReturnType<LoadGenerator['counts']>>> {
  let last = -1;
  let still = 0;
  for (let i = 0; i < 150; i++) {
    const counts = await generator.counts();
    if (counts.events >= expected) return counts;
    still = counts.events === last ? still + 1 : 0;
    if (still >= 10) return counts;
    last = counts.events;
    await sleep(100);
  }
  return generator.counts();
}

function cpuOf(pids: readonly number[]): number {
  return sum(pids, cpuSeconds);
}

function latencyOf(samples: number[]): Latency | undefined {
  if (samples.length === 0) return undefined;
  const sorted = Float64Array.from(samples).sort();
  return { p50: percentile(Array.from(sorted), 50), p99: percentile(Array.from(sorted), 99), max: sorted[sorted.length - 1]! };
}

/** Runs one scenario once against a fresh server. */
export async function runScenario(name: ServerName, scenario: Scenario, settings: RunSettings): Promise<RunMetrics> {
  const port = await freePort();
  const started = await startServer(name, {
    port,
    cpu: settings.serverCpu,
    ...(settings.heraldArgs ? { heraldArgs: settings.heraldArgs } : {}),
    ...(settings.nodeArgs ? { nodeArgs: settings.nodeArgs } : {}),
    ...(settings.heraldCli ? { heraldCli: settings.heraldCli } : {}),
  });
  const { endpoint } = settings;
  const topic = endpoint?.topic ?? TOPIC;
  const server: ServerUnderTest = {
    ...started,
    ...(endpoint === undefined ? {} : { subscribeRequest: () => endpoint.subscribeRequest(started), publishRequest: endpoint.publishRequest }),
    pids: () => [...started.pids(), ...(settings.companionPids?.() ?? [])],
  };
  const generator = await LoadGenerator.start(scenario.subscribers, settings.perWorker);
  const bystanderRequests = scenario.kind === 'fanout' ? (endpoint?.bystanders?.(started) ?? []) : [];
  const bystanders = bystanderRequests.length > 0 ? await LoadGenerator.start(bystanderRequests.length, settings.perWorker) : undefined;
  try {
    if (scenario.kind === 'idle') {
      await sleep(1000);
      const before = sum(server.pids(), rssBytes);
      const opened = await generator.connect(server, scenario.subscribers, 200);
      await sleep(2000);
      const after = sum(server.pids(), rssBytes);
      return {
        connected: opened.connected,
        failedConnections: opened.failed,
        connectSeconds: opened.seconds,
        rssPerConnectionKiB: (after - before) / Math.max(1, opened.connected) / 1024,
      };
    }

    const quiet = bystanders === undefined ? undefined : await bystanders.connect(server, bystanderRequests.length, 200, bystanderRequests);
    if (quiet !== undefined && quiet.failed > 0) process.stderr.write(`  ${name}: ${quiet.failed} bystander connections failed (${quiet.firstError})\n`);
    const opened = await generator.connect(server, scenario.subscribers, scenario.kind === 'storm' ? 1000 : 200);
    const connection = { connected: opened.connected, failedConnections: opened.failed, connectSeconds: opened.seconds };
    if (opened.failed > 0) process.stderr.write(`  ${name}: ${opened.failed} connections failed (${opened.firstError})\n`);
    if (scenario.kind === 'storm') return connection;

    const publisher = new Publisher(server, topic, scenario.kind === 'publish' ? 32 : 8);
    try {
      if (scenario.kind === 'fanout') {
        // Warm up (JIT, buffers), then measure from a clean count.
        await publisher.atRate(scenario.rate!, 1000);
        await settle(generator, publisher.published * opened.connected);
        generator.reset();
        await sleep(100);
        const startPublished = publisher.published;
        const serverCpu0 = cpuOf(server.pids());
        const clientPids = (): number[] => [...generator.pids(), ...(bystanders?.pids() ?? [])];
        const clientCpu0 = cpuOf(clientPids()) + process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6;
        const started = performance.now();
        await publisher.atRate(scenario.rate!, settings.durationMs);
        const published = publisher.published - startPublished;
        const expected = published * opened.connected;
        const counts = await settle(generator, expected);
        const wall = (performance.now() - started) / 1000;
        const serverCpu = cpuOf(server.pids()) - serverCpu0;
        const clientCpu = cpuOf(clientPids()) + process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 - clientCpu0;
        const latency = latencyOf(counts.latencies);
        const bystanderCounts = await bystanders?.counts();
        return {
          ...connection,
          published,
          deliveries: counts.events,
          lost: Math.max(0, expected - counts.events) + (publisher.failed > 0 ? publisher.failed * opened.connected : 0),
          deliveriesPerSecond: counts.events / (settings.durationMs / 1000),
          cpuPerMillionDeliveries: serverCpu / (counts.events / 1e6),
          ...(latency ? { latencyMs: latency } : {}),
          serverCpuLoad: serverCpu / wall,
          clientCpuLoad: clientCpu / wall,
          ...(bystanderCounts === undefined ? {} : { bystanders: bystanderCounts.open, bystanderEvents: bystanderCounts.events }),
        };
      }
      // publish: as fast as the server acknowledges, with subscribers receiving.
      const batch = scenario.batch ?? 1;
      if (batch > 1 && !publisher.canBatch) return { ...connection, publishedPerSecond: Number.NaN };
      generator.reset();
      const serverCpu0 = cpuOf(server.pids());
      const started = performance.now();
      await publisher.saturate(settings.durationMs, 32, batch);
      const wall = (performance.now() - started) / 1000;
      const serverCpu = cpuOf(server.pids()) - serverCpu0;
      // Fan-out may trail the acknowledgements: deliveries/s counts until the last one arrived.
      const expected = publisher.published * opened.connected;
      const counts = await settle(generator, expected);
      const delivering = (performance.now() - started) / 1000;
      return {
        ...connection,
        published: publisher.published,
        publishedPerSecond: publisher.published / wall,
        cpuPerMillionPublished: serverCpu / (publisher.published / 1e6),
        serverCpuLoad: serverCpu / wall,
        deliveries: counts.events,
        deliveriesPerSecond: counts.events / delivering,
        lost: Math.max(0, expected - counts.events),
      };
    } finally {
      publisher.close();
    }
  } finally {
    await generator.close();
    await bystanders?.close();
    await server.stop();
  }
}
