/**
 * `herald/client` (src/client): the parser byte by byte, then the client
 * against real hubs (in process and the `herald` command, killed, restarted,
 * frozen with SIGSTOP) and against small `node:http` servers of the test's
 * own where an answer must be exact (a 503 with `Retry-After`, a 204).
 *
 * Timing is never asserted on the clock: the client's timers go through an
 * injected `schedule`, so the delay it asks for is what is checked, and
 * every wait is on something the client or the hub reports.
 */

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  connect,
  createParser,
  HeraldClientError,
  parseRetryAfter,
  type ClientOptions,
  type ClientState,
  type HeraldEvent,
  type ParsedEvent,
  type Schedule,
} from '../src/client/index.js';
import { mintToken } from '../src/index.js';
import { freePort, killHeralds, Recorder, spawnHerald, startHub, stopHerald, trigger, type HeraldProcess } from './support/helpers.js';

after(() => killHeralds());

const SECRET = 'client-test-secret-of-at-least-32-bytes!';

// ---------------------------------------------------------------------------
// Local helpers

/**
 * The client's timers: watchdogs on the real clock, reconnects recorded
 * (their delay is what tests assert) and run at once, or held until
 * `release()` while `hold` is set.
 */
function timers() {
  const delays = new Recorder<number>();
  const held: (() => void)[] = [];
  const state = { hold: false };
  const schedule: Schedule = (callback, delayMs, purpose) => {
    if (purpose === 'watchdog') {
      const handle = setTimeout(callback, delayMs);
      return () => clearTimeout(handle);
    }
    delays.push(delayMs);
    if (state.hold) {
      held.push(callback);
      return () => {
        const index = held.indexOf(callback);
        if (index !== -1) held.splice(index, 1);
      };
    }
    const handle = setImmediate(callback);
    return () => clearImmediate(handle);
  };
  return {
    schedule,
    delays,
    state,
    /** Runs the reconnects held so far, and lets later ones run at once. */
    release(): void {
      state.hold = false;
      for (const callback of held.splice(0)) callback();
    },
  };
}

/** A client with recorders of what it reports. */
function watched(url: string, options: ClientOptions = {}) {
  const client = connect(url, options);
  const events = new Recorder<HeraldEvent>((items) => JSON.stringify(items.map((event) => [event.type, event.id, event.data])));
  const states = new Recorder<ClientState>();
  const errors = new Recorder<HeraldClientError>((items) => items.map((error) => `${error.code}${error.fatal ? ' (fatal)' : ''}: ${error.message}`).join('; '));
  client.onAny((event) => events.push(event));
  client.onState((state) => states.push(state));
  client.onError((error) => errors.push(error));
  const untilState = (state: ClientState, what = `state ${state}`): Promise<void> => states.until(() => client.state === state, what);
  return { client, events, states, errors, untilState };
}

/** A `node:http` server on port 0 whose `answer` gets every request, in order, with its index. */
async function stubServer(answer: (request: IncomingMessage, response: ServerResponse, index: number) => void) {
  const requests = new Recorder<{ method: string; url: string; headers: IncomingHttpHeaders }>((items) => JSON.stringify(items.map((r) => r.url)));
  const server: Server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    answer(request, response, requests.length - 1);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function streamHead(response: ServerResponse): void {
  response.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' });
  response.flushHeaders();
}

async function publish(url: string, body: unknown, token?: string): Promise<string> {
  const result = await trigger(url, body, token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(result.status, 202, JSON.stringify(result.body));
  return result.body.id;
}

// ---------------------------------------------------------------------------
// The parser

/**
 * Every rule of §9.2.5/§9.2.6 a stream can break: a BOM, CRLF, lone CR and
 * LF line ends, a field without a colon, one space removed (not two), NUL in
 * an id, retry with non-digits (ASCII and Arabic-Indic), an id-only event,
 * comments, an unknown field, a BOM inside data, multi-byte characters, and
 * an unfinished event at the end.
 */
const TRICKY =
  '\uFEFF: comment one\r\n' +
  'data: a\r\n' +
  'data:  b\r\n' +
  'id: 1\r\n' +
  '\r\n' +
  'event: ping\r' +
  'data\r' +
  '\r' +
  'id: bad\0id\n' +
  'retry: 12x\n' +
  'retry: \u0661\u0662\n' +
  'retry:\n' +
  'retry: 250\n' +
  'data: é€😀\n' +
  '\n' +
  'id: 2\n' +
  '\n' +
  'data:no space\n' +
  'event\n' +
  '\n' +
  ':\n' +
  'field: unknown\n' +
  'data: \uFEFFtrailing\r\n' +
  '\r\n' +
  'data: unfinished';

const TRICKY_EVENTS: ParsedEvent[] = [
  { type: 'message', data: 'a\n b', id: '1' },
  { type: 'ping', data: '', id: '1' },
  { type: 'message', data: 'é€😀', id: '1' },
  { type: 'message', data: 'no space', id: '2' },
  { type: 'message', data: '\uFEFFtrailing', id: '2' },
];

function parse(chunks: readonly Uint8Array[]) {
  const events: ParsedEvent[] = [];
  const retries: number[] = [];
  const comments: string[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event), onRetry: (ms) => retries.push(ms), onComment: (text) => comments.push(text) });
  for (const chunk of chunks) parser.feed(chunk);
  return { events, retries, comments, lastEventId: parser.lastEventId };
}

const EXPECTED = { events: TRICKY_EVENTS, retries: [250], comments: ['comment one', ''], lastEventId: '2' };

describe('parser', () => {
  const bytes = new TextEncoder().encode(TRICKY);

  test('a tricky stream in one chunk gives exactly the events, retries, comments and last id of the spec', () => {
    assert.equal(bytes[0], 0xef, 'the stream starts with a UTF-8 BOM');
    assert.deepEqual(parse([bytes]), EXPECTED);
  });

  test('the same, split into two chunks at every byte (a CRLF split between its CR and LF, a BOM and characters split too)', () => {
    for (let i = 0; i <= bytes.length; i++) {
      assert.deepEqual(parse([bytes.subarray(0, i), bytes.subarray(i)]), EXPECTED, `split at byte ${i}`);
    }
  });

  test('the same, split into three chunks at every pair of bytes, and byte by byte', () => {
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        assert.deepEqual(parse([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]), EXPECTED, `split at bytes ${i} and ${j}`);
      }
    }
    assert.deepEqual(parse([...bytes].map((byte) => Uint8Array.of(byte))), EXPECTED, 'byte by byte');
  });

  test('a CR ending a chunk dispatches at once; the LF that follows it in the next chunk is the same line break', () => {
    const events: ParsedEvent[] = [];
    const parser = createParser({ onEvent: (event) => events.push(event) });
    const encode = (text: string) => new TextEncoder().encode(text);
    parser.feed(encode('data: x\r\r'));
    assert.deepEqual(events, [{ type: 'message', data: 'x', id: '' }], 'dispatched without waiting for the next chunk');
    parser.feed(encode('\ndata: y\r'));
    parser.feed(encode('\ndata: z\r\n\r\n'));
    assert.deepEqual(events.at(-1), { type: 'message', data: 'y\nz', id: '' }, 'CR | LF split across chunks is one line break, not a blank line');
    assert.equal(events.length, 2);
  });

  test('reset(): a new stream strips its own BOM, drops the unfinished event, and keeps the last event id', () => {
    const events: ParsedEvent[] = [];
    const parser = createParser({ onEvent: (event) => events.push(event) }, 'seed');
    const encode = (text: string) => new TextEncoder().encode(text);
    parser.feed(encode('data: first\n\nid: 7\n\nid: 8\ndata: cut off'));
    assert.equal(parser.lastEventId, '7');
    parser.reset();
    parser.feed(encode('\uFEFFdata: second\n\n'));
    assert.deepEqual(events, [
      { type: 'message', data: 'first', id: 'seed' },
      { type: 'message', data: 'second', id: '7' },
    ]);
  });

  test('invalid UTF-8 becomes U+FFFD, as the UTF-8 decode algorithm says', () => {
    const { events } = parse([Uint8Array.of(0x64, 0x61, 0x74, 0x61, 0x3a, 0xff, 0x0a, 0x0a)]);
    assert.deepEqual(events, [{ type: 'message', data: '\uFFFD', id: '' }]);
  });
});

test('parseRetryAfter: seconds, an HTTP date, garbage', () => {
  assert.equal(parseRetryAfter('2'), 2000);
  assert.equal(parseRetryAfter(' 0 '), 0);
  const date = 'Wed, 21 Oct 2015 07:28:00 GMT';
  assert.equal(parseRetryAfter(date, Date.parse(date) - 5000), 5000);
  assert.equal(parseRetryAfter(date, Date.parse(date) + 5000), 0, 'a date in the past: at once');
  assert.equal(parseRetryAfter('-1'), undefined);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(null), undefined);
});

// ---------------------------------------------------------------------------
// Requests: method, URL, headers, token, resume

test('the request: method, topics as repeated topic=, headers and token from async functions, Accept, Last-Event-ID; asked again on reconnect', async () => {
  const stub = await stubServer((_request, response, index) => {
    streamHead(response);
    if (index === 0) response.end('id: 5\ndata: {"a":1}\n\n');
    else response.write('data: second\n\n');
  });
  const clock = timers();
  let asked = 0;
  const { client, events } = watched(`${stub.url}/events?x=1`, {
    method: 'POST',
    topics: ['orders/*', 'news'],
    headers: async () => ({ 'X-Trace': `trace-${++asked}`, Authorization: 'Basic overridden' }),
    token: async () => `token-${asked}`,
    lastEventId: '4',
    credentials: 'include',
    schedule: clock.schedule,
  });
  try {
    await events.untilCount(2);
    const [first, second] = stub.requests.items;
    assert.equal(first!.method, 'POST');
    const url = new URL(first!.url, stub.url);
    assert.equal(url.pathname, '/events');
    assert.equal(url.searchParams.get('x'), '1');
    assert.deepEqual(url.searchParams.getAll('topic'), ['orders/*', 'news']);
    assert.equal(first!.headers['x-trace'], 'trace-1');
    assert.equal(first!.headers.authorization, 'Bearer token-1', 'the token wins over headers');
    assert.equal(first!.headers.accept, 'text/event-stream');
    assert.equal(first!.headers['last-event-id'], '4', 'options.lastEventId resumes the first connection');
    assert.equal(second!.headers['x-trace'], 'trace-2', 'headers are asked again for each connection');
    assert.equal(second!.headers.authorization, 'Bearer token-2');
    assert.equal(second!.headers['last-event-id'], '5', 'the reconnection resumes after the last id seen');
    assert.deepEqual(
      events.items.map((event) => [event.type, event.id, event.data, event.json, event.topic]),
      [
        ['message', '5', '{"a":1}', { a: 1 }, undefined],
        ['message', '5', 'second', undefined, undefined],
      ],
    );
    assert.ok(Object.isFrozen(events.items[0]));
    assert.equal(client.lastEventId, '5');
  } finally {
    client.close();
    await stub.close();
  }
});

test('a token scoped to a topic: the stream carries only that topic, whatever else is published', async () => {
  const hub = await startHub({ jwtKey: SECRET });
  const publisher = await mintToken({ key: SECRET, publish: ['**'], ttlSeconds: 600 });
  const subscriber = await mintToken({ key: SECRET, subscribe: ['orders/*'], ttlSeconds: 600 });
  const { client, events, untilState } = watched(`${hub.url}/events`, { token: subscriber });
  try {
    await untilState('open');
    await hub.watch.untilConnections(1);
    await publish(hub.url, [
      { topic: 'news', data: 'not for this token' },
      { topic: 'orders/1', data: { total: 1 } },
      { data: 'no topic: needs ** itself' },
      { topic: 'orders/2', event: 'sentinel', data: 'last' },
    ], publisher);
    await events.until((items) => items.some((event) => event.type === 'sentinel'), 'the sentinel');
    assert.deepEqual(
      events.items.map((event) => [event.type, event.data]),
      [
        ['message', '{"total":1}'],
        ['sentinel', '"last"'],
      ],
    );
  } finally {
    client.close();
    await hub.close();
  }
});

// ---------------------------------------------------------------------------
// Reconnection

test('resume across a hub killed with SIGKILL and restarted on the same port with --store: nothing lost, nothing twice', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'herald-client-'));
  const store = join(dir, 'history.db');
  const args = ['--store', store, '--heartbeat', '0', '--retry', '100ms'];
  let hub: HeraldProcess = await spawnHerald(args);
  const clock = timers();
  const { client, events, states, errors, untilState } = watched(`${hub.url}/events`, { schedule: clock.schedule, heartbeatTimeout: 0 });
  try {
    await untilState('open');
    const before = [await publish(hub.url, { data: 1 }), await publish(hub.url, { data: 2 })];
    await events.untilCount(2);

    clock.state.hold = true;
    assert.equal(await stopHerald(hub, 'SIGKILL'), 'SIGKILL');
    await untilState('reconnecting');
    assert.equal(client.lastEventId, before[1]);
    hub = await spawnHerald(['--port', String(hub.port), ...args]);
    // Published while the client is away: only resume can bring them.
    const during = [await publish(hub.url, { data: 3 }), await publish(hub.url, { data: 4 })];
    clock.release();
    await events.untilCount(4);
    const live = await publish(hub.url, { event: 'sentinel', data: 5 });
    await events.until((items) => items.some((event) => event.type === 'sentinel'), 'the live sentinel');

    assert.deepEqual(events.items.map((event) => event.id), [...before, ...during, live]);
    assert.deepEqual(events.items.map((event) => event.json), [1, 2, 3, 4, 5]);
    assert.ok(errors.items.every((error) => !error.fatal), errors.items.map((error) => error.code).join());
    assert.deepEqual(states.items.slice(0, 2), ['open', 'reconnecting']);
    assert.equal(client.state, 'open');
  } finally {
    client.close();
    await stopHerald(hub);
    await rm(dir, { recursive: true, force: true });
  }
});

test('watchdog: a hub frozen with SIGSTOP sends nothing, not even heartbeats; the client reconnects, and gets events once the hub runs again', async () => {
  const hub = await spawnHerald(['--heartbeat', '1s', '--retry', '100ms']);
  const { client, events, states, errors, untilState } = watched(`${hub.url}/events`, { heartbeatTimeout: 3000 });
  try {
    await untilState('open');
    await publish(hub.url, { data: 'before' });
    await events.untilCount(1);
    hub.child.kill('SIGSTOP');
    try {
      await states.until((items) => items.includes('reconnecting'), 'the watchdog to give the frozen stream up', 20_000);
      assert.equal(errors.items[0]?.code, 'HERALD_CLIENT_ERR_HEARTBEAT_TIMEOUT', errors.items.map((error) => error.code).join());
      assert.equal(errors.items[0]?.fatal, false);
    } finally {
      hub.child.kill('SIGCONT');
    }
    await states.until((items) => items.lastIndexOf('open') > items.indexOf('reconnecting'), 'open again after SIGCONT', 20_000);
    await publish(hub.url, { event: 'sentinel', data: 'after' });
    await events.until((items) => items.some((event) => event.type === 'sentinel'), 'the event published after SIGCONT', 20_000);
    assert.deepEqual(events.items.map((event) => event.json), ['before', 'after']);
  } finally {
    client.close();
    await stopHerald(hub);
  }
});

test('Retry-After of a 503 is the delay the client asks for (2 s → 2000 ms), and the error carries the hub code', async () => {
  const stub = await stubServer((_request, response, index) => {
    if (index === 0) {
      response.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '2' });
      response.end(JSON.stringify({ error: { code: 'HERALD_ERR_TOO_MANY_CONNECTIONS', message: 'too many streams' } }));
      return;
    }
    streamHead(response);
    response.write('data: ok\n\n');
  });
  const clock = timers();
  const { client, events, errors } = watched(`${stub.url}/events`, { schedule: clock.schedule, random: () => 0.5 });
  try {
    await events.untilCount(1);
    assert.deepEqual(clock.delays.items, [2000]);
    const [error] = errors.items;
    assert.ok(error instanceof HeraldClientError);
    assert.deepEqual([error.code, error.message, error.status, error.retryAfter, error.retryIn, error.fatal], ['HERALD_ERR_TOO_MANY_CONNECTIONS', 'too many streams', 503, 2000, 2000, false]);
    assert.equal(stub.requests.length, 2);
  } finally {
    client.close();
    await stub.close();
  }
});

test('a real 503 at --max-connections: retried with Retry-After until a place is free', async () => {
  const hub = await startHub({ maxConnections: 1 });
  const first = watched(`${hub.url}/events`);
  const clock = timers();
  const second = watched(`${hub.url}/events`, { schedule: clock.schedule });
  try {
    await first.untilState('open');
    await second.errors.untilCount(1);
    const [error] = second.errors.items;
    assert.equal(error!.code, 'HERALD_ERR_TOO_MANY_CONNECTIONS');
    assert.equal(error!.status, 503);
    assert.ok(error!.retryAfter !== undefined && error!.retryIn! >= error!.retryAfter, `retryIn ${error!.retryIn} honours Retry-After ${error!.retryAfter}`);
    first.client.close();
    await second.untilState('open');
  } finally {
    first.client.close();
    second.client.close();
    await hub.close();
  }
});

test('backoff: exponential with full jitter, capped at maxRetry, on network errors', async () => {
  const port = await freePort(); // nothing listens: connection refused
  const clock = timers();
  const draws = [0.5, 0.5, 0.5, 0.5, 0.5, 0.999, 0];
  let draw = 0;
  const { client, errors, untilState } = watched(`http://127.0.0.1:${port}/events`, {
    retry: 100,
    maxRetry: 1000,
    schedule: clock.schedule,
    random: () => draws[draw++ % draws.length]!,
  });
  try {
    await clock.delays.untilCount(7);
    client.close();
    await untilState('closed');
    // ceilings 100, 200, 400, 800, 1000 (cap), 1000, 1000; times the draws.
    assert.deepEqual(clock.delays.items.slice(0, 7), [50, 100, 200, 400, 500, 999, 0]);
    assert.ok(errors.items.every((error) => error.code === 'HERALD_CLIENT_ERR_NETWORK' && !error.fatal), errors.items.map((error) => error.code).join());
  } finally {
    client.close();
  }
});

test("backoff: a successful open resets it, and the stream's retry: field becomes the base delay", async () => {
  const stub = await stubServer((_request, response, index) => {
    if (index === 2) {
      streamHead(response);
      response.end('retry: 400\ndata: opened\n\n');
      return;
    }
    response.writeHead(503, { 'Content-Type': 'text/plain' });
    response.end('busy');
  });
  const clock = timers();
  const { client, events, errors } = watched(`${stub.url}/events`, { retry: 100, schedule: clock.schedule, random: () => 0.5 });
  try {
    await clock.delays.untilCount(4);
    client.close();
    // 503, 503 (100 × 2^0, × 2^1), open + end (reset: 400 × 2^0), 503 (400 × 2^1); each × 0.5.
    assert.deepEqual(clock.delays.items.slice(0, 4), [50, 100, 200, 400]);
    assert.deepEqual(events.items.map((event) => event.data), ['opened']);
    assert.deepEqual(errors.items.slice(0, 4).map((error) => [error.code, error.status]), [
      ['HERALD_CLIENT_ERR_HTTP', 503],
      ['HERALD_CLIENT_ERR_HTTP', 503],
      ['HERALD_CLIENT_ERR_STREAM_ENDED', undefined],
      ['HERALD_CLIENT_ERR_HTTP', 503],
    ]);
  } finally {
    client.close();
    await stub.close();
  }
});

// ---------------------------------------------------------------------------
// Auth and fatal answers

test('401: onAuthError gets the typed error and returns a fresh token; the client reconnects with it', async () => {
  const hub = await startHub({ jwtKey: SECRET });
  const fresh = await mintToken({ key: SECRET, subscribe: ['**'], ttlSeconds: 600 });
  const publisher = await mintToken({ key: SECRET, publish: ['**'], ttlSeconds: 600 });
  const clock = timers();
  const hooked: HeraldClientError[] = [];
  const { client, events, untilState } = watched(`${hub.url}/events`, {
    token: 'not-a-token',
    schedule: clock.schedule,
    onAuthError: async (error) => {
      hooked.push(error);
      return fresh;
    },
  });
  try {
    await untilState('open');
    await hub.watch.untilConnections(1);
    assert.deepEqual(hooked.map((error) => [error.status, error.code]), [[401, 'HERALD_ERR_UNAUTHORIZED']]);
    await publish(hub.url, { topic: 'a', data: 'with the fresh token' }, publisher);
    await events.untilCount(1);
    assert.equal(events.items[0]!.json, 'with the fresh token');
  } finally {
    client.close();
    await hub.close();
  }
});

test('403 with a hook that returns undefined, and 401 without a hook: the client stops with the typed error', async () => {
  const hub = await startHub({ jwtKey: SECRET });
  const ordersOnly = await mintToken({ key: SECRET, subscribe: ['orders/*'], ttlSeconds: 600 });
  const clock = timers();
  const forbidden = watched(`${hub.url}/events`, { token: ordersOnly, topics: ['news'], schedule: clock.schedule, onAuthError: () => undefined });
  const unauthorized = watched(`${hub.url}/events`, { token: 'not-a-token', schedule: clock.schedule });
  try {
    await forbidden.untilState('closed');
    await unauthorized.untilState('closed');
    assert.deepEqual(forbidden.errors.items.map((error) => [error.status, error.code, error.fatal]), [[403, 'HERALD_ERR_FORBIDDEN', true]]);
    assert.deepEqual(unauthorized.errors.items.map((error) => [error.status, error.code, error.fatal]), [[401, 'HERALD_ERR_UNAUTHORIZED', true]]);
    assert.deepEqual(clock.delays.items, [], 'no reconnect was scheduled');
  } finally {
    forbidden.client.close();
    unauthorized.client.close();
    await hub.close();
  }
});

test('400 (a malformed selector) stops with HeraldClientError carrying the hub code; no reconnect', async () => {
  const hub = await startHub();
  const clock = timers();
  const { client, errors, states, untilState } = watched(`${hub.url}/events`, { topics: ['orders/**/items'], schedule: clock.schedule });
  try {
    await untilState('closed');
    const [error] = errors.items;
    assert.ok(error instanceof HeraldClientError);
    assert.deepEqual([error.status, error.code, error.fatal], [400, 'HERALD_ERR_INVALID_SELECTOR', true]);
    assert.ok(error.message.length > 0);
    assert.deepEqual(states.items, ['closed']);
    assert.deepEqual(clock.delays.items, []);
  } finally {
    client.close();
    await hub.close();
  }
});

test('204 and a 200 that is not text/event-stream stop the client', async () => {
  const stub = await stubServer((request, response) => {
    if (request.url === '/no-content') {
      response.writeHead(204);
      response.end();
    } else {
      response.writeHead(200, { 'Content-Type': 'text/html' });
      response.end('<p>not a stream</p>');
    }
  });
  const clock = timers();
  const noContent = watched(`${stub.url}/no-content`, { schedule: clock.schedule });
  const html = watched(`${stub.url}/html`, { schedule: clock.schedule });
  try {
    await noContent.untilState('closed');
    await html.untilState('closed');
    assert.deepEqual(noContent.errors.items.map((error) => [error.code, error.status, error.fatal]), [['HERALD_CLIENT_ERR_NO_CONTENT', 204, true]]);
    assert.deepEqual(html.errors.items.map((error) => [error.code, error.status, error.fatal]), [['HERALD_CLIENT_ERR_CONTENT_TYPE', 200, true]]);
    assert.deepEqual(clock.delays.items, []);
  } finally {
    noContent.client.close();
    html.client.close();
    await stub.close();
  }
});

// ---------------------------------------------------------------------------
// herald-resync, listeners, close

test('herald-resync goes to onResync with its reason, not to on()/onAny(); the retained events follow', async () => {
  const hub = await startHub({ history: 2 });
  const ids = [];
  for (let i = 1; i <= 4; i++) ids.push(await publish(hub.url, { data: i }));
  const resyncs = new Recorder<[string, unknown]>();
  const { client, events } = watched(`${hub.url}/events`, { lastEventId: ids[0] });
  const typed: HeraldEvent[] = [];
  client.on('herald-resync', (event) => typed.push(event));
  client.onResync((reason, data) => resyncs.push([reason, data]));
  const unknown = watched(`${hub.url}/events`, { lastEventId: '9999999999999-0' });
  const unknownResyncs = new Recorder<string>();
  unknown.client.onResync((reason) => unknownResyncs.push(reason));
  try {
    await events.untilCount(2);
    assert.deepEqual(resyncs.items, [['expired', { reason: 'expired', lastEventId: ids[0] }]]);
    assert.deepEqual(events.items.map((event) => event.id), ids.slice(2));
    assert.deepEqual(typed, []);
    await unknownResyncs.untilCount(1);
    assert.deepEqual(unknownResyncs.items, ['unknown']);
    const live = await publish(hub.url, { event: 'sentinel', data: 5 });
    await unknown.events.untilCount(1);
    assert.deepEqual(unknown.events.items.map((event) => event.id), [live], 'after "unknown", live events only');
  } finally {
    client.close();
    unknown.client.close();
    await hub.close();
  }
});

test('on(type) gets only its type, off() and the returned function remove; close() and an aborted signal stop for good', async () => {
  const hub = await startHub();
  const controller = new AbortController();
  const { client, events, states, untilState } = watched(`${hub.url}/events`, { signal: controller.signal });
  const messages: string[] = [];
  const pings: string[] = [];
  const removed: string[] = [];
  client.on('message', (event) => messages.push(event.data));
  const stopPings = client.on('ping', (event) => pings.push(event.data));
  const listener = (event: HeraldEvent): void => void removed.push(event.data);
  client.on('ping', listener);
  client.off('ping', listener);
  try {
    await untilState('open');
    await publish(hub.url, [{ data: 'm' }, { event: 'ping', data: 'p1' }]);
    await events.untilCount(2);
    stopPings();
    await publish(hub.url, [{ event: 'ping', data: 'p2' }, { event: 'sentinel', data: 's' }]);
    await events.untilCount(4);
    assert.deepEqual([messages, pings, removed], [['"m"'], ['"p1"'], []]);
    controller.abort();
    assert.equal(client.state, 'closed');
    await hub.watch.untilConnections(0);
    assert.deepEqual(states.items, ['open', 'closed']);
    client.close();
    assert.deepEqual(states.items, ['open', 'closed'], 'close() is idempotent');
  } finally {
    client.close();
    await hub.close();
  }
});

test('invalid options fail at connect() with HERALD_CLIENT_ERR_INVALID_OPTION', () => {
  assert.throws(() => connect('http://127.0.0.1:1/events', { retry: -1 }), (error: unknown) => error instanceof HeraldClientError && error.code === 'HERALD_CLIENT_ERR_INVALID_OPTION');
  assert.throws(() => connect('http://127.0.0.1:1/events', { heartbeatTimeout: Number.NaN }), /heartbeatTimeout/);
});
