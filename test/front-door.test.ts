/**
 * The standalone server's front door: plain `GET /events` requests are served
 * on the socket; everything else must reach Node's HTTP server unchanged.
 */

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { rawRequest, SseTap, sleep, startHub, trigger } from './support/helpers.js';

/** Writes `text` one byte at a time, then collects the answer until the server closes or `waitMs` passes. */
function trickle(port: number, text: string, waitMs = 1500): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', reject);
    socket.on('connect', async () => {
      for (const byte of text) {
        socket.write(byte, 'latin1');
        await sleep(1);
      }
      setTimeout(() => {
        socket.destroy();
        resolve(received);
      }, waitMs);
    });
  });
}

test('a subscription sent one byte at a time is served, and receives events', async () => {
  const hub = await startHub();
  try {
    const answer = trickle(hub.port, 'GET /events?topic=a HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(400);
    await hub.herald.publish({ topic: 'a', data: 'hello' });
    const text = await answer;
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /\r\n\r\nretry: \d+\n: connected\n\n[^]*data: "hello"\n\n$/);
  } finally {
    await hub.close();
  }
});

test('a publish sent one byte at a time goes to the HTTP server and is answered 202', async () => {
  const hub = await startHub();
  try {
    const body = '{"data":1}';
    const answer = await trickle(
      hub.port,
      `POST /trigger HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      300,
    );
    assert.match(answer, /^HTTP\/1\.1 202 Accepted\r\n/);
    assert.match(answer, /\{"id":"\d+-\d+"\}$/);
  } finally {
    await hub.close();
  }
});

test('GET /events with a body, or with a pipelined request behind it, is left to the HTTP server and still works', async () => {
  const hub = await startHub();
  try {
    const withBody = rawRequest(hub.port, 'GET /events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi', { waitMs: 600 });
    const pipelined = rawRequest(hub.port, 'GET /events HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n', { waitMs: 600 });
    await sleep(200);
    const { body } = await trigger(hub.url, { data: 'both' });
    for (const answer of [await withBody, await pipelined]) {
      assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(answer, /content-type: text\/event-stream; charset=utf-8/i);
      assert.match(answer, new RegExp(`id: ${body.id}\\ndata: "both"\\n\\n`));
    }
  } finally {
    await hub.close();
  }
});

test('other paths, methods and malformed heads are answered by the HTTP server as usual', async () => {
  const hub = await startHub();
  try {
    const health = await rawRequest(hub.port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(health, /^HTTP\/1\.1 200 OK\r\n[^]*"status":"ok"/);
    const post = await rawRequest(hub.port, 'POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    assert.match(post, /^HTTP\/1\.1 405 [^]*Allow: GET[^]*HERALD_ERR_METHOD_NOT_ALLOWED/i);
    const folded = await rawRequest(hub.port, 'GET /events HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n');
    assert.match(folded, /^HTTP\/1\.1 400 /);
    const huge = await rawRequest(hub.port, `GET /events HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(huge, /^HTTP\/1\.1 431 /);
    const notHttp = await rawRequest(hub.port, 'hello there\r\n\r\n');
    assert.match(notHttp, /^HTTP\/1\.1 400 /);
  } finally {
    await hub.close();
  }
});

test('errors on the fast path are JSON with the right status, and the connection closes', async () => {
  const hub = await startHub({ maxConnections: 1 });
  try {
    const bad = await rawRequest(hub.port, 'GET /events?topic=a/**/b HTTP/1.1\r\nHost: x\r\n\r\n');
    const [head, body] = bad.split('\r\n\r\n');
    assert.match(head!, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(head!, /Content-Length: \d+/);
    assert.equal(JSON.parse(body!).error.code, 'HERALD_ERR_INVALID_SELECTOR');

    const first = await SseTap.open(hub.url);
    const refused = await rawRequest(hub.port, 'GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(refused, /^HTTP\/1\.1 503 Service Unavailable\r\n[^]*Retry-After: \d+/);
    assert.equal(JSON.parse(refused.split('\r\n\r\n')[1]!).error.code, 'HERALD_ERR_TOO_MANY_CONNECTIONS');
    first.close();
  } finally {
    await hub.close();
  }
});

test('basePath applies on both paths', async () => {
  const hub = await startHub({ basePath: '/herald' });
  try {
    const tap = await SseTap.open(hub.url, '/herald/events?topic=x');
    const { body } = await trigger(`${hub.url}/herald`, { topic: 'x', data: 1 });
    await tap.waitForEvents(1);
    assert.equal(tap.events[0]!.id, body.id);
    tap.close();
  } finally {
    await hub.close();
  }
});

test('a client that never finishes its request head is not a stream and does not count as one', async () => {
  const hub = await startHub();
  try {
    const socket = connect(hub.port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('GET /events HTTP/1.1\r\nHost: x\r\n');
    await sleep(200);
    assert.equal(hub.herald.counters().connections, 0);
    socket.destroy();
  } finally {
    await hub.close();
  }
});
