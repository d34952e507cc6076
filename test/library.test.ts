/**
 * Herald as a library: what importing it loads, its entry points and
 * exports, the `routes` option, and the HTTP layer's handling of requests
 * that go wrong (a publisher who leaves mid-body, a replay the log cannot
 * serve, a target that is not a URL, a publisher refused before its body).
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import express from 'express';
import {
  createHub,
  isHeraldError,
  MemoryEventLog,
  mintToken,
  type CloseReason,
  type EventLog,
  type Logger,
  type ReadPage,
} from '../src/index.js';
import { rawRequest, SseTap, startHub, Waiters } from './support/helpers.js';

const DIR = mkdtempSync(join(tmpdir(), 'herald-library-'));
after(() => rmSync(DIR, { recursive: true, force: true }));

/** Runs an ES module script in a fresh Node process from the project root; returns what it printed. */
function runModule(source: string): string {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', source], { cwd: new URL('../..', import.meta.url), encoding: 'utf8', timeout: 30_000 });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim();
}

/** The packages a script has loaded so far (CommonJS packages land in require.cache, imported or required). */
const LOADED = `
const { createRequire } = await import('node:module');
const cache = createRequire(import.meta.url).cache;
const loaded = () => [...new Set(Object.keys(cache).filter((f) => f.includes('node_modules/')).map((f) => f.split('node_modules/').pop().split('/')[0]))].sort();
`;

test("import 'herald' loads no optional engine: SQLite, Redis and pino only when the options ask for them", () => {
  const printed = runModule(`${LOADED}
const herald = await import('herald');
const atImport = loaded();
const memory = herald.createHub({ heartbeat: 0 });
await memory.ready();
await memory.close();
const withMemory = loaded();
const store = herald.createHub({ heartbeat: 0, store: ${JSON.stringify(join(DIR, 'lazy.db'))} });
await store.ready();
await store.close();
console.log(JSON.stringify({ atImport, withMemory, withStore: loaded() }));
`);
  const { atImport, withMemory, withStore } = JSON.parse(printed) as Record<string, string[]>;
  for (const heavy of ['better-sqlite3', 'ioredis', 'pino', 'pino-pretty']) {
    assert.ok(!atImport!.includes(heavy), `import 'herald' loaded ${heavy}: ${atImport}`);
    assert.ok(!withMemory!.includes(heavy), `an in-memory hub loaded ${heavy}: ${withMemory}`);
  }
  assert.ok(withStore!.includes('better-sqlite3'), `a hub with a store loads SQLite: ${withStore}`);
  assert.ok(!withStore!.includes('ioredis'), 'but not Redis');
});

test('the entry points: herald/sqlite and herald/redis export their logs; a log of one\'s own plugs in', async () => {
  const printed = runModule(`
const { SqliteEventLog } = await import('herald/sqlite');
const { RedisEventLog, MIN_STREAM_LENGTH } = await import('herald/redis');
const { createHub } = await import('herald');
const log = new SqliteEventLog({ path: ${JSON.stringify(join(DIR, 'entry.db'))}, capacity: 100, maxAgeMs: 0 });
const hub = createHub({ heartbeat: 0 }, { eventLog: log });
const { id } = await hub.publish({ topic: 'a', data: 1 });
const stats = log.stats();
await hub.close();
console.log(JSON.stringify({ sqlite: typeof SqliteEventLog, redis: typeof RedisEventLog, min: MIN_STREAM_LENGTH, id, size: stats.size, newest: stats.newestId }));
`);
  const result = JSON.parse(printed) as Record<string, unknown>;
  assert.equal(result.sqlite, 'function');
  assert.equal(result.redis, 'function');
  assert.equal(typeof result.min, 'number');
  assert.equal(result.size, 1);
  assert.equal(result.newest, result.id, 'the hub published into the log it was given');
});

test('the package exports what a backend needs: isHeraldError and mintToken (tokens the hub then accepts)', async () => {
  const key = 'k'.repeat(32);
  const hub = await startHub({ jwtKey: key });
  try {
    const token = await mintToken({ key, publish: ['orders/*'], ttlSeconds: 60 });
    const answer = await fetch(`${hub.url}/trigger`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ topic: 'orders/1', data: 1 }),
    });
    assert.equal(answer.status, 202);
    await assert.rejects(hub.herald.listen(0, '127.0.0.1'), (error: unknown) => isHeraldError(error) && error.code === 'HERALD_ERR_INVALID_STATE');
    assert.equal(isHeraldError(new Error('plain')), false);
  } finally {
    await hub.close();
  }
});

test('routes: the library serves only /events and /trigger unless asked; at the root of an app the rest is the app\'s', async () => {
  const herald = createHub({ heartbeat: 0 });
  const app = express();
  app.use(herald.handler);
  app.get('/', (_req, res) => void res.send('the app'));
  app.get('/health', (_req, res) => void res.json({ app: 'ok' }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    assert.equal(await (await fetch(`${base}/`)).text(), 'the app');
    assert.deepEqual(await (await fetch(`${base}/health`)).json(), { app: 'ok' });
    for (const path of ['/dashboard', '/metrics', '/dashboard/stream', '/assets/app.js']) assert.equal((await fetch(`${base}${path}`)).status, 404, path);
    const tap = await SseTap.open(base, '/events');
    assert.equal(tap.status, 200, 'the hub still serves its streams');
    tap.close();
  } finally {
    server.close();
    await herald.close();
  }
  const some = await startHub({ routes: ['health', 'metrics'] });
  try {
    assert.equal((await fetch(`${some.url}/health`)).status, 200);
    assert.equal((await fetch(`${some.url}/metrics`)).status, 200);
    const page = await fetch(`${some.url}/`);
    assert.equal(page.status, 404);
    assert.match(((await page.json()) as { error: { message: string } }).error.message, /GET \/health/, 'the 404 names what is served');
    assert.equal((await fetch(`${some.url}/dashboard`)).status, 404);
    assert.equal((await fetch(`${some.url}/client.js`)).status, 404, 'the client is served with the page');
  } finally {
    await some.close();
  }
});

test('GET /client.js serves herald/client as built, and the module it imports beside it, without source-map comments', async () => {
  const hub = await startHub({ routes: ['page'] });
  try {
    for (const [path, exported] of [['/client.js', /export function connect\(/], ['/parser.js', /export function createParser\(/]] as const) {
      const response = await fetch(`${hub.url}${path}`);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-type') ?? '', /^text\/javascript/);
      const text = await response.text();
      assert.match(text, exported, path);
      assert.doesNotMatch(text, /sourceMappingURL/, 'no pointer to a file the hub does not serve');
    }
    // The client's own import resolves where the hub serves it.
    assert.match(await (await fetch(`${hub.url}/client.js`)).text(), /from '\.\/parser\.js'/);
  } finally {
    await hub.close();
  }
});

/** A logger that remembers what it was told, with a wait on it. */
function recordingLogger(): { logger: Logger; lines: { level: string; fields: unknown; message: unknown }[]; waiters: Waiters } {
  const lines: { level: string; fields: unknown; message: unknown }[] = [];
  const waiters = new Waiters();
  const at = (level: string) => (fields: unknown, message?: unknown) => {
    lines.push({ level, fields, message });
    waiters.notify();
  };
  const logger = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: () => logger } as Logger;
  return { logger, lines, waiters };
}

test('a publisher that leaves in the middle of its body: nothing stored, no 500, no error logged', async () => {
  const { logger, lines, waiters } = recordingLogger();
  const herald = createHub({ heartbeat: 0 }, { logger });
  const { port } = await herald.listen(0, '127.0.0.1');
  try {
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('POST /trigger HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"data": "par');
    // Once the hub reads the body, the client gives up.
    await new Promise((resolve) => setImmediate(resolve));
    socket.destroy();
    await waiters.until(() => lines.some((line) => (line.fields as { code?: string })?.code === 'HERALD_ERR_REQUEST_ABORTED'), 'the abort to be noted', 10_000, () => JSON.stringify(lines));
    assert.deepEqual(lines.filter((line) => line.level === 'error'), [], 'an aborted request is no failure of the hub');
    assert.equal(herald.counters().published, 0);
  } finally {
    await herald.close();
  }
});

test('a replay the log cannot serve ends the stream, counted as replay-failed, not client-closed', async () => {
  const inner = new MemoryEventLog({ capacity: 10 });
  let failReads = true;
  const log: EventLog = {
    shared: false,
    append: (drafts) => inner.append(drafts),
    read: async (request): Promise<ReadPage> => {
      if (failReads) throw new Error('the disk is gone');
      return inner.read(request);
    },
    tail: (listener) => inner.tail(listener),
    stats: () => inner.stats(),
    close: () => inner.close(),
  };
  const reasons: CloseReason[] = [];
  const herald = createHub({ heartbeat: 0, routes: ['metrics'] }, { eventLog: log });
  herald.hub.observe({ disconnected: (_subscriber, reason) => reasons.push(reason) });
  const { url } = await herald.listen(0, '127.0.0.1');
  try {
    const { id } = await herald.publish({ data: 1 });
    const tap = await SseTap.open(url, '/events', { 'Last-Event-ID': id });
    await tap.waitForEnd();
    assert.equal(tap.status, 200, 'the stream had opened (the client reconnects, it is not told to give up)');
    assert.deepEqual(reasons, ['replay-failed']);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /herald_stream_disconnects_total\{reason="replay-failed"[^}]*\} 1/);
    failReads = false;
    const again = await SseTap.open(url, '/events', { 'Last-Event-ID': id });
    const { id: next } = await herald.publish({ data: 2 });
    await again.waitForEvents(1);
    assert.equal(again.events[0]!.id, next, 'once the log serves again, the resume works');
    again.close();
  } finally {
    await herald.close();
  }
});

test('a request target that is not a URL is a 400 with the request id, not a 404', async () => {
  const hub = await startHub();
  const user = createHub({ heartbeat: 0 });
  const server = createServer(user.handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    for (const port of [hub.port, (server.address() as AddressInfo).port]) {
      const answer = await rawRequest(port, 'GET http://[oops/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(answer, /^HTTP\/1\.1 400 /, answer);
      assert.match(answer, /"code":"HERALD_ERR_BAD_REQUEST"/);
      assert.match(answer, /\r\nX-Request-Id: \S+\r\n/i);
    }
  } finally {
    await hub.close();
    await user.close();
    server.close();
  }
});

test('a publisher without a valid token, or out of rate, is refused from the head: its body is never awaited', async () => {
  const refusedBeforeBody = async (port: number, head: string): Promise<string> => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('latin1');
    await new Promise((resolve) => socket.once('connect', resolve));
    // A head announcing a megabyte, and not one byte of it sent: the answer must come all the same.
    socket.write(head);
    await new Promise<void>((resolve, reject) => {
      socket.on('data', (chunk: string) => {
        answer += chunk;
        if (answer.includes('\r\n\r\n') && /\}$/.test(answer)) resolve();
      });
      socket.once('close', () => (answer === '' ? reject(new Error('closed without an answer')) : resolve()));
    });
    socket.destroy();
    return answer;
  };
  const body = 'Content-Type: application/json\r\nContent-Length: 1000000\r\n';
  const keyed = await startHub({ jwtKey: 's'.repeat(32) });
  try {
    const answer = await refusedBeforeBody(keyed.port, `POST /trigger HTTP/1.1\r\nHost: x\r\n${body}\r\n`);
    assert.match(answer, /^HTTP\/1\.1 401 /);
    assert.match(answer, /HERALD_ERR_UNAUTHORIZED/);
  } finally {
    await keyed.close();
  }
  const limited = await startHub({ publishRate: 1, publishBurst: 1 });
  try {
    assert.equal((await fetch(`${limited.url}/trigger`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"data":1}' })).status, 202);
    const answer = await refusedBeforeBody(limited.port, `POST /trigger HTTP/1.1\r\nHost: x\r\n${body}\r\n`);
    assert.match(answer, /^HTTP\/1\.1 429 /);
    assert.match(answer, /\r\nRetry-After: \d+\r\n/);
  } finally {
    await limited.close();
  }
});
