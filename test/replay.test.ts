/**
 * Resume at the hub: history is read in bounded pages and written as fast as
 * the client takes it; live events that arrive meanwhile are held and
 * released without gap or duplicate; a resuming client that stops reading
 * is dropped at `--max-buffer` like any other.
 */

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { createHub, MemoryEventLog, type EventLog, type ReadPage, type ReadRequest } from '../src/index.js';
import { SseTap, Waiters } from './support/helpers.js';

/** A memory log that counts reads and the largest page it served. */
function countingLog(capacity: number): { log: EventLog; reads: () => number; largestPage: () => number } {
  const inner = new MemoryEventLog({ capacity });
  let reads = 0;
  let largest = 0;
  const log: EventLog = {
    shared: false,
    append: (drafts) => inner.append(drafts),
    async read(request: ReadRequest): Promise<ReadPage> {
      reads++;
      const page = await inner.read(request);
      if (page.status !== 'unknown') largest = Math.max(largest, page.events.length);
      return page;
    },
    tail: (listener) => inner.tail(listener),
    stats: () => inner.stats(),
    close: () => inner.close(),
  };
  return { log, reads: () => reads, largestPage: () => largest };
}

test('a resume over many pages, raced by live publishes, delivers every event once and in order', async () => {
  const { log, reads, largestPage } = countingLog(50_000);
  const herald = createHub({ heartbeat: 0 }, { eventLog: log });
  const { url } = await herald.listen(0, '127.0.0.1');
  try {
    const history: string[] = [];
    for (let batch = 0; batch < 30; batch++) {
      const published = await herald.publish(Array.from({ length: 200 }, (_, i) => ({ topic: `t/${i % 3}`, data: { batch, i } })));
      history.push(...published.map((p) => p.id));
    }
    // Resume from the very first event; live publishes start as soon as the stream is open.
    const tap = await SseTap.open(url, '/events?topic=t/*', { 'Last-Event-ID': history[0]! });
    const live: string[] = [];
    for (let i = 0; i < 40; i++) {
      const published = await herald.publish([{ topic: 't/1', data: { live: i } }, { topic: 'other', data: 'not for it' }]);
      live.push(published[0]!.id);
      // Let replay pages and these publishes interleave.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const expected = [...history.slice(1), ...live];
    // A sentinel after everything: a duplicate or a stray event would have come before it.
    const sentinel = await herald.publish({ topic: 't/end', data: 'sentinel' });
    const received = await tap.untilId(sentinel.id, 'the sentinel after the replay and the live events', 30_000);
    assert.equal(received.length, expected.length, 'no duplicate');
    assert.deepEqual(received.map((e) => e.id), expected, 'every event once, in order');
    assert.ok(reads() > 5, `the replay was read in pages (${reads()} reads)`);
    assert.ok(largestPage() <= 500, `no page held more than the page size (${largestPage()})`);
    tap.close();
  } finally {
    await herald.close();
  }
});

test('a resuming client that stops reading is held to --max-buffer: dropped once live events pile up, the others unharmed', async () => {
  const herald = createHub({ heartbeat: 0, maxBuffer: '256kb', history: 10_000 });
  const { url, port } = await herald.listen(0, '127.0.0.1');
  const waiters = new Waiters();
  herald.hub.observe({ disconnected: () => waiters.notify(), connected: () => waiters.notify() });
  let stalled: Socket | undefined;
  try {
    const filler = 'x'.repeat(16 * 1024);
    const first = await herald.publish({ data: 'first' });
    for (let i = 0; i < 50; i++) await herald.publish(Array.from({ length: 20 }, () => ({ data: filler })));
    // A client that asks for 16 MB of history (more than the kernel's socket buffers take) and never reads a byte of it.
    stalled = connect(port, '127.0.0.1');
    stalled.on('error', () => {});
    stalled.pause();
    await new Promise((resolve) => stalled!.once('connect', resolve));
    stalled.write(`GET /events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: ${first.id}\r\n\r\n`);
    await waiters.until(() => herald.counters().connections === 1, 'the stalled stream to open', 10_000, () => String(herald.counters().connections));
    const reader = await SseTap.open(url);
    await waiters.until(() => herald.counters().connections === 2, 'the reader to connect', 10_000, () => String(herald.counters().connections));
    // Live events pile up behind the stalled replay until they pass --max-buffer.
    let sent = 0;
    for (; sent < 400 && herald.counters().dropped === 0; sent++) {
      await herald.publish({ data: filler });
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(herald.counters().dropped, 1, 'the stalled client was dropped');
    assert.ok(sent * filler.length < 2 * 1024 * 1024, `dropped soon after --max-buffer was passed (${sent} live events)`);
    const sentinel = await herald.publish({ data: 'sentinel' });
    const received = await reader.untilId(sentinel.id, 'the sentinel after the live events');
    assert.equal(received.length, sent, 'the reader got every live event, once');
    reader.close();
  } finally {
    stalled?.destroy();
    await herald.close();
  }
});
