/**
 * POST /trigger and the rest of the HTTP API (errors, /health, the page),
 * and the library mounted in node:http, Express 5 and Fastify 5.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { createHub, type Herald } from '../src/index.js';
import { SseTap, trigger, withHub } from './support/helpers.js';

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

// ---------------------------------------------------------------------------
// Local helpers

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

async function send(url: string, init: RequestInit): Promise<Answer> {
  const response = await fetch(url, init);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

function post(url: string, body: string | Uint8Array, contentType: string | undefined, query = ''): Promise<Answer> {
  return send(`${url}/trigger${query}`, {
    method: 'POST',
    headers: contentType === undefined ? {} : { 'Content-Type': contentType },
    body,
  });
}

/** Checks an error answer: the status, JSON content type and exactly `{"error": {"code", "message"}}`. */
function assertError(answer: { status: number; contentType: string | null | undefined; text: string }, status: number, code: string, what = ''): void {
  const label = what === '' ? '' : `${what}: `;
  assert.equal(answer.status, status, `${label}status (body ${answer.text})`);
  assert.match(answer.contentType ?? '', /^application\/json\b/, `${label}content type`);
  const body = JSON.parse(answer.text);
  assert.deepEqual(Object.keys(body), ['error'], `${label}body has only "error"`);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message'], `${label}error has only code and message`);
  assert.equal(body.error.code, code, `${label}code`);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0, `${label}message is not empty`);
}

function assertAnswerError(answer: Answer, status: number, code: string, what = ''): void {
  assertError({ status: answer.status, contentType: answer.headers.get('content-type'), text: answer.text }, status, code, what);
}

async function healthOf(url: string): Promise<any> {
  const response = await fetch(`${url}/health`);
  assert.equal(response.status, 200);
  return response.json();
}

interface NodeAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

/**
 * A POST through node:http: without `Content-Length` the body goes chunked.
 * Resolves with the answer, or rejects if the connection fails before it arrives.
 */
function nodePost(url: string, path: string, headers: Record<string, string>, chunks: readonly (string | Buffer)[]): Promise<NodeAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    void (async () => {
      for (const chunk of chunks) {
        if (req.destroyed) return;
        if (!req.write(chunk)) await new Promise<void>((r) => req.once('drain', r).once('close', r));
      }
      req.end();
    })();
  });
}

/** Raw bytes in, raw answer out: resolves once a complete response (by Content-Length) is in. */
function rawExchange(port: number, head: string, body: Buffer): Promise<{ head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer; got ${JSON.stringify(received.toString('latin1'))}`));
    }, 10_000);
    const check = (): void => {
      const text = received.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
      if (length === null || received.length < end + 4 + Number(length[1])) return;
      clearTimeout(timer);
      socket.destroy();
      resolve({ head: text.slice(0, end), body: received.subarray(end + 4, end + 4 + Number(length[1])).toString('utf8') });
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      check();
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`the connection failed (${error.message}) after ${JSON.stringify(received.toString('latin1'))}`));
    });
    socket.on('connect', () => {
      socket.write(head, 'latin1');
      socket.write(body);
    });
  });
}

function listenOn(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

// ---------------------------------------------------------------------------
// Publishing JSON

test('JSON: one event answers 202 {"id"} and reaches the subscriber', async () => {
  await withHub({}, async (hub) => {
    const tap = await SseTap.open(hub.url);
    try {
      const answer = await post(hub.url, JSON.stringify({ event: 'order', topic: 'orders/1', data: { paid: true } }), 'application/json');
      assert.equal(answer.status, 202);
      assert.match(answer.headers.get('content-type') ?? '', /^application\/json\b/);
      const body = JSON.parse(answer.text);
      assert.deepEqual(Object.keys(body), ['id']);
      assert.equal(typeof body.id, 'string');
      assert.ok(body.id.length > 0);
      await tap.waitForEvents(1);
      assert.deepEqual(tap.events[0], { id: body.id, event: 'order', data: '{"paid":true}' });
    } finally {
      tap.close();
    }
  });
});

test('JSON: an array answers 202 [{"id"}, ...] in the same order and is published in order', async () => {
  await withHub({}, async (hub) => {
    const tap = await SseTap.open(hub.url);
    try {
      const batch = [
        { event: 'a', data: 1 },
        { data: 'two', topic: 't/2' },
        { event: 'c', data: [3] },
        { data: { four: 4 } },
      ];
      const answer = await trigger(hub.url, batch);
      assert.equal(answer.status, 202);
      assert.ok(Array.isArray(answer.body));
      assert.equal(answer.body.length, 4);
      for (const item of answer.body) assert.deepEqual(Object.keys(item), ['id']);
      await tap.waitForEvents(4);
      assert.deepEqual(tap.events, [
        { id: answer.body[0].id, event: 'a', data: '1' },
        { id: answer.body[1].id, event: undefined, data: '"two"' },
        { id: answer.body[2].id, event: 'c', data: '[3]' },
        { id: answer.body[3].id, event: undefined, data: '{"four":4}' },
      ]);
      // A batch of one is still answered with an array.
      const one = await trigger(hub.url, [{ data: 5 }]);
      assert.equal(one.status, 202);
      assert.ok(Array.isArray(one.body) && one.body.length === 1 && typeof one.body[0].id === 'string');
    } finally {
      tap.close();
    }
  });
});

test('JSON: a batch with one invalid item is refused whole: 400, no event delivered, history unchanged', async () => {
  await withHub({}, async (hub) => {
    const tap = await SseTap.open(hub.url);
    try {
      await trigger(hub.url, { data: 'before' });
      await tap.waitForEvents(1);
      const sizeBefore = (await healthOf(hub.url)).history.size;
      assert.equal(sizeBefore, 1);
      const answer = await post(
        hub.url,
        JSON.stringify([{ event: 'ok', data: 1 }, { event: 'ok', data: 2 }, { event: 'a\nb', data: 3 }, { data: 4 }]),
        'application/json',
      );
      assertAnswerError(answer, 400, 'HERALD_ERR_INVALID_EVENT_TYPE');
      const other = await post(hub.url, JSON.stringify([{ data: 1 }, { data: 2 }, { data: 3, extra: true }]), 'application/json');
      assertAnswerError(other, 400, 'HERALD_ERR_INVALID_EVENT');
      assert.equal((await healthOf(hub.url)).history.size, sizeBefore, 'nothing of the batches was kept');
      const fence = await trigger(hub.url, { data: 'after' });
      await tap.waitForEvents(2);
      assert.deepEqual(tap.events.map((e) => e.data), ['"before"', '"after"'], 'no event of the refused batches reached the subscriber');
      assert.equal(tap.events[1]?.id, fence.body.id);
    } finally {
      tap.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Publishing text

test('text/plain: the body is the data verbatim; event and topic come from the query', async () => {
  await withHub({}, async (hub) => {
    const tap = await SseTap.open(hub.url, '/events?topic=news/**');
    try {
      const body = '{"not": "parsed"}\r\n  second line ✓\rthird\n';
      const answer = await post(hub.url, body, 'text/plain', '?event=headline&topic=news/eu');
      assert.equal(answer.status, 202);
      const published = JSON.parse(answer.text);
      assert.deepEqual(Object.keys(published), ['id']);
      // Without event: the default message type.
      const plain = await post(hub.url, 'hello', 'text/plain; charset=utf-8', '?topic=news/us');
      assert.equal(plain.status, 202);
      await tap.waitForEvents(2);
      assert.deepEqual(tap.events, [
        // Line breaks come back as LF, as the spec says a client joins data lines.
        { id: published.id, event: 'headline', data: '{"not": "parsed"}\n  second line ✓\nthird\n' },
        { id: JSON.parse(plain.text).id, event: undefined, data: 'hello' },
      ]);
      const at = tap.raw.indexOf(`id: ${published.id}`);
      assert.equal(
        tap.raw.slice(at, tap.raw.indexOf('\n\n', at) + 2),
        `id: ${published.id}\nevent: headline\ndata: {"not": "parsed"}\ndata:   second line ✓\ndata: third\ndata: \n\n`,
      );
    } finally {
      tap.close();
    }
  });
});

// ---------------------------------------------------------------------------
// 400s

const INVALID_UTF8_JSON = Buffer.concat([Buffer.from('{"data":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);

const BAD_REQUESTS: readonly (readonly [what: string, body: string | Buffer, contentType: string, query: string, code: string])[] = [
  ['invalid JSON', '{"data":', 'application/json', '', 'HERALD_ERR_INVALID_JSON'],
  ['JSON with trailing garbage', '{"data":1} x', 'application/json', '', 'HERALD_ERR_INVALID_JSON'],
  ['an empty JSON body', '', 'application/json', '', 'HERALD_ERR_INVALID_JSON'],
  ['missing data', '{"event":"x"}', 'application/json', '', 'HERALD_ERR_INVALID_EVENT'],
  ['data: undefined-like (absent) in a batch', '[{"data":1},{"topic":"a"}]', 'application/json', '', 'HERALD_ERR_INVALID_EVENT'],
  ['a number instead of an object', '42', 'application/json', '', 'HERALD_ERR_INVALID_EVENT'],
  ['null instead of an object', 'null', 'application/json', '', 'HERALD_ERR_INVALID_EVENT'],
  ['an unknown field', '{"data":1,"extra":true}', 'application/json', '', 'HERALD_ERR_INVALID_EVENT'],
  ['an event that is not a string', '{"event":5,"data":1}', 'application/json', '', 'HERALD_ERR_INVALID_EVENT'],
  ['a topic that is not a string', '{"topic":["a"],"data":1}', 'application/json', '', 'HERALD_ERR_INVALID_EVENT'],
  ['an empty event', '{"event":"","data":1}', 'application/json', '', 'HERALD_ERR_INVALID_EVENT_TYPE'],
  ['an event with CR', '{"event":"a\\rb","data":1}', 'application/json', '', 'HERALD_ERR_INVALID_EVENT_TYPE'],
  ['an event with LF', '{"event":"a\\nb","data":1}', 'application/json', '', 'HERALD_ERR_INVALID_EVENT_TYPE'],
  ['an event with CRLF', '{"event":"a\\r\\nb","data":1}', 'application/json', '', 'HERALD_ERR_INVALID_EVENT_TYPE'],
  ['an event with NUL', '{"event":"a\\u0000b","data":1}', 'application/json', '', 'HERALD_ERR_INVALID_EVENT_TYPE'],
  ['an empty topic', '{"topic":"","data":1}', 'application/json', '', 'HERALD_ERR_INVALID_TOPIC'],
  ['a topic with CR', '{"topic":"a\\rb","data":1}', 'application/json', '', 'HERALD_ERR_INVALID_TOPIC'],
  ['a topic with LF', '{"topic":"a\\nb","data":1}', 'application/json', '', 'HERALD_ERR_INVALID_TOPIC'],
  ['a topic with NUL', '{"topic":"a\\u0000b","data":1}', 'application/json', '', 'HERALD_ERR_INVALID_TOPIC'],
  ['a topic with an empty segment', '{"topic":"a//b","data":1}', 'application/json', '', 'HERALD_ERR_INVALID_TOPIC'],
  ['a topic with a wildcard', '{"topic":"orders/*","data":1}', 'application/json', '', 'HERALD_ERR_INVALID_TOPIC'],
  ['an empty array', '[]', 'application/json', '', 'HERALD_ERR_EMPTY_BATCH'],
  ['invalid UTF-8 in JSON', INVALID_UTF8_JSON, 'application/json', '', 'HERALD_ERR_INVALID_UTF8'],
  ['invalid UTF-8 in text', Buffer.from([0x61, 0xc3, 0x28]), 'text/plain', '', 'HERALD_ERR_INVALID_UTF8'],
  ['an overlong UTF-8 encoding', Buffer.from([0x61, 0xc0, 0xaf]), 'text/plain', '', 'HERALD_ERR_INVALID_UTF8'],
  ['a UTF-8-encoded surrogate', Buffer.from([0x61, 0xed, 0xa0, 0x80]), 'text/plain', '', 'HERALD_ERR_INVALID_UTF8'],
  ['text with an empty ?event=', 'x', 'text/plain', '?event=', 'HERALD_ERR_INVALID_EVENT_TYPE'],
  ['text with ?event= holding CR', 'x', 'text/plain', '?event=a%0Db', 'HERALD_ERR_INVALID_EVENT_TYPE'],
  ['text with ?event= holding NUL', 'x', 'text/plain', '?event=a%00b', 'HERALD_ERR_INVALID_EVENT_TYPE'],
  ['text with an empty ?topic=', 'x', 'text/plain', '?topic=', 'HERALD_ERR_INVALID_TOPIC'],
  ['text with ?topic= holding LF', 'x', 'text/plain', '?topic=a%0Ab', 'HERALD_ERR_INVALID_TOPIC'],
  ['text with ?topic= holding NUL', 'x', 'text/plain', '?topic=a%00b', 'HERALD_ERR_INVALID_TOPIC'],
];

test('bad input is answered 400 with the right code and never half-applied', async () => {
  await withHub({}, async (hub) => {
    const tap = await SseTap.open(hub.url);
    try {
      for (const [what, body, contentType, query, code] of BAD_REQUESTS) {
        assertAnswerError(await post(hub.url, body, contentType, query), 400, code, what);
      }
      const health = await healthOf(hub.url);
      assert.equal(health.history.size, 0, 'nothing was kept');
      assert.equal(health.published, 0, 'nothing was published');
      const fence = await trigger(hub.url, { data: 'fence' });
      await tap.waitForEvents(1);
      assert.deepEqual(tap.events.map((e) => e.id), [fence.body.id], 'no refused event reached the subscriber');
    } finally {
      tap.close();
    }
  });
});

test('a valid UTF-8 body whose multi-byte characters are split across chunks is accepted', async () => {
  await withHub({}, async (hub) => {
    const tap = await SseTap.open(hub.url);
    try {
      const bytes = Buffer.from(JSON.stringify({ data: 'é✓😀' }));
      // Split inside the multi-byte characters.
      const chunks = [bytes.subarray(0, 11), bytes.subarray(11, 14), bytes.subarray(14)];
      const answer = await nodePost(hub.url, '/trigger', { 'Content-Type': 'application/json' }, chunks);
      assert.equal(answer.status, 202, answer.text);
      await tap.waitForEvents(1);
      assert.equal(tap.events[0]?.data, '"é✓😀"');
    } finally {
      tap.close();
    }
  });
});

// ---------------------------------------------------------------------------
// 413

test('413 for a body over maxBody announced by Content-Length; the client gets the JSON answer, not a reset', async () => {
  await withHub({ maxBody: 1024 }, async (hub) => {
    // At the limit: accepted.
    const fits = JSON.stringify({ data: 'x'.repeat(1024 - '{"data":""}'.length) });
    assert.equal(Buffer.byteLength(fits), 1024);
    assert.equal((await post(hub.url, fits, 'application/json')).status, 202);
    // One byte over: refused.
    const over = JSON.stringify({ data: 'x'.repeat(1025 - '{"data":""}'.length) });
    assertAnswerError(await post(hub.url, over, 'application/json'), 413, 'HERALD_ERR_BODY_TOO_LARGE', 'fetch, 1 byte over');
    // Far over, on a raw socket: the whole body is sent and the answer still arrives.
    const big = Buffer.alloc(512 * 1024, 0x61);
    const raw = await rawExchange(
      hub.port,
      `POST /trigger HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${big.length}\r\n\r\n`,
      big,
    );
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw.head)?.[1]);
    const contentType = /\r\ncontent-type:\s*([^\r]*)/i.exec(raw.head)?.[1];
    assertError({ status, contentType, text: raw.body }, 413, 'HERALD_ERR_BODY_TOO_LARGE', 'raw socket, 512 KiB');
    assert.equal((await healthOf(hub.url)).history.size, 1, 'only the body that fits was published');
  });
});

test('413 for a chunked body (no Content-Length) that grows over maxBody; the client gets the JSON answer', async () => {
  await withHub({ maxBody: 1024 }, async (hub) => {
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    const answer = await nodePost(hub.url, '/trigger', { 'Content-Type': 'text/plain' }, Array.from({ length: 32 }, () => chunk));
    assertError({ status: answer.status, contentType: answer.headers['content-type'], text: answer.text }, 413, 'HERALD_ERR_BODY_TOO_LARGE');
    // A small chunked body is accepted.
    const ok = await nodePost(hub.url, '/trigger', { 'Content-Type': 'text/plain' }, ['small ', 'chunks']);
    assert.equal(ok.status, 202, ok.text);
    // The hub still serves.
    assert.equal((await healthOf(hub.url)).history.size, 1);
  });
});

// ---------------------------------------------------------------------------
// 415, 405, 404

test('415 for other content types and for a charset other than UTF-8', async () => {
  await withHub({}, async (hub) => {
    for (const type of [
      'application/xml',
      'text/html',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonx',
      'application/json; charset=iso-8859-1',
      'application/json; charset="utf-16"',
      'text/plain; charset=latin1',
    ]) {
      assertAnswerError(await post(hub.url, '{"data":1}', type), 415, 'HERALD_ERR_UNSUPPORTED_MEDIA_TYPE', type);
    }
    const missing = await nodePost(hub.url, '/trigger', { 'Content-Length': '10' }, ['{"data":1}']);
    assertError({ status: missing.status, contentType: missing.headers['content-type'], text: missing.text }, 415, 'HERALD_ERR_UNSUPPORTED_MEDIA_TYPE', 'no Content-Type');
    // The accepted spellings.
    for (const type of ['application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'Application/JSON', 'text/plain; charset=utf8']) {
      assert.equal((await post(hub.url, '{"data":1}', type)).status, 202, type);
    }
    assert.equal((await healthOf(hub.url)).history.size, 4, 'only accepted publishes were kept');
  });
});

test('405 with Allow: POST for other methods on /trigger, Allow: GET for POST /events', async () => {
  await withHub({}, async (hub) => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      const answer = await send(`${hub.url}/trigger`, { method, ...(method === 'GET' ? {} : { body: '{"data":1}', headers: { 'Content-Type': 'application/json' } }) });
      assertAnswerError(answer, 405, 'HERALD_ERR_METHOD_NOT_ALLOWED', `${method} /trigger`);
      assert.equal(answer.headers.get('allow'), 'POST', `${method} /trigger`);
    }
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const answer = await send(`${hub.url}/events`, { method, body: '{"data":1}', headers: { 'Content-Type': 'application/json' } });
      assertAnswerError(answer, 405, 'HERALD_ERR_METHOD_NOT_ALLOWED', `${method} /events`);
      assert.equal(answer.headers.get('allow'), 'GET', `${method} /events`);
    }
    assert.equal((await healthOf(hub.url)).history.size, 0, 'nothing was published by a refused method');
    assert.equal((await healthOf(hub.url)).connections, 0);
  });
});

test('unknown paths answer 404 JSON HERALD_ERR_NOT_FOUND', async () => {
  await withHub({}, async (hub) => {
    for (const [method, path] of [
      ['GET', '/nope'],
      ['POST', '/nope'],
      ['GET', '/events/extra'],
      ['POST', '/trigger/extra'],
      ['GET', '/assets/missing.js'],
      ['DELETE', '/'],
    ] as const) {
      const answer = await send(`${hub.url}${path}`, { method });
      assertAnswerError(answer, 404, 'HERALD_ERR_NOT_FOUND', `${method} ${path}`);
    }
  });
});

test('a path starting with // is an unknown path, not a host: 404, nothing published', async () => {
  await withHub({}, async (hub) => {
    for (const [method, path] of [
      ['POST', '//nope/trigger'],
      ['GET', '//trigger'],
      ['GET', '//nope/health'],
    ] as const) {
      const answer = await send(`${hub.url}${path}`, {
        method,
        ...(method === 'POST' ? { body: '{"data":"via //"}', headers: { 'Content-Type': 'application/json' } } : {}),
      });
      assertAnswerError(answer, 404, 'HERALD_ERR_NOT_FOUND', `${method} ${path}`);
    }
    assert.equal((await healthOf(hub.url)).history.size, 0, 'POST //nope/trigger published nothing');
  });
});

// ---------------------------------------------------------------------------
// /health and the page

test('GET /health: 200 JSON with status, uptime, connections (= open streams) and version', async () => {
  await withHub({}, async (hub) => {
    const response = await fetch(`${hub.url}/health`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json\b/);
    const first = (await response.json()) as any;
    assert.equal(first.status, 'ok');
    assert.equal(typeof first.uptime, 'number');
    assert.ok(Number.isFinite(first.uptime) && first.uptime >= 0);
    assert.equal(first.connections, 0);
    assert.equal(first.version, PACKAGE_VERSION);

    const a = await SseTap.open(hub.url);
    const b = await SseTap.open(hub.url, '/events?topic=x');
    try {
      assert.equal((await healthOf(hub.url)).connections, 2);
      a.close();
      await hub.watch.until(() => hub.watch.disconnects.length === 1, 'the first stream to close');
      assert.equal((await healthOf(hub.url)).connections, 1, '/health counts the closed stream out');
      b.close();
      await hub.watch.until(() => hub.watch.disconnects.length === 2, 'the second stream to close');
      assert.equal((await healthOf(hub.url)).connections, 0);
    } finally {
      a.close();
      b.close();
    }
  });
});

test('GET / serves an HTML page whose module script reads the stream with herald/client, served beside it', async () => {
  await withHub({}, async (hub) => {
    const page = await fetch(`${hub.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html\b/);
    const html = await page.text();
    assert.match(html, /<!doctype html>/i);
    const src = /<script[^>]*\ssrc="([^"]+)"/i.exec(html)?.[1];
    assert.ok(src !== undefined, 'the page loads a script');
    const scriptUrl = new URL(src, `${hub.url}/`);
    assert.equal(scriptUrl.pathname, '/assets/app.js');
    const script = await fetch(scriptUrl);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /javascript/);
    const code = await script.text();
    assert.match(html, /<script type="module"/, 'a module: it imports the client');
    const imported = /from '([^']+client\.js)'/.exec(code)?.[1];
    assert.ok(imported !== undefined, 'the page imports herald/client');
    assert.match(code, /\bconnect\(/);
    const client = await fetch(new URL(imported, scriptUrl));
    assert.equal(client.status, 200);
    assert.match(await client.text(), /export function connect\(/);
  });
});

// ---------------------------------------------------------------------------
// The library

/** Subscribes at `base`/events, publishes through `base`/trigger (JSON, batch, text) and from code; checks delivery. */
async function exercise(base: string, herald: Herald, what: string): Promise<void> {
  const tap = await SseTap.open(base, '/events?topic=orders/*');
  const all = await SseTap.open(base, '/events');
  try {
    assert.equal(tap.status, 200, `${what}: stream status`);
    assert.equal(tap.headers['content-type'], 'text/event-stream; charset=utf-8', `${what}: stream type`);
    const single = await trigger(base, { event: 'order', topic: 'orders/1', data: { n: 1 } });
    assert.equal(single.status, 202, `${what}: single ${JSON.stringify(single.body)}`);
    const batch = await trigger(base, [
      { topic: 'orders/2', data: 2 },
      { topic: 'users/1', data: 'not for orders' },
      { event: 'order', topic: 'orders/3', data: 3 },
    ]);
    assert.equal(batch.status, 202, `${what}: batch ${JSON.stringify(batch.body)}`);
    const text = await trigger(base, 'line 1\nline 2', { contentType: 'text/plain', query: '?event=note&topic=orders/4' });
    assert.equal(text.status, 202, `${what}: text ${JSON.stringify(text.body)}`);
    const fromCode = await herald.publish({ event: 'code', topic: 'orders/5', data: { from: 'code' } });
    const textFromCode = await herald.publishText('raw\r\ntext', { topic: 'orders/6' });
    await tap.waitForEvents(6);
    assert.deepEqual(
      tap.events.map((e) => [e.id, e.event, e.data]),
      [
        [single.body.id, 'order', '{"n":1}'],
        [batch.body[0].id, undefined, '2'],
        [batch.body[2].id, 'order', '3'],
        [text.body.id, 'note', 'line 1\nline 2'],
        [fromCode.id, 'code', '{"from":"code"}'],
        [textFromCode.id, undefined, 'raw\ntext'],
      ],
      `${what}: the subscriber gets every matching event`,
    );
    await all.waitForEvents(7);
    assert.equal(all.events[2]?.data, '"not for orders"');
    // Errors come back as the hub's JSON through the framework too.
    assertAnswerError(await post(base, '[]', 'application/json'), 400, 'HERALD_ERR_EMPTY_BATCH', `${what}: empty batch`);
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as any).connections, 2, `${what}: health through the framework`);
  } finally {
    tap.close();
    all.close();
  }
}

test('library: createHub() + hub.handler in a plain node:http server; hub.publish() reaches HTTP subscribers', async () => {
  const herald = createHub({ heartbeat: 0, routes: ['health'] });
  const server = createServer(herald.handler);
  const url = await listenOn(server);
  try {
    await exercise(url, herald, 'node:http');
    const notFound = await send(`${url}/elsewhere`, {});
    assertAnswerError(notFound, 404, 'HERALD_ERR_NOT_FOUND');
  } finally {
    await herald.close();
    await closeServer(server);
  }
});

for (const withJsonParser of [false, true]) {
  test(`library: Express 5, app.use('/herald', hub.handler)${withJsonParser ? ' after app.use(express.json())' : ''}`, async () => {
    const herald = createHub({ heartbeat: 0, routes: ['health'] });
    const app = express();
    if (withJsonParser) app.use(express.json());
    app.post('/echo', (req, res) => {
      res.json({ echoed: req.body ?? null });
    });
    app.use('/herald', herald.handler);
    const server = createServer(app);
    const url = await listenOn(server);
    try {
      await exercise(`${url}/herald`, herald, withJsonParser ? 'express + express.json()' : 'express');
      // The application's own routes keep working next to the hub.
      const echo = await send(`${url}/echo`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"a":1}' });
      assert.equal(echo.status, 200);
      assert.deepEqual(JSON.parse(echo.text), { echoed: withJsonParser ? { a: 1 } : null });
      // Unknown paths under the mount go on to Express (its 404), not swallowed by the hub.
      const unknown = await send(`${url}/herald/elsewhere`, {});
      assert.equal(unknown.status, 404);
    } finally {
      await herald.close();
      await closeServer(server);
    }
  });
}

test('library: a middleware that sets req.body without reading the body (as Express 4 body-parser does) changes nothing', async () => {
  const herald = createHub({ heartbeat: 0, routes: ['health'] });
  const app = express();
  // body-parser 1.x initialises req.body = {} for every request it does not parse; frameworks may call next() later.
  app.use((req, _res, next) => {
    (req as { body?: unknown }).body ??= {};
    setTimeout(next, 20);
  });
  app.use('/herald', herald.handler);
  const server = createServer(app);
  const url = await listenOn(server);
  const tap = await SseTap.open(`${url}/herald`);
  try {
    const text = await trigger(`${url}/herald`, 'hello', { contentType: 'text/plain' });
    assert.equal(text.status, 202, JSON.stringify(text.body));
    const json = await trigger(`${url}/herald`, { data: 1 });
    assert.equal(json.status, 202, JSON.stringify(json.body));
    await tap.waitForEvents(2);
    assert.deepEqual(tap.events.map((e) => e.data), ['hello', '1'], 'the bodies sent, not the placeholder req.body');
  } finally {
    tap.close();
    await herald.close();
    await closeServer(server);
  }
});

test("library: Fastify 5, an encapsulated plugin at prefix /herald that hijacks every request to hub.handler", async () => {
  const herald = createHub({ heartbeat: 0, basePath: '/herald', routes: ['health'] });
  const app = Fastify();
  await app.register(
    async (scope) => {
      // The hub reads its own bodies: no parser may consume them first.
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
      scope.all('/*', (request, reply) => {
        reply.hijack();
        herald.handler(request.raw, reply.raw);
      });
    },
    { prefix: '/herald' },
  );
  // The rest of the application keeps Fastify's own JSON parsing.
  app.post('/echo', async (request) => ({ echoed: request.body }));
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    await exercise(`${url}/herald`, herald, 'fastify');
    const echo = await send(`${url}/echo`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"a":1}' });
    assert.equal(echo.status, 200);
    assert.deepEqual(JSON.parse(echo.text), { echoed: { a: 1 } });
    assertAnswerError(await send(`${url}/herald/elsewhere`, {}), 404, 'HERALD_ERR_NOT_FOUND', 'fastify: unknown path under the prefix');
  } finally {
    await herald.close();
    await app.close();
  }
});
