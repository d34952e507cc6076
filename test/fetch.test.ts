/**
 * `hub.fetch`: the Web-standard handler. Bare `Request` objects (what Bun,
 * Deno or a service worker would pass) and Hono on Node (`hono` with
 * `@hono/node-server`, real HTTP clients): subscribe, resume, publish, errors,
 * a reader that leaves, and one that never reads.
 */

import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { serve, type ServerType } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { EventSource } from 'eventsource';
import { Hono } from 'hono';
import { createHub, type Herald } from '../src/index.js';
import { SseTap, trigger, Waiters } from './support/helpers.js';

const LOOPBACK = { remoteAddress: '127.0.0.1' };

/** Reads a `Response` body as SSE, with waits on what has arrived. */
class BodyReader {
  readonly events: EventSourceMessage[] = [];
  ended = false;
  private readonly waiters = new Waiters();
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;

  constructor(response: Response) {
    const reader = response.body!.getReader();
    this.reader = reader;
    const parser = createParser({ onEvent: (event) => this.events.push(event) });
    const decoder = new TextDecoder();
    void (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          parser.feed(decoder.decode(value, { stream: true }));
          this.waiters.notify();
        }
      } catch {
        // Cancelled or errored: the stream is over either way.
      }
      this.ended = true;
      this.waiters.notify();
    })();
  }

  until(condition: () => boolean, what: string): Promise<void> {
    return this.waiters.until(condition, what, 10_000, () => `got ${JSON.stringify(this.events.map((e) => e.data))}`);
  }

  cancel(): Promise<void> {
    return this.reader.cancel();
  }
}

function publishRequest(body: unknown, headers: Record<string, string> = {}): Request {
  return new Request('http://hub.test/trigger', { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** Resolves once the hub holds `count` streams, told by the hub itself. */
function streamsReach(herald: Herald, count: number): Promise<void> {
  const waiters = new Waiters();
  herald.hub.observe({ connected: () => waiters.notify(), disconnected: () => waiters.notify() });
  return waiters.until(() => herald.counters().connections === count, `${count} open streams`, 10_000, () => `${herald.counters().connections} open`);
}

test('bare Requests: subscribe, publish from loopback, resume after an id, and the stream head', async () => {
  const hub = createHub({ heartbeat: 0 });
  try {
    const response = await hub.fetch(new Request('http://hub.test/events?topic=orders/*'));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.equal(response.headers.get('connection'), null, 'no connection-specific field on a framed body');
    const live = new BodyReader(response);
    const published: string[] = [];
    for (const n of [1, 2, 3]) {
      const answer = await hub.fetch(publishRequest({ event: 'order', topic: `orders/${n}`, data: { n } }), LOOPBACK);
      assert.equal(answer.status, 202);
      published.push(((await answer.json()) as { id: string }).id);
    }
    await live.until(() => live.events.length === 3, 'three live events');
    assert.deepEqual(live.events.map((e) => [e.id, e.event, e.data]), published.map((id, i) => [id, 'order', `{"n":${i + 1}}`]));

    const resumed = new BodyReader(await hub.fetch(new Request('http://hub.test/events?topic=orders/*', { headers: { 'Last-Event-ID': published[0]! } })));
    await resumed.until(() => resumed.events.length === 2, 'the two events after the id');
    assert.deepEqual(resumed.events.map((e) => e.id), published.slice(1));
    await live.cancel();
    await resumed.cancel();
  } finally {
    await hub.close();
  }
});

test('bare Requests: errors are the hub JSON with their status and headers', async () => {
  const hub = createHub({ heartbeat: 0, maxBody: '1kb' });
  try {
    const expectError = async (response: Response, status: number, code: string): Promise<void> => {
      assert.equal(response.status, status, code);
      assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(((await response.json()) as { error: { code: string } }).error.code, code);
    };
    // Without an address, a request is not known to come from this machine: publishing needs a token.
    const remote = await hub.fetch(publishRequest({ data: 1 }));
    assert.equal(remote.headers.get('www-authenticate'), 'Bearer realm="herald"');
    await expectError(remote, 401, 'HERALD_ERR_UNAUTHORIZED');
    await expectError(await hub.fetch(new Request('http://hub.test/nope')), 404, 'HERALD_ERR_NOT_FOUND');
    const wrong = await hub.fetch(new Request('http://hub.test/events', { method: 'DELETE' }));
    assert.equal(wrong.headers.get('allow'), 'GET');
    await expectError(wrong, 405, 'HERALD_ERR_METHOD_NOT_ALLOWED');
    await expectError(await hub.fetch(new Request('http://hub.test/trigger', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{' }), LOOPBACK), 400, 'HERALD_ERR_INVALID_JSON');
    await expectError(await hub.fetch(publishRequest({ data: 'x'.repeat(2000) }), LOOPBACK), 413, 'HERALD_ERR_BODY_TOO_LARGE');
    await expectError(await hub.fetch(new Request('http://hub.test/events?topic=a//b')), 400, 'HERALD_ERR_INVALID_SELECTOR');
    assert.equal(hub.counters().published, 0, 'nothing was stored');
  } finally {
    await hub.close();
  }
});

test('bare Requests: a reader that cancels is forgotten; one that never reads is dropped at --max-buffer', async () => {
  const hub = createHub({ heartbeat: 0, maxBuffer: '64kb' });
  try {
    const leaving = await hub.fetch(new Request('http://hub.test/events'));
    await streamsReach(hub, 1);
    const gone = streamsReach(hub, 0);
    await leaving.body!.cancel();
    await gone;

    const aborted = new AbortController();
    await hub.fetch(new Request('http://hub.test/events', { signal: aborted.signal }));
    await streamsReach(hub, 1);
    const left = streamsReach(hub, 0);
    aborted.abort();
    await left;

    // Never read: the stream's queue fills, then the hub drops it rather than hold the events.
    await hub.fetch(new Request('http://hub.test/events'));
    await streamsReach(hub, 1);
    const filler = 'x'.repeat(16 * 1024);
    for (let i = 0; i < 64 && hub.counters().dropped === 0; i++) {
      await hub.publish({ data: filler });
      // One publish per event-loop turn, so each is flushed before the next: the queue grows write by write.
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(hub.counters().dropped, 1, 'the stream that never reads was dropped');
    assert.equal(hub.counters().connections, 0);
  } finally {
    await hub.close();
  }
});

test('Hono on Node: EventSource subscribes and resumes, curl-style clients publish, errors come back as JSON', async () => {
  const hub = createHub({ heartbeat: 0, basePath: '/herald', retry: 100 });
  const app = new Hono();
  app.get('/', (c) => c.text('the app'));
  app.all('/herald/*', (c) => hub.fetch(c.req.raw, { remoteAddress: getConnInfo(c).remote.address }));
  const server: ServerType = await new Promise((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let source: EventSource | undefined;
  try {
    assert.equal(await (await fetch(`${base}/`)).text(), 'the app', "the app's own routes still work");
    const tap = await SseTap.open(base, '/herald/events?topic=news');
    assert.equal(tap.status, 200);
    assert.equal(tap.headers['content-type'], 'text/event-stream; charset=utf-8');
    const first = await trigger(`${base}/herald`, { event: 'headline', topic: 'news', data: { n: 1 } });
    assert.equal(first.status, 202, JSON.stringify(first.body));
    await tap.waitForEvents(1);
    assert.deepEqual([tap.events[0]!.id, tap.events[0]!.event, tap.events[0]!.data], [first.body.id, 'headline', '{"n":1}']);

    // A browser-like client: EventSource, resuming after its own reconnect.
    const seen: string[] = [];
    const waiters = new Waiters();
    source = new EventSource(`${base}/herald/events?topic=news&lastEventId=${encodeURIComponent(first.body.id)}`);
    source.addEventListener('headline', (event) => {
      seen.push((event as MessageEvent).lastEventId);
      waiters.notify();
    });
    const second = await trigger(`${base}/herald`, { event: 'headline', topic: 'news', data: { n: 2 } });
    await waiters.until(() => seen.length === 1, 'the second headline', 10_000, () => seen.join(','));
    assert.deepEqual(seen, [second.body.id], 'resumed after the first, from the query');
    tap.close();
  } finally {
    source?.close();
    await hub.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('Hono on Node: after a dropped connection, EventSource resumes with Last-Event-ID and misses nothing', async () => {
  const hub = createHub({ heartbeat: 0, retry: 100 });
  const app = new Hono();
  app.all('*', (c) => hub.fetch(c.req.raw, { remoteAddress: getConnInfo(c).remote.address }));
  const server: ServerType = await new Promise((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
  // The connections that carry streams (the publishers' keep-alive connections stay up).
  const sockets = new Set<import('node:net').Socket>();
  server.on('request', (req: import('node:http').IncomingMessage) => {
    if (!(req.url ?? '').startsWith('/events')) return;
    sockets.add(req.socket);
    req.socket.once('close', () => sockets.delete(req.socket));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const source = new EventSource(`${base}/events?topic=t`);
  const seen: string[] = [];
  let errors = 0;
  const waiters = new Waiters();
  source.onmessage = (event) => {
    seen.push(event.data);
    waiters.notify();
  };
  source.onerror = () => {
    errors++;
    waiters.notify();
  };
  source.onopen = () => waiters.notify();
  try {
    await waiters.until(() => source.readyState === EventSource.OPEN, 'the stream to open', 10_000, () => String(source.readyState));
    await streamsReach(hub, 1);
    assert.equal((await trigger(base, { topic: 't', data: 'one' })).status, 202);
    await waiters.until(() => seen.length === 1, 'the first event', 10_000, () => seen.join(','));
    // The network drops the stream: the hub hears of it through the request's signal.
    const forgotten = streamsReach(hub, 0);
    for (const socket of sockets) socket.destroy();
    await forgotten;
    // Published while the client is away: it must come with the replay.
    assert.equal((await trigger(base, { topic: 't', data: 'two' })).status, 202);
    await waiters.until(() => seen.length === 2, 'the missed event after the reconnect', 10_000, () => seen.join(','));
    assert.ok(errors >= 1, 'the client did lose its connection');
    assert.equal((await trigger(base, { topic: 't', data: 'three' })).status, 202);
    await waiters.until(() => seen.length === 3, 'the live event', 10_000, () => seen.join(','));
    assert.deepEqual(seen, ['"one"', '"two"', '"three"'], 'every event once, in order');
    const notFound = await fetch(`${base}/missing`);
    assert.equal(notFound.status, 404);
    assert.equal(((await notFound.json()) as { error: { code: string } }).error.code, 'HERALD_ERR_NOT_FOUND');
    assert.match(notFound.headers.get('x-request-id') ?? '', /\S/, 'the request id travels through Hono');
  } finally {
    source.close();
    await hub.close();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
