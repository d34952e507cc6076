/**
 * HTTPS with `--tls-cert`/`--tls-key`: HTTP/2 by ALPN and HTTP/1.1 fallback,
 * the same contract over both, against real servers on port 0 with
 * `node:http2`, `node:https`, raw TLS sockets and Chromium.
 *
 * A self-signed certificate for 127.0.0.1 and localhost is made with the
 * `openssl` command at start. Without `openssl` (or Chromium, for the
 * browser test) the tests are skipped with a printed reason, except when `CI`
 * is set: then they fail.
 */

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as connectHttp2, constants as http2, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { connect as connectTcp, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { after, describe, test } from 'node:test';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { createHub, type Herald, type HeraldOptions } from '../src/index.js';
import { HeraldError } from '../src/errors.js';
import { closeChromium, chromiumSkip, launchChromium } from './support/chromium.js';
import { CLI_PATH, Waiters, watchHub, within, type HubWatch } from './support/helpers.js';

// The callbacks given to page.evaluate() run in the page; this project compiles without the DOM types.
declare const window: any;
declare const performance: any;
declare const EventSource: any;

// ---------------------------------------------------------------------------
// A certificate for 127.0.0.1 and localhost, made once for the whole file.

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const opensslMissing = !hasOpenssl();
const skipTls = opensslMissing && !process.env.CI ? 'no openssl command to make a test certificate (apt-get install openssl); set CI to make this a failure' : false;
if (skipTls !== false) console.log(`# HTTPS tests skipped: ${skipTls}`);

const DIR = mkdtempSync(join(tmpdir(), 'herald-tls-'));
const CERT_FILE = join(DIR, 'cert.pem');
const KEY_FILE = join(DIR, 'key.pem');
const OTHER_KEY_FILE = join(DIR, 'other-key.pem');
const NOT_PEM_FILE = join(DIR, 'not-pem.txt');

if (!opensslMissing) {
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', KEY_FILE, '-out', CERT_FILE, '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', OTHER_KEY_FILE], { stdio: 'ignore' });
  writeFileSync(NOT_PEM_FILE, 'this is not a certificate\n');
}
const CA = opensslMissing ? Buffer.alloc(0) : readFileSync(CERT_FILE);

after(() => rmSync(DIR, { recursive: true, force: true }));

// ---------------------------------------------------------------------------
// Servers and clients.

interface TlsHub {
  readonly herald: Herald;
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** What the hub reported since it started. */
  readonly watch: HubWatch;
  /** The TCP connections the listening server accepted and still holds. */
  readonly connections: ServerConnections;
}

/** A hub serving HTTPS on 127.0.0.1 and a free port; closed afterwards, whatever happens. */
async function withTlsHub(options: HeraldOptions, body: (hub: TlsHub) => Promise<void>): Promise<void> {
  const herald = createHub({ heartbeat: 0, routes: 'all', tlsCert: CERT_FILE, tlsKey: KEY_FILE, ...options });
  const watch = watchHub(herald);
  const { url, port, server } = await herald.listen(0, '127.0.0.1');
  const connections = new ServerConnections(server);
  try {
    await body({ herald, url, port, server, watch, connections });
  } finally {
    await herald.close();
  }
}

/** TCP connections the listening server holds right now. */
function connectionsOf(server: Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}

/** Counts a server's TCP connections as they are accepted and as their sockets close. */
class ServerConnections {
  open = 0;
  private readonly waiters = new Waiters();

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.open++;
      socket.once('close', () => {
        this.open--;
        this.waiters.notify();
      });
    });
  }

  /** Resolves once the server holds no connection; fails after `timeoutMs`. */
  untilNone(what: string, timeoutMs = 10_000): Promise<void> {
    return this.waiters.until(() => this.open === 0, what, timeoutMs, () => `it still holds ${this.open}`);
  }
}

function openSession(url: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connectHttp2(url, { ca: CA });
    session.once('connect', () => {
      session.off('error', reject);
      session.on('error', () => {});
      resolve(session);
    });
    session.once('error', reject);
  });
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  readonly text: string;
  readonly json: any;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** One whole request on an HTTP/2 session. */
function h2Request(session: ClientHttp2Session, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'GET', ...headers }, { endStream: body === undefined });
    let status = 0;
    let responseHeaders: IncomingHttpHeaders = {};
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (received) => {
      status = Number(received[':status']);
      responseHeaders = received;
    });
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('end', () => resolve({ status, headers: responseHeaders, text, json: parseJson(text) }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

function h2Publish(session: ClientHttp2Session, body: unknown): Promise<Answer> {
  return h2Request(session, { ':method': 'POST', ':path': '/trigger', 'content-type': 'application/json' }, JSON.stringify(body));
}

/** One whole request over HTTPS/1.1 (`node:https`, no agent: a connection of its own). */
function httpsRequestOnce(url: string, path: string, { method = 'GET', headers = {}, body }: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer & { alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}${path}`, { method, headers, ca: CA, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: parseJson(text), alpn: (res.socket as TLSSocket).alpnProtocol }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The events of one stream, parsed by `eventsource-parser` (a spec-compliant
 * parser), with waits on what has arrived.
 */
class SseCollector {
  readonly events: EventSourceMessage[] = [];
  readonly comments: string[] = [];
  retry: number | undefined;
  raw = '';
  status = 0;
  headers: Record<string, unknown> = {};
  /** The body ended normally (END_STREAM, or the end of an HTTP/1.1 response). */
  ended = false;
  closed = false;
  /** HTTP/2: the RST_STREAM code the stream closed with (0: none, it ended normally). */
  rstCode: number | undefined;
  private readonly waiters = new Waiters();
  private readonly parser = createParser({
    onEvent: (event) => this.events.push(event),
    onComment: (comment) => this.comments.push(comment),
    onRetry: (retry) => (this.retry = retry),
  });

  feed(chunk: string): void {
    this.raw += chunk;
    this.parser.feed(chunk);
    this.notify();
  }

  notify(): void {
    this.waiters.notify();
  }

  until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return this.waiters.until(condition, what, timeoutMs, () => `status ${this.status}, ${this.events.length} events, ended ${this.ended}, closed ${this.closed}, raw tail ${JSON.stringify(this.raw.slice(-200))}`);
  }

  waitForEvents(count: number): Promise<void> {
    return this.until(() => this.events.length >= count, `${count} events`);
  }

  ids(): (string | undefined)[] {
    return this.events.map((event) => event.id);
  }
}

interface H2Tap extends SseCollector {
  readonly stream: ClientHttp2Stream;
}

/** Opens `GET path` on a session; resolves once the response head arrived. `read: false` never reads the body. */
function h2Stream(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}, { read = true } = {}): Promise<H2Tap> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, accept: 'text/event-stream', ...headers });
    const tap = Object.assign(new SseCollector(), { stream });
    stream.on('response', (received) => {
      tap.status = Number(received[':status']);
      tap.headers = received;
      resolve(tap);
    });
    if (read) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => tap.feed(chunk));
    }
    stream.on('end', () => {
      tap.ended = true;
      tap.notify();
    });
    stream.on('close', () => {
      tap.closed = true;
      tap.rstCode = stream.rstCode;
      tap.notify();
      reject(new Error(`the stream closed before its response (code ${stream.rstCode})`));
    });
    stream.on('error', () => {});
  });
}

/** Opens `GET path` over HTTPS/1.1 on a connection of its own; resolves once the response head arrived. */
function httpsStream(url: string, path: string, headers: Record<string, string> = {}): Promise<SseCollector & { close(): void }> {
  return new Promise((resolve, reject) => {
    const tap = new SseCollector();
    const req = httpsRequest(`${url}${path}`, { headers, ca: CA, agent: false }, (res) => {
      tap.status = res.statusCode ?? 0;
      tap.headers = res.headers;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => tap.feed(chunk));
      res.on('end', () => {
        tap.ended = true;
        tap.notify();
      });
      res.on('close', () => {
        tap.closed = true;
        tap.notify();
      });
      res.on('error', () => {});
      resolve(Object.assign(tap, { close: () => res.socket.destroy() }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A raw TLS connection (ALPN `http/1.1`); collects everything the server sends until it closes. */
function rawTls(port: number): Promise<{ socket: TLSSocket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port, ca: CA, ALPNProtocols: ['http/1.1'] });
    let received = '';
    const closed = new Promise<void>((resolveClosed) => socket.once('close', () => resolveClosed()));
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      resolve({ socket, received: () => received, closed });
    });
    socket.once('error', reject);
  });
}

/** Asserts a JSON error answer: its status, its code, and a JSON content type. */
function assertJsonError(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, answer.text);
  assert.match(String(answer.headers['content-type']), /^application\/json/);
  assert.equal(answer.json?.error?.code, code, answer.text);
  assert.equal(typeof answer.json.error.message, 'string');
}

/** The SSE response headers both protocols share. */
function assertStreamHeaders(headers: Record<string, unknown>): void {
  assert.equal(headers['content-type'], 'text/event-stream; charset=utf-8');
  assert.equal(headers['cache-control'], 'no-cache, no-transform');
  assert.equal(headers['x-accel-buffering'], 'no');
}

// ---------------------------------------------------------------------------

describe('TLS options', { skip: skipTls }, () => {
  function assertInvalidOption(fn: () => unknown, mustName: string[], mustNotContain: string[] = []): void {
    assert.throws(fn, (error: unknown) => {
      assert.ok(error instanceof HeraldError, `expected a HeraldError, got ${String(error)}`);
      assert.equal(error.code, 'HERALD_ERR_INVALID_OPTION');
      assert.ok(!/[\r\n]/.test(error.message), `one line: ${JSON.stringify(error.message)}`);
      for (const name of mustName) assert.ok(error.message.includes(name), `${JSON.stringify(error.message)} names ${name}`);
      for (const text of mustNotContain) assert.ok(!error.message.includes(text), `${JSON.stringify(error.message)} must not contain ${JSON.stringify(text)}`);
      return true;
    });
  }

  /** The base64 lines of a PEM file: none may ever appear in a message. */
  function pemLines(file: string): string[] {
    return readFileSync(file, 'utf8').split('\n').filter((line) => line.length > 20 && !line.startsWith('-----'));
  }

  test('a certificate needs its key and a key its certificate', () => {
    assertInvalidOption(() => createHub({ tlsCert: CERT_FILE }), ['tlsCert', '--tls-key', 'HERALD_TLS_KEY']);
    assertInvalidOption(() => createHub({ tlsKey: KEY_FILE }), ['tlsKey', '--tls-cert', 'HERALD_TLS_CERT']);
    // Neither is plain HTTP; both is HTTPS.
    assert.equal(createHub({ tlsCert: '', tlsKey: '' }).options.tlsCert, undefined, 'empty text is unset');
    const both = createHub({ tlsCert: CERT_FILE, tlsKey: KEY_FILE });
    assert.deepEqual([both.options.tlsCert, both.options.tlsKey], [CERT_FILE, KEY_FILE]);
  });

  test('missing, unreadable or unsuitable files are one-line errors naming the option, never quoting the files', () => {
    const secret = pemLines(KEY_FILE);
    assert.ok(secret.length > 0);
    assertInvalidOption(() => createHub({ tlsCert: join(DIR, 'missing.pem'), tlsKey: KEY_FILE }), ['option "tlsCert"', 'ENOENT']);
    assertInvalidOption(() => createHub({ tlsCert: CERT_FILE, tlsKey: DIR }), ['option "tlsKey"', 'EISDIR']);
    // The files swapped: the key is read as a certificate, and its text must not leak into the message.
    assertInvalidOption(() => createHub({ tlsCert: KEY_FILE, tlsKey: CERT_FILE }), ['option "tlsCert"', 'no PEM certificate'], secret);
    assertInvalidOption(() => createHub({ tlsCert: CERT_FILE, tlsKey: NOT_PEM_FILE }), ['option "tlsKey"', 'no PEM private key'], ['this is not']);
    assertInvalidOption(() => createHub({ tlsCert: CERT_FILE, tlsKey: OTHER_KEY_FILE }), ['option "tlsKey"', 'not the private key of', 'option "tlsCert"'], pemLines(OTHER_KEY_FILE));
  });

  test('the herald command names the flag or env var it was given, exits 2, and prints no file contents', async () => {
    const onlyCert = await runCli(['--tls-cert', CERT_FILE]);
    assert.equal(onlyCert.code, 2);
    assert.match(onlyCert.stderr, /^herald: --tls-cert needs its private key: --tls-key, HERALD_TLS_KEY or option "tlsKey" \(HTTPS takes both or neither\)\n$/);
    const swapped = await runCli([], { HERALD_TLS_CERT: KEY_FILE, HERALD_TLS_KEY: CERT_FILE });
    assert.equal(swapped.code, 2);
    assert.match(swapped.stderr, /^herald: invalid HERALD_TLS_CERT: .* holds no PEM certificate/);
    assert.equal(swapped.stderr.split('\n').length, 2, `one line: ${swapped.stderr}`);
    for (const line of pemLines(KEY_FILE)) assert.ok(!swapped.stderr.includes(line) && !swapped.stdout.includes(line), 'the key never appears in the output');
    const unreadable = await runCli(['--tls-key', join(DIR, 'nope.pem')], { HERALD_TLS_CERT: CERT_FILE });
    assert.equal(unreadable.code, 2);
    assert.match(unreadable.stderr, /^herald: invalid --tls-key: cannot read ".*nope\.pem" \(ENOENT\)\n$/);
  });

  test('the herald command prints an https:// URL when it is ready, serves HTTP/2 there, and stops cleanly', async () => {
    const child = spawn(process.execPath, [CLI_PATH, '--host', '127.0.0.1', '--port', '0', '--tls-cert', CERT_FILE, '--tls-key', KEY_FILE], {
      env: cleanEnv({}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    try {
      let output = '';
      const waiters = new Waiters();
      for (const pipe of [child.stdout!, child.stderr!]) pipe.on('data', (chunk: Buffer) => ((output += chunk.toString()), waiters.notify()));
      void exited.then(() => waiters.notify());
      await waiters.until(() => /listening on \S+/.test(output) || child.exitCode !== null, 'the ready line', 15_000, () => output);
      const url = /listening on (\S+)/.exec(output)?.[1] ?? '';
      assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/, output);
      const session = await openSession(url);
      assert.equal(session.alpnProtocol, 'h2');
      const health = await h2Request(session, { ':path': '/health' });
      assert.equal(health.status, 200);
      assert.equal(health.json.status, 'ok');
      session.close();
      child.kill('SIGTERM');
      assert.equal(await within(exited, 'herald to exit after SIGTERM'), 0, output);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  // The developer's own HERALD_* settings must not change the servers tests start.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(HERALD_|PORT$|HOST$)/.test(name)));
  return { ...inherited, ...env };
}

function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, '--port', '0', ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`herald ${args.join(' ')} did not exit: ${stdout}${stderr}`));
    }, 15_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------

describe('HTTP/2', { skip: skipTls }, () => {
  test('GET /events: 200, the SSE headers without connection-specific ones, then retry and the hello comment', async () => {
    await withTlsHub({ retry: '2s' }, async ({ url }) => {
      const session = await openSession(url);
      assert.equal(session.alpnProtocol, 'h2', 'ALPN chose HTTP/2');
      const tap = await h2Stream(session, '/events');
      assert.equal(tap.status, 200);
      assertStreamHeaders(tap.headers);
      // RFC 9113 §8.2.2: connection-specific fields are malformed on HTTP/2 (the client would reset the stream).
      for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade']) assert.equal(tap.headers[name], undefined, name);
      assert.equal(typeof tap.headers['x-request-id'], 'string');
      await tap.until(() => tap.comments.includes('connected'), 'the hello comment');
      assert.equal(tap.retry, 2000);
      assert.equal(tap.raw, 'retry: 2000\n: connected\n\n');
      session.close();
    });
  });

  test('POST /trigger over HTTP/2 publishes JSON and text; subscribers receive them with their ids, types and topics', async () => {
    await withTlsHub({}, async ({ url }) => {
      const session = await openSession(url);
      const everything = await h2Stream(session, '/events');
      const orders = await h2Stream(session, '/events?topic=orders/*');
      const json = await h2Publish(session, { event: 'order.paid', topic: 'orders/42', data: { total: 19.9 } });
      assert.equal(json.status, 202, json.text);
      assert.match(json.json.id, /^\d+-\d+$/);
      const text = await h2Request(
        session,
        { ':method': 'POST', ':path': '/trigger?event=log&topic=build/7', 'content-type': 'text/plain' },
        'line one\r\nline two',
      );
      assert.equal(text.status, 202, text.text);
      const batch = await h2Publish(session, [{ data: 1 }, { topic: 'orders/7', data: 2 }]);
      assert.equal(batch.status, 202);
      assert.equal(batch.json.length, 2);
      await everything.waitForEvents(4);
      assert.deepEqual(everything.events, [
        { id: json.json.id, event: 'order.paid', data: '{"total":19.9}' },
        { id: text.json.id, event: 'log', data: 'line one\nline two' },
        { id: batch.json[0].id, event: undefined, data: '1' },
        { id: batch.json[1].id, event: undefined, data: '2' },
      ]);
      await orders.waitForEvents(2);
      assert.deepEqual(orders.ids(), [json.json.id, batch.json[1].id], 'only its topics');
      session.close();
    });
  });

  test('Mercure over HTTP/2: a stream with a URI template and a token, a form publish with a chosen id, a private update, resume by that id', async () => {
    const key = '!ChangeThisMercureHubJWTSecretKey!';
    const { SignJWT } = await import('jose');
    const token = await new SignJWT({ mercure: { publish: ['*'], subscribe: ['https://example.com/books/{id}'] } })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(key));
    await withTlsHub({ jwtKey: key }, async ({ url }) => {
      const session = await openSession(url);
      const path = `/.well-known/mercure?topic=${encodeURIComponent('https://example.com/books/{id}')}`;
      const stream = await h2Stream(session, path, { authorization: `Bearer ${token}` });
      assert.equal(stream.status, 200);
      assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
      const publish = (fields: [string, string][]): Promise<Answer> =>
        h2Request(
          session,
          { ':method': 'POST', ':path': '/.well-known/mercure', 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${token}` },
          new URLSearchParams(fields).toString(),
        );
      const first = await publish([['topic', 'https://example.com/books/1'], ['id', 'urn:example:1'], ['data', 'one']]);
      assert.equal(first.status, 200, first.text);
      assert.equal(first.text, 'urn:example:1');
      const secret = await publish([['topic', 'https://example.com/books/2'], ['data', 'two'], ['private', 'on']]);
      assert.equal(secret.status, 200, secret.text);
      await stream.waitForEvents(2);
      assert.deepEqual(stream.events.map((event) => [event.id, event.data]), [['urn:example:1', 'one'], [secret.text, 'two']]);
      // A second stream on the same connection resumes after the chosen id: the private update, by its token.
      const resumed = await h2Stream(session, path, { authorization: `Bearer ${token}`, 'last-event-id': 'urn:example:1' });
      assert.equal(resumed.headers['last-event-id'], 'urn:example:1');
      await resumed.waitForEvents(1);
      assert.deepEqual(resumed.ids(), [secret.text]);
      session.close();
    });
  });

  test('resume with Last-Event-ID (header and query): the retained events after it, then live ones, no gap, no duplicate', async () => {
    await withTlsHub({}, async ({ url, herald }) => {
      const session = await openSession(url);
      const ids: string[] = [];
      for (let i = 1; i <= 3; i++) ids.push((await h2Publish(session, { topic: 'a', data: i })).json.id);
      const byHeader = await h2Stream(session, '/events?topic=a', { 'last-event-id': ids[0]! });
      const byQuery = await h2Stream(session, `/events?topic=a&lastEventId=${ids[1]!}`);
      await byHeader.waitForEvents(2);
      await byQuery.waitForEvents(1);
      const live = (await herald.publish({ topic: 'a', data: 4 })).id;
      await byHeader.waitForEvents(3);
      await byQuery.waitForEvents(2);
      assert.deepEqual(byHeader.ids(), [ids[1], ids[2], live]);
      assert.deepEqual(byQuery.ids(), [ids[2], live]);
      assert.deepEqual(byHeader.events.map((event) => event.data), ['2', '3', '4']);
      // An id the hub cannot place: herald-resync, then live events only.
      const unknown = await h2Stream(session, '/events?topic=a', { 'last-event-id': '99999999999999-0' });
      await unknown.waitForEvents(1);
      assert.equal(unknown.events[0]!.event, 'herald-resync');
      assert.equal(JSON.parse(unknown.events[0]!.data).reason, 'unknown');
      session.close();
    });
  });

  test('heartbeats reach an idle HTTP/2 stream', async () => {
    await withTlsHub({ heartbeat: '100ms' }, async ({ url }) => {
      const session = await openSession(url);
      const tap = await h2Stream(session, '/events');
      await tap.until(() => tap.comments.filter((comment) => comment === 'heartbeat').length >= 2, 'two heartbeats');
      assert.equal(tap.events.length, 0);
      assert.equal(tap.ended, false, 'the stream stays open');
      session.close();
    });
  });

  test('GET /health over HTTP/2 counts the open streams', async () => {
    await withTlsHub({}, async ({ url }) => {
      const session = await openSession(url);
      await h2Stream(session, '/events');
      await h2Stream(session, '/events?topic=x');
      const health = await h2Request(session, { ':path': '/health' });
      assert.equal(health.status, 200);
      assert.match(String(health.headers['content-type']), /^application\/json/);
      assert.equal(health.json.status, 'ok');
      assert.equal(health.json.connections, 2);
      const head = await h2Request(session, { ':method': 'HEAD', ':path': '/health' });
      assert.equal(head.status, 200);
      assert.equal(head.text, '');
      session.close();
    });
  });

  test('errors are JSON over HTTP/2, with their status, code and headers', async () => {
    await withTlsHub({ maxBody: '1kb', maxTopics: 2 }, async ({ url }) => {
      const session = await openSession(url);
      assertJsonError(await h2Request(session, { ':path': '/nope' }), 404, 'HERALD_ERR_NOT_FOUND');
      const wrongMethod = await h2Request(session, { ':method': 'DELETE', ':path': '/events' });
      assertJsonError(wrongMethod, 405, 'HERALD_ERR_METHOD_NOT_ALLOWED');
      assert.equal(wrongMethod.headers.allow, 'GET');
      const json = { ':method': 'POST', ':path': '/trigger', 'content-type': 'application/json' };
      assertJsonError(await h2Request(session, json, '{not json'), 400, 'HERALD_ERR_INVALID_JSON');
      assertJsonError(await h2Request(session, json, JSON.stringify({ data: 'x'.repeat(2000) })), 413, 'HERALD_ERR_BODY_TOO_LARGE');
      assertJsonError(await h2Request(session, { ...json, 'content-type': 'image/png' }, 'x'), 415, 'HERALD_ERR_UNSUPPORTED_MEDIA_TYPE');
      assertJsonError(await h2Request(session, { ':path': '/events?topic=a/**/b' }), 400, 'HERALD_ERR_INVALID_SELECTOR');
      assertJsonError(await h2Request(session, { ':path': '/events?topic=a&topic=b&topic=c' }), 400, 'HERALD_ERR_INVALID_SELECTOR');
      assertJsonError(await h2Request(session, { ...json, expect: 'the-unexpected' }, '{"data":1}'), 417, 'HERALD_ERR_EXPECTATION_FAILED');
      // CONNECT arrives on HTTP/2 as a request with a response (RFC 9113 §8.5), not as a socket.
      const connect = await h2Request(session, { ':method': 'CONNECT', ':authority': 'example.com:443' });
      assertJsonError(connect, 405, 'HERALD_ERR_METHOD_NOT_ALLOWED');
      // Nothing of the failed publishes was stored.
      const health = await h2Request(session, { ':path': '/health' });
      assert.equal(health.json.published, 0);
      session.close();
    });
  });

  test('20 streams on ONE HTTP/2 connection all receive every event, in order', async () => {
    await withTlsHub({}, async ({ url, herald, server }) => {
      const session = await openSession(url);
      const taps = await Promise.all(Array.from({ length: 20 }, (_, i) => h2Stream(session, i % 2 === 0 ? '/events' : '/events?topic=room/**')));
      assert.ok(taps.every((tap) => tap.status === 200));
      assert.equal(herald.counters().connections, 20, 'twenty streams are open at once');
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const published = await h2Publish(session, { event: 'chat', topic: `room/${i}`, data: { n: i } });
        assert.equal(published.status, 202);
        ids.push(published.json.id);
      }
      await Promise.all(taps.map((tap) => tap.waitForEvents(5)));
      for (const [n, tap] of taps.entries()) {
        assert.deepEqual(tap.ids(), ids, `stream ${n}`);
        assert.deepEqual(tap.events.map((event) => event.data), [0, 1, 2, 3, 4].map((i) => `{"n":${i}}`));
      }
      assert.equal(await connectionsOf(server), 1, 'the streams and the publishes shared one TCP connection');
      assert.equal(herald.counters().delivered, 100);
      session.close();
    });
  });

  test('a stream that stops reading is reset past --max-buffer; the other streams of its connection go on', async () => {
    await withTlsHub({ maxBuffer: '16kb' }, async ({ url, herald }) => {
      const session = await openSession(url);
      const slow = await h2Stream(session, '/events?topic=bulk', {}, { read: false });
      const other = await h2Stream(session, '/events?topic=other');
      const filler = 'x'.repeat(8 * 1024);
      // The client's flow-control window (64 KB) and read buffer fill first; then the server's queue grows.
      for (let i = 0; i < 500 && herald.counters().dropped === 0; i++) {
        await herald.publish({ topic: 'bulk', data: filler });
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(herald.counters().dropped, 1, 'the slow stream was dropped');
      await slow.until(() => slow.closed, 'the slow stream to close');
      assert.equal(slow.rstCode, http2.NGHTTP2_CANCEL, 'reset with CANCEL, not ended as if complete');
      // Its neighbour on the same connection is untouched.
      const after = (await h2Publish(session, { topic: 'other', data: 'still here' })).json.id;
      await other.waitForEvents(1);
      assert.deepEqual(other.ids(), [after]);
      assert.equal(other.closed, false);
      assert.equal(session.destroyed, false, 'the connection stays');
      assert.equal(herald.counters().connections, 1);
      session.close();
    });
  });

  test('close() ends every stream with END_STREAM after the events published before it, then the connection with GOAWAY', async () => {
    const herald = createHub({ heartbeat: 0, routes: 'all', tlsCert: CERT_FILE, tlsKey: KEY_FILE });
    const { url, server } = await herald.listen(0, '127.0.0.1');
    let closed = false;
    try {
      const session = await openSession(url);
      let goaway = false;
      session.on('goaway', () => (goaway = true));
      const sessionClosed = new Promise<void>((resolve) => session.once('close', () => resolve()));
      const taps = await Promise.all(Array.from({ length: 5 }, () => h2Stream(session, '/events')));
      const https1 = await httpsStream(url, '/events');
      const last = (await h2Publish(session, { data: 'before close' })).json.id;
      await herald.close();
      closed = true;
      for (const tap of [...taps, https1]) {
        await tap.until(() => tap.ended && tap.closed, 'the stream to end');
        assert.deepEqual(tap.ids(), [last], 'the event published before close() arrived first');
      }
      assert.ok(taps.every((tap) => tap.rstCode === http2.NGHTTP2_NO_ERROR), `ended, not reset: ${taps.map((tap) => tap.rstCode).join(',')}`);
      await within(sessionClosed, 'the session to close');
      assert.equal(goaway, true, 'the server sent GOAWAY');
      assert.equal(await connectionsOf(server), 0);
      assert.equal(server.listening, false);
    } finally {
      if (!closed) await herald.close();
    }
  });
});

// ---------------------------------------------------------------------------

describe('HTTPS/1.1 fallback', { skip: skipTls }, () => {
  test('a client without h2 gets HTTP/1.1: stream headers, events, resume, publish and health', async () => {
    await withTlsHub({}, async ({ url }) => {
      const health = await httpsRequestOnce(url, '/health');
      assert.equal(health.alpn, false, 'node:https offers no ALPN: the server falls back to HTTP/1.1');
      assert.equal(health.status, 200);
      assert.equal(health.json.status, 'ok');

      const tap = await httpsStream(url, '/events?topic=t');
      assert.equal(tap.status, 200);
      assertStreamHeaders(tap.headers);
      // As on plain HTTP: the body is delimited by the connection's end, never chunked.
      assert.equal(tap.headers.connection, 'close');
      assert.equal(tap.headers['transfer-encoding'], undefined);

      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const published = await httpsRequestOnce(url, '/trigger', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ topic: 't', data: i }) });
        assert.equal(published.status, 202, published.text);
        ids.push(published.json.id);
      }
      await tap.waitForEvents(3);
      assert.deepEqual(tap.ids(), ids);
      assert.match(tap.raw, /^retry: 3000\n: connected\n\n/);

      const resumed = await httpsStream(url, '/events?topic=t', { 'Last-Event-ID': ids[0]! });
      await resumed.waitForEvents(2);
      assert.deepEqual(resumed.ids(), ids.slice(1));
      tap.close();
      resumed.close();
    });
  });

  test('errors are JSON over HTTPS/1.1, including those of the HTTP parser', async () => {
    await withTlsHub({}, async ({ url, port }) => {
      assertJsonError(await httpsRequestOnce(url, '/nope'), 404, 'HERALD_ERR_NOT_FOUND');
      const wrongMethod = await httpsRequestOnce(url, '/trigger');
      assertJsonError(wrongMethod, 405, 'HERALD_ERR_METHOD_NOT_ALLOWED');
      assert.equal(wrongMethod.headers.allow, 'POST');
      // Malformed HTTP inside TLS: the parser's error is answered as JSON, encrypted.
      const raw = await rawTls(port);
      assert.equal(raw.socket.alpnProtocol, 'http/1.1', 'a client offering only http/1.1 gets it');
      raw.socket.write('GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
      await within(raw.closed, 'the server to close the connection');
      assert.match(raw.received(), /^HTTP\/1\.1 400 Bad Request\r\n[^]*\r\n\r\n\{"error":\{"code":"HERALD_ERR_BAD_REQUEST"/);
      // An HTTP/1.1 request without Host.
      const noHost = await rawTls(port);
      noHost.socket.write('GET /health HTTP/1.1\r\nConnection: close\r\n\r\n');
      await within(noHost.closed, 'the server to close the connection');
      assert.match(noHost.received(), /^HTTP\/1\.1 400 Bad Request\r\n[^]*"code":"HERALD_ERR_BAD_REQUEST"/);
    });
  });

  test('a subscriber over TLS that stops reading is dropped past --max-buffer; others are not', async () => {
    await withTlsHub({ maxBuffer: '64kb', history: 4 }, async ({ port, url, herald, watch }) => {
      const slow = await rawTls(port);
      slow.socket.write('GET /events?topic=bulk HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      slow.socket.pause();
      await watch.untilConnections(1);
      const other = await httpsStream(url, '/events?topic=other');
      const filler = 'x'.repeat(64 * 1024);
      // The kernel's socket buffers (a few MB on loopback) fill first; then the server's queue grows.
      for (let i = 0; i < 1000 && herald.counters().dropped === 0; i++) {
        await herald.publish({ topic: 'bulk', data: filler });
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(herald.counters().dropped, 1, 'the slow subscriber was dropped');
      assert.equal(herald.counters().connections, 1);
      slow.socket.resume();
      await within(slow.closed, 'the server to close the slow connection');
      assert.match(slow.received(), /^HTTP\/1\.1 200 OK\r\n/);
      const after = (await herald.publish({ topic: 'other', data: 'still here' })).id;
      await other.waitForEvents(1);
      assert.deepEqual(other.ids(), [after]);
      other.close();
    });
  });
});

// ---------------------------------------------------------------------------

describe('deadlines and non-HTTP input on the TLS port', { skip: skipTls }, () => {
  test('an HTTP/1.1 head that does not arrive within --head-timeout gets 408 as JSON', async () => {
    await withTlsHub({ headTimeout: '300ms' }, async ({ port }) => {
      const raw = await rawTls(port);
      raw.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n');
      await within(raw.closed, 'the server to close the connection');
      assert.match(raw.received(), /^HTTP\/1\.1 408 Request Timeout\r\n[^]*"code":"HERALD_ERR_REQUEST_TIMEOUT"/);
    });
  });

  test('connections that send nothing, or never complete their TLS handshake, are closed after --head-timeout', async () => {
    await withTlsHub({ headTimeout: '300ms' }, async ({ port, connections }) => {
      const stall = async (bytes: Buffer): Promise<number> => {
        const socket = connectTcp(port, '127.0.0.1', () => socket.write(bytes));
        let received = 0;
        socket.on('data', (chunk: Buffer) => (received += chunk.length));
        socket.on('error', () => {});
        await within(new Promise<void>((resolve) => socket.once('close', () => resolve())), 'the server to close the connection');
        return received;
      };
      // Silence, and the first bytes of a TLS record that never completes.
      const [silent, partial] = await Promise.all([stall(Buffer.alloc(0)), stall(Buffer.from([0x16, 0x03, 0x01, 0x02]))]);
      assert.equal(silent, 0, 'nothing was sent to the silent client');
      assert.equal(partial, 0, 'nothing was sent to the stalled handshake');
      await connections.untilNone('the server to let go of the connections');
    });
  });


  test('an HTTP/2 connection that opens no stream within --head-timeout is closed', async () => {
    await withTlsHub({ headTimeout: '300ms' }, async ({ url, connections }) => {
      const session = await openSession(url);
      await within(new Promise<void>((resolve) => session.once('close', () => resolve())), 'the server to close the session');
      assert.equal(session.destroyed, true);
      await connections.untilNone('the server to let go of the connection');
    });
  });

  test('plain HTTP sent to the TLS port gets a JSON 400 in plain text saying to use https://', async () => {
    await withTlsHub({}, async ({ port, herald }) => {
      const received = await within(
        new Promise<string>((resolve) => {
          const socket = connectTcp(port, '127.0.0.1', () => socket.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n'));
          let text = '';
          socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
          socket.on('error', () => {});
          socket.once('close', () => resolve(text));
        }),
        'the server to close the connection',
      );
      assert.match(received, /^HTTP\/1\.1 400 Bad Request\r\n[^]*Content-Type: application\/json[^]*\r\n\r\n/);
      const body = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4));
      assert.deepEqual(body, { error: { code: 'HERALD_ERR_BAD_REQUEST', message: 'this port serves HTTPS: use an https:// URL' } });
      assert.equal(herald.counters().connections, 0, 'no stream was opened');
      // The hub is unharmed.
      const health = await httpsRequestOnce(`https://127.0.0.1:${port}`, '/health');
      assert.equal(health.status, 200);
    });
  });

});

// ---------------------------------------------------------------------------
// Chromium: ten EventSources to one host, over one HTTP/2 connection.

const skipBrowser = skipTls !== false ? skipTls : chromiumSkip;
if (skipBrowser !== false && skipTls === false) console.log(`# HTTP/2 browser test skipped: ${skipBrowser}`);

after(async () => {
  await closeChromium();
});

test('Chromium: ten EventSources on one HTTPS page all receive events, over HTTP/2 (past the six-connection limit of HTTP/1.1)', { skip: skipBrowser }, async () => {
  const browser = await launchChromium();
  await withTlsHub({}, async ({ url, herald, watch }) => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(10_000);
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      // The protocol of every response, as Chromium's network stack reports it.
      const cdp = await context.newCDPSession(page);
      const responses: { type: string; url: string; protocol: string }[] = [];
      cdp.on('Network.responseReceived', (event) => responses.push({ type: event.type, url: event.response.url, protocol: event.response.protocol ?? '' }));
      await cdp.send('Network.enable');

      // Any page of the origin will do: /health, so the test does not depend on the demo page's script.
      await page.goto(`${url}/health`);
      assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol), 'h2', 'the page came over HTTP/2');

      await page.evaluate(() => {
        window.received = Array.from({ length: 10 }, () => []);
        window.sources = Array.from({ length: 10 }, (_, i) => {
          const source = new EventSource(`/events?topic=tabs/${i}&topic=all`);
          source.addEventListener('tick', (event: any) => window.received[i].push(event.lastEventId + ' ' + event.data));
          return source;
        });
      });
      // All ten open at once: with HTTP/1.1 the seventh would wait for a free connection.
      await page.waitForFunction(() => window.sources.every((source: any) => source.readyState === 1));
      assert.equal(herald.counters().connections, 10, 'the hub holds ten streams');

      const session = await openSession(url);
      const all = await h2Publish(session, { event: 'tick', topic: 'all', data: { to: 'everyone' } });
      const one = await h2Publish(session, { event: 'tick', topic: 'tabs/7', data: { to: 'seven' } });
      assert.equal(all.status, 202);
      assert.equal(one.status, 202);
      session.close();
      await page.waitForFunction(() => window.received.every((events: string[], i: number) => events.length === (i === 7 ? 2 : 1)));
      const received: string[][] = await page.evaluate(() => window.received);
      for (const [i, events] of received.entries()) {
        const expected = [`${all.json.id} {"to":"everyone"}`, ...(i === 7 ? [`${one.json.id} {"to":"seven"}`] : [])];
        assert.deepEqual(events, expected, `EventSource ${i}`);
      }

      const streams = responses.filter((response) => response.type === 'EventSource');
      assert.equal(streams.length, 10, JSON.stringify(responses));
      assert.deepEqual(
        streams.map((response) => response.protocol),
        Array(10).fill('h2'),
        'every EventSource used HTTP/2',
      );
      await page.evaluate(() => window.sources.forEach((source: any) => source.close()));
      await watch.until(() => watch.connections === 0, 'the streams to close when the page closes them');
      assert.equal(watch.closedFor('client-closed'), 10, 'the page closed all ten');
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
});
