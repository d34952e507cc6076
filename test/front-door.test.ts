/**
 * The standalone server's front door: plain `GET /events` requests are served
 * on the socket; everything else must reach Node's HTTP server unchanged.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rawRequest, RawSocket, SseTap, sleep, startHub, trigger } from './support/helpers.js';

/** Connects and writes `text` one byte at a time (1 ms apart: pacing, so the server sees many reads). */
async function trickle(port: number, text: string): Promise<RawSocket> {
  const raw = await RawSocket.connect(port);
  for (const byte of text) {
    await raw.write(byte);
    await sleep(1);
  }
  return raw;
}

test('a subscription sent one byte at a time is served, and receives events', async () => {
  const hub = await startHub();
  try {
    const raw = await trickle(hub.port, 'GET /events?topic=a HTTP/1.1\r\nHost: x\r\n\r\n');
    // The greeting is written when the hub takes the stream: from then on it receives what is published.
    await raw.untilIncludes(': connected\n\n');
    assert.equal(hub.watch.connections, 1, 'the trickled request is a stream');
    await hub.herald.publish({ topic: 'a', data: 'hello' });
    await raw.untilIncludes('data: "hello"\n\n');
    raw.close();
    assert.match(raw.received, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(raw.received, /\r\n\r\nretry: \d+\n: connected\n\nid: \d+-\d+\ndata: "hello"\n\n$/);
  } finally {
    await hub.close();
  }
});

test('a publish sent one byte at a time goes to the HTTP server and is answered 202', async () => {
  const hub = await startHub();
  try {
    const body = '{"data":1}';
    const raw = await trickle(
      hub.port,
      `POST /trigger HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    // Connection: close: the server ends the connection after its answer.
    await raw.untilClosed();
    const answer = raw.received;
    assert.match(answer, /^HTTP\/1\.1 202 Accepted\r\n/);
    const id = /\{"id":"(\d+-\d+)"\}$/.exec(answer)?.[1];
    assert.ok(id !== undefined, `the answer ends with the id: ${JSON.stringify(answer)}`);
    assert.deepEqual(hub.watch.published, [id], 'the publish was stored, once');
  } finally {
    await hub.close();
  }
});

test('GET /events with a body, or with a pipelined request behind it, is left to the HTTP server and still works', async () => {
  const hub = await startHub();
  try {
    const withBody = await RawSocket.send(hub.port, 'GET /events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi');
    const pipelined = await RawSocket.send(hub.port, 'GET /events HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    // Both are streams once the hub has greeted them.
    for (const raw of [withBody, pipelined]) await raw.untilIncludes(': connected\n\n');
    const { body } = await trigger(hub.url, { data: 'both' });
    for (const raw of [withBody, pipelined]) {
      await raw.untilIncludes(`id: ${body.id}\ndata: "both"\n\n`);
      raw.close();
      assert.match(raw.received, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(raw.received, /content-type: text\/event-stream; charset=utf-8/i);
      assert.match(raw.received, new RegExp(`id: ${body.id}\\ndata: "both"\\n\\n`));
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
    const partial = await RawSocket.send(hub.port, 'GET /events HTTP/1.1\r\nHost: x\r\n');
    // A complete subscription sent after it is served; the half head, sent first, is not.
    const complete = await SseTap.open(hub.url);
    await complete.until(() => complete.comments.some((comment) => comment.trim() === 'connected'), 'the greeting of the complete subscription');
    assert.equal(hub.watch.connected, 1, 'only the complete request became a stream');
    assert.equal(hub.herald.counters().connections, 1);
    assert.equal(partial.received, '', 'the half head got no answer');
    // The socket was alive and held: finishing its head makes it a stream.
    await partial.write('\r\n');
    await partial.untilIncludes(': connected\n\n');
    assert.equal(hub.herald.counters().connections, 2, 'the head, once complete, is a stream');
    partial.close();
    complete.close();
  } finally {
    await hub.close();
  }
});
