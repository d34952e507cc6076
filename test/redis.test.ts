/**
 * The Redis event log (--redis): several hubs on one Redis form one hub.
 * Each test file starts its own redis-server on a free port.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { compareEventIds, parseEventId } from '../src/log/event-id.js';
import { MIN_STREAM_LENGTH, RedisEventLog } from '../src/log/redis-log.js';
import { createHub } from '../src/index.js';
import { sleep, SseTap, startHub, trigger, type RunningHub } from './support/helpers.js';
import { redisSkip, startRedis, type TestRedis } from './support/redis-server.js';

let redis: TestRedis;
let prefixes = 0;
/** A key namespace per test, so tests on the one server never see each other's events. */
const freshPrefix = (): string => `test${prefixes++}`;

before(async () => {
  if (redisSkip === false) redis = await startRedis();
});
after(async () => {
  if (redisSkip !== false) return;
  await redis.stop();
});

const ascending = (ids: readonly string[]): boolean =>
  ids.every((id, i) => i === 0 || compareEventIds(parseEventId(ids[i - 1]!)!, parseEventId(id)!) < 0);

async function nodes(count: number, options: Record<string, unknown> = {}): Promise<RunningHub[]> {
  const redisPrefix = freshPrefix();
  return Promise.all(Array.from({ length: count }, () => startHub({ redis: redis.url, redisPrefix, ...options })));
}

async function closeAll(hubs: readonly RunningHub[]): Promise<void> {
  await Promise.all(hubs.map((hub) => hub.close()));
}

/** Polls `/health` until it answers `status` (bounded: 15 s). */
async function healthBecomes(url: string, status: number): Promise<any> {
  let last: unknown;
  for (let attempt = 0; attempt < 150; attempt++) {
    const response = await fetch(`${url}/health`);
    last = await response.json();
    if (response.status === status) return last;
    await sleep(100);
  }
  throw new Error(`health did not become ${status}: ${JSON.stringify(last)}`);
}

test('an event published on one node reaches subscribers on every node, with ids increasing across topics', { skip: redisSkip }, async () => {
  const hubs = await nodes(3);
  try {
    const taps = await Promise.all(hubs.map((hub) => SseTap.open(hub.url, '/events?topic=a&topic=b/*')));
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const result = await trigger(hubs[i % 3]!.url, { topic: i % 2 === 0 ? 'a' : 'b/x', data: i });
      assert.equal(result.status, 202);
      ids.push(result.body.id);
    }
    const batch = await trigger(hubs[1]!.url, [{ topic: 'a', data: 'x' }, { topic: 'c', data: 'not mine' }, { topic: 'b/y', data: 'y' }]);
    assert.equal(batch.status, 202);
    ids.push(batch.body[0].id, batch.body[2].id);
    assert.ok(ascending(ids), `ids increase across nodes and topics: ${ids.join(' ')}`);
    for (const tap of taps) {
      await tap.waitForEvents(8);
      assert.deepEqual(tap.events.map((e) => e.id), ids, 'every node delivers the same events in the same order');
      assert.deepEqual(tap.events.map((e) => e.data), ['0', '1', '2', '3', '4', '5', '"x"', '"y"']);
      tap.close();
    }
  } finally {
    await closeAll(hubs);
  }
});

test('resume works against any node with an id from another, without gaps or duplicates while publishes race it', { skip: redisSkip }, async () => {
  const [a, b] = await nodes(2);
  try {
    const first: string[] = [];
    for (let i = 0; i < 20; i++) first.push((await trigger(a!.url, { topic: 'r', data: i })).body.id);
    // Publishes on A keep coming while the subscriber resumes on B.
    let publishing = true;
    const racing = (async () => {
      const sent: string[] = [];
      for (let i = 20; publishing && i < 400; i++) sent.push((await trigger(a!.url, { topic: 'r', data: i })).body.id);
      return sent;
    })();
    const tap = await SseTap.open(b!.url, '/events?topic=r', { 'Last-Event-ID': first[9]! });
    await sleep(150);
    publishing = false;
    const later = await racing;
    const expected = [...first.slice(10), ...later];
    // A sentinel published last: once it arrives, anything before it (a duplicate too) has arrived.
    const sentinel = (await trigger(a!.url, { topic: 'r', data: 'sentinel' })).body.id;
    await tap.untilId(sentinel);
    assert.deepEqual(tap.events.map((e) => e.id), [...expected, sentinel], 'exactly the events after the id, once each, in order');
    assert.ok(!tap.raw.includes('herald-resync'));
    tap.close();
  } finally {
    await closeAll([a!, b!]);
  }
});

test('history in Redis follows --history, and an id trimmed away gets the resync notice', { skip: redisSkip }, async () => {
  const history = MIN_STREAM_LENGTH;
  const [hub] = await nodes(1, { history });
  const probe = new Redis(redis.url);
  try {
    const ids: string[] = [];
    for (let round = 0; round < 12; round++) {
      const batch = Array.from({ length: 100 }, (_, i) => ({ topic: 't', data: round * 100 + i }));
      ids.push(...(await trigger(hub!.url, batch)).body.map((p: { id: string }) => p.id));
    }
    assert.equal(await probe.xlen(`{${hub!.herald.options.redisPrefix}}:events`), history, 'the stream is capped at --history');
    const tap = await SseTap.open(hub!.url, '/events', { 'Last-Event-ID': ids[0]! });
    await tap.waitForEvents(history + 1);
    assert.equal(tap.events[0]!.event, 'herald-resync');
    assert.deepEqual(JSON.parse(tap.events[0]!.data), { reason: 'expired', lastEventId: ids[0] });
    assert.equal(tap.events[1]!.id, ids[ids.length - history]);
    tap.close();
    const fresh = await SseTap.open(hub!.url, '/events', { 'Last-Event-ID': ids[ids.length - 2]! });
    await fresh.waitForEvents(1);
    assert.deepEqual(fresh.events.map((e) => e.id), [ids[ids.length - 1]], 'a retained id resumes without a notice');
    fresh.close();
  } finally {
    probe.disconnect();
    await hub!.close();
  }
});

test('a node whose events were trimmed before it read them ends its streams, and the clients learn what they missed', { skip: redisSkip }, async () => {
  // A holds a small history; one batch larger than it trims events before B can read them.
  const [a, b] = await nodes(2, { history: MIN_STREAM_LENGTH });
  try {
    const anchor = (await trigger(a!.url, { data: 'anchor' })).body.id;
    const tap = await SseTap.open(b!.url, '/events', { 'Last-Event-ID': anchor });
    const batch = Array.from({ length: MIN_STREAM_LENGTH + 50 }, (_, i) => ({ data: i }));
    assert.equal((await a!.herald.publish(batch)).length, MIN_STREAM_LENGTH + 50);
    await tap.waitForEnd();
    assert.equal(tap.events.length, 0, 'nothing is delivered out of a stream with a hole in it');
    const resumed = await SseTap.open(b!.url, '/events', { 'Last-Event-ID': anchor });
    await resumed.waitForEvents(MIN_STREAM_LENGTH + 1);
    assert.equal(resumed.events[0]!.event, 'herald-resync', 'the client is told events expired');
    assert.equal(resumed.events.at(-1)!.data, String(MIN_STREAM_LENGTH + 49));
    resumed.close();
  } finally {
    await closeAll([a!, b!]);
  }
});

test('Redis down: health 503 with the reason, publishes 503, streams stay open; back: everything recovers by itself', { skip: redisSkip }, async () => {
  const [a, b] = await nodes(2);
  try {
    const tap = await SseTap.open(b!.url, '/events?topic=o');
    await tap.until(() => tap.comments.includes('connected'), 'the stream to open');
    const before = (await trigger(a!.url, { topic: 'o', data: 'before' })).body.id;
    await tap.waitForEvents(1);
    await redis.kill('SIGKILL');

    const health = await healthBecomes(b!.url, 503);
    assert.equal(health.status, 'unavailable');
    assert.match(health.reason, /redis/i);
    const refused = await trigger(a!.url, { topic: 'o', data: 'during' });
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, 'HERALD_ERR_STORE_UNAVAILABLE');
    assert.equal(refused.headers.get('retry-after'), '1');
    await sleep(500);
    assert.equal(tap.ended, false, 'open streams stay open during the outage');

    await redis.restart();
    await healthBecomes(a!.url, 200);
    await healthBecomes(b!.url, 200);
    const afterId = (await trigger(a!.url, { topic: 'o', data: 'after' })).body.id;
    await tap.waitForEvents(2);
    assert.deepEqual(tap.events.map((e) => [e.id, e.data]), [[before, '"before"'], [afterId, '"after"']], 'the stream that stayed open gets new events');
    assert.equal(tap.ended, false);
    tap.close();

    const resumed = await SseTap.open(b!.url, '/events?topic=o', { 'Last-Event-ID': before });
    const sentinel = (await trigger(a!.url, { topic: 'o', data: 'sentinel' })).body.id;
    await resumed.untilId(sentinel);
    assert.deepEqual(resumed.events.map((e) => e.data), ['"after"', '"sentinel"'], 'the acknowledged event before the outage is still there; the refused one never was');
    resumed.close();
  } finally {
    await closeAll([a!, b!]);
  }
});

test('a node started while Redis was down: a client resuming there before its tail follows gets every event once, never a silent gap', { skip: redisSkip }, async () => {
  // Its own Redis: this test starts it stopped.
  const own = await startRedis();
  await own.kill();
  const redisPrefix = freshPrefix();
  let releaseTail!: () => void;
  const tailHeld = new Promise<void>((resolve) => (releaseTail = resolve));
  // The seam holds this node's tail before its first read of the stream, however long Redis takes to come back.
  const log = new RedisEventLog({ url: own.url, prefix: redisPrefix, capacity: 1000, maxAgeMs: 0, beforeFirstFollow: () => tailHeld });
  const late = createHub({ heartbeat: 0 }, { eventLog: log });
  const { url } = await late.listen(0, '127.0.0.1');
  let other: RunningHub | undefined;
  const taps: SseTap[] = [];
  try {
    await own.restart();
    other = await startHub({ redis: own.url, redisPrefix });
    // The late node's command connection is back once it stores a publish (bounded: 10 s).
    let anchor: string | undefined;
    for (let attempt = 0; anchor === undefined && attempt < 200; attempt++) {
      anchor = await late.publish({ topic: 'g', data: 'anchor' }).then((published) => published.id, () => undefined);
      if (anchor === undefined) await sleep(50);
    }
    assert.ok(anchor !== undefined, 'the late node publishes once Redis is back');

    // While the tail does not follow, a resume is refused cleanly rather than served with a hole in it.
    const refused = await SseTap.open(url, '/events?topic=g', { 'Last-Event-ID': anchor });
    taps.push(refused);
    await refused.waitForEnd();
    assert.equal(refused.events.length, 0, 'nothing delivered out of a refused replay');

    let tap = await SseTap.open(url, '/events?topic=g', { 'Last-Event-ID': anchor });
    taps.push(tap);
    // The hello is written in the same turn the hub asks the log for the replay.
    await tap.until(() => tap.comments.includes('connected'), 'the resumed stream to open');
    // Stored after the resume asked for history, before the late node's tail has read anything.
    const between = [(await other.herald.publish({ topic: 'g', data: 'one' })).id, (await other.herald.publish({ topic: 'g', data: 'two' })).id];
    releaseTail();
    const last = (await other.herald.publish({ topic: 'g', data: 'three' })).id;
    const expected = [...between, last];

    const received: string[] = [];
    for (let stream = 0; ; stream++) {
      const current = tap;
      await current.until(() => current.events.some((e) => e.id === last) || current.ended, 'the last event or the end of the stream');
      assert.ok(!current.events.some((e) => e.event === 'herald-resync'), 'every id is retained: no resync notice');
      received.push(...current.events.map((e) => e.id!));
      if (!current.ended || received.includes(last)) break;
      // A clean end (the log could not promise the replay yet): the client resumes, as EventSource would.
      assert.ok(stream < 5, 'the stream settles within a few reconnections');
      tap = await SseTap.open(url, '/events?topic=g', { 'Last-Event-ID': received.at(-1) ?? anchor });
      taps.push(tap);
    }
    assert.deepEqual(received, expected, 'every event after the anchor exactly once, in order');
  } finally {
    for (const tap of taps) tap.close();
    releaseTail();
    await other?.close();
    await late.close();
    await own.stop();
  }
});
