/**
 * Chaos: three `herald` nodes on one Redis (AOF, appendfsync always) behind a
 * TCP load balancer, hundreds of real `EventSource` clients reconnecting on
 * their own through it, publishers at a steady rate, and faults: a node
 * SIGKILLed and restarted, a node frozen (SIGSTOP/SIGCONT), Redis SIGKILLed
 * and restarted, and nodes SIGKILLed and restarted while Redis is down.
 *
 * The guarantee under test (README, "Scaling out"): no acknowledged event is
 * lost or duplicated; a client that reconnects to any node with
 * `Last-Event-ID` gets exactly the events it missed, in order. So afterwards
 * every client must hold every acknowledged event its selectors match, once,
 * in increasing id order, nothing twice, and never `herald-resync`.
 *
 * Synchronisation is on events: clients report (over IPC) when each holds a
 * sentinel batch; nodes are waited for through `/health`. The seed
 * (`HERALD_TEST_SEED`) replays the fault order, the nodes picked and the
 * topics; `HERALD_CHAOS_ROUNDS`, `HERALD_CHAOS_CLIENTS` and `HERALD_CHAOS_RETRY_MS`
 * (the nodes' `--retry`) scale the run.
 */

import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, seededRandom, sleep, spawnHerald, Waiters, type HeraldProcess } from './support/helpers.js';
import { redisSkip, startRedis, type TestRedis } from './support/redis-server.js';
import { tagOf, type ClientReport, type ClientSpec, type ClientState, type FromClients, type ToClients } from './support/chaos-clients.js';
import { LoadBalancer } from './support/load-balancer.js';

const envInt = (name: string, fallback: number): number => {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
};

const seed = Number(process.env.HERALD_TEST_SEED ?? Date.now() % 1_000_000);
/** Faults draw from their own generator, so the publishers' timing cannot change what a seed replays. */
const rand = seededRandom(seed);
const pick = <T>(items: readonly T[], random = rand): T => items[Math.floor(random() * items.length)]!;
const shuffled = <T>(items: readonly T[]): T[] => {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
};

const CLIENTS = envInt('HERALD_CHAOS_CLIENTS', 300);
const CLIENT_PROCESSES = 3;
/**
 * A round: every kind of fault once, in a seeded order, then the two outage faults again in a
 * seeded order. Those race a node's start-up against Redis's return, and a start-up gap shows in
 * about three of four of them, so four per round; the cheaper faults once.
 */
const ROUNDS = envInt('HERALD_CHAOS_ROUNDS', 1);
const NODES = 3;
/** Publishing is mostly waiting for answers on a loaded machine: several publishers keep the rate up. */
const PUBLISHERS = 8;
/**
 * The reconnection delay nodes send (`retry:`). Short, so clients come back fast; during an
 * outage every client whose stream ended reconnects this often, a storm that loads the machine
 * (and that finds the start-up gap: resumes keep arriving while Redis returns).
 */
const RETRY_MS = envInt('HERALD_CHAOS_RETRY_MS', 200);
/**
 * How long Redis stays down, at least, when nodes are restarted into the outage (the reported
 * bug: 5 s). It stays down until they listen, which takes longer on a loaded machine.
 */
const OUTAGE_MS = 5000;
/** Bound of every wait for the system to converge (a sentinel everywhere, a node healthy). */
const CONVERGE_MS = 90_000;

/** `''` stands for an event without a topic: only subscribers without selectors receive it. */
const NO_TOPIC = '';
const TOPICS = ['a', 'b/x', 'b/y', 'c', 'd/e/f', NO_TOPIC] as const;

/** Subscriptions, and (written out by hand, not computed by Herald's matcher) the topics each matches. */
const GROUPS: readonly { readonly selectors: readonly string[]; readonly matches: readonly string[] }[] = [
  { selectors: ['a'], matches: ['a'] },
  { selectors: ['b/*'], matches: ['b/x', 'b/y'] },
  { selectors: ['a', 'c'], matches: ['a', 'c'] },
  { selectors: ['b/x', 'd/**'], matches: ['b/x', 'd/e/f'] },
  // Overlapping selectors: an event on b/y matches both and must arrive once.
  { selectors: ['b/**', 'b/y'], matches: ['b/x', 'b/y'] },
  { selectors: ['c', 'b/*', 'd/e/*'], matches: ['c', 'b/x', 'b/y', 'd/e/f'] },
  { selectors: [], matches: [...TOPICS] },
];

type FaultKind = 'node-restart' | 'node-freeze' | 'redis-restart' | 'outage-restart-all-but-one' | 'outage-restart-one';
const OUTAGE_KINDS: readonly FaultKind[] = ['outage-restart-all-but-one', 'outage-restart-one'];
const FAULT_KINDS: readonly FaultKind[] = ['node-restart', 'node-freeze', 'redis-restart', ...OUTAGE_KINDS];

interface FaultRecord {
  readonly number: number;
  readonly kind: FaultKind;
  detail: string;
  readonly start: number;
  /** When every node was healthy again and every client held the checkpoint sentinel. */
  end: number;
}

// ---------------------------------------------------------------------------
// Ids: `<ms>-<seq>`, compared as numbers (independently of Herald's own code).

function idKey(id: string): [number, number] {
  const match = /^(\d+)-(\d+)$/.exec(id);
  if (match === null) throw new Error(`not an event id: ${JSON.stringify(id)}`);
  return [Number(match[1]), Number(match[2])];
}

function compareIds(a: string, b: string): number {
  const [am, as] = idKey(a);
  const [bm, bs] = idKey(b);
  return am !== bm ? am - bm : as - bs;
}

const clock = (ms: number): string => new Date(ms).toISOString().slice(11, 23);

// ---------------------------------------------------------------------------
// Nodes

interface Slot {
  readonly index: number;
  readonly port: number;
  generation: number;
  label: string;
  proc: HeraldProcess | undefined;
}

interface Generation {
  readonly label: string;
  readonly proc: HeraldProcess;
  readonly tag: string | undefined;
}

// ---------------------------------------------------------------------------
// Publishing

interface PublishLog {
  next: number;
  /** n → topic, for every event ever sent. */
  readonly topics: Map<number, string>;
  /** n → id, for every acknowledged event (202). */
  readonly acked: Map<number, string>;
  /** n of events whose publish was not acknowledged (refused, or the answer was lost): they may or may not exist. */
  readonly unconfirmed: Set<number>;
  /** Answers by kind: `202`, `503 HERALD_ERR_STORE_UNAVAILABLE`, `network ...`. */
  readonly outcomes: Map<string, number>;
  /** Answers that no fault explains (anything but 202 and 503 STORE_UNAVAILABLE). */
  readonly unexpected: string[];
  /** How long each acknowledged publish took, ms. */
  readonly latencies: number[];
}

interface Answer {
  readonly status: number;
  readonly text: string;
}

/** POSTs JSON on a connection of its own (so the balancer spreads publishes over the nodes). */
function post(port: number, body: string, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: '/trigger', agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

type Outcome = 'acked' | 'refused' | 'lost';

/** Publishes one batch (atomic) through the balancer and records what happened to it. */
async function publish(port: number, log: PublishLog, topics: readonly string[], sentinel?: number): Promise<Outcome> {
  const events = topics.map((topic) => ({ topic, n: log.next++ }));
  for (const event of events) log.topics.set(event.n, event.topic);
  const body = events.map(({ topic, n }) => ({ ...(topic === NO_TOPIC ? {} : { topic }), data: sentinel === undefined ? { n } : { n, s: sentinel } }));
  const count = (key: string): void => void log.outcomes.set(key, (log.outcomes.get(key) ?? 0) + 1);
  let answer: Answer;
  const started = Date.now();
  try {
    // Longer than any freeze: a publish held by a frozen node is answered after SIGCONT.
    answer = await post(port, JSON.stringify(body.length === 1 ? body[0] : body), 20_000);
  } catch (error) {
    count(`network ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    for (const event of events) log.unconfirmed.add(event.n);
    return 'lost';
  }
  let parsed: any;
  try {
    parsed = JSON.parse(answer.text);
  } catch {
    parsed = undefined;
  }
  if (answer.status === 202 && parsed !== undefined) {
    const ids: string[] = body.length === 1 ? [parsed.id] : parsed.map((p: { id: string }) => p.id);
    events.forEach((event, i) => log.acked.set(event.n, ids[i]!));
    log.latencies.push(Date.now() - started);
    count('202');
    return 'acked';
  }
  for (const event of events) log.unconfirmed.add(event.n);
  const code = parsed?.error?.code as string | undefined;
  count(`${answer.status} ${code ?? '(no code)'}`);
  if (answer.status !== 503 || code !== 'HERALD_ERR_STORE_UNAVAILABLE') log.unexpected.push(`${answer.status} ${answer.text.slice(0, 200)}`);
  return 'refused';
}

// ---------------------------------------------------------------------------
// Clients, in child processes

interface ClientProcess {
  readonly child: ChildProcess;
  readonly specs: readonly ClientSpec[];
  stderr: string;
  opened: boolean;
  readonly sentinels: Set<number>;
  report: readonly ClientReport[] | undefined;
  exited: string | undefined;
  readonly statusReplies: Map<number, (lacking: readonly ClientState[]) => void>;
}

class Fleet {
  readonly processes: ClientProcess[] = [];
  private readonly waiters = new Waiters();
  private ref = 0;

  constructor(url: string, specs: readonly ClientSpec[], sentinelTopics: readonly string[], processes: number) {
    const script = fileURLToPath(new URL('./support/chaos-clients.js', import.meta.url));
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_TEST_CONTEXT'));
    for (let p = 0; p < processes; p++) {
      const mine = specs.filter((_, i) => i % processes === p);
      const child = fork(script, [], {
        execArgv: [],
        serialization: 'advanced',
        env: { ...env, HERALD_CHAOS_CLIENT_PROCESS: '1' },
        stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      });
      const entry: ClientProcess = { child, specs: mine, stderr: '', opened: false, sentinels: new Set(), report: undefined, exited: undefined, statusReplies: new Map() };
      child.stderr!.on('data', (chunk: Buffer) => (entry.stderr = (entry.stderr + chunk.toString()).slice(-20_000)));
      child.on('message', (message: FromClients) => {
        if (message.type === 'opened') entry.opened = true;
        else if (message.type === 'sentinel') entry.sentinels.add(message.sentinel);
        else if (message.type === 'report') entry.report = message.clients;
        else if (message.type === 'status') {
          entry.statusReplies.get(message.ref)?.(message.lacking);
          entry.statusReplies.delete(message.ref);
        }
        this.waiters.notify();
      });
      child.on('exit', (code, signal) => {
        entry.exited = String(code ?? signal);
        this.waiters.notify();
      });
      child.send({ type: 'start', url, clients: mine, sentinelTopics } satisfies ToClients);
      this.processes.push(entry);
    }
  }

  private crashed(): string | undefined {
    const dead = this.processes.find((p) => p.exited !== undefined && p.report === undefined);
    return dead === undefined ? undefined : `a client process exited (${dead.exited}): ${dead.stderr.slice(-2000)}`;
  }

  private async until(condition: () => boolean, what: string, timeoutMs: number, describe: () => Promise<string> | string = () => ''): Promise<void> {
    try {
      await this.waiters.until(() => condition() || this.crashed() !== undefined, what, timeoutMs, () => '');
    } catch {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${await describe()}`);
    }
    const crash = this.crashed();
    if (crash !== undefined) throw new Error(`while waiting for ${what}: ${crash}`);
  }

  opened(timeoutMs: number): Promise<void> {
    return this.until(() => this.processes.every((p) => p.opened), 'every client to open its stream', timeoutMs);
  }

  /** Resolves once every client holds every event of sentinel batch `sentinel` that it matches. */
  sentinel(sentinel: number, timeoutMs: number, describeClient: (state: ClientState) => string): Promise<void> {
    return this.until(() => this.processes.every((p) => p.sentinels.has(sentinel)), `every client to receive sentinel ${sentinel}`, timeoutMs, async () => {
      const lacking = await this.lacking(sentinel);
      return `${lacking.length} clients lack it: ${lacking.slice(0, 15).map(describeClient).join('; ')}`;
    });
  }

  /** The clients that do not hold sentinel `sentinel` yet (asked of each process, bounded). */
  private async lacking(sentinel: number): Promise<ClientState[]> {
    const replies = await Promise.all(
      this.processes.map(
        (p) =>
          new Promise<readonly ClientState[]>((resolve) => {
            if (p.exited !== undefined) return resolve([]);
            const ref = ++this.ref;
            const timer = setTimeout(() => resolve([]), 5000);
            p.statusReplies.set(ref, (lacking) => {
              clearTimeout(timer);
              resolve(lacking);
            });
            p.child.send({ type: 'status', ref, sentinel } satisfies ToClients);
          }),
      ),
    );
    return replies.flat();
  }

  /** Closes every client and collects what each received. */
  async finish(timeoutMs: number): Promise<ClientReport[]> {
    for (const p of this.processes) if (p.exited === undefined) p.child.send({ type: 'finish' } satisfies ToClients);
    await this.until(() => this.processes.every((p) => p.report !== undefined), 'the clients’ reports', timeoutMs);
    return this.processes.flatMap((p) => p.report!).sort((a, b) => a.index - b.index);
  }

  kill(): void {
    for (const p of this.processes) if (p.exited === undefined) p.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------
// Verification

interface ClientVerdict {
  readonly index: number;
  readonly missing: string[];
  readonly duplicates: string[];
  readonly disorder: number;
  /** Received events that were never published, carry another id than acknowledged, or a topic the client did not ask for. */
  readonly foreign: string[];
  readonly resyncs: number;
  readonly lines: string[];
}

function verifyClient(
  spec: ClientSpec,
  report: ClientReport,
  log: PublishLog,
  expectedIds: (matches: readonly string[]) => string[],
  labelOf: (tag: string | undefined) => string,
  faultAt: (ms: number) => string,
): ClientVerdict {
  const ids = report.ids;
  const lines: string[] = [];
  const seen = new Map<string, number>();
  for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
  const duplicates = [...seen].filter(([, count]) => count > 1).map(([id, count]) => `${id}×${count}`);
  let disorder = 0;
  for (let i = 1; i < ids.length; i++) if (compareIds(ids[i - 1]!, ids[i]!) >= 0) disorder++;
  const foreign: string[] = [];
  const seenN = new Set<number>();
  ids.forEach((id, i) => {
    const n = report.ns[i]!;
    if (seenN.has(n) && (seen.get(id) ?? 0) < 2) foreign.push(`n=${n} twice under different ids (${id})`);
    seenN.add(n);
    const topic = log.topics.get(n);
    if (topic === undefined) foreign.push(`${id}: n=${n} was never published`);
    else if (!spec.matches.includes(topic)) foreign.push(`${id}: topic ${JSON.stringify(topic)} not selected`);
    const acked = log.acked.get(n);
    if (acked !== undefined && acked !== id) foreign.push(`${id}: n=${n} was acknowledged as ${acked}`);
    if (acked === undefined && !log.unconfirmed.has(n)) foreign.push(`${id}: n=${n} neither acknowledged nor refused`);
  });
  const expected = expectedIds(spec.matches);
  const received = new Set(ids);
  const missing = expected.filter((id) => !received.has(id));

  const connection = (c: number): string => {
    const conn = report.connections[c];
    if (conn === undefined) return `connection ${c} (unknown)`;
    return `${labelOf(conn.tag)} (connection ${c}, opened ${clock(conn.at)}, Last-Event-ID ${conn.lastEventId ?? 'none'})`;
  };
  if (missing.length > 0) {
    // Which connection should have delivered each missing id: the one that delivered the next event
    // received after it (it resumed from an id before it, or was live across it).
    const sorted = ids.map((id, i) => ({ id, conn: report.conns[i]! })).sort((a, b) => compareIds(a.id, b.id));
    const byConnection = new Map<number, string[]>();
    for (const id of missing) {
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (compareIds(sorted[mid]!.id, id) < 0) lo = mid + 1;
        else hi = mid;
      }
      const conn = sorted[lo]?.conn ?? report.connections.length - 1;
      const list = byConnection.get(conn) ?? [];
      list.push(id);
      byConnection.set(conn, list);
    }
    for (const [conn, list] of byConnection) {
      const stored = `${clock(idKey(list[0]!)[0])}–${clock(idKey(list[list.length - 1]!)[0])}`;
      lines.push(
        `missed ${list.length} on ${connection(conn)}, stored ${stored} ${faultAt(idKey(list[0]!)[0])}: ${list.slice(0, 6).join(' ')}${list.length > 6 ? ' …' : ''}`,
      );
    }
  }
  if (duplicates.length > 0) lines.push(`duplicates: ${duplicates.slice(0, 6).join(' ')}`);
  if (disorder > 0) lines.push(`${disorder} ids out of order`);
  if (foreign.length > 0) lines.push(`unexpected: ${foreign.slice(0, 6).join('; ')}`);
  for (const resync of report.resyncs) lines.push(`herald-resync at ${clock(resync.at)} on ${connection(resync.conn)}: ${resync.data}`);
  return { index: spec.index, missing, duplicates, disorder, foreign, resyncs: report.resyncs.length, lines };
}

/** A node's warnings and errors (pino JSON lines), with their times. */
function nodeWarnings(generation: Generation): string[] {
  const lines: string[] = [];
  for (const line of generation.proc.output().split('\n')) {
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; time?: number };
      if ((entry.level ?? 0) >= 40) lines.push(`${clock(entry.time ?? 0)} ${(entry.msg ?? '').slice(0, 120)}`);
    } catch {
      if (line.trim() !== '') lines.push(line.slice(0, 160));
    }
  }
  return lines;
}

/** Warnings and errors in the nodes' logs (pino JSON lines), counted by message. */
function nodeLogSummary(generations: readonly Generation[]): string[] {
  const counts = new Map<string, { count: number; nodes: Set<string> }>();
  for (const generation of generations) {
    for (const line of generation.proc.output().split('\n')) {
      if (line.trim() === '') continue;
      let level = 50;
      let message = line;
      try {
        const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
        level = entry.level ?? 30;
        message = `${entry.msg ?? ''}${entry.err?.message !== undefined ? `: ${entry.err.message}` : ''}`;
      } catch {
        // Not a log line (a crash trace, say): always worth showing.
      }
      if (level < 40) continue;
      const key = `[${level >= 50 ? 'error' : 'warn'}] ${message.slice(0, 160)}`;
      const entry = counts.get(key) ?? { count: 0, nodes: new Set<string>() };
      entry.count++;
      entry.nodes.add(generation.label);
      counts.set(key, entry);
    }
  }
  return [...counts].sort((a, b) => b[1].count - a[1].count).map(([key, { count, nodes }]) => `${count}× ${key} (${[...nodes].join(' ')})`);
}

// ---------------------------------------------------------------------------

test('chaos: 3 nodes on one Redis behind a load balancer, hundreds of EventSource clients, nodes and Redis killed: exactly the acknowledged events, in order', { skip: redisSkip, timeout: 10 * 60_000 }, async () => {
  const began = Date.now();
  console.log(`# chaos: seed ${seed} (HERALD_TEST_SEED=${seed} replays the fault order), ${CLIENTS} clients in ${CLIENT_PROCESSES} processes, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'} of faults`);
  let redis: TestRedis | undefined;
  let balancer: LoadBalancer | undefined;
  let fleet: Fleet | undefined;
  const slots: Slot[] = [];
  const generations: Generation[] = [];
  const tags = new Map<string, string>();
  const faults: FaultRecord[] = [];
  const log: PublishLog = { next: 0, topics: new Map(), acked: new Map(), unconfirmed: new Set(), outcomes: new Map(), unexpected: [], latencies: [] };

  const labelOf = (tag: string | undefined): string => (tag === undefined ? 'no node (no answer)' : (tags.get(tag) ?? `unknown node ${tag}`));
  const faultAt = (ms: number): string => {
    const fault = faults.find((f) => ms >= f.start && ms <= f.end);
    return fault === undefined ? '(no fault running)' : `(during fault #${fault.number} ${fault.kind}: ${fault.detail})`;
  };

  try {
    redis = await startRedis({ fsync: 'always' });
    const redisUrl = redis.url;
    const ports = await Promise.all(Array.from({ length: NODES }, () => freePort()));
    for (const [index, port] of ports.entries()) slots.push({ index, port, generation: 0, label: `n${index}`, proc: undefined });

    /** Starts the slot's next process on its port; resolves with how long it took to listen. */
    const startNode = async (slot: Slot): Promise<number> => {
      const started = Date.now();
      slot.generation++;
      const label = `n${slot.index}#${slot.generation}`;
      const proc = await spawnHerald(['--port', String(slot.port), '--redis', redisUrl, '--redis-prefix', 'chaos', '--history', '1000000', '--retry', `${RETRY_MS}ms`, '--heartbeat', '1s'], {}, {
        // A loaded machine starts a node slowly, more so in a reconnect storm.
        startTimeoutMs: 60_000,
      });
      slot.proc = proc;
      slot.label = label;
      // The prefix of the X-Request-Id it generates names this process in what clients saw.
      const answer = await fetch(`${proc.url}/health`, { signal: AbortSignal.timeout(10_000) });
      await answer.text();
      const tag = tagOf(answer.headers.get('x-request-id'));
      if (tag !== undefined) tags.set(tag, tags.has(tag) ? `${tags.get(tag)}|${label}` : label);
      generations.push({ label, proc, tag });
      return Date.now() - started;
    };
    const killNode = async (slot: Slot): Promise<void> => {
      const proc = slot.proc!;
      proc.child.kill('SIGKILL');
      await proc.exited;
      slot.proc = undefined;
    };
    /** Waits (bounded) until every node answers /health with 200. */
    const healthy = async (): Promise<void> => {
      const deadline = Date.now() + CONVERGE_MS;
      for (const slot of slots) {
        let last = '';
        let ok = false;
        for (let attempt = 0; attempt < 1000 && !ok && Date.now() < deadline; attempt++) {
          try {
            const answer = await fetch(`http://127.0.0.1:${slot.port}/health`, { signal: AbortSignal.timeout(2000) });
            last = await answer.text();
            ok = answer.status === 200;
          } catch (error) {
            last = (error as Error).message;
          }
          if (!ok) await sleep(100);
        }
        if (!ok) throw new Error(`node ${slot.label} did not become healthy: ${last}\n${slot.proc?.output().slice(-3000)}`);
      }
    };

    await Promise.all(slots.map(startNode));
    balancer = await LoadBalancer.start(slots.map((slot) => slot.port));
    const lbPort = balancer.port;

    const specs: ClientSpec[] = Array.from({ length: CLIENTS }, (_, index) => {
      const group = GROUPS[index % GROUPS.length]!;
      return { index, selectors: group.selectors, matches: group.matches };
    });
    const describeClient = (state: ClientState): string =>
      `client ${state.index} [${state.selectors.join(',') || 'everything'}] readyState ${state.readyState} on ${labelOf(state.tag)}, ${state.received} events, last ${state.lastId ?? 'none'}`;
    fleet = new Fleet(balancer.url, specs, TOPICS, CLIENT_PROCESSES);
    await fleet.opened(CONVERGE_MS);

    let sentinels = 0;
    const checkpoint = async (): Promise<void> => {
      const sentinel = sentinels++;
      let outcome: Outcome = 'lost';
      for (let attempt = 0; attempt < 100 && outcome !== 'acked'; attempt++) {
        outcome = await publish(lbPort, log, TOPICS, sentinel);
        if (outcome !== 'acked') await sleep(200);
      }
      if (outcome !== 'acked') throw new Error(`sentinel ${sentinel} was never acknowledged: ${JSON.stringify([...log.outcomes])}`);
      await fleet!.sentinel(sentinel, CONVERGE_MS, describeClient);
    };

    // Every client holds an event before any fault: every later reconnect carries a Last-Event-ID.
    await checkpoint();
    const setupDone = Date.now();
    console.log(`# chaos: set up in ${((setupDone - began) / 1000).toFixed(1)} s (nodes ${slots.map((s) => `${s.label}:${s.port}`).join(' ')}, balancer ${lbPort})`);

    let publishing = true;
    const publishers = Array.from({ length: PUBLISHERS }, async (_, p) => {
      const random = seededRandom(seed * 31 + p + 1);
      for (let i = 0; i < 1_000_000 && publishing; i++) {
        const topics = Array.from({ length: random() < 0.15 ? 3 : 1 }, () => pick(TOPICS, random));
        const outcome = await publish(lbPort, log, topics);
        // A refused publish (Redis down) is retried later, as a new event.
        await sleep(outcome === 'acked' ? 20 + random() * 40 : 250);
      }
    });

    const live = (): Slot[] => slots.filter((slot) => slot.proc !== undefined);
    const faultKinds: FaultKind[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      faultKinds.push(...shuffled(FAULT_KINDS), ...shuffled(OUTAGE_KINDS));
    }
    // A run that does not converge still gets its deliveries checked: the loss is the interesting part.
    let failure: Error | undefined;
    try {
      for (const kind of faultKinds) {
        // Some calm publishing between faults.
        await sleep(1000 + rand() * 1000);
        const fault: FaultRecord = { number: faults.length + 1, kind, detail: '', start: Date.now(), end: Number.POSITIVE_INFINITY };
        faults.push(fault);
        switch (kind) {
          case 'node-restart': {
            const slot = pick(live());
            const before = slot.label;
            await killNode(slot);
            await sleep(rand() * 1000);
            await startNode(slot);
            fault.detail = `${before} SIGKILLed, ${slot.label} started`;
            break;
          }
          case 'node-freeze': {
            const slot = pick(live());
            const hold = 2000 + rand() * 2000;
            slot.proc!.child.kill('SIGSTOP');
            await sleep(hold);
            slot.proc!.child.kill('SIGCONT');
            fault.detail = `${slot.label} stopped for ${(hold / 1000).toFixed(1)} s`;
            break;
          }
          case 'redis-restart': {
            const hold = 1500 + rand() * 1500;
            await redis.kill('SIGKILL');
            await sleep(hold);
            await redis.restart();
            fault.detail = `Redis down ${(hold / 1000).toFixed(1)} s`;
            break;
          }
          case 'outage-restart-all-but-one':
          case 'outage-restart-one': {
            const down = Date.now();
            await redis.kill('SIGKILL');
            await sleep(200 + rand() * 600);
            const survivors = kind === 'outage-restart-one' ? NODES - 1 : 1;
            const victims = shuffled(slots).slice(survivors);
            const before = victims.map((slot) => slot.label);
            await Promise.all(victims.map(killNode));
            // They start into the outage: they listen before they could read the stream.
            const startTimes = await Promise.all(victims.map(startNode));
            await sleep(Math.max(0, down + OUTAGE_MS - Date.now()));
            const outage = Date.now() - down;
            await redis.restart();
            const restarted = victims.map((slot, i) => `${slot.label} (listening after ${(startTimes[i]! / 1000).toFixed(1)} s)`);
            fault.detail = `Redis down ${(outage / 1000).toFixed(1)} s; ${before.join(', ')} SIGKILLed and restarted as ${restarted.join(', ')} while it was down`;
            break;
          }
        }
        await healthy();
        await checkpoint();
        fault.end = Date.now();
        console.log(`# chaos: fault #${fault.number} ${kind}: ${fault.detail}; converged ${((fault.end - fault.start) / 1000).toFixed(1)} s after it began`);
      }
    } catch (error) {
      failure = error as Error;
    } finally {
      publishing = false;
      await Promise.all(publishers);
    }

    // The final sentinel: once a client holds it, it holds everything it will ever get before it.
    if (failure === undefined) await checkpoint().catch((error: Error) => (failure = error));
    let reports: ClientReport[];
    try {
      reports = await fleet.finish(CONVERGE_MS);
    } catch (error) {
      throw failure ?? error;
    }
    const ended = Date.now();

    // Expected ids per subscription, in id order.
    const ackedByTopic = new Map<string, string[]>();
    for (const [n, id] of log.acked) {
      const topic = log.topics.get(n)!;
      const list = ackedByTopic.get(topic) ?? [];
      list.push(id);
      ackedByTopic.set(topic, list);
    }
    const expectedCache = new Map<string, string[]>();
    const expectedIds = (matches: readonly string[]): string[] => {
      const key = matches.join('\n');
      let ids = expectedCache.get(key);
      if (ids === undefined) {
        ids = matches.flatMap((topic) => ackedByTopic.get(topic) ?? []).sort(compareIds);
        expectedCache.set(key, ids);
      }
      return ids;
    };
    const verdicts = specs.map((spec) => verifyClient(spec, reports[spec.index]!, log, expectedIds, labelOf, faultAt));
    const bad = verdicts.filter((v) => v.lines.length > 0);
    // Unacknowledged events that were stored all the same (some client received them): not part of
    // the guarantee, but every matching client should hold them too, since they are in the stream.
    const stored = new Map<number, string>();
    for (const report of reports) report.ns.forEach((n, i) => void (!log.acked.has(n) && stored.set(n, report.ids[i]!)));
    let storedMissed = 0;
    let storedExpected = 0;
    for (const spec of specs) {
      const have = new Set(reports[spec.index]!.ns);
      for (const n of stored.keys()) {
        if (!spec.matches.includes(log.topics.get(n)!)) continue;
        storedExpected++;
        if (!have.has(n)) storedMissed++;
      }
    }

    const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
    const deliveries = sum(reports.map((r) => r.ids.length));
    const expectedDeliveries = sum(specs.map((spec) => expectedIds(spec.matches).length));
    const missing = sum(verdicts.map((v) => v.missing.length));
    const missingByNode = new Map<string, number>();
    for (const verdict of bad) {
      for (const line of verdict.lines) {
        const match = /^missed (\d+) on (\S+)/.exec(line);
        if (match !== null) missingByNode.set(match[2]!, (missingByNode.get(match[2]!) ?? 0) + Number(match[1]));
      }
    }
    const quantile = (values: number[], q: number): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))] ?? 0;
    const summary = [
      `seed ${seed}; ${((ended - began) / 1000).toFixed(1)} s in all, ${((ended - setupDone) / 1000).toFixed(1)} s of publishing and faults`,
      `events: ${log.next} sent, ${log.acked.size} acknowledged, ${log.unconfirmed.size} not (${JSON.stringify(Object.fromEntries(log.outcomes))})`,
      `deliveries: ${deliveries} received, ${expectedDeliveries} acknowledged ones expected, ${missing} missing; ` +
        `reconnects ${sum(reports.map((r) => r.connections.length - 1))}, failed attempts ${sum(reports.map((r) => r.failedAttempts))}, ` +
        `EventSources re-created after failing ${sum(reports.map((r) => r.fatal.length))}, herald-resync ${sum(verdicts.map((v) => v.resyncs))}`,
      `publish latency (acknowledged): median ${quantile(log.latencies, 0.5)} ms, p90 ${quantile(log.latencies, 0.9)} ms, max ${quantile(log.latencies, 1)} ms`,
      `unacknowledged but stored (received by some client): ${stored.size} events, ${storedExpected - storedMissed} of their ${storedExpected} matching deliveries made`,
      `balancer: ${JSON.stringify(balancer.stats)}`,
      `faults (${faults.length}): ${faults.map((f) => `#${f.number} ${f.kind}`).join(', ')}`,
      `nodes: ${generations.map((g) => `${g.label}=${g.tag ?? '?'}`).join(' ')}`,
    ];
    for (const line of summary) console.log(`# chaos: ${line}`);
    const fatal = reports.flatMap((r) => r.fatal.map((f) => `client ${r.index} at ${clock(f.at)}: ${f.message}`));
    if (fatal.length > 0) console.log(`# chaos: EventSources that failed for good (re-created): ${fatal.slice(0, 10).join('; ')}`);
    const logLines = nodeLogSummary(generations);
    if (logLines.length > 0) console.log(`# chaos: node warnings and errors:\n${logLines.slice(0, 25).map((l) => `#   ${l}`).join('\n')}`);

    const problems: string[] = [];
    if (failure !== undefined) {
      problems.push(`the run did not converge (so some deliveries below may merely have been in flight): ${failure.message}`);
    }
    if (bad.length > 0) {
      problems.push(
        `${bad.length} of ${CLIENTS} clients did not get exactly the acknowledged events: ${missing} deliveries missing ` +
          `(by the node that should have delivered them: ${JSON.stringify(Object.fromEntries(missingByNode))}), ` +
          `${sum(verdicts.map((v) => v.duplicates.length))} duplicated, ${sum(verdicts.map((v) => v.disorder))} out of order, ` +
          `${sum(verdicts.map((v) => v.foreign.length))} unexpected, ${sum(verdicts.map((v) => v.resyncs))} herald-resync`,
      );
      for (const verdict of bad.slice(0, 25)) {
        const spec = specs[verdict.index]!;
        problems.push(`client ${verdict.index} [${spec.selectors.join(',') || 'everything'}]: ${verdict.lines.join('\n      ')}`);
      }
      if (bad.length > 25) problems.push(`… and ${bad.length - 25} more clients`);
      // What the nodes that lost events said about Redis, to set against the clients' resume times above.
      for (const label of missingByNode.keys()) {
        const generation = generations.find((g) => g.label === label);
        if (generation !== undefined) problems.push(`${label} said: ${nodeWarnings(generation).slice(0, 8).join(' | ')}`);
      }
    }
    // An EventSource that fails for good (an answer other than a 200 stream) is one a browser never reconnects.
    if (fatal.length > 0) problems.push(`${fatal.length} EventSources failed for good (a browser would not reconnect): ${fatal.slice(0, 5).join('; ')}`);
    if (log.unexpected.length > 0) problems.push(`unexpected publish answers: ${log.unexpected.slice(0, 5).join('; ')}`);
    if (problems.length > 0) {
      // Everything needed to look closer: every node's log, what was published, what each client received.
      const dir = mkdtempSync(join(tmpdir(), `herald-chaos-${seed}-`));
      for (const generation of generations) writeFileSync(join(dir, `${generation.label}.log`), generation.proc.output());
      writeFileSync(join(dir, 'published.json'), JSON.stringify({ topics: [...log.topics], acked: [...log.acked], unconfirmed: [...log.unconfirmed], faults }));
      writeFileSync(join(dir, 'clients.json'), JSON.stringify({ specs, reports, tags: [...tags] }));
      problems.push(`node logs, publishes and client reports: ${dir}`);
      console.log(`# chaos: FAILED (seed ${seed}):\n${problems.map((p) => `#   ${p}`).join('\n')}`);
    }
    assert.equal(problems.length, 0, `seed ${seed}:\n${problems.join('\n')}`);
    assert.ok(log.acked.size > 0 && deliveries > 0, 'events were published and delivered');
  } finally {
    fleet?.kill();
    await balancer?.close();
    await Promise.all(
      slots.map(async (slot) => {
        if (slot.proc === undefined) return;
        slot.proc.child.kill('SIGCONT');
        slot.proc.child.kill('SIGKILL');
        await slot.proc.exited;
      }),
    );
    await redis?.stop();
  }
});
