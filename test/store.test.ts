/**
 * The durable store (--store) as a process: history in SQLite survives
 * restarts and crashes. The log itself is tested with every other log in
 * `log-contract.test.ts`.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { compareEventIds, parseEventId } from '../src/log/event-id.js';
import { CLI_PATH, freePort, sleep, spawnHerald, SseTap, trigger } from './support/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'herald-store-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newStore = (): string => join(dir, `store-${files++}.db`);

const ascending = (ids: readonly string[]): boolean =>
  ids.every((id, i) => i === 0 || compareEventIds(parseEventId(ids[i - 1]!)!, parseEventId(id)!) < 0);

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
