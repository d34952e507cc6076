/**
 * The durable store (--store): history in SQLite survives restarts and crashes.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { compareEventIds, parseEventId } from '../src/log/event-id.js';
import { SqliteEventLog } from '../src/log/sqlite-log.js';
import { CLI_PATH, freePort, readAfter, sleep, spawnHerald, SseTap, trigger } from './support/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'herald-store-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newStore = (): string => join(dir, `store-${files++}.db`);

const draft = (n: number, topic?: string) => ({ data: String(n), topic });
const ascending = (ids: readonly string[]): boolean =>
  ids.every((id, i) => i === 0 || compareEventIds(parseEventId(ids[i - 1]!)!, parseEventId(id)!) < 0);

test('the store keeps events across a reopen: same ids, same order, and new ids come after them', async () => {
  const path = newStore();
  const first = new SqliteEventLog({ path, capacity: 100, maxAgeMs: 0 });
  const stored = await first.append([draft(1, 'a'), draft(2), draft(3, 'a/b')]);
  await first.close();

  const second = new SqliteEventLog({ path, capacity: 100, maxAgeMs: 0 });
  const resumed = await readAfter(second, stored[0]!.id);
  assert.equal(resumed.status, 'complete');
  assert.deepEqual(resumed.events.map((e) => [e.id, e.data, e.topic]), [[stored[1]!.id, '2', undefined], [stored[2]!.id, '3', 'a/b']]);
  const later = await second.append([draft(4)]);
  assert.ok(ascending([...stored.map((e) => e.id), later[0]!.id]), 'ids keep increasing after the reopen');
  assert.deepEqual(second.stats(), { size: 4, oldestId: stored[0]!.id, newestId: later[0]!.id });
  await second.close();
});

test('appends of one event-loop turn are committed together, each keeping its own ids and order', async () => {
  const log = new SqliteEventLog({ path: newStore(), capacity: 100, maxAgeMs: 0 });
  const tails: string[][] = [];
  log.tail((events) => tails.push(events.map((e) => e.data)));
  const [a, b, c] = await Promise.all([log.append([draft(1)]), log.append([draft(2), draft(3)]), log.append([draft(4)])]);
  assert.deepEqual([a!, b!, c!].map((events) => events.map((e) => e.data)), [['1'], ['2', '3'], ['4']]);
  assert.ok(ascending([...a!, ...b!, ...c!].map((e) => e.id)), 'ids follow the order of the appends');
  assert.deepEqual(tails, [['1', '2', '3', '4']], 'one commit, one tail call, in order');
  await log.close();
  await assert.rejects(log.append([draft(5)]), /closed/, 'a closed store refuses appends rather than losing them');
});

test('the store trims by count, remembers what it trimmed, and says "expired" for older ids', async () => {
  const path = newStore();
  const log = new SqliteEventLog({ path, capacity: 3, maxAgeMs: 0 });
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push((await log.append([draft(i)]))[0]!.id);
  assert.equal(log.stats().size, 3);
  assert.deepEqual((await readAfter(log, ids[2]!)).events.map((e) => e.data), ['3', '4', '5']);
  assert.equal((await readAfter(log, ids[2]!)).status, 'complete');
  const old = await readAfter(log, ids[0]!);
  assert.equal(old.status, 'expired');
  assert.deepEqual(old.events.map((e) => e.data), ['3', '4', '5']);
  assert.equal((await readAfter(log, 'garbage')).status, 'unknown');
  await log.close();

  // The horizon is kept in the file too.
  const reopened = new SqliteEventLog({ path, capacity: 3, maxAgeMs: 0 });
  assert.equal((await readAfter(reopened, ids[0]!)).status, 'expired');
  assert.equal((await readAfter(reopened, ids[2]!)).status, 'complete');
  await reopened.close();
});

test('the store trims by age in the background', async () => {
  let now = 1_000_000;
  const log = new SqliteEventLog({ path: newStore(), capacity: 100, maxAgeMs: 1000, now: () => now, trimIntervalMs: 60_000 });
  const [old] = await log.append([draft(1)]);
  now += 600;
  await log.append([draft(2)]);
  now += 600;
  log.trim();
  assert.deepEqual((await readAfter(log, old!.id)).events.map((e) => e.data), ['2']);
  assert.equal(log.stats().size, 1);
  const early = `${1_000_000 - 1}-0`;
  assert.equal((await readAfter(log, early)).status, 'expired');
  await log.close();
});

test('a store that cannot be opened stops the start with a one-line error naming it', () => {
  const result = spawnSync(process.execPath, [CLI_PATH, '--store', '/nonexistent-dir/herald.db'], { encoding: 'utf8' });
  assert.equal(result.status, 2);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, /store "\/nonexistent-dir\/herald\.db"/);
});

test('SIGKILL mid-publish, restart on the same store: every acknowledged event arrives exactly once, in order', async () => {
  const store = newStore();
  const port = await freePort();
  const args = ['--port', String(port), '--store', store, '--history', '100000'];
  const first = await spawnHerald(args);
  const tap = await SseTap.open(first.url);
  const acked: { id: string; data: string }[] = [];
  // Kill at a point chosen at random, while publishes are in flight.
  const killAfter = 50 + Math.floor(Math.random() * 150);
  const publishing = (async () => {
    for (let i = 0; i < 400; i++) {
      try {
        const answer = await trigger(first.url, { data: { n: i } });
        if (answer.status === 202) acked.push({ id: answer.body.id, data: JSON.stringify({ n: i }) });
      } catch {
        return; // the server is gone
      }
      if (i === killAfter) first.child.kill('SIGKILL');
    }
  })();
  await publishing;
  assert.equal(await first.exited, 'SIGKILL');
  await tap.waitForEnd();
  const before = tap.events.length;
  assert.ok(acked.length >= killAfter, `publishes were acknowledged before the kill (${acked.length})`);

  const second = await spawnHerald(args);
  try {
    const lastSeen = tap.events.at(-1)?.id;
    const resumed = await SseTap.open(second.url, '/events', lastSeen === undefined ? {} : { 'Last-Event-ID': lastSeen });
    const { body } = await trigger(second.url, { data: 'after restart' });
    await resumed.until(() => resumed.events.some((e) => e.id === body.id), 'the first event after the restart');
    const received = [...tap.events.slice(0, before), ...resumed.events];
    assert.ok(!received.some((e) => e.event === 'herald-resync'), 'resuming from a stored id is complete, no resync');
    const ids = received.map((e) => e.id!);
    assert.equal(new Set(ids).size, ids.length, 'nothing twice');
    assert.ok(ascending(ids), 'in id order');
    const byId = new Map(received.map((e) => [e.id, e.data]));
    for (const event of acked) assert.equal(byId.get(event.id), event.data, `acknowledged ${event.id} arrived with its data`);
    assert.ok(compareEventIds(parseEventId(body.id)!, parseEventId(acked.at(-1)!.id)!) > 0, 'ids after the restart are newer');
    resumed.close();
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
  }
});

test('a clean restart on the same store: a client resumes with its old id without a gap', async () => {
  const store = newStore();
  const port = await freePort();
  const args = ['--port', String(port), '--store', store];
  const first = await spawnHerald(args);
  const a = await trigger(first.url, { data: 'a' });
  const b = await trigger(first.url, { data: 'b' });
  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0);
  await sleep(50);
  const second = await spawnHerald(args);
  try {
    const tap = await SseTap.open(second.url, `/events?lastEventId=${a.body.id}`);
    await tap.waitForEvents(1);
    assert.deepEqual(tap.events.map((e) => [e.id, e.data]), [[b.body.id, '"b"']]);
    tap.close();
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
  }
});
