/**
 * Faults: a subscriber that never reads, clients that vanish mid-stream,
 * shutdown signals with open streams, and ids across a restart.
 *
 * The server runs as a child process (the `herald` command), so a crash, a
 * leak or a hang shows up as what it is: an exit, a growing RSS, a process
 * that does not stop.
 */

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { compareIds, freePort, health, isRunning, killHeralds, pollUntil, pool, rssOf, seededRandom, spawnHerald, SseTap, stopHerald, trigger, within } from './support/helpers.js';

const MB = 1024 * 1024;

// ---------------------------------------------------------------------------
// Helpers local to these tests

const sockets = new Set<Socket>();

after(() => {
  for (const socket of sockets) socket.destroy();
  killHeralds();
});

interface Health {
  status: string;
  connections: number;
  dropped: number;
  published: number;
}

/** `/health` of a server in another process, until `accept` holds: nothing there tells this process when it changes. */
function healthWhen(url: string, accept: (h: Health) => boolean, what: string): Promise<Health> {
  return pollUntil(() => health(url) as Promise<Health>, accept, what);
}

function assertIdShape(id: unknown): asserts id is string {
  assert.equal(typeof id, 'string');
  assert.match(id as string, /^\d+-\d+$/, `id ${String(id)} has the <ms>-<seq> shape`);
}

/**
 * Opens `GET /events` on a raw socket and resolves once the response head
 * (status 200) has arrived. With `read: false` the socket stops reading right
 * after that: the server's bytes pile up in the kernel, then in the server.
 */
function rawSubscriber(port: number, path = '/events', headers: Record<string, string> = {}, read = true): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let head = '';
    const extra = Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extra}\r\n`));
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (!head.startsWith('HTTP/1.1 200')) {
        socket.destroy();
        reject(new Error(`expected 200, got ${head.split('\r\n')[0]}`));
        return;
      }
      if (read) socket.on('data', () => {});
      else socket.pause();
      resolve(socket);
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

/**
 * A subscriber that also tells how its response ended: `complete` only when
 * the server ended the body (a clean end of the connection), not on a reset.
 */
class StreamTap {
  readonly events: EventSourceMessage[] = [];
  raw = '';
  status = 0;
  complete = false;
  finished = false;
  private readonly waiters = new Set<() => void>();

  static open(url: string, path = '/events'): Promise<StreamTap> {
    const tap = new StreamTap();
    const parser = createParser({ onEvent: (event) => tap.events.push(event) });
    return new Promise((resolve, reject) => {
      const req = request(`${url}${path}`, { agent: false }, (res) => {
        tap.status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          tap.raw += chunk;
          parser.feed(chunk);
          tap.notify();
        });
        res.on('end', () => {
          tap.complete = res.complete;
          tap.finished = true;
          tap.notify();
        });
        res.on('close', () => {
          tap.finished = true;
          tap.notify();
        });
        res.on('error', () => {});
        resolve(tap);
      });
      req.on('error', reject);
      req.end();
    });
  }

  private notify(): void {
    for (const waiter of this.waiters) waiter();
  }

  until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!condition()) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; got ${this.events.length} events, raw tail ${JSON.stringify(this.raw.slice(-200))}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }
}

/**
 * Starts a JSON publish whose body is only half sent, and resolves once the
 * server's request handler has it (the server answered `100 Continue`).
 * `finish()` sends the rest; `response` resolves with the status and body.
 */
function halfSentPublish(port: number, body: string): Promise<{ finish: () => void; response: Promise<{ status: number; body: any }> }> {
  return new Promise((resolve, reject) => {
    const bytes = Buffer.from(body);
    const half = Math.floor(bytes.length / 2);
    const req = request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/trigger',
      agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': bytes.length, Expect: '100-continue' },
    });
    const response = new Promise<{ status: number; body: any }>((resolveResponse, rejectResponse) => {
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolveResponse({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) }));
        res.on('error', rejectResponse);
      });
      req.on('error', rejectResponse);
    });
    response.catch(() => {});
    req.on('error', reject);
    req.on('continue', () => {
      req.write(bytes.subarray(0, half));
      resolve({ finish: () => req.end(bytes.subarray(half)), response });
    });
    req.flushHeaders();
  });
}

// ---------------------------------------------------------------------------

test('a subscriber that never reads is dropped while 200 MB are published; memory stays bounded and the others get every event', async () => {
  // A small history, so what the server legitimately keeps (history) is small next to what a leak would keep.
  const herald = await spawnHerald(['--max-buffer', '1mb', '--history', '16', '--heartbeat', '0']);
  const pid = herald.child.pid!;
  const filler = 'x'.repeat(100_000);
  // 2000 × 100 KB = 200 MB: unbounded, the server would keep ~195 MB for the slow subscriber, three times the
  // bound below. The V8 heap's own slack (young generation up to 48 MB, history, frame cache) does not grow with
  // the volume published, and was seen at 36 MB on a loaded machine: the bound leaves it room.
  const PUBLISHES = 2000;
  const BOUND = 64 * MB;
  // Warm-up traffic without the slow subscriber: the heap and the allocator reach their working size first,
  // so the growth measured afterwards is what the slow subscriber costs.
  const WARMUP = 200;
  const WINDOW = 4; // readers in this process stay at most WINDOW + 4 events (< --max-buffer) behind
  const taps = await Promise.all([SseTap.open(herald.url), SseTap.open(herald.url), SseTap.open(herald.url, '/events?topic=bulk/**')]);

  const acked = new Map<string, number>();
  const ackedIds: string[] = [];
  const publishOne = async (i: number): Promise<void> => {
    const published = await trigger(herald.url, { event: 'bulk', topic: `bulk/${i % 4}`, data: `${i}:${filler}` });
    assert.equal(published.status, 202, `publish ${i}: ${JSON.stringify(published.body)}`);
    assertIdShape(published.body.id);
    acked.set(published.body.id, i);
    ackedIds.push(published.body.id);
  };
  const caughtUp = (): Promise<void[]> => Promise.all(taps.map((tap) => tap.waitForEvents(Math.max(0, ackedIds.length - WINDOW), 20_000)));

  await pool(WARMUP, 4, async (i) => {
    await caughtUp();
    await publishOne(i);
  });
  await Promise.all(taps.map((tap) => tap.waitForEvents(WARMUP, 20_000)));

  const slow = await rawSubscriber(herald.port, '/events', {}, false);
  const before = await healthWhen(herald.url, (h) => h.connections === 4, 'the slow subscriber to be counted');
  assert.equal(before.connections, 4, 'three readers and the slow subscriber are connected');
  assert.equal(before.dropped, 0);
  const baseline = await rssOf(pid);
  let peak = baseline;

  await pool(PUBLISHES, 4, async (i) => {
    await caughtUp();
    await publishOne(WARMUP + i);
    if (i % 10 === 0) peak = Math.max(peak, await rssOf(pid));
  });
  const total = WARMUP + PUBLISHES;
  await Promise.all(taps.map((tap) => tap.waitForEvents(total, 20_000)));
  peak = Math.max(peak, await rssOf(pid));

  // Memory: without a bound the server would hold most of the 200 MB for the slow subscriber.
  const growth = peak - baseline;
  console.log(`# slow consumer: RSS baseline ${(baseline / MB).toFixed(1)} MB, peak ${(peak / MB).toFixed(1)} MB, growth ${(growth / MB).toFixed(1)} MB`);
  assert.ok(growth < BOUND, `RSS grew by ${(growth / MB).toFixed(1)} MB while 200 MB were published (bound: ${BOUND / MB} MB)`);

  // The slow subscriber was disconnected by the server, nobody else was.
  const afterwards = await healthWhen(herald.url, (h) => h.connections === 3, 'the slow subscriber to be gone');
  assert.equal(afterwards.connections, 3, 'only the slow subscriber is gone');
  assert.ok(afterwards.dropped >= 1, `dropped counter: ${afterwards.dropped}`);
  assert.equal(afterwards.dropped, 1, 'none of the readers was dropped');

  // Every reader got every event, in id order, with its own data.
  const expected = [...ackedIds].sort(compareIds);
  assert.equal(new Set(ackedIds).size, total, 'every publish was answered with an id of its own');
  for (const [n, tap] of taps.entries()) {
    assert.deepEqual(
      tap.events.map((event) => event.id),
      expected,
      `reader ${n} got every event in order`,
    );
    for (const event of tap.events) {
      assert.equal(event.event, 'bulk');
      assert.equal(event.data, JSON.stringify(`${acked.get(event.id ?? '')}:${filler}`), `reader ${n}, event ${event.id} has its own data`);
    }
    tap.close();
  }

  // The server closed the slow subscriber's connection: once it reads, it reaches the end.
  const closed = new Promise<void>((resolve) => slow.once('close', () => resolve()));
  slow.on('error', () => {});
  slow.resume();
  slow.on('data', () => {});
  await within(closed, 'the server to end the slow subscriber’s connection');

  assert.ok(isRunning(herald), `server still running; output: ${herald.output()}`);
  assert.equal(await stopHerald(herald), 0);
});

test('200 clients disconnecting abruptly while events are published: the server survives and keeps serving', async () => {
  const seed = Number(process.env.HERALD_FAULT_SEED ?? Date.now() % 1_000_000);
  console.log(`# abrupt disconnects: seed ${seed} (set HERALD_FAULT_SEED to replay)`);
  const random = seededRandom(seed);
  const herald = await spawnHerald(['--heartbeat', '0', '--history', '1000']);
  const all = await SseTap.open(herald.url);
  const topical = await SseTap.open(herald.url, '/events?topic=load/**');

  const CLIENTS = 200;
  const LATE = 40; // of which connect during the publishing, some resuming, and die at once or soon
  const PUBLISHES = 200;
  const paths = ['/events', '/events?topic=load/*', '/events?topic=load/**&topic=other', '/events?topic=nothing/here'];
  const early = await Promise.all(
    Array.from({ length: CLIENTS - LATE }, (_, n) => rawSubscriber(herald.port, paths[n % paths.length], {}, n % 3 !== 2)),
  );
  const connected = await healthWhen(herald.url, (h) => h.connections === 2 + early.length, 'every early client to be counted');
  assert.equal(connected.connections, 2 + early.length);

  type Kill = (socket: Socket) => void;
  const kills: Kill[] = [
    (socket) => socket.resetAndDestroy(), // RST
    (socket) => socket.destroy(), // FIN without ending the request politely; paused sockets with unread bytes send RST
  ];
  const killAt = new Map<number, Socket[]>();
  for (const socket of early) {
    socket.on('error', () => {});
    const step = Math.floor(random() * PUBLISHES);
    killAt.set(step, [...(killAt.get(step) ?? []), socket]);
  }
  const lateAt = new Map<number, number>();
  for (let n = 0; n < LATE; n++) {
    const step = Math.floor(random() * PUBLISHES);
    lateAt.set(step, (lateAt.get(step) ?? 0) + 1);
  }

  const killSoon = (socket: Socket): void => {
    const kill = kills[Math.floor(random() * kills.length)]!;
    const when = random();
    if (when < 0.3) kill(socket);
    else if (when < 0.6) setImmediate(() => kill(socket));
    else setTimeout(() => kill(socket), Math.floor(random() * 5));
  };

  const ackedIds: string[] = [];
  const topicIds = new Set<string>();
  const filler = 'y'.repeat(8_000);
  await pool(PUBLISHES, 4, async (i) => {
    for (const socket of killAt.get(i) ?? []) killSoon(socket);
    for (let n = 0; n < (lateAt.get(i) ?? 0); n++) {
      // Connects (resuming from the newest id half the time) and vanishes during the replay, the head, or right after.
      const socket = connect(herald.port, '127.0.0.1');
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      const resume = n % 2 === 0 && ackedIds.length > 0 ? `Last-Event-ID: ${ackedIds[Math.floor(random() * ackedIds.length)]}\r\n` : '';
      socket.on('connect', () => {
        socket.write(`GET ${paths[n % paths.length]!} HTTP/1.1\r\nHost: 127.0.0.1\r\n${resume}\r\n`);
        killSoon(socket);
      });
    }
    const topic = i % 3 === 0 ? undefined : `load/${i % 5}`;
    const published = await trigger(herald.url, { event: 'tick', data: { i, filler }, ...(topic === undefined ? {} : { topic }) });
    assert.equal(published.status, 202, `publish ${i}: ${JSON.stringify(published.body)}`);
    assertIdShape(published.body.id);
    ackedIds.push(published.body.id);
    if (topic !== undefined) topicIds.add(published.body.id);
  });

  // Every client that went away is forgotten; the two survivors remain.
  const settled = await healthWhen(herald.url, (h) => h.connections === 2, 'every client that went away to be forgotten');
  assert.equal(settled.connections, 2, 'connections return to the two surviving subscribers');
  assert.ok(isRunning(herald), `the server is still running; output: ${herald.output()}`);
  assert.doesNotMatch(herald.output(), /error|uncaught|unhandled/i, 'the server logged no error');

  // The survivors got every event they subscribed to, in order.
  const expected = [...ackedIds].sort(compareIds);
  await all.waitForEvents(expected.length);
  assert.deepEqual(
    all.events.map((event) => event.id),
    expected,
  );
  const expectedTopical = expected.filter((id) => topicIds.has(id));
  await topical.waitForEvents(expectedTopical.length);
  assert.deepEqual(
    topical.events.map((event) => event.id),
    expectedTopical,
  );
  for (const event of all.events) assert.equal((JSON.parse(event.data) as { filler: string }).filler, filler);

  // And it still takes new subscribers and publishes; this last event is also the survivors' sentinel:
  // what they hold when it arrives is all they got.
  const fresh = await SseTap.open(herald.url);
  const last = await trigger(herald.url, { event: 'after', data: 'still here' });
  assert.equal(last.status, 202);
  await fresh.waitForEvents(1);
  assert.deepEqual((await all.untilId(last.body.id, 'the last event')).map((event) => event.id), expected, 'nothing more reached the survivor');
  assert.deepEqual(fresh.events[0], { id: last.body.id, event: 'after', data: '"still here"' });
  for (const tap of [all, topical, fresh]) tap.close();
  assert.equal(await stopHerald(herald), 0);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} with open streams: every stream ends cleanly after the acknowledged publishes, exit code 0`, async () => {
    const herald = await spawnHerald(['--heartbeat', '0', '--max-buffer', '64mb']);
    const taps = await Promise.all(Array.from({ length: 5 }, () => StreamTap.open(herald.url, '/events?topic=live/**')));
    for (const tap of taps) assert.equal(tap.status, 200);

    // Also a subscriber that stopped reading with megabytes still queued for it: it must not hold the shutdown up.
    const stalled = await rawSubscriber(herald.port, '/events?topic=bulk', {}, false);
    stalled.on('error', () => {});
    const filler = 'q'.repeat(100_000);
    await pool(60, 4, async () => {
      assert.equal((await trigger(herald.url, { topic: 'bulk', data: filler })).status, 202);
    });

    const acked: { id: string; data: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const published = await trigger(herald.url, { event: 'before', topic: 'live/x', data: { i } });
      assert.equal(published.status, 202);
      acked.push({ id: published.body.id, data: JSON.stringify({ i }) });
    }
    // A publish whose body is still arriving when the signal comes.
    const inFlightBody = { event: 'in-flight', topic: 'live/y', data: { during: signal, pad: 'z'.repeat(2000) } };
    const inFlight = await halfSentPublish(herald.port, JSON.stringify(inFlightBody));
    await Promise.all(taps.map((tap) => tap.until(() => tap.events.length === 3, '3 events')));
    assert.equal((await health(herald.url)).connections, 6);

    herald.child.kill(signal);
    await herald.untilOutput(`received ${signal}`, 'the server to notice the signal');
    inFlight.finish();
    const answer = await inFlight.response;
    assert.equal(answer.status, 202, `the publish under way is finished: ${JSON.stringify(answer.body)}`);
    assertIdShape(answer.body.id);
    acked.push({ id: answer.body.id, data: JSON.stringify(inFlightBody.data) });

    const code = await within(herald.exited, `herald to exit after ${signal}`);
    assert.equal(code, 0, `exit code; output: ${herald.output()}`);

    for (const [n, tap] of taps.entries()) {
      await tap.until(() => tap.finished, 'the end of the stream');
      assert.ok(tap.complete, `stream ${n} ended cleanly (complete body), not reset`);
      assert.ok(tap.raw.endsWith('\n\n'), `stream ${n} ends with a complete event: ${JSON.stringify(tap.raw.slice(-80))}`);
      assert.deepEqual(
        tap.events.map((event) => ({ id: event.id, data: event.data })),
        acked,
        `stream ${n} got every acknowledged publish, in order, and nothing else`,
      );
    }
  });
}

test('ids after a restart on the same port are all greater; resuming with an old id gets herald-resync, then the new events', async () => {
  const port = await freePort();
  const first = await spawnHerald(['--port', String(port), '--heartbeat', '0']);
  assert.equal(first.port, port);
  const oldIds: string[] = [];
  for (let i = 0; i < 5; i++) {
    const published = await trigger(first.url, { event: 'old', data: { run: 1, i } });
    assert.equal(published.status, 202);
    assertIdShape(published.body.id);
    oldIds.push(published.body.id);
  }
  const lastOld = oldIds[oldIds.length - 1]!;
  assert.equal(await stopHerald(first), 0);

  const second = await spawnHerald(['--port', String(port), '--heartbeat', '0']);
  assert.equal(second.port, port, 'the new server listens on the same port');
  const newEvents: { id: string; data: string }[] = [];
  for (let i = 0; i < 5; i++) {
    const published = await trigger(second.url, { event: 'new', data: { run: 2, i } });
    assert.equal(published.status, 202);
    assertIdShape(published.body.id);
    newEvents.push({ id: published.body.id, data: JSON.stringify({ run: 2, i }) });
  }
  for (const { id } of newEvents) {
    for (const old of oldIds) {
      assert.notEqual(id, old, 'an id is never handed out twice');
      assert.equal(compareIds(id, old), 1, `new id ${id} is greater than old id ${old}`);
    }
  }

  // Resuming with old ids: the last one (header) and the first one (query, as a first connection would).
  const resumed = [
    await SseTap.open(second.url, '/events', { 'Last-Event-ID': lastOld }),
    await SseTap.open(second.url, `/events?lastEventId=${encodeURIComponent(oldIds[0]!)}`),
  ];
  const resumedFrom = [lastOld, oldIds[0]!];
  const live = await trigger(second.url, { event: 'new', data: { run: 2, live: true } });
  assert.equal(live.status, 202);
  const expected = [...newEvents, { id: live.body.id as string, data: JSON.stringify({ run: 2, live: true }) }];
  for (const [n, tap] of resumed.entries()) {
    await tap.waitForEvents(1 + expected.length);
    const [notice, ...rest] = tap.events;
    assert.equal(notice!.event, 'herald-resync', 'the first event tells the client to re-sync');
    assert.deepEqual(JSON.parse(notice!.data), { reason: 'expired', lastEventId: resumedFrom[n] });
    assert.deepEqual(
      rest.map((event) => ({ id: event.id, data: event.data })),
      expected,
      'then every new event, in order',
    );
    for (const event of rest) assert.ok(!oldIds.includes(event.id!), `no old-numbered event (${event.id})`);
    tap.close();
  }
  assert.equal(await stopHerald(second), 0);
});
