/**
 * One head for every path that opens a stream: the front door's fast path,
 * `node:http` (the hub's own server, and a user's server with `hub.handler`),
 * HTTP/2 and `hub.fetch` answer `GET /events` with the same fields, in the
 * same order where the protocol keeps an order. The test compares the bytes.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as connectH2 } from 'node:http2';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createHub } from '../src/index.js';
import { startHub } from './support/helpers.js';

/** Sends a raw request and resolves with the response head, as bytes (latin1), once it is complete. */
function rawHead(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('error', reject);
    socket.on('connect', () => socket.write(request, 'latin1'));
    socket.on('data', (chunk: string) => {
      received += chunk;
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.destroy();
      resolve(received.slice(0, end + 4));
    });
    socket.on('close', () => reject(new Error(`the connection closed before a whole head arrived: ${JSON.stringify(received)}`)));
  });
}

/** The head with its Date value blanked: it is the only field that may differ between two answers. */
function normalised(head: string): string {
  return head.replace(/^Date: .*$/m, 'Date: <date>');
}

const DIR = mkdtempSync(join(tmpdir(), 'herald-heads-'));
after(() => rmSync(DIR, { recursive: true, force: true }));

test('the front door and node:http write the same stream head, byte for byte, X-Request-Id included', async () => {
  const hub = await startHub();
  const user = createHub({ heartbeat: 0 });
  const server: Server = createServer(user.handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const request = (extra: string): string => `GET /events?topic=a HTTP/1.1\r\nHost: hub.test\r\nX-Request-Id: req-42\r\n${extra}\r\n`;
    // No credentials: the front door serves it on the socket.
    const fast = await rawHead(hub.port, request(''));
    // A cookie that holds no token: anonymous all the same, but the front door hands it to node:http.
    const slow = await rawHead(hub.port, request('Cookie: theme=dark\r\n'));
    // A user's own node:http server with hub.handler.
    const mounted = await rawHead((server.address() as AddressInfo).port, request(''));
    assert.match(fast, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(fast, /\r\nX-Request-Id: req-42\r\n/, 'the fast path echoes the request id');
    assert.equal(normalised(slow), normalised(fast), 'node:http behind the front door');
    assert.equal(normalised(mounted), normalised(fast), 'a user server with hub.handler');
    assert.equal(
      normalised(fast),
      'HTTP/1.1 200 OK\r\n' +
        'Content-Type: text/event-stream; charset=utf-8\r\n' +
        'Cache-Control: no-cache, no-transform\r\n' +
        'X-Accel-Buffering: no\r\n' +
        'X-Request-Id: req-42\r\n' +
        'Connection: close\r\n' +
        'Date: <date>\r\n\r\n',
    );
  } finally {
    await hub.close();
    await user.close();
    server.close();
  }
});

test('HTTP/2 and hub.fetch carry the same fields, without the connection-specific one', async (t) => {
  const cert = join(DIR, 'cert.pem');
  const key = join(DIR, 'key.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  } catch {
    if (process.env.CI) throw new Error('openssl is needed to make a test certificate');
    t.skip('openssl is not installed');
    return;
  }
  const expected = [
    ['content-type', 'text/event-stream; charset=utf-8'],
    ['cache-control', 'no-cache, no-transform'],
    ['x-accel-buffering', 'no'],
    ['x-request-id', 'req-7'],
  ];
  const tls = createHub({ heartbeat: 0, tlsCert: cert, tlsKey: key });
  const { url } = await tls.listen(0, '127.0.0.1');
  const session = connectH2(url, { rejectUnauthorized: false });
  try {
    const fields = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const stream = session.request({ ':path': '/events', 'x-request-id': 'req-7' });
      stream.once('response', (headers) => {
        resolve(headers as Record<string, unknown>);
        stream.close();
      });
      stream.once('error', reject);
    });
    assert.equal(fields[':status'], 200);
    const h2 = Object.entries(fields).filter(([name]) => !name.startsWith(':') && name !== 'date');
    assert.deepEqual(h2, expected, 'HTTP/2 HEADERS keep the order; no Connection field (RFC 9113 §8.2.2)');
  } finally {
    session.close();
    await tls.close();
  }

  const hub = createHub({ heartbeat: 0 });
  try {
    const response = await hub.fetch(new Request('http://hub.test/events', { headers: { 'X-Request-Id': 'req-7' } }));
    assert.equal(response.status, 200);
    // Headers iterate sorted by name, so the order is compared as Headers define it.
    assert.deepEqual([...response.headers], [...expected].sort(([a], [b]) => a!.localeCompare(b!)));
    await response.body!.cancel();
  } finally {
    await hub.close();
  }
});
