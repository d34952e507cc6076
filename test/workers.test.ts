/**
 * `--workers n`: n processes share the port and act as one hub, with or
 * without Redis; a worker that dies is replaced and its clients resume.
 */

import assert from 'node:assert/strict';
import { get } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { compareEventIds, parseEventId } from '../src/log/event-id.js';
import { pollUntil, spawnHerald, SseTap, stopHerald, trigger, type HeraldProcess } from './support/helpers.js';
import { redisSkip, startRedis } from './support/redis-server.js';

const dir = mkdtempSync(join(tmpdir(), 'herald-workers-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const ascending = (ids: readonly string[]): boolean =>
  ids.every((id, i) => i === 0 || compareEventIds(parseEventId(ids[i - 1]!)!, parseEventId(id)!) < 0);

/** `/health` over a new connection each time, so the primary hands it to the next worker; bounded: 5 s. */
function healthOnFreshConnection(url: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = get(`${url}/health`, { agent: false, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s: the connection hangs')));
    req.on('error', reject);
  });
}

async function workerPids(url: string, probes = 8): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < probes; i++) pids.add((await healthOnFreshConnection(url)).body.pid);
  return pids;
}

async function stop(node: HeraldProcess): Promise<void> {
  assert.equal(await stopHerald(node), 0, `herald exits 0 on SIGTERM: ${node.output()}`);
}

/** Subscribers spread over the workers (one new connection each), all publishing through fresh connections. */
async function fanOutAcrossWorkers(node: HeraldProcess): Promise<void> {
  const taps = await Promise.all(Array.from({ length: 6 }, () => SseTap.open(node.url, '/events?topic=w/*')));
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    const result = await trigger(node.url, { topic: `w/${i % 3}`, data: i });
    assert.equal(result.status, 202);
    ids.push(result.body.id);
  }
  assert.ok(ascending(ids), 'one sequence of ids across workers');
  // A sentinel after them: what a subscriber holds when it arrives is all it got of the twenty.
  const sentinel = await trigger(node.url, { topic: 'w/end', data: 'sentinel' });
  assert.equal(sentinel.status, 202);
  for (const tap of taps) {
    const received = await tap.untilId(sentinel.body.id, 'the sentinel');
    assert.deepEqual(received.map((e) => e.id), ids, 'every subscriber, on every worker, gets every event once, in order');
    tap.close();
  }
  const resumed = await Promise.all(Array.from({ length: 4 }, () => SseTap.open(node.url, '/events?topic=w/*', { 'Last-Event-ID': ids[4]! })));
  for (const tap of resumed) {
    const received = await tap.untilId(sentinel.body.id, 'the sentinel, replayed last');
    assert.deepEqual(received.map((e) => e.id), ids.slice(5), 'resume works on whichever worker takes the connection');
    tap.close();
  }
}

test('--workers 2 without Redis: two processes serve the port as one hub', async () => {
  const node = await spawnHerald(['--workers', '2']);
  try {
    assert.match(node.output(), /with 2 workers/);
    const pids = await workerPids(node.url);
    assert.equal(pids.size, 2, `two worker processes answer: ${[...pids].join(', ')}`);
    assert.ok(!pids.has(node.child.pid!), 'the primary only supervises');
    await fanOutAcrossWorkers(node);
  } finally {
    await stop(node);
  }
});

test('a worker that dies is replaced; its subscribers resume on a live worker without losing events', async () => {
  const node = await spawnHerald(['--workers', '2', '--retry', '100ms']);
  try {
    const pids = [...(await workerPids(node.url))];
    assert.equal(pids.length, 2);
    const taps = await Promise.all(Array.from({ length: 4 }, () => SseTap.open(node.url, '/events')));
    const first = (await trigger(node.url, { data: 'first' })).body.id;
    for (const tap of taps) await tap.waitForEvents(1);

    process.kill(pids[0]!, 'SIGKILL');
    // The primary says when it saw the worker go.
    await node.untilOutput(`worker ${pids[0]} exited (SIGKILL); starting another`);
    // Connections made while the worker is replaced are answered, or reset so the client retries; none hangs.
    const racing = await Promise.allSettled(Array.from({ length: 10 }, () => healthOnFreshConnection(node.url)));
    for (const outcome of racing) {
      if (outcome.status === 'rejected') assert.doesNotMatch(String(outcome.reason), /hangs/, 'a connection in transit is never left hanging');
    }
    // Streams on the dead worker end; they resume (as EventSource would) from their last id.
    const missed: string[] = [];
    for (let i = 0; i < 5; i++) {
      // A pooled connection to the dead worker fails; the publisher retries on a new one.
      const result = await trigger(node.url, { data: i }).catch(() => trigger(node.url, { data: i }));
      assert.equal(result.status, 202);
      missed.push(result.body.id);
    }
    // A stream on the live worker gets these events; one on the dead worker has ended: wait until each is one or the other.
    const all = [first, ...missed];
    for (const tap of taps) await tap.until(() => tap.ended || tap.events.length >= all.length, 'the stream to end or to get every event');
    const ended = taps.filter((tap) => tap.ended);
    assert.ok(ended.length > 0, 'streams of the killed worker ended');
    for (const tap of taps.filter((t) => !t.ended)) assert.deepEqual(tap.events.map((e) => e.id), all, 'a stream on the live worker misses nothing');
    for (const tap of ended) assert.deepEqual(tap.events.map((e) => e.id), [first], 'a stream of the dead worker got what came before');
    // Each ended stream resumes (on whichever worker takes it) from the last id it had; a sentinel ends what it is owed.
    const sentinel = await trigger(node.url, { data: 'sentinel' }).catch(() => trigger(node.url, { data: 'sentinel' }));
    assert.equal(sentinel.status, 202);
    for (let i = 0; i < ended.length; i++) {
      const resumed = await SseTap.open(node.url, '/events', { 'Last-Event-ID': first });
      const received = await resumed.untilId(sentinel.body.id, 'the sentinel, replayed last');
      assert.deepEqual(received.map((e) => e.id), missed, 'everything acknowledged after the last id, once');
      resumed.close();
    }
    // A replacement worker comes up. Nothing announces it: ask /health on fresh connections until two workers answer.
    await pollUntil(
      () => workerPids(node.url, 4),
      (now) => now.size === 2 && !now.has(pids[0]!),
      'a new worker to replace the dead one',
      { everyMs: 200, show: (now) => `workers ${[...now].join(', ')}; output: ${node.output()}` },
    );
    for (const tap of taps) tap.close();
  } finally {
    await stop(node);
  }
});

test('--workers 2 with --store: history survives a restart of the whole cluster', async () => {
  const store = join(dir, 'workers.db');
  const node = await spawnHerald(['--workers', '2', '--store', store]);
  const ids: string[] = [];
  try {
    for (let i = 0; i < 10; i++) ids.push((await trigger(node.url, { data: i })).body.id);
  } finally {
    await stop(node);
  }
  const again = await spawnHerald(['--workers', '2', '--store', store]);
  try {
    const tap = await SseTap.open(again.url, '/events', { 'Last-Event-ID': ids[2]! });
    await tap.waitForEvents(7);
    assert.deepEqual(tap.events.map((e) => e.id), ids.slice(3));
    const next = (await trigger(again.url, { data: 'next' })).body.id;
    assert.ok(ascending([...ids, next]), 'ids continue after the stored ones');
    tap.close();
  } finally {
    await stop(again);
  }
});

test('--workers 2 with --redis: each worker follows Redis', { skip: redisSkip }, async () => {
  const redis = await startRedis();
  const node = await spawnHerald(['--workers', '2', '--redis', redis.url]);
  try {
    assert.equal((await workerPids(node.url)).size, 2);
    await fanOutAcrossWorkers(node);
  } finally {
    await stop(node);
    await redis.stop();
  }
});

test('a worker that cannot start stops the whole cluster with the reason', async () => {
  const busy = await spawnHerald([]);
  try {
    const failed = await spawnHerald(['--workers', '2', '--port', String(busy.port)]).then(
      () => undefined,
      (error: Error) => error.message,
    );
    assert.match(failed ?? 'it started', /already in use/);
  } finally {
    await stop(busy);
  }
});
