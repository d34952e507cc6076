/**
 * GET /events: the subscribe half of the HTTP contract, against a real
 * server on port 0, with raw sockets where bytes matter, `eventsource-parser`
 * (through SseTap) and the `eventsource` npm client.
 */

import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { EventSource } from 'eventsource';
import { createHub, MemoryEventLog, type EventDraft, type EventLog, type ReadPage, type ReadRequest, type StoredEvent } from '../src/index.js';
import { compareIds, health, RawSocket, Recorder, SseTap, trigger, withHub } from './support/helpers.js';

// ---------------------------------------------------------------------------
// Local helpers

function assertStrictlyIncreasing(ids: readonly string[], what: string): void {
  for (let i = 1; i < ids.length; i++) {
    assert.ok(compareIds(ids[i - 1]!, ids[i]!) < 0, `${what}: id ${ids[i]} (#${i}) does not come after ${ids[i - 1]}`);
  }
}

async function expectJsonError(response: Response, status: number, code: string): Promise<any> {
  assert.equal(response.status, status);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json\b/);
  const body = (await response.json()) as any;
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message']);
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0, 'the error message is not empty');
  return body;
}

/** The events of a tap without the hub's comments, as [id, event, data]. */
function triples(tap: SseTap): [string | undefined, string | undefined, string][] {
  return tap.events.map((e) => [e.id, e.event, e.data]);
}

// ---------------------------------------------------------------------------
// Status, headers, first line

test('GET /events answers 200 with the exact stream headers', async () => {
  await withHub({}, async (hub) => {
    const tap = await SseTap.open(hub.url);
    try {
      assert.equal(tap.status, 200);
      assert.equal(tap.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(tap.headers['cache-control'], 'no-cache, no-transform');
      assert.equal(tap.headers['x-accel-buffering'], 'no');
      assert.equal(tap.headers['content-encoding'], undefined, 'a stream is never compressed');
    } finally {
      tap.close();
    }
  });
});

test('raw socket: headers and the first line (retry and a comment) arrive before any event is published', async () => {
  await withHub({ retry: 3000 }, async (hub) => {
    const raw = await RawSocket.send(hub.port, `GET /events HTTP/1.1\r\nHost: 127.0.0.1:${hub.port}\r\nAccept: text/event-stream\r\n\r\n`);
    try {
      // Nothing is published in this test: whatever arrives is flushed at once by the hub itself.
      await raw.until((text) => /\r\n\r\n[^]*\n:[^\n]*\n\n/.test(text), 'headers and the first body bytes', 5000);
      const [head = '', body = ''] = raw.received.split('\r\n\r\n', 2);
      const [statusLine, ...headerLines] = head.split('\r\n');
      assert.equal(statusLine, 'HTTP/1.1 200 OK');
      const headers = new Map(headerLines.map((line) => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()] as const;
      }));
      assert.equal(headers.get('content-type'), 'text/event-stream; charset=utf-8');
      assert.equal(headers.get('cache-control'), 'no-cache, no-transform');
      assert.equal(headers.get('x-accel-buffering'), 'no');
      // The body runs until the connection ends: no chunked encoding, no length, so the bytes are the SSE frames.
      assert.equal(headers.get('connection'), 'close');
      assert.equal(headers.has('transfer-encoding'), false);
      assert.equal(headers.has('content-length'), false);
      // First bytes: `retry: 3000` then a comment line, no event.
      const chunk = body;
      assert.equal(chunk, 'retry: 3000\n: connected\n\n', `the first lines are retry and a comment: ${JSON.stringify(chunk)}`);
      assert.doesNotMatch(chunk, /^(id|data|event):/m, 'no event before anything was published');
    } finally {
      raw.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Wire format

/** The bytes after the hub's greeting (retry line and comments): from the first `id:` line. */
function eventBytes(tap: SseTap): string {
  const at = tap.raw.indexOf('id: ');
  return at === -1 ? '' : tap.raw.slice(at);
}

test('exact wire bytes: id, event (omitted for message), JSON text as data, text split on CR, LF and CRLF', async () => {
  await withHub({}, async (hub) => {
    const tap = await SseTap.open(hub.url);
    try {
      const named = await trigger(hub.url, { event: 'greeting', data: { hello: 'world', n: [1, 2], s: 'a\nb' } });
      const plain = await trigger(hub.url, { data: 'just a string' });
      const explicitMessage = await trigger(hub.url, { event: 'message', data: 42 });
      const nullData = await trigger(hub.url, { data: null });
      const text = await trigger(hub.url, 'cr\rlf\ncrlf\r\nend', { contentType: 'text/plain', query: '?event=lines' });
      const spaced = await trigger(hub.url, '  leading spaces\n\ntrailing empty\n', { contentType: 'text/plain' });
      const empty = await trigger(hub.url, '', { contentType: 'text/plain' });
      for (const r of [named, plain, explicitMessage, nullData, text, spaced, empty]) assert.equal(r.status, 202);
      await tap.waitForEvents(7);
      const expected =
        `id: ${named.body.id}\nevent: greeting\ndata: {"hello":"world","n":[1,2],"s":"a\\nb"}\n\n` +
        `id: ${plain.body.id}\ndata: "just a string"\n\n` +
        `id: ${explicitMessage.body.id}\ndata: 42\n\n` +
        `id: ${nullData.body.id}\ndata: null\n\n` +
        `id: ${text.body.id}\nevent: lines\ndata: cr\ndata: lf\ndata: crlf\ndata: end\n\n` +
        `id: ${spaced.body.id}\ndata:   leading spaces\ndata: \ndata: trailing empty\ndata: \n\n` +
        `id: ${empty.body.id}\ndata: \n\n`;
      assert.equal(eventBytes(tap), expected);
      assert.ok(tap.raw.startsWith('retry: '), 'the stream starts with the retry line');
      // And a spec-compliant parser reads back what was published.
      assert.deepEqual(triples(tap), [
        [named.body.id, 'greeting', '{"hello":"world","n":[1,2],"s":"a\\nb"}'],
        [plain.body.id, undefined, '"just a string"'],
        [explicitMessage.body.id, undefined, '42'],
        [nullData.body.id, undefined, 'null'],
        [text.body.id, 'lines', 'cr\nlf\ncrlf\nend'],
        [spaced.body.id, undefined, '  leading spaces\n\ntrailing empty\n'],
        [empty.body.id, undefined, ''],
      ]);
    } finally {
      tap.close();
    }
  });
});

test('unicode data arrives as UTF-8, unchanged', async () => {
  await withHub({}, async (hub) => {
    const tap = await SseTap.open(hub.url);
    try {
      const value = 'héllo ✓ 😀 \u2028 \u0085';
      const json = await trigger(hub.url, { event: 'ünï', data: value });
      const text = await trigger(hub.url, value, { contentType: 'text/plain; charset=utf-8' });
      await tap.waitForEvents(2);
      assert.deepEqual(triples(tap), [
        [json.body.id, 'ünï', JSON.stringify(value)],
        [text.body.id, undefined, value],
      ]);
    } finally {
      tap.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Topics

test('topic selectors: none = everything, * = one segment, ** = one or more, several, overlapping once', async () => {
  await withHub({}, async (hub) => {
    const all = await SseTap.open(hub.url);
    const star = await SseTap.open(hub.url, '/events?topic=orders/*');
    const deep = await SseTap.open(hub.url, '/events?topic=orders/**');
    const several = await SseTap.open(hub.url, '/events?topic=news&topic=b/c');
    const overlap = await SseTap.open(hub.url, `/events?topic=${encodeURIComponent('orders/*')}&topic=orders/1&topic=orders/**`);
    const middle = await SseTap.open(hub.url, '/events?topic=*/1');
    const taps = [all, star, deep, several, overlap, middle];
    try {
      const topics = [undefined, 'orders/1', 'orders/1/items', 'news', 'orders', 'b/c', 'b', 'orders/2', 'users/1', 'orders/3'];
      const published = await trigger(
        hub.url,
        topics.map((topic, i) => (topic === undefined ? { event: 'e', data: i } : { event: 'e', topic, data: i })),
      );
      assert.equal(published.status, 202);
      const ids: string[] = published.body.map((p: { id: string }) => p.id);
      const expectFor = (wanted: number[]): string[] => wanted.map((i) => ids[i]!);
      const expectations: [SseTap, number[], string][] = [
        [all, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'no topic'],
        [star, [1, 7, 9], 'orders/*'],
        [deep, [1, 2, 7, 9], 'orders/**'],
        [several, [3, 5], 'news + b/c'],
        [overlap, [1, 2, 7, 9], 'orders/* + orders/1 + orders/**'],
        [middle, [1, 8], '*/1'],
      ];
      for (const [tap, wanted, what] of expectations) {
        const last = ids[wanted.at(-1)!]!;
        await tap.until(() => tap.events.some((e) => e.id === last), `${what} to get its last event`);
      }
      // Every tap got its last expected event; wait for any straggler (a duplicate would follow in order, i.e. already be here).
      const fence = await trigger(hub.url, { topic: 'fence', data: 'fence' });
      await all.until(() => all.events.some((e) => e.id === fence.body.id), 'the fence');
      for (const [tap, wanted, what] of expectations) {
        const got = tap.events.map((e) => e.id).filter((id) => id !== fence.body.id);
        assert.deepEqual(got, expectFor(wanted), `${what} receives exactly its events, once each, in order`);
      }
      assert.deepEqual(all.events.at(-1)?.data, '"fence"');
    } finally {
      for (const tap of taps) tap.close();
    }
  });
});

test('a topic-less event reaches only subscribers without selectors', async () => {
  await withHub({}, async (hub) => {
    const all = await SseTap.open(hub.url);
    const deep = await SseTap.open(hub.url, '/events?topic=**');
    try {
      const none = await trigger(hub.url, { data: 'no topic' });
      const some = await trigger(hub.url, { topic: 'x', data: 'topic x' });
      await all.waitForEvents(2);
      await deep.waitForEvents(1);
      assert.deepEqual(all.events.map((e) => e.id), [none.body.id, some.body.id]);
      assert.deepEqual(deep.events.map((e) => e.id), [some.body.id], '** matches every topic but not a topic-less event');
    } finally {
      all.close();
      deep.close();
    }
  });
});

test('an invalid selector is answered 400 HERALD_ERR_INVALID_SELECTOR, as JSON, and opens no stream', async () => {
  await withHub({}, async (hub) => {
    for (const selector of ['', 'orders//1', '/orders', 'orders/', 'orders/**/items', 'or*ders', 'a\nb', 'a\rb', 'a\0b']) {
      const response = await fetch(`${hub.url}/events?topic=${encodeURIComponent(selector)}`);
      await expectJsonError(response, 400, 'HERALD_ERR_INVALID_SELECTOR');
    }
    // A valid selector next to an invalid one still fails.
    await expectJsonError(await fetch(`${hub.url}/events?topic=ok&topic=no//pe`), 400, 'HERALD_ERR_INVALID_SELECTOR');
    assert.equal((await health(hub.url)).connections, 0);
  });
});

// ---------------------------------------------------------------------------
// Resume

async function publishTopics(url: string, topics: string[]): Promise<string[]> {
  const published = await trigger(url, topics.map((topic, i) => ({ event: 'e', topic, data: i })));
  assert.equal(published.status, 202);
  return published.body.map((p: { id: string }) => p.id);
}

test('resume with Last-Event-ID: the retained events after it that match the selectors, in order, then live ones', async () => {
  await withHub({}, async (hub) => {
    const ids = await publishTopics(hub.url, ['x/1', 'y/1', 'x/2', 'x/3', 'y/2']);
    const tap = await SseTap.open(hub.url, '/events?topic=x/*', { 'Last-Event-ID': ids[0]! });
    try {
      await tap.waitForEvents(2);
      const live = await trigger(hub.url, { event: 'e', topic: 'x/4', data: 'live' });
      await tap.waitForEvents(3);
      assert.deepEqual(tap.events.map((e) => e.id), [ids[2], ids[3], live.body.id]);
      assert.ok(tap.events.every((e) => e.event === 'e'), 'no herald-resync when the id is retained');
    } finally {
      tap.close();
    }
  });
});

test('resume with ?lastEventId= behaves like the header', async () => {
  await withHub({}, async (hub) => {
    const ids = await publishTopics(hub.url, ['x/1', 'y/1', 'x/2', 'x/3', 'y/2']);
    const tap = await SseTap.open(hub.url, `/events?lastEventId=${encodeURIComponent(ids[1]!)}`);
    try {
      await tap.waitForEvents(3);
      const live = await trigger(hub.url, { data: 'live' });
      await tap.waitForEvents(4);
      assert.deepEqual(tap.events.map((e) => e.id), [ids[2], ids[3], ids[4], live.body.id]);
    } finally {
      tap.close();
    }
  });
});

test('resume from the newest id: nothing replayed, no resync, then live', async () => {
  await withHub({}, async (hub) => {
    const ids = await publishTopics(hub.url, ['x/1', 'x/2']);
    const tap = await SseTap.open(hub.url, '/events', { 'Last-Event-ID': ids[1]! });
    try {
      const live = await trigger(hub.url, { data: 'live' });
      await tap.waitForEvents(1);
      assert.deepEqual(tap.events.map((e) => e.id), [live.body.id]);
    } finally {
      tap.close();
    }
  });
});

test('the Last-Event-ID header wins over ?lastEventId=', async () => {
  await withHub({}, async (hub) => {
    const ids = await publishTopics(hub.url, ['x/1', 'x/2', 'x/3', 'x/4', 'x/5']);
    const tap = await SseTap.open(hub.url, `/events?lastEventId=${encodeURIComponent(ids[0]!)}`, { 'Last-Event-ID': ids[2]! });
    try {
      await tap.waitForEvents(2);
      const live = await trigger(hub.url, { data: 'live' });
      await tap.waitForEvents(3);
      assert.deepEqual(tap.events.map((e) => e.id), [ids[3], ids[4], live.body.id]);
    } finally {
      tap.close();
    }
  });
});

test('resume from an id older than the history: herald-resync {"reason":"expired"} first, then what is retained', async () => {
  await withHub({ history: 5 }, async (hub) => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await trigger(hub.url, { event: 'n', data: i })).body.id);
    assert.equal((await health(hub.url)).history.size, 5);
    const tap = await SseTap.open(hub.url, '/events', { 'Last-Event-ID': ids[2]! });
    try {
      await tap.waitForEvents(6);
      const live = await trigger(hub.url, { event: 'n', data: 'live' });
      await tap.waitForEvents(7);
      const [resync, ...rest] = tap.events;
      assert.equal(resync?.event, 'herald-resync');
      assert.equal(resync?.id, undefined, 'the notice carries no id, so the client keeps its last id');
      const notice = JSON.parse(resync!.data);
      assert.equal(notice.reason, 'expired');
      assert.deepEqual(rest.map((e) => e.id), [...ids.slice(15), live.body.id]);
      assert.deepEqual(rest.map((e) => e.data), ['15', '16', '17', '18', '19', '"live"']);
    } finally {
      tap.close();
    }
  });
});

for (const [what, lastId] of [
  ['an unparseable id', 'not-an-id'],
  ['an id from the future', `${Date.now() + 10 ** 9}-0`],
  ['an id of another shape', '1-2-3'],
] as const) {
  test(`resume from ${what}: herald-resync {"reason":"unknown"} first, then live events only`, async () => {
    await withHub({}, async (hub) => {
      const before = await publishTopics(hub.url, ['x/1', 'x/2']);
      const tap = await SseTap.open(hub.url, '/events', { 'Last-Event-ID': lastId });
      try {
        await tap.waitForEvents(1);
        const live = await trigger(hub.url, { topic: 'x/3', data: 'live' });
        await tap.waitForEvents(2);
        const [resync, ...rest] = tap.events;
        assert.equal(resync?.event, 'herald-resync');
        assert.equal(JSON.parse(resync!.data).reason, 'unknown');
        assert.deepEqual(rest.map((e) => e.id), [live.body.id]);
        assert.ok(!rest.some((e) => before.includes(e.id!)), 'nothing from history is replayed');
      } finally {
        tap.close();
      }
    });
  });
}

test('race: resuming again and again while publishers keep publishing gives every id exactly once, in order', async () => {
  await withHub({}, async (hub) => {
    const published: string[] = [];
    let publishersDone = false;
    // The first subscription is open before anything is published.
    let tap = await SseTap.open(hub.url);
    const received: string[] = [];
    let reconnectsWhilePublishing = 0;
    const publisher = async (worker: number): Promise<void> => {
      for (let i = 0; i < 100; i++) {
        const r = await trigger(hub.url, i % 10 === 9
          ? [{ event: 'b', data: [worker, i, 0] }, { event: 'b', data: [worker, i, 1] }]
          : { event: 'n', data: [worker, i] });
        assert.equal(r.status, 202);
        for (const p of Array.isArray(r.body) ? r.body : [r.body]) published.push(p.id);
      }
    };
    const publishing = Promise.all([publisher(0), publisher(1), publisher(2)]).finally(() => (publishersDone = true));
    try {
      for (let round = 0; round < 200 && !publishersDone; round++) {
        await tap.until(() => tap.events.length >= 8 || publishersDone, 'a few events or the end of publishing');
        tap.close();
        received.push(...tap.events.map((e) => e.id!));
        assert.ok(tap.events.every((e) => e.event !== 'herald-resync'), 'no resync: every id is retained');
        const last = received.at(-1);
        tap = await SseTap.open(hub.url, '/events', last === undefined ? {} : { 'Last-Event-ID': last });
        if (!publishersDone) reconnectsWhilePublishing++;
      }
      await publishing;
      const expected = [...published].sort(compareIds);
      const final = expected.at(-1)!;
      await tap.until(() => tap.events.some((e) => e.id === final) || received.includes(final), 'the last published event');
      received.push(...tap.events.map((e) => e.id!));
      assert.equal(expected.length, 3 * (90 + 10 * 2));
      assert.equal(new Set(received).size, received.length, 'no duplicate');
      assert.deepEqual(received, expected, 'exactly the published ids, in order');
      assert.ok(reconnectsWhilePublishing >= 3, 'the subscriber did reconnect while events were being published');
    } finally {
      tap.close();
      await publishing.catch(() => {});
    }
  });
});

/** A memory log whose reads for resume wait for a gate, so publishes can land between subscribe and replay. */
class GatedLog implements EventLog {
  readonly shared = false;
  private readonly inner = new MemoryEventLog({ capacity: 1000 });
  gate: Promise<void> | undefined;
  /** Every read asked of the log, as it starts. */
  readonly reads = new Recorder<ReadRequest>();

  append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent[]> {
    return this.inner.append(drafts);
  }

  async read(request: ReadRequest): Promise<ReadPage> {
    this.reads.push(request);
    if (this.gate !== undefined) await this.gate;
    return this.inner.read(request);
  }

  tail(listener: (events: readonly StoredEvent[]) => void): () => void {
    return this.inner.tail(listener);
  }

  stats(): ReturnType<EventLog['stats']> {
    return this.inner.stats();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

test('race: events published while the history read is under way are delivered once (replay and live overlap)', async () => {
  const log = new GatedLog();
  const herald = createHub({ heartbeat: 0 }, { eventLog: log });
  const { url } = await herald.listen(0, '127.0.0.1');
  let tap: SseTap | undefined;
  try {
    const before = (await herald.publish([{ data: 'a' }, { topic: 'x/1', data: 'b' }, { data: 'c' }])).map((p) => p.id);
    let release!: () => void;
    log.gate = new Promise<void>((resolve) => (release = resolve));
    tap = await SseTap.open(url, '/events', { 'Last-Event-ID': before[0]! });
    await log.reads.untilCount(1, 'the resume read to start');
    // Published after the subscription exists but before the log answers: they are both live and in the read.
    const during = (await herald.publish([{ data: 'd' }, { topic: 'x/2', data: 'e' }])).map((p) => p.id);
    release();
    const t = tap;
    await t.waitForEvents(4);
    const live = await herald.publish({ data: 'f' });
    await t.until(() => t.events.some((e) => e.id === live.id), 'the live event');
    assert.deepEqual(t.events.map((e) => e.id), [before[1], before[2], ...during, live.id], 'every event once, in order');
  } finally {
    tap?.close();
    await herald.close();
  }
});

// ---------------------------------------------------------------------------
// Ids

test('ids are unique and strictly increasing in delivery order, over many concurrent publishes and batches', async () => {
  await withHub({}, async (hub) => {
    const tap = await SseTap.open(hub.url);
    try {
      const published: string[] = [];
      const worker = async (w: number): Promise<void> => {
        for (let i = 0; i < 15; i++) {
          if (i % 3 === 0) {
            const r = await trigger(hub.url, [1, 2, 3, 4, 5].map((k) => ({ data: [w, i, k] })));
            assert.equal(r.status, 202);
            const batch: string[] = r.body.map((p: { id: string }) => p.id);
            assertStrictlyIncreasing(batch, 'ids of one batch');
            published.push(...batch);
          } else {
            const r = await trigger(hub.url, { data: [w, i] });
            assert.equal(r.status, 202);
            published.push(r.body.id);
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
      // Publishes from code share the same sequence.
      for (let i = 0; i < 20; i++) published.push((await hub.herald.publish({ data: i })).id);
      assert.equal(published.length, 8 * (5 * 5 + 10) + 20);
      assert.equal(new Set(published).size, published.length, 'every id is unique');
      await tap.waitForEvents(published.length);
      const delivered = tap.events.map((e) => e.id!);
      assertStrictlyIncreasing(delivered, 'delivery order');
      assert.deepEqual(new Set(delivered), new Set(published));
      for (const id of published) assert.ok(id.length <= 40 && !/[\r\n\0]/.test(id), 'a short opaque string');
    } finally {
      tap.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Heartbeat

test('heartbeat: an idle stream gets comment lines, and the eventsource client sees no event from them', async () => {
  await withHub({ heartbeat: 100 }, async (hub) => {
    const tap = await SseTap.open(hub.url);
    const es = new EventSource(`${hub.url}/events`);
    const seen = new Recorder<string>();
    es.onmessage = (event) => seen.push(`message:${event.data}`);
    es.addEventListener('heartbeat', () => seen.push('heartbeat-event'));
    try {
      await new Promise<void>((resolve, reject) => {
        es.onopen = () => resolve();
        es.onerror = () => reject(new Error('EventSource failed to open'));
      });
      const before = tap.comments.filter((c) => c.trim() === 'heartbeat').length;
      await tap.until(() => tap.comments.filter((c) => c.trim() === 'heartbeat').length >= before + 3, 'three heartbeats');
      assert.equal(tap.events.length, 0, 'heartbeats are not events');
      assert.match(tap.raw, /\n: heartbeat\n/, 'a heartbeat is the comment line ": heartbeat"');
      assert.doesNotMatch(tap.raw, /^(data|id|event):/m);
      // The EventSource has been idle as long: it saw nothing; a real event then arrives alone.
      assert.deepEqual(seen.items, []);
      const published = await trigger(hub.url, { data: 'real' });
      await seen.untilCount(1, 'the real event');
      assert.deepEqual(seen.items, ['message:"real"']);
      assert.equal(es.readyState, EventSource.OPEN);
      await tap.until(() => tap.events.length >= 1, 'the tap to see the event');
      assert.equal(tap.events[0]?.id, published.body.id);
    } finally {
      es.close();
      tap.close();
    }
  });
});

test('heartbeat 0 turns heartbeats off: an idle stream stays silent after the greeting', async () => {
  await withHub({ heartbeat: 0 }, async (hub) => {
    // A hub beside it with heartbeats every 50 ms is the clock: while it sends three, the silent hub sends none.
    await withHub({ heartbeat: 50 }, async (clock) => {
      const tap = await SseTap.open(hub.url);
      const ticking = await SseTap.open(clock.url);
      try {
        await tap.until(() => tap.raw.includes('\n\n'), 'the greeting');
        const heartbeats = (t: SseTap): number => t.comments.filter((c) => c.trim() === 'heartbeat').length;
        await ticking.until(() => heartbeats(ticking) >= 3, 'three heartbeats on the hub with heartbeat 50');
        // Then an event: anything the silent hub had written meanwhile arrived before it.
        const published = await trigger(hub.url, { data: 'after the wait' });
        await tap.untilId(published.body.id, 'the event after the wait');
        assert.equal(heartbeats(tap), 0, 'heartbeat 0 turns heartbeats off');
        assert.equal(tap.raw.slice(0, tap.raw.indexOf('id: ')), tap.raw.slice(0, tap.raw.indexOf('\n\n') + 2), 'nothing between the greeting and the event');
      } finally {
        tap.close();
        ticking.close();
      }
    });
  });
});

// ---------------------------------------------------------------------------
// Max connections

test('max-connections: the 4th stream gets 503 with Retry-After and a JSON error; the 3 others keep receiving', async () => {
  await withHub({ maxConnections: 3 }, async (hub) => {
    const taps = [await SseTap.open(hub.url), await SseTap.open(hub.url), await SseTap.open(hub.url)];
    let extra: SseTap | undefined;
    try {
      for (const tap of taps) assert.equal(tap.status, 200);
      const refused = await fetch(`${hub.url}/events`);
      const retryAfter = refused.headers.get('retry-after');
      assert.ok(retryAfter !== null && /^\d+$/.test(retryAfter) && Number(retryAfter) >= 1, `Retry-After is a number of seconds: ${retryAfter}`);
      await expectJsonError(refused, 503, 'HERALD_ERR_TOO_MANY_CONNECTIONS');
      assert.equal((await health(hub.url)).connections, 3, 'the refused stream is not counted');

      const event = await trigger(hub.url, { data: 'for the three' });
      for (const tap of taps) {
        await tap.waitForEvents(1);
        assert.equal(tap.events[0]?.id, event.body.id);
        assert.equal(tap.ended, false);
      }

      taps[0]!.close();
      await hub.watch.until(() => hub.watch.closedFor('client-closed') === 1, 'the closed stream to be forgotten');
      assert.equal((await health(hub.url)).connections, 2, '/health counts the closed stream out');
      extra = await SseTap.open(hub.url);
      assert.equal(extra.status, 200, 'a new stream is accepted after one closed');
      const next = await trigger(hub.url, { data: 'for the new one' });
      await extra.waitForEvents(1);
      assert.equal(extra.events[0]?.id, next.body.id);
      await expectJsonError(await fetch(`${hub.url}/events`), 503, 'HERALD_ERR_TOO_MANY_CONNECTIONS');
    } finally {
      for (const tap of taps) tap.close();
      extra?.close();
    }
  });
});

// ---------------------------------------------------------------------------
// The `eventsource` npm client

interface Received {
  readonly type: string;
  readonly id: string;
  readonly data: string;
}

/** A hub on a plain node:http server that remembers every /events response and its Last-Event-ID. */
async function trackedHub(options: Parameters<typeof createHub>[0]): Promise<{
  herald: ReturnType<typeof createHub>;
  server: Server;
  url: string;
  streams: { res: ServerResponse; lastEventId: string | undefined }[];
  close(): Promise<void>;
}> {
  const herald = createHub({ heartbeat: 0, ...options });
  const streams: { res: ServerResponse; lastEventId: string | undefined }[] = [];
  const server = createServer((req, res) => {
    if ((req.url ?? '').startsWith('/events')) {
      const header = req.headers['last-event-id'];
      streams.push({ res, lastEventId: typeof header === 'string' ? header : undefined });
    }
    herald.handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    herald,
    server,
    url: `http://127.0.0.1:${port}`,
    streams,
    close: async () => {
      await herald.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function listenAll(es: EventSource, types: string[], into: Recorder<Received>): void {
  es.onmessage = (event) => into.push({ type: 'message', id: event.lastEventId, data: event.data });
  for (const type of types) {
    es.addEventListener(type, (event) => into.push({ type, id: event.lastEventId, data: event.data }));
  }
}

test('eventsource client: named events via addEventListener, default ones via onmessage; reconnects with Last-Event-ID and misses nothing', async () => {
  const hub = await trackedHub({ retry: 100 });
  const es = new EventSource(`${hub.url}/events`);
  const got = new Recorder<Received>();
  listenAll(es, ['greeting', 'herald-resync'], got);
  try {
    await new Promise<void>((resolve, reject) => {
      es.onopen = () => resolve();
      es.onerror = () => reject(new Error('EventSource failed to open'));
    });
    const first = await trigger(hub.url, { event: 'greeting', data: { hello: 'world' } });
    const second = await hub.herald.publish({ data: 'plain' });
    await got.untilCount(2, 'the first two events');
    assert.deepEqual(got.items, [
      { type: 'greeting', id: first.body.id, data: '{"hello":"world"}' },
      { type: 'message', id: second.id, data: '"plain"' },
    ]);

    // The server ends the stream cleanly; events published before the client is back must not be lost.
    const opened = new Promise<void>((resolve) => (es.onopen = () => resolve()));
    hub.streams[0]!.res.end();
    const away = await hub.herald.publish([
      { event: 'greeting', data: 'while away 1' },
      { data: 'while away 2' },
      { event: 'greeting', data: 'while away 3' },
    ]);
    await opened;
    await got.untilCount(5, 'the events published while away');
    assert.equal(hub.streams.length, 2, 'the client reconnected once');
    assert.equal(hub.streams[1]!.lastEventId, second.id, 'the reconnect carries Last-Event-ID = the last id received');
    const live = await hub.herald.publish({ event: 'greeting', data: 'live again' });
    await got.untilCount(6, 'the live event after the reconnect');
    assert.deepEqual(
      got.items.map((e) => [e.type, e.id, e.data]),
      [
        ['greeting', first.body.id, '{"hello":"world"}'],
        ['message', second.id, '"plain"'],
        ['greeting', away[0]!.id, '"while away 1"'],
        ['message', away[1]!.id, '"while away 2"'],
        ['greeting', away[2]!.id, '"while away 3"'],
        ['greeting', live.id, '"live again"'],
      ],
    );
    assert.equal(es.readyState, EventSource.OPEN);
  } finally {
    es.close();
    await hub.close();
  }
});

test('eventsource client: a first connection resumes with ?lastEventId= (EventSource cannot set headers)', async () => {
  const hub = await trackedHub({});
  const ids = (await hub.herald.publish([{ data: 1 }, { data: 2 }, { data: 3 }])).map((p) => p.id);
  const es = new EventSource(`${hub.url}/events?lastEventId=${encodeURIComponent(ids[0]!)}`);
  const got = new Recorder<Received>();
  listenAll(es, ['herald-resync'], got);
  try {
    await got.untilCount(2, 'the replayed events');
    const live = await hub.herald.publish({ data: 4 });
    await got.untilCount(3, 'the live event');
    assert.deepEqual(got.items.map((e) => [e.type, e.id, e.data]), [
      ['message', ids[1], '2'],
      ['message', ids[2], '3'],
      ['message', live.id, '4'],
    ]);
  } finally {
    es.close();
    await hub.close();
  }
});

test('eventsource client with a custom fetch sending Last-Event-ID resumes the same way', async () => {
  const hub = await trackedHub({});
  const ids = (await hub.herald.publish([{ data: 1 }, { data: 2 }, { data: 3 }])).map((p) => p.id);
  const es = new EventSource(`${hub.url}/events`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, 'Last-Event-ID': ids[1]! } }),
  });
  const got = new Recorder<Received>();
  listenAll(es, ['herald-resync'], got);
  try {
    await got.untilCount(1, 'the replayed event');
    const live = await hub.herald.publish({ data: 4 });
    await got.untilCount(2, 'the live event');
    assert.deepEqual(got.items.map((e) => [e.type, e.id, e.data]), [
      ['message', ids[2], '3'],
      ['message', live.id, '4'],
    ]);
    assert.equal(hub.streams[0]!.lastEventId, ids[1]);
  } finally {
    es.close();
    await hub.close();
  }
});
