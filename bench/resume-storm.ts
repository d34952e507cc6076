/**
 * `npm run bench:resume`: what a storm of resumes from far back costs live
 * delivery, with history in SQLite (`--store`) and in Redis (`--redis`).
 *
 * A history of 1M events (0.1% on the resumers' topic, spread evenly, ~100
 * bytes of JSON each) is prepared once and copied for every run. Herald runs
 * pinned to core 0 (Redis beside it), the load on core 1. A live subscriber
 * on a topic of its own receives 20 events/s from a publisher and measures
 * publish-to-receive latency. Two runs of each engine per round:
 *
 * - `baseline`: no resumers, a window of `--window` ms;
 * - `storm`: at the window's start, `--resumers` clients resume at once from
 *   the oldest id on the 0.1% topic; each must get exactly its topic's events
 *   after that id. The window lasts `--window` ms or until the last resumer
 *   is done, whichever is longer.
 *
 * Both runs start Herald fresh on the same prepared history, and warm up for
 * `--warmup` ms first. Per run: live latency (p50/p99/max), the hub's
 * event-loop delay (`nodejs_eventloop_lag_max_seconds` and Herald's
 * `herald_event_loop_delay_seconds` histogram, scraped from /metrics), its
 * RSS (polled from /proc) and, in storms, each resumer's time to complete.
 *
 *   npm run bench:resume                            3 runs, 1M events, 50 resumers, sqlite and redis
 *   npm run bench:resume -- --quick                 1 run, 100k events, 10 resumers, 10 s windows
 *   npm run bench:resume -- --herald /tmp/old/dist/src/cli/main.js --label old
 *   npm run bench:resume -- --merge bench/results/resume-storm-old.json,bench/results/resume-storm.json --labels old,new
 */

import { execFileSync, fork, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, percentile } from './harness.js';
import { cpuSeconds, rssBytes, sum } from './proc.js';
import { Publisher } from './publisher.js';
import type { ResumerResult, StormCommand, StormProgress, StormReport } from './resume-worker.js';
import { machineInfo, median, pinSelf } from './run.js';
import type { MachineInfo } from './report-types.js';
import { startServer, type ServerUnderTest } from './servers.js';
import { SseStream } from './sse.js';
import type { EventDraft } from '../src/log/event-log.js';
// The tests' private redis-server, reused so the bench never touches a shared one.
import { startRedis, type TestRedis } from '../test/support/redis-server.js';

export type Engine = 'sqlite' | 'redis';
export type RunKind = 'baseline' | 'storm';

/** One event in this many is on the resumers' topic (0.1%)... */
export const STEP = 1000;
/** ...at these indexes: 500, 1500, ... so all of them come after the oldest event. */
export const OFFSET = 500;
export const RESUME_TOPIC = 'storm/resume';
const LIVE_TOPIC = 'live/ticker';
/** Connections the live publisher may open: enough for a minute of a frozen hub's unanswered publishes at 20/s. */
const PUBLISH_SOCKETS = 1200;
/** Bumped whenever the generated history changes, so a cached file is rebuilt. */
const HISTORY_FORMAT = 2;
const MIB = 1024 ** 2;
/** The RSS target: 100 MB. */
const RSS_TARGET_BYTES = 100e6;

const WORKER = fileURLToPath(new URL('./resume-worker.js', import.meta.url));

/** Event `i` of the prepared history: ~100 bytes of JSON naming its topic and index (the resumers check both). */
export function historyEvent(i: number): EventDraft {
  const topic = i % STEP === OFFSET ? RESUME_TOPIC : `feed/${i % 200}`;
  const data = `{"i":${i},"k":"${topic}","sku":"SKU-${(i * 7919) % 100_000}","qty":${(i % 17) + 1},"price":${((i % 50_000) / 100).toFixed(2)},"warehouse":"eu-west-${i % 31}","ok":true}`;
  return { topic, data };
}

export interface Latency {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface RunFigures {
  readonly engine: Engine;
  readonly kind: RunKind;
  readonly run: number;
  /** Length of the measured window, s. */
  readonly windowSeconds: number;
  /** Live publishes sent in the window; those not acknowledged (refused, failed), and why the first was; those acknowledged that the live subscriber did not receive. */
  readonly livePublished: number;
  readonly livePublishFailed: number;
  readonly livePublishError?: string;
  /** Time from sending a live publish to its answer (202), ms. */
  readonly publishAckMs: Latency | undefined;
  readonly liveLost: number;
  /** Publish-to-receive latency of the live events sent in the window, ms. */
  readonly liveMs: Latency | undefined;
  /** The same over the warm-up's second half, before the storm (same process). */
  readonly preWindowMs: Latency | undefined;
  readonly loop: {
    /** The longest event-loop delay in the window, s (prom-client's `nodejs_eventloop_lag_max_seconds`, reset by each scrape; the bench is the only scraper). */
    readonly maxSeconds: number | undefined;
    /** Samples of `herald_event_loop_delay_seconds` over 50 ms in the window (undefined: the hub has no such metric). */
    readonly over50ms: number | undefined;
    readonly samples: number | undefined;
    /** The smallest bucket bound every sample in the window fell under, s (Infinity: over the last bucket). */
    readonly bucketBound: number | undefined;
    /** Each scrape: seconds after the window's start, and the longest delay since the scrape before. */
    readonly timeline: readonly (readonly [number, number | null])[];
  };
  readonly rss: {
    /** At the window's start. */
    readonly startBytes: number;
    /** Highest seen in the window and until the last live event arrived (polled every 100 ms). */
    readonly peakBytes: number;
    readonly growthBytes: number;
  };
  /** Redis, with that engine. */
  readonly companionRss?: { readonly startBytes: number; readonly peakBytes: number; readonly growthBytes: number };
  /** CPU seconds of the hub, and of Redis, over the window. */
  readonly serverCpuSeconds: number;
  readonly companionCpuSeconds?: number;
  readonly resumers?: {
    readonly total: number;
    /** Those that received exactly their topic's events, in order. */
    readonly exact: number;
    readonly expectedEach: number;
    /** Events all resumers received (of total × expectedEach): how far a storm that timed out got. */
    readonly received: number;
    readonly completeSeconds: { readonly p50: number; readonly max: number } | undefined;
    readonly firstEventSeconds: { readonly p50: number; readonly max: number } | undefined;
    readonly errors: readonly string[];
  };
  /** Something that makes the run unusable (the hub died, the live stream ended). */
  readonly failure?: string;
}

export interface ResumeStormReport {
  readonly date: string;
  readonly command: string;
  readonly label: string;
  readonly herald: { readonly cli: string; readonly commit: string | undefined };
  readonly machine: MachineInfo & {
    readonly redis: string | undefined;
    /** 1, 5 and 15 min load averages before and after: well over 0 before means other work shared the machine. */
    readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
  };
  /** Minutes the whole command took. */
  readonly minutes: number;
  readonly settings: {
    readonly runs: number;
    readonly events: number;
    readonly resumers: number;
    readonly perResumer: number;
    readonly rate: number;
    readonly windowMs: number;
    readonly warmupMs: number;
    readonly serverCpu: string | undefined;
    readonly engines: readonly Engine[];
  };
  readonly prepared: Partial<Record<Engine, { readonly seconds: number; readonly cached: boolean }>>;
  readonly runs: readonly RunFigures[];
}

/** What to undo if the bench is interrupted (Ctrl-C): servers, Redis, scratch files. */
const cleanups = new Set<() => unknown>();

function onInterrupt(signal: NodeJS.Signals): void {
  process.stderr.write(`\nbench: ${signal}, cleaning up\n`);
  void Promise.allSettled([...cleanups].map(async (cleanup) => cleanup())).then(() => process.exit(130));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

function latencyOf(samples: readonly number[]): Latency | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1]! };
}

function spread(values: readonly number[]): { p50: number; max: number } | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), max: sorted[sorted.length - 1]! };
}

/** Prints progress with the time left, at most every `everyMs`. */
class Progress {
  private readonly started = performance.now();
  private last = 0;
  constructor(private readonly what: string, private readonly total: number, private readonly everyMs = 2000) {}
  update(done: number): void {
    const elapsed = performance.now() - this.started;
    if (done < this.total && elapsed - this.last < this.everyMs) return;
    this.last = elapsed;
    const left = done === 0 ? Number.NaN : (elapsed / done) * (this.total - done);
    const leftText = done >= this.total ? `done in ${(elapsed / 1000).toFixed(1)} s` : `about ${Number.isFinite(left) ? Math.ceil(left / 1000) : '?'} s left`;
    process.stderr.write(`  ${this.what}: ${done.toLocaleString('en-US')}/${this.total.toLocaleString('en-US')} (${Math.floor((done / this.total) * 100)}%), ${leftText}\n`);
  }
}

// ---------------------------------------------------------------- preparing

interface PreparedStore {
  readonly file: string;
  readonly oldestId: string;
  readonly seconds: number;
  readonly cached: boolean;
}

interface StoreMeta {
  readonly format: number;
  readonly events: number;
  readonly oldestId: string;
  readonly newestId: string;
  readonly seconds: number;
}

/**
 * A SQLite store holding `events` events, written through Herald's own
 * `SqliteEventLog.append` (so the bench follows whatever schema the store
 * has). Kept in `dataDir` and reused while its format and size match.
 */
async function prepareSqlite(dataDir: string, events: number): Promise<PreparedStore> {
  const file = join(dataDir, `history-${events}.db`);
  const metaFile = `${file}.json`;
  if (existsSync(file) && existsSync(metaFile)) {
    const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as StoreMeta;
    if (meta.format === HISTORY_FORMAT && meta.events === events) {
      process.stderr.write(`sqlite: reusing ${file} (${events.toLocaleString('en-US')} events)\n`);
      return { file, oldestId: meta.oldestId, seconds: meta.seconds, cached: true };
    }
  }
  for (const stale of [file, `${file}-wal`, `${file}-shm`, metaFile]) rmSync(stale, { force: true });
  process.stderr.write(`sqlite: writing ${events.toLocaleString('en-US')} events to ${file}\n`);
  const { SqliteEventLog } = await import('../src/log/sqlite-log.js');
  const started = performance.now();
  const log = new SqliteEventLog({ path: `${file}.partial`, capacity: events, maxAgeMs: 0 });
  const progress = new Progress('sqlite fill', events);
  const batch = 10_000;
  for (let at = 0; at < events; at += batch) {
    const drafts = Array.from({ length: Math.min(batch, events - at) }, (_, k) => historyEvent(at + k));
    await log.append(drafts);
    progress.update(at + drafts.length);
  }
  const stats = log.stats();
  await log.close();
  if (stats.size !== events || stats.oldestId === undefined || stats.newestId === undefined) throw new Error(`the store holds ${stats.size} events, not ${events}`);
  for (const suffix of ['-wal', '-shm']) if (existsSync(`${file}.partial${suffix}`)) throw new Error(`the store left a ${suffix} file after closing`);
  copyFileSync(`${file}.partial`, file);
  rmSync(`${file}.partial`, { force: true });
  const seconds = (performance.now() - started) / 1000;
  const meta: StoreMeta = { format: HISTORY_FORMAT, events, oldestId: stats.oldestId, newestId: stats.newestId, seconds };
  writeFileSync(metaFile, JSON.stringify(meta, null, 2));
  return { file, oldestId: stats.oldestId, seconds, cached: false };
}

const PREPARED_PREFIX = 'prepared';
const streamKeys = (prefix: string): string[] => ['events', 'born', 'horizon', 'count'].map((key) => `{${prefix}}:${key}`);

interface PreparedRedis {
  readonly redis: TestRedis;
  readonly client: Redis;
  readonly oldestId: string;
  readonly seconds: number;
}

/** A private redis-server (AOF, `everysec`), its stream filled with the same history through Herald's `RedisEventLog.append`. */
async function prepareRedis(events: number, history: number, cpu: string | undefined): Promise<PreparedRedis> {
  const redis = await startRedis({ fsync: 'everysec', ...(cpu === undefined ? {} : { cpu }) });
  cleanups.add(() => redis.stop());
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  try {
    process.stderr.write(`redis: filling a stream with ${events.toLocaleString('en-US')} events (private redis-server on port ${redis.port})\n`);
    const { RedisEventLog } = await import('../src/log/redis-log.js');
    const started = performance.now();
    const log = new RedisEventLog({ url: redis.url, prefix: PREPARED_PREFIX, capacity: history, maxAgeMs: 0 });
    await log.ready();
    const progress = new Progress('redis fill', events);
    const batch = 2000;
    // A few batches in flight, each one atomic script call; Redis keeps them in order.
    const inFlight = 4;
    let next = 0;
    let done = 0;
    const lane = async (): Promise<void> => {
      while (next < events) {
        const at = next;
        next += batch;
        const drafts = Array.from({ length: Math.min(batch, events - at) }, (_, k) => historyEvent(at + k));
        await log.append(drafts);
        done += drafts.length;
        progress.update(done);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
    await log.close();
    const length = await client.xlen(streamKeys(PREPARED_PREFIX)[0]!);
    if (length !== events) throw new Error(`the stream holds ${length} events, not ${events}`);
    // Batches ran concurrently: check the order is the history's (the resumers check it again, per topic).
    const first = (await client.xrange(streamKeys(PREPARED_PREFIX)[0]!, '-', '+', 'COUNT', 1))[0]!;
    // Rewrite the append-only file now, so Redis does not do it in the middle of a run.
    // Redis may have started one of its own as the file grew: then that one does the job.
    await client.bgrewriteaof().catch((error: Error) => {
      if (!/already in progress/i.test(error.message)) throw error;
    });
    for (let i = 0; i < 600; i++) {
      const info = await client.info('persistence');
      if (/aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info)) break;
      await sleep(200);
    }
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(`  redis fill and AOF rewrite: done in ${seconds.toFixed(1)} s\n`);
    return { redis, client, oldestId: first[0], seconds };
  } catch (error) {
    client.disconnect();
    await redis.stop();
    throw error;
  }
}

// ---------------------------------------------------------------- measuring

interface Scrape {
  readonly at: number;
  readonly lagMax: number | undefined;
  readonly count: number | undefined;
  readonly under50: number | undefined;
  /** Cumulative bucket counts by bound. */
  readonly buckets: ReadonlyMap<number, number>;
}

/** Sums the samples of one metric (every `node` label), or undefined when absent. */
function sampleSum(text: string, name: string, le?: string): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    if (le !== undefined && !(match[2] ?? '').split(',').includes(`le="${le}"`)) continue;
    total = (total ?? 0) + Number(match[3]);
  }
  return total;
}

function parseScrape(text: string, at: number): Scrape {
  const buckets = new Map<number, number>();
  for (const match of text.matchAll(/^herald_event_loop_delay_seconds_bucket\{([^}]*)\} (\S+)$/gm)) {
    const le = /le="([^"]+)"/.exec(match[1]!)?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(match[2]));
  }
  return {
    at,
    lagMax: sampleSum(text, 'nodejs_eventloop_lag_max_seconds'),
    count: sampleSum(text, 'herald_event_loop_delay_seconds_count'),
    under50: sampleSum(text, 'herald_event_loop_delay_seconds_bucket', '0.05'),
    buckets,
  };
}

function scrape(server: ServerUnderTest, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = get({ host: server.host, port: server.port, path: '/metrics', timeout: timeoutMs }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => (response.statusCode === 200 ? resolve(body) : reject(new Error(`GET /metrics answered ${response.statusCode}`))));
    });
    request.on('timeout', () => request.destroy(new Error(`GET /metrics took over ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}

/** Scrapes /metrics once a second, one scrape at a time (a frozen hub answers late, and that is what is measured). */
class Scraper {
  readonly scrapes: Scrape[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;
  constructor(private readonly server: ServerUnderTest, private readonly origin: number, private readonly timeoutMs: number) {
    this.loop = this.run();
  }
  private async run(): Promise<void> {
    while (!this.stopped) {
      await sleep(1000);
      if (this.stopped) break;
      await this.once().catch(() => undefined);
    }
  }
  async once(): Promise<Scrape> {
    const text = await scrape(this.server, this.timeoutMs);
    const taken = parseScrape(text, (now() - this.origin) / 1000);
    this.scrapes.push(taken);
    return taken;
  }
  /** Stops, then takes a last scrape. */
  async finish(): Promise<Scrape | undefined> {
    this.stopped = true;
    await this.loop;
    return this.once().catch(() => undefined);
  }
}

/** Polls the resident memory of the given processes every 100 ms. */
class RssPoller {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pids: () => readonly number[]) {
    this.timer = setInterval(() => this.sample(), 100);
  }
  sample(): number {
    const rss = sum(this.pids(), rssBytes);
    this.peak = Math.max(this.peak, rss);
    return rss;
  }
  /** Starts a new peak from now. */
  reset(): number {
    this.peak = 0;
    return this.sample();
  }
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}

/** The live subscriber: its own topic, latency from the send stamp in each event's data. */
class LiveSubscriber {
  /** [sent at, latency], ms. */
  readonly samples: [number, number][] = [];
  failure: string | undefined;
  private readonly stream: SseStream;
  readonly opened: Promise<void>;
  constructor(server: ServerUnderTest) {
    let markOpen!: () => void;
    let markFailed!: (error: Error) => void;
    this.opened = new Promise((resolve, reject) => {
      markOpen = resolve;
      markFailed = reject;
    });
    this.stream = new SseStream(server.host, server.port, `/events?topic=${encodeURIComponent(LIVE_TOPIC)}`, {}, {
      onHead: (status) => (status === 200 ? markOpen() : markFailed(new Error(`the live subscription answered ${status}`))),
      onEvent: (event) => {
        const received = now();
        const stamp = /^\{"t":([\d.]+)/.exec(event.data);
        if (stamp !== null) this.samples.push([Number(stamp[1]), received - Number(stamp[1])]);
      },
      onEnd: (error) => {
        if (error !== undefined) this.failure ??= `the live stream ended: ${error}`;
        markFailed(new Error(error ?? 'closed'));
      },
    });
    this.opened.catch(() => undefined);
  }
  close(): void {
    this.stream.close();
  }
}

/**
 * Publishes `rate` events per second, one per request, until stopped;
 * remembers each send time, answer and time to answer. Its pool has room for
 * every request a frozen hub leaves waiting, so the latency measured is the
 * hub's, not a queue in the bench's connection pool.
 */
class LivePublisher {
  /** [sent at, acknowledged (undefined: no answer yet), ms to the answer]. */
  readonly sends: [number, boolean | undefined, number][] = [];
  private stopped = false;
  private readonly loop: Promise<void>;
  private readonly publisher: Publisher;
  constructor(server: ServerUnderTest, private readonly rate: number) {
    this.publisher = new Publisher(server, LIVE_TOPIC, PUBLISH_SOCKETS);
    this.loop = this.run();
  }
  private async run(): Promise<void> {
    const start = performance.now();
    const inFlight = new Set<Promise<void>>();
    while (!this.stopped) {
      const due = Math.floor(((performance.now() - start) / 1000) * this.rate) - this.sends.length;
      for (let i = 0; i < due; i++) {
        const send: [number, boolean | undefined, number] = [now(), undefined, Number.NaN];
        this.sends.push(send);
        const pending = this.publisher.send(1).then((ok) => {
          send[1] = ok;
          send[2] = now() - send[0];
          inFlight.delete(pending);
        });
        inFlight.add(pending);
      }
      await sleep(2);
    }
    await Promise.all(inFlight);
  }
  get firstError(): string | undefined {
    return this.publisher.firstError;
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.publisher.close();
  }
}

interface RunPlan {
  readonly engine: Engine;
  readonly kind: RunKind;
  readonly run: number;
  readonly heraldArgs: readonly string[];
  readonly heraldCli: string | undefined;
  readonly serverCpu: string | undefined;
  readonly companionPid: (() => number | undefined) | undefined;
  readonly oldestId: string;
  readonly events: number;
  readonly resumers: number;
  readonly rate: number;
  readonly windowMs: number;
  readonly warmupMs: number;
  readonly timeoutMs: number;
}

/** The resumers' process, started ahead of the storm so its start-up does not compete with the window. */
async function forkResumers(): Promise<ChildProcess> {
  const worker = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  return worker;
}

/** Sends the storm; resolves with the resumers' results, printing progress every 30 s while it lasts. */
function storm(worker: ChildProcess, command: StormCommand): Promise<StormReport> {
  return new Promise<StormReport>((resolve, reject) => {
    const started = performance.now();
    let printed = started;
    const onExit = (code: number | null): void => reject(new Error(`the resumer process exited with ${code}`));
    const onMessage = (message: StormReport | StormProgress): void => {
      if (message.type === 'storm-progress') {
        if (performance.now() - printed < 30_000) return;
        printed = performance.now();
        const expected = command.resumers * command.count;
        process.stderr.write(`  storm: ${Math.round((printed - started) / 1000)} s, ${message.done}/${command.resumers} resumers done${message.failed > 0 ? `, ${message.failed} failed` : ''}, ${message.events.toLocaleString('en-US')}/${expected.toLocaleString('en-US')} events received\n`);
        return;
      }
      worker.off('exit', onExit);
      worker.off('message', onMessage);
      resolve(message);
    };
    worker.once('exit', onExit);
    worker.on('message', onMessage);
    worker.send(command);
  });
}

function stopWorker(worker: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (worker.exitCode !== null) return resolve();
    worker.once('exit', () => resolve());
    worker.send({ type: 'close' });
    setTimeout(() => worker.kill('SIGKILL'), 2000).unref();
  });
}

/** One run against a fresh Herald: warm up, then measure a window, with or without the storm. */
async function measure(plan: RunPlan): Promise<RunFigures> {
  const port = await freePort();
  const server = await startServer('herald', {
    port,
    cpu: plan.serverCpu,
    heraldArgs: plan.heraldArgs,
    ...(plan.heraldCli === undefined ? {} : { heraldCli: plan.heraldCli }),
  });
  const companionPids = (): number[] => {
    const pid = plan.companionPid?.();
    return pid === undefined ? [] : [pid];
  };
  const stopServer = (): Promise<void> => server.stop();
  cleanups.add(stopServer);
  const rss = new RssPoller(() => server.pids());
  const companionRss = new RssPoller(companionPids);
  const live = new LiveSubscriber(server);
  let publisher: LivePublisher | undefined;
  let worker: ChildProcess | undefined;
  try {
    await live.opened;
    publisher = new LivePublisher(server, plan.rate);
    if (plan.kind === 'storm') {
      worker = await forkResumers();
      const forked = worker;
      cleanups.add(() => forked.kill('SIGKILL'));
    }
    const warmupStart = now();
    await sleep(plan.warmupMs);
    // The window starts: reset the gauges that reset on scrape, note where memory and CPU stand.
    const start = now();
    const scraper = new Scraper(server, start, Math.max(60_000, plan.timeoutMs));
    const first = await scraper.once();
    const rssStart = rss.reset();
    const companionStart = companionRss.reset();
    const cpuStart = sum(server.pids(), cpuSeconds);
    const companionCpuStart = sum(companionPids(), cpuSeconds);
    let stormed: Promise<StormReport | undefined> | undefined;
    let stormFailure: string | undefined;
    if (worker !== undefined) {
      stormed = storm(worker, {
        type: 'storm',
        host: server.host,
        port: server.port,
        topic: RESUME_TOPIC,
        lastEventId: plan.oldestId,
        resumers: plan.resumers,
        count: plan.events / STEP,
        firstIndex: OFFSET,
        step: STEP,
        timeoutMs: plan.timeoutMs,
      }).catch((error: unknown) => {
        stormFailure = (error as Error).message;
        return undefined;
      });
    }
    const [report] = await Promise.all([stormed, sleep(plan.windowMs)]);
    const end = now();
    await publisher.stop();
    const cpuEnd = sum(server.pids(), cpuSeconds);
    const companionCpuEnd = sum(companionPids(), cpuSeconds);
    // Wait for the live events still on their way (a hub that froze delivers them late).
    const inWindow = publisher.sends.filter(([t]) => t >= start && t < end);
    const refused = inWindow.filter(([, ok]) => ok !== true).length;
    const expected = publisher.sends.filter(([, ok]) => ok === true).length;
    for (let quiet = 0, seen = -1; live.samples.length < expected && quiet < 100 && live.failure === undefined; ) {
      await sleep(100);
      quiet = live.samples.length === seen ? quiet + 1 : 0;
      seen = live.samples.length;
    }
    const last = await scraper.finish();
    const peak = rss.stop();
    const companionPeak = companionRss.stop();

    const windowSamples = live.samples.filter(([sent]) => sent >= start && sent < end).map(([, latency]) => latency);
    const preWindow = live.samples.filter(([sent]) => sent >= warmupStart + plan.warmupMs / 2 && sent < start).map(([, latency]) => latency);
    const later = scraper.scrapes.filter((s) => s !== first);
    const lagValues = later.map((s) => s.lagMax).filter((v): v is number => v !== undefined);
    const histogram = last !== undefined && last.count !== undefined && first.count !== undefined ? { first, last } : undefined;
    let bucketBound: number | undefined;
    if (histogram !== undefined) {
      const total = histogram.last.count! - histogram.first.count!;
      const bounds = [...histogram.last.buckets.keys()].sort((a, b) => a - b);
      bucketBound = bounds.find((bound) => (histogram.last.buckets.get(bound) ?? 0) - (histogram.first.buckets.get(bound) ?? 0) >= total);
    }
    const results: readonly ResumerResult[] = report?.results ?? [];
    const exact = results.filter((r) => r.error === undefined && r.received === plan.events / STEP);
    const figures: RunFigures = {
      engine: plan.engine,
      kind: plan.kind,
      run: plan.run,
      windowSeconds: (end - start) / 1000,
      livePublished: inWindow.length,
      livePublishFailed: refused,
      publishAckMs: latencyOf(inWindow.filter(([, ok]) => ok === true).map(([, , ms]) => ms)),
      ...(publisher.firstError === undefined ? {} : { livePublishError: publisher.firstError }),
      liveLost: Math.max(0, inWindow.length - refused - windowSamples.length),
      liveMs: latencyOf(windowSamples),
      preWindowMs: latencyOf(preWindow),
      loop: {
        maxSeconds: lagValues.length === 0 ? undefined : Math.max(...lagValues),
        over50ms: histogram === undefined ? undefined : histogram.last.count! - histogram.last.under50! - (histogram.first.count! - histogram.first.under50!),
        samples: histogram === undefined ? undefined : histogram.last.count! - histogram.first.count!,
        bucketBound,
        timeline: later.map((s) => [Number(s.at.toFixed(2)), s.lagMax ?? null] as const),
      },
      rss: { startBytes: rssStart, peakBytes: peak, growthBytes: peak - rssStart },
      ...(plan.companionPid === undefined
        ? {}
        : {
            companionRss: { startBytes: companionStart, peakBytes: companionPeak, growthBytes: companionPeak - companionStart },
            companionCpuSeconds: companionCpuEnd - companionCpuStart,
          }),
      serverCpuSeconds: cpuEnd - cpuStart,
      ...(plan.kind === 'storm'
        ? {
            resumers: {
              total: plan.resumers,
              exact: exact.length,
              expectedEach: plan.events / STEP,
              received: results.reduce((n, r) => n + r.received, 0),
              completeSeconds: spread(exact.map((r) => r.completeMs! / 1000)),
              firstEventSeconds: spread(results.filter((r) => r.firstEventMs !== undefined).map((r) => r.firstEventMs! / 1000)),
              errors: [...new Set(results.map((r) => r.error).filter((e): e is string => e !== undefined))].slice(0, 5),
            },
          }
        : {}),
      ...(live.failure ?? stormFailure ? { failure: [live.failure, stormFailure].filter(Boolean).join('; ') } : {}),
    };
    return figures;
  } finally {
    live.close();
    await publisher?.stop();
    if (worker !== undefined) await stopWorker(worker);
    rss.stop();
    companionRss.stop();
    await server.stop();
    cleanups.delete(stopServer);
  }
}

/** The figures of a run that could not be measured (the hub did not start, or died before the window). */
function failedRun(plan: RunPlan, error: unknown): RunFigures {
  return {
    engine: plan.engine,
    kind: plan.kind,
    run: plan.run,
    windowSeconds: Number.NaN,
    livePublished: 0,
    livePublishFailed: 0,
    publishAckMs: undefined,
    liveLost: 0,
    liveMs: undefined,
    preWindowMs: undefined,
    loop: { maxSeconds: undefined, over50ms: undefined, samples: undefined, bucketBound: undefined, timeline: [] },
    rss: { startBytes: Number.NaN, peakBytes: Number.NaN, growthBytes: Number.NaN },
    serverCpuSeconds: Number.NaN,
    failure: (error as Error).message ?? String(error),
  };
}

/** {@link measure}, a failure recorded rather than thrown, so one bad run does not lose the others. */
async function measureSafely(plan: RunPlan): Promise<RunFigures> {
  try {
    return await measure(plan);
  } catch (error) {
    return failedRun(plan, error);
  }
}

// ---------------------------------------------------------------- reporting

interface Row {
  readonly label: string;
  readonly read: (run: RunFigures) => number | undefined;
  readonly digits: number;
  /** Only storms have it. */
  readonly stormOnly?: boolean;
  /** The target, given the engine's runs: its text, and whether a storm run meets it. */
  readonly target?: (baseline: readonly RunFigures[]) => { readonly text: string; readonly met: (storm: RunFigures) => boolean | undefined };
}

const mib = (bytes: number): number => bytes / MIB;

function p99Limit(baseline: readonly RunFigures[]): number {
  return Math.max(2 * median(baseline.map((r) => r.liveMs?.p99 ?? Number.NaN)), 50);
}

const ROWS: readonly Row[] = [
  { label: 'live latency p50 (ms)', read: (r) => r.liveMs?.p50, digits: 1 },
  {
    label: 'live latency p99 (ms)',
    read: (r) => r.liveMs?.p99,
    digits: 1,
    target: (baseline) => {
      const limit = p99Limit(baseline);
      return { text: `≤ ${format(limit, 1)} (2 × baseline or 50 ms)`, met: (r) => (r.liveMs === undefined ? undefined : r.liveMs.p99 <= limit) };
    },
  },
  { label: 'live latency max (ms)', read: (r) => r.liveMs?.max, digits: 1, target: () => ({ text: '< 250', met: (r) => (r.liveMs === undefined ? undefined : r.liveMs.max < 250) }) },
  { label: 'live publish answered p99 (ms)', read: (r) => r.publishAckMs?.p99, digits: 1 },
  { label: 'live publishes not acknowledged', read: (r) => r.livePublishFailed, digits: 0, target: () => ({ text: '0', met: (r) => r.livePublishFailed === 0 }) },
  { label: 'live events lost', read: (r) => r.liveLost, digits: 0, target: () => ({ text: '0', met: (r) => r.liveLost === 0 }) },
  {
    label: 'event-loop delay max (ms)',
    read: (r) => (r.loop.maxSeconds === undefined ? undefined : r.loop.maxSeconds * 1000),
    digits: 1,
    target: () => ({ text: '≤ 50', met: (r) => (r.loop.maxSeconds === undefined ? undefined : r.loop.maxSeconds <= 0.05) }),
  },
  {
    label: 'event-loop samples over 50 ms',
    read: (r) => r.loop.over50ms,
    digits: 0,
    target: () => ({ text: '0', met: (r) => (r.loop.over50ms === undefined ? undefined : r.loop.over50ms === 0) }),
  },
  { label: 'hub peak RSS (MiB)', read: (r) => mib(r.rss.peakBytes), digits: 0 },
  {
    label: 'hub RSS growth in the window (MiB)',
    read: (r) => mib(r.rss.growthBytes),
    digits: 1,
    target: () => ({ text: `< ${format(mib(RSS_TARGET_BYTES), 1)} (100 MB)`, met: (r) => r.rss.growthBytes < RSS_TARGET_BYTES }),
  },
  { label: 'hub CPU in the window (s)', read: (r) => r.serverCpuSeconds, digits: 1 },
  { label: 'Redis CPU in the window (s)', read: (r) => r.companionCpuSeconds, digits: 1 },
  { label: 'Redis RSS growth (MiB)', read: (r) => (r.companionRss === undefined ? undefined : mib(r.companionRss.growthBytes)), digits: 1 },
  { label: 'window (s)', read: (r) => r.windowSeconds, digits: 1 },
  {
    label: 'resumers with exactly their events',
    read: (r) => r.resumers?.exact,
    digits: 0,
    stormOnly: true,
    target: () => ({ text: 'all', met: (r) => (r.resumers === undefined ? undefined : r.resumers.exact === r.resumers.total) }),
  },
  { label: 'events the resumers received', read: (r) => r.resumers?.received, digits: 0, stormOnly: true },
  { label: 'resumer time to first event p50 (s)', read: (r) => r.resumers?.firstEventSeconds?.p50, digits: 2, stormOnly: true },
  { label: 'resumer time to complete p50 (s)', read: (r) => r.resumers?.completeSeconds?.p50, digits: 2, stormOnly: true },
  { label: 'resumer time to complete max (s)', read: (r) => r.resumers?.completeSeconds?.max, digits: 2, stormOnly: true },
];

function format(value: number, digits: number): string {
  if (!Number.isFinite(value)) return value === Number.POSITIVE_INFINITY ? '∞' : 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function cell(values: readonly (number | undefined)[], digits: number): string {
  const finite = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  if (finite.length === 0) return 'n/a';
  const shown = format(median(finite), digits);
  if (finite.length === 1) return shown;
  return `${shown} (${format(Math.min(...finite), digits)}–${format(Math.max(...finite), digits)})`;
}

function verdict(met: readonly (boolean | undefined)[]): string {
  const known = met.filter((m): m is boolean => m !== undefined);
  if (known.length === 0) return 'n/a';
  const passed = known.filter(Boolean).length;
  const word = passed === known.length ? '**met**' : passed === 0 ? '**missed**' : '**mixed**';
  return known.length === 1 ? word : `${word} (${passed}/${known.length} runs)`;
}

/**
 * The Markdown table: per engine and figure, the baseline runs and the storm
 * runs of each report (medians, min–max), the target, and whether the storm
 * runs of each report meet it.
 */
export function markdownTable(reports: readonly ResumeStormReport[]): string {
  const many = reports.length > 1;
  const prefix = (report: ResumeStormReport): string => (many ? `${report.label}: ` : '');
  const header = ['engine', 'metric', ...reports.flatMap((r) => [`${prefix(r)}no resumers`, `${prefix(r)}storm`]), 'target', ...reports.map((r) => `${prefix(r)}storm meets it`)];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i < 2 ? '---' : i < 2 + 2 * reports.length ? '---:' : '---')).join('|')}|`];
  const engines = [...new Set(reports.flatMap((r) => r.settings.engines))];
  for (const engine of engines) {
    for (const row of ROWS) {
      const cells: string[] = [];
      const verdicts: string[] = [];
      const targetTexts: string[] = [];
      let any = false;
      for (const report of reports) {
        const baseline = report.runs.filter((r) => r.engine === engine && r.kind === 'baseline' && r.failure === undefined);
        const storm = report.runs.filter((r) => r.engine === engine && r.kind === 'storm');
        const b = row.stormOnly ? '–' : cell(baseline.map(row.read), row.digits);
        const s = cell(storm.map(row.read), row.digits);
        if (b !== 'n/a' && b !== '–') any = true;
        if (s !== 'n/a') any = true;
        cells.push(b, s);
        const target = row.target?.(baseline);
        if (target !== undefined) {
          targetTexts.push(`${prefix(report)}${target.text}`);
          verdicts.push(storm.length === 0 ? 'n/a' : verdict(storm.map(target.met)));
        } else verdicts.push('');
      }
      if (!any) continue;
      // A target that depends on each report's own baseline (the p99 limit) is shown for each.
      const distinct = new Set(targetTexts.map((text, i) => text.slice(prefix(reports[i]!).length)));
      const targetText = distinct.size <= 1 ? ([...distinct][0] ?? '') : targetTexts.join('; ');
      lines.push(`| ${engine} | ${row.label} | ${cells.join(' | ')} | ${targetText} | ${verdicts.join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

/** One paragraph: what was run, where and when. */
export function describe(report: ResumeStormReport): string {
  const { settings, machine } = report;
  const load = (values: readonly number[]): string => values.map((v) => v.toFixed(2)).join(' ');
  return [
    `${report.date.slice(0, 10)}, Herald ${report.label}${report.herald.commit === undefined ? '' : ` (${report.herald.commit})`}.`,
    `Command: \`${report.command}\`.`,
    `${settings.runs} round(s) of a baseline and a storm run per engine; ${settings.events.toLocaleString('en-US')} events, ${settings.resumers} resumers of ${settings.perResumer.toLocaleString('en-US')} events each,`,
    `live ${settings.rate} events/s, ${settings.windowMs / 1000} s windows after ${settings.warmupMs / 1000} s of warm-up; the server on core ${settings.serverCpu ?? '(unpinned)'}.`,
    `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Linux ${machine.kernel}, Node ${machine.node}${machine.redis === undefined ? '' : `, Redis ${machine.redis}`};`,
    `load average ${load(machine.loadAverage.start)} before, ${load(machine.loadAverage.end)} after; ${Math.ceil(report.minutes)} min in all.`,
  ].join(' ');
}

function summary(figures: RunFigures): string {
  const parts = [
    `live p50 ${format(figures.liveMs?.p50 ?? Number.NaN, 1)} p99 ${format(figures.liveMs?.p99 ?? Number.NaN, 1)} max ${format(figures.liveMs?.max ?? Number.NaN, 1)} ms`,
    `lost ${figures.liveLost}`,
    ...(figures.livePublishFailed > 0 ? [`${figures.livePublishFailed} publishes failed (${figures.livePublishError})`] : []),
    `loop max ${format((figures.loop.maxSeconds ?? Number.NaN) * 1000, 1)} ms (${figures.loop.over50ms ?? 'n/a'} over 50 ms)`,
    `RSS ${format(mib(figures.rss.peakBytes), 0)} MiB (+${format(mib(figures.rss.growthBytes), 1)})`,
  ];
  if (figures.resumers !== undefined) {
    const { exact, total, completeSeconds } = figures.resumers;
    parts.push(`resumers ${exact}/${total} exact, done p50 ${format(completeSeconds?.p50 ?? Number.NaN, 2)} s max ${format(completeSeconds?.max ?? Number.NaN, 2)} s`);
    if (figures.resumers.errors.length > 0) parts.push(`first error: ${figures.resumers.errors[0]}`);
  }
  if (figures.failure !== undefined) parts.push(`FAILED: ${figures.failure}`);
  return parts.join(', ');
}

// ---------------------------------------------------------------- main

const USAGE = `Usage: npm run bench:resume -- [options]

The resume storm: live latency, event-loop delay and memory of a hub while
clients resume from the oldest of a large history, against a baseline run
without them; SQLite (--store) and Redis (--redis, a private redis-server).

  --runs <n>            rounds (a baseline and a storm run per engine each; default 3, quick 1)
  --events <n>          events in the prepared history, a multiple of ${STEP} (default 1000000, quick 100000)
  --resumers <n>        clients resuming at once (default 50, quick 10)
  --engines <list>      sqlite,redis (default both)
  --window <ms>         measured window; a storm's lasts until its last resumer is done (default 20000, quick 10000)
  --warmup <ms>         before the window, live traffic only (default 5000, quick 3000)
  --rate <n>            live events per second (default 20)
  --timeout <ms>        a resumer not done by then fails, and the storm ends (default 600000)
  --herald <cli>        Herald's dist/src/cli/main.js to measure (default: this checkout's)
  --label <name>        names the results (default: current, or the --herald build's commit)
  --data-dir <dir>      where the prepared SQLite history is kept and reused (default ${join(tmpdir(), 'herald-resume-storm')})
  --json <file>         default bench/results/resume-storm[-label].json
  --markdown <file>     default bench/results/resume-storm[-label].md
  --merge <a,b,...>     print one table from saved JSON results (old against new, say) and exit
  --labels <a,b,...>    with --merge: the columns' names (default: each report's label)
  --quick               the small configuration above
  --help
`;

function gitCommit(cli: string): string | undefined {
  try {
    return execFileSync('git', ['-C', dirname(cli), 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string' },
      events: { type: 'string' },
      resumers: { type: 'string' },
      engines: { type: 'string', default: 'sqlite,redis' },
      window: { type: 'string' },
      warmup: { type: 'string' },
      rate: { type: 'string', default: '20' },
      timeout: { type: 'string', default: '600000' },
      herald: { type: 'string' },
      label: { type: 'string' },
      'data-dir': { type: 'string', default: join(tmpdir(), 'herald-resume-storm') },
      json: { type: 'string' },
      markdown: { type: 'string' },
      merge: { type: 'string' },
      labels: { type: 'string' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (values.merge !== undefined) {
    const labels = values.labels?.split(',') ?? [];
    const reports = values.merge
      .split(',')
      .filter(Boolean)
      .map((file, i) => {
        const report = JSON.parse(readFileSync(file, 'utf8')) as ResumeStormReport;
        return labels[i] === undefined ? report : { ...report, label: labels[i]! };
      });
    process.stdout.write(`${reports.map((report) => `- ${describe(report)}`).join('\n')}\n\n${markdownTable(reports)}\n`);
    return;
  }
  const quick = values.quick;
  const integer = (value: string | undefined, fallback: number, name: string): number => {
    const n = Number(value ?? fallback);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} takes a whole number, not ${value}`);
    return n;
  };
  const runs = integer(values.runs, quick ? 1 : 3, 'runs');
  const events = integer(values.events, quick ? 100_000 : 1_000_000, 'events');
  const resumers = integer(values.resumers, quick ? 10 : 50, 'resumers');
  const windowMs = integer(values.window, quick ? 10_000 : 20_000, 'window');
  const warmupMs = integer(values.warmup, quick ? 3000 : 5000, 'warmup');
  const rate = integer(values.rate, 20, 'rate');
  const timeoutMs = integer(values.timeout, 600_000, 'timeout');
  if (events < STEP || events % STEP !== 0) throw new Error(`--events must be a multiple of ${STEP}`);
  const engines = values.engines.split(',').filter(Boolean) as Engine[];
  for (const engine of engines) if (engine !== 'sqlite' && engine !== 'redis') throw new Error(`unknown engine ${engine}; choose sqlite,redis`);
  const heraldCli = values.herald === undefined ? undefined : resolve(values.herald);
  if (heraldCli !== undefined && !existsSync(heraldCli)) throw new Error(`no Herald CLI at ${heraldCli}`);
  const defaultCli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const commit = gitCommit(heraldCli ?? defaultCli);
  const label = values.label ?? (heraldCli === undefined ? 'current' : (commit ?? 'other'));
  const suffix = label === 'current' ? '' : `-${label.replace(/[^\w.-]+/g, '_')}`;
  const jsonFile = values.json ?? `bench/results/resume-storm${suffix}.json`;
  const markdownFile = values.markdown ?? `bench/results/resume-storm${suffix}.md`;
  // History for everything prepared plus every live event, so nothing is trimmed during a run.
  const history = Math.min(10_000_000, events + 1_000_000);

  const serverCpu = cpus().length >= 2 && pinSelf('1') ? '0' : undefined;
  if (serverCpu === undefined) process.stderr.write('bench: cannot pin to separate cores (needs 2 cores and taskset); figures will be noisier\n');
  const dataDir = values['data-dir'];
  mkdirSync(dataDir, { recursive: true });
  const scratch = join(dataDir, `run-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  cleanups.add(() => rmSync(scratch, { recursive: true, force: true }));
  process.once('SIGINT', onInterrupt);
  process.once('SIGTERM', onInterrupt);

  const started = Date.now();
  const loadAtStart = loadavg();
  const prepared: ResumeStormReport['prepared'] = {};
  const figures: RunFigures[] = [];
  let sqlite: PreparedStore | undefined;
  let redis: PreparedRedis | undefined;
  try {
    if (engines.includes('sqlite')) {
      sqlite = await prepareSqlite(dataDir, events);
      prepared.sqlite = { seconds: sqlite.seconds, cached: sqlite.cached };
    }
    if (engines.includes('redis')) {
      redis = await prepareRedis(events, history, serverCpu);
      prepared.redis = { seconds: redis.seconds, cached: false };
    }
    const total = runs * engines.length * 2;
    let done = 0;
    // Storms last longer than baselines, and Redis's longer than SQLite's: time left from the runs of each kind so far.
    const took = new Map<string, number[]>();
    const timeLeft = (): number => {
      const all = [...took.values()].flat();
      const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
      let left = 0;
      for (const engine of engines) {
        for (const kind of ['baseline', 'storm']) {
          const seen = took.get(`${engine} ${kind}`) ?? [];
          left += (runs - seen.length) * (seen.length > 0 ? mean(seen) : mean(all));
        }
      }
      return left;
    };
    for (let run = 1; run <= runs; run++) {
      // Engines and kinds take turns within each round, so drift on the machine hits all of them alike.
      for (const engine of engines) {
        for (const kind of ['baseline', 'storm'] as const) {
          const common = {
            engine, kind, run, heraldCli, serverCpu, events, resumers, rate, windowMs, warmupMs, timeoutMs,
          };
          let result: RunFigures;
          const runStarted = Date.now();
          if (engine === 'sqlite') {
            // A fresh copy of the prepared file: every run starts from the same state.
            const file = join(scratch, 'store.db');
            for (const stale of [file, `${file}-wal`, `${file}-shm`]) rmSync(stale, { force: true });
            copyFileSync(sqlite!.file, file);
            result = await measureSafely({ ...common, heraldArgs: ['--store', file, '--history', String(history)], companionPid: undefined, oldestId: sqlite!.oldestId });
          } else {
            // A server-side copy of the prepared stream under a prefix of this run's own.
            const prefix = `run-${run}-${kind}`;
            const [from, to] = [streamKeys(PREPARED_PREFIX), streamKeys(prefix)];
            await redis!.client.del(...to);
            for (let k = 0; k < from.length; k++) await redis!.client.call('COPY', from[k]!, to[k]!);
            try {
              result = await measureSafely({
                ...common,
                heraldArgs: ['--redis', redis!.redis.url, '--redis-prefix', prefix, '--history', String(history)],
                companionPid: () => redis!.redis.pid(),
                oldestId: redis!.oldestId,
              });
            } finally {
              await redis!.client.del(...to);
            }
          }
          figures.push(result);
          done++;
          const key = `${engine} ${kind}`;
          took.set(key, [...(took.get(key) ?? []), Date.now() - runStarted]);
          const left = Math.ceil(timeLeft() / 60_000);
          process.stderr.write(`[${done}/${total}] ${engine} ${kind} run ${run}: ${summary(result)}${done < total ? ` (about ${left} min left)` : ''}\n`);
        }
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    if (redis !== undefined) {
      redis.client.disconnect();
      await redis.redis.stop();
    }
  }

  const redisVersion = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  const report: ResumeStormReport = {
    date: new Date().toISOString(),
    command: `npm run bench:resume -- ${process.argv.slice(2).join(' ')}`.trim(),
    label,
    herald: { cli: heraldCli ?? defaultCli, commit },
    machine: {
      ...machineInfo(),
      redis: redisVersion.error === undefined ? /v=(\S+)/.exec(redisVersion.stdout)?.[1] : undefined,
      loadAverage: { start: loadAtStart, end: loadavg() },
    },
    minutes: (Date.now() - started) / 60_000,
    settings: { runs, events, resumers, perResumer: events / STEP, rate, windowMs, warmupMs, serverCpu, engines },
    prepared,
    runs: figures,
  };
  const table = `${describe(report)}\n\n${markdownTable([report])}`;
  process.stdout.write(`\n${table}\n`);
  for (const [file, content] of [[jsonFile, JSON.stringify(report, null, 2)], [markdownFile, `${table}\n`]] as const) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
  process.stderr.write(`\nsaved ${jsonFile} and ${markdownFile}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
