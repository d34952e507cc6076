/**
 * Three `herald` processes on one Redis, under churn: subscribers drop and
 * resume against random nodes while publishers hit random nodes, and Redis
 * itself is killed and restarted. Afterwards every subscriber must hold
 * exactly the acknowledged events of its topics, in id order, none twice.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { compareEventIds, parseEventId } from '../src/log/event-id.js';
import { seededRandom, sleep, spawnHerald, SseTap, type HeraldProcess } from './support/helpers.js';
import { redisSkip, startRedis, type TestRedis } from './support/redis-server.js';

const TOPICS = ['news', 'orders/eu', 'orders/us', 'chat'];


const seed = Number(process.env.HERALD_TEST_SEED ?? Date.now() % 1_000_000);
const rand = seededRandom(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

interface Acknowledged {
  readonly id: string;
  readonly topic: string;
  readonly n: number;
}

interface Received {
  readonly id: string;
  readonly n: number;
}

/** A subscriber that roams: it drops its stream and resumes on another node with its last id. */
class RoamingSubscriber {
  readonly received: Received[] = [];
  resyncs = 0;
  reconnects = 0;
  private tap: SseTap | undefined;
  private lastId: string | undefined;
  private stopped = false;

  constructor(
    readonly topics: readonly string[],
    private readonly nodes: () => readonly HeraldProcess[],
  ) {}

  /** Subscribes from this id on, so events published before its first stream opens count too. */
  startAfter(id: string): void {
    this.lastId = id;
  }

  /** Whether it wants an event on this topic. */
  wants(topic: string): boolean {
    return this.topics.includes(topic);
  }

  async connect(): Promise<void> {
    const query = this.topics.map((topic) => `topic=${encodeURIComponent(topic)}`).join('&');
    const headers: Record<string, string> = this.lastId === undefined ? {} : { 'Last-Event-ID': this.lastId };
    const tap = await SseTap.open(pick(this.nodes()).url, `/events?${query}`, headers);
    this.tap = tap;
    await tap.until(() => tap.comments.includes('connected') || tap.ended, 'the stream to open');
  }

  /** Moves what the current stream received into `received`. */
  private harvest(): void {
    const tap = this.tap;
    if (tap === undefined) return;
    for (const event of tap.events.splice(0)) {
      if (event.event === 'herald-resync') {
        this.resyncs++;
        continue;
      }
      this.received.push({ id: event.id!, n: JSON.parse(event.data).n });
      this.lastId = event.id;
    }
  }

  /** Drops the stream and resumes on a random node. */
  async roam(): Promise<void> {
    this.harvest();
    this.tap?.close();
    this.harvest();
    this.reconnects++;
    await this.connect();
  }

  /** Reconnects whenever a node ended the stream (it could not serve the resume, say). */
  async keepAlive(): Promise<void> {
    while (!this.stopped) {
      if (this.tap?.ended === true) {
        await sleep(100);
        if (!this.stopped) await this.roam().catch(() => undefined);
      }
      await sleep(50);
    }
  }

  count(): number {
    return this.received.length + (this.tap?.events.length ?? 0);
  }

  sawSentinel(): boolean {
    const isSentinel = (n: number): boolean => n === SENTINEL;
    return this.received.some((event) => isSentinel(event.n)) || (this.tap?.events.some((event) => event.data.includes(`"n":${SENTINEL}`)) ?? false);
  }

  dropSentinels(): void {
    const kept = this.received.filter((event) => event.n !== SENTINEL);
    this.received.splice(0, this.received.length, ...kept);
  }

  finish(): void {
    this.stopped = true;
    this.harvest();
    this.tap?.close();
  }
}

interface PublishLog {
  readonly acknowledged: Acknowledged[];
  /** Numbers of publishes that were not acknowledged (refused, or the answer was lost). */
  readonly unconfirmed: Set<number>;
  readonly statuses: Map<number, number>;
}

let redis: TestRedis;
let nodes: HeraldProcess[] = [];
let counter = 0;

before(async () => {
  if (redisSkip === false) redis = await startRedis();
});
after(async () => {
  if (redisSkip !== false) return;
  for (const node of nodes) node.child.kill('SIGKILL');
  await redis.stop();
});

async function startNodes(prefix: string): Promise<HeraldProcess[]> {
  return Promise.all([0, 1, 2].map(() => spawnHerald(['--redis', redis.url, '--redis-prefix', prefix, '--retry', '200ms'])));
}

async function stopNodes(running: readonly HeraldProcess[]): Promise<void> {
  await Promise.all(running.map(async (node) => {
    node.child.kill('SIGTERM');
    assert.equal(await node.exited, 0, 'every node stops cleanly');
  }));
}

/** Publishes `count` events (some as batches) to random nodes, or fewer if `stop()` says so; records what was acknowledged. */
async function publisher(running: readonly HeraldProcess[], count: number, log: PublishLog, stop = (): boolean => false): Promise<void> {
  for (let sent = 0; sent < count && !stop(); ) {
    const size = rand() < 0.2 ? 3 : 1;
    const events = Array.from({ length: size }, () => ({ topic: pick(TOPICS), n: counter++ }));
    sent += size;
    const body = events.map(({ topic, n }) => ({ topic, data: { n } }));
    try {
      const response = await fetch(`${pick(running).url}/trigger`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(size === 1 ? body[0] : body),
      });
      const answer = (await response.json()) as any;
      log.statuses.set(response.status, (log.statuses.get(response.status) ?? 0) + 1);
      if (response.status === 202) {
        const ids: string[] = size === 1 ? [answer.id] : answer.map((p: { id: string }) => p.id);
        events.forEach((event, i) => log.acknowledged.push({ ...event, id: ids[i]! }));
      } else {
        assert.equal(response.status, 503, `a refused publish is a 503, got ${response.status} ${JSON.stringify(answer)}`);
        assert.equal(answer.error.code, 'HERALD_ERR_STORE_UNAVAILABLE');
        for (const event of events) log.unconfirmed.add(event.n);
      }
    } catch {
      for (const event of events) log.unconfirmed.add(event.n);
    }
    await sleep(rand() * 6);
  }
}

/** Polls a node's `/health` until it answers `status` (bounded: 15 s); nodes recover by themselves. */
async function healthBecomes(node: HeraldProcess, status: number): Promise<void> {
  let last = '';
  for (let attempt = 0; attempt < 150; attempt++) {
    const response = await fetch(`${node.url}/health`);
    last = await response.text();
    if (response.status === status) return;
    await sleep(100);
  }
  throw new Error(`${node.url}/health did not become ${status}: ${last}\n${node.output()}`);
}

function expectedFor(subscriber: RoamingSubscriber, log: PublishLog): Acknowledged[] {
  return log.acknowledged
    .filter((event) => subscriber.wants(event.topic))
    .sort((a, b) => compareEventIds(parseEventId(a.id)!, parseEventId(b.id)!));
}

/** A sentinel's `n`: published last on every topic, it tells a subscriber that nothing earlier is still on its way. */
const SENTINEL = -1;

/**
 * Publishes a sentinel on every topic once the publishers are done, waits (bounded) until every subscriber holds
 * one, so anything published before it (a late duplicate too) has arrived, then checks the events exactly.
 */
async function verify(subscribers: readonly RoamingSubscriber[], log: PublishLog): Promise<void> {
  for (const topic of TOPICS) {
    const answer = await fetch(`${nodes[0]!.url}/trigger`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ topic, data: { n: SENTINEL } }),
    });
    assert.equal(answer.status, 202, `the sentinel on ${topic} is acknowledged`);
  }
  for (let attempt = 0; attempt < 300 && !subscribers.every((s) => s.sawSentinel()); attempt++) await sleep(100);
  for (const subscriber of subscribers) subscriber.finish();
  for (const [index, subscriber] of subscribers.entries()) {
    assert.ok(subscriber.sawSentinel(), `subscriber ${index} (${subscriber.topics.join(', ')}; seed ${seed}) got the sentinel`);
    subscriber.dropSentinels();
  }
  for (const [index, subscriber] of subscribers.entries()) {
    const label = `subscriber ${index} (${subscriber.topics.join(', ')}; seed ${seed})`;
    const ids = subscriber.received.map((event) => event.id);
    assert.equal(new Set(ids).size, ids.length, `${label}: no event twice`);
    for (let i = 1; i < ids.length; i++) {
      assert.ok(compareEventIds(parseEventId(ids[i - 1]!)!, parseEventId(ids[i]!)!) < 0, `${label}: ids in order at ${i}`);
    }
    // Events stored but not confirmed (Redis died before answering) may arrive; nothing else may.
    const delivered = subscriber.received.filter((event) => !log.unconfirmed.has(event.n));
    const expected = expectedFor(subscriber, log);
    assert.deepEqual(delivered.map((e) => [e.id, e.n]), expected.map((e) => [e.id, e.n]), `${label}: exactly the acknowledged events`);
    assert.equal(subscriber.resyncs, 0, `${label}: never told that events were lost`);
  }
}

/** Subscribers on one or two random topics, all starting after one anchor event. */
async function makeSubscribers(count: number): Promise<RoamingSubscriber[]> {
  const anchor = await fetch(`${nodes[0]!.url}/trigger`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ topic: 'anchor', data: null }),
  });
  const { id } = (await anchor.json()) as { id: string };
  const subscribers = Array.from({ length: count }, (_, i) => {
    const topics = i % 3 === 0 ? [pick(TOPICS), pick(TOPICS)] : [pick(TOPICS)];
    const subscriber = new RoamingSubscriber([...new Set(topics)], () => nodes);
    subscriber.startAfter(id);
    return subscriber;
  });
  await Promise.all(subscribers.map((s) => s.connect()));
  return subscribers;
}

async function churn(subscribers: readonly RoamingSubscriber[], rounds: number): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    await sleep(10 + rand() * 40);
    await pick(subscribers).roam();
  }
}

test('three nodes on one Redis: roaming subscribers get exactly the acknowledged events of their topics, in order', { skip: redisSkip }, async () => {
  nodes = await startNodes('cluster-churn');
  const subscribers = await makeSubscribers(12);
  const keepAlive = subscribers.map((s) => s.keepAlive());
  const log: PublishLog = { acknowledged: [], unconfirmed: new Set(), statuses: new Map() };

  await Promise.all([publisher(nodes, 200, log), publisher(nodes, 200, log), publisher(nodes, 200, log), churn(subscribers, 60)]);
  await verify(subscribers, log);
  await Promise.all(keepAlive);

  assert.deepEqual([...log.statuses.keys()], [202], 'with Redis up, every publish is acknowledged');
  assert.ok(subscribers.reduce((sum, s) => sum + s.reconnects, 0) >= 60, 'subscribers really roamed');
  await stopNodes(nodes);
  nodes = [];
});

test('Redis killed and restarted mid-run: refused publishes get 503, nothing acknowledged is lost, every subscriber converges', { skip: redisSkip }, async () => {
  nodes = await startNodes('cluster-outage');
  const subscribers = await makeSubscribers(9);
  const keepAlive = subscribers.map((s) => s.keepAlive());
  const log: PublishLog = { acknowledged: [], unconfirmed: new Set(), statuses: new Map() };

  let done = false;
  let acknowledgedBeforeRecovery = 0;
  const outage = (async () => {
    await sleep(300);
    await redis.kill('SIGKILL');
    await sleep(1200);
    await redis.restart();
    for (const node of nodes) await healthBecomes(node, 200);
    acknowledgedBeforeRecovery = log.acknowledged.length;
    await sleep(500);
    done = true;
  })();
  const stop = (): boolean => done;
  await Promise.all([publisher(nodes, 5000, log, stop), publisher(nodes, 5000, log, stop), churn(subscribers, 30), outage]);
  await verify(subscribers, log);
  await Promise.all(keepAlive);

  assert.ok((log.statuses.get(503) ?? 0) > 0, `publishes during the outage were refused (statuses: ${JSON.stringify([...log.statuses])})`);
  assert.ok(log.acknowledged.length > acknowledgedBeforeRecovery, 'publishes are acknowledged again once Redis is back');
  await stopNodes(nodes);
  nodes = [];
});
