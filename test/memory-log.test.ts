import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareEventIds, parseEventId } from '../src/log/event-id.js';
import { MemoryEventLog } from '../src/log/memory-log.js';
import { readAfter } from './support/helpers.js';

const draft = (n: number) => ({ data: String(n) });

function ascending(ids: readonly string[]): boolean {
  return ids.every((id, i) => i === 0 || compareEventIds(parseEventId(ids[i - 1]!)!, parseEventId(id)!) < 0);
}

test('ids increase strictly, also when the clock stands still or steps back', async () => {
  const clock = [1000, 1000, 999, 1001, 500, 2000];
  let tick = 0;
  const log = new MemoryEventLog({ capacity: 10, now: () => clock[Math.min(tick++, clock.length - 1)]! });
  const stored = await log.append([draft(1), draft(2), draft(3), draft(4), draft(5)]);
  const ids = stored.map((event) => event.id);
  assert.ok(ascending(ids), `not ascending: ${ids.join(' ')}`);
  assert.equal(new Set(ids).size, ids.length);
});

test('the ring keeps the newest `capacity` events and resumes after any retained id', async () => {
  const log = new MemoryEventLog({ capacity: 3 });
  const ids: string[] = [];
  for (let i = 0; i < 7; i++) ids.push((await log.append([draft(i)]))[0]!.id);
  assert.deepEqual(log.stats(), { size: 3, oldestId: ids[4], newestId: ids[6] });

  const fromRetained = await readAfter(log, ids[4]!);
  assert.equal(fromRetained.status, 'complete');
  assert.deepEqual(fromRetained.events.map((e) => e.data), ['5', '6']);

  // The last trimmed id is the horizon: everything after it is still here.
  const fromHorizon = await readAfter(log, ids[3]!);
  assert.equal(fromHorizon.status, 'complete');
  assert.deepEqual(fromHorizon.events.map((e) => e.data), ['4', '5', '6']);

  const fromTrimmed = await readAfter(log, ids[1]!);
  assert.equal(fromTrimmed.status, 'expired');
  assert.deepEqual(fromTrimmed.events.map((e) => e.data), ['4', '5', '6']);

  const fromNewest = await readAfter(log, ids[6]!);
  assert.deepEqual(fromNewest, { status: 'complete', events: [] });
});

test('ids from before this log started are expired; malformed or future ids are unknown', async () => {
  const log = new MemoryEventLog({ capacity: 10, now: () => 5000 });
  await log.append([draft(1)]);
  assert.equal((await readAfter(log, '4999-7')).status, 'expired');
  assert.equal((await readAfter(log, 'not-an-id')).status, 'unknown');
  assert.equal((await readAfter(log, '9999-0')).status, 'unknown');
  assert.equal((await readAfter(log, '5000-0')).status, 'complete');
});

test('capacity 0 keeps nothing but still resumes from the newest id', async () => {
  const log = new MemoryEventLog({ capacity: 0 });
  const [a, b] = await log.append([draft(1), draft(2)]);
  assert.equal(log.stats().size, 0);
  assert.deepEqual(await readAfter(log, b!.id), { status: 'complete', events: [] });
  assert.equal((await readAfter(log, a!.id)).status, 'expired');
});

test('a batch reaches tail listeners once, in order', async () => {
  const log = new MemoryEventLog({ capacity: 10 });
  const seen: string[][] = [];
  const stop = log.tail((events) => seen.push(events.map((e) => e.data)));
  await log.append([draft(1), draft(2)]);
  stop();
  await log.append([draft(3)]);
  assert.deepEqual(seen, [['1', '2']]);
});

test('with maxAgeMs, old events leave the ring and resuming before them is expired', async () => {
  let now = 10_000;
  const log = new MemoryEventLog({ capacity: 10, maxAgeMs: 1000, now: () => now });
  const [old] = await log.append([draft(1)]);
  now += 800;
  const [recent] = await log.append([draft(2)]);
  now += 400;
  log.trimByAge();
  assert.deepEqual(log.stats(), { size: 1, oldestId: recent!.id, newestId: recent!.id });
  assert.deepEqual(await readAfter(log, old!.id), { status: 'complete', events: [recent] });
  assert.equal((await readAfter(log, '9999-0')).status, 'expired');
  await log.close();
});
