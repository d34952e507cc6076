/**
 * Mercure's active subscriptions across processes: `--workers 2` (the
 * primary holds the workers' presence) and three nodes on one Redis (each
 * node's records under a lease). Subscriptions opened on any process are
 * announced to a watcher on another and listed by every process; a process
 * killed with its streams open is reported ended once, by a survivor, and
 * leaves the listings.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import { encodeVariable } from '../src/mercure/subscriptions.js';
import { mintToken } from '../src/index.js';
import { SseTap, spawnHerald, startHub, stopHerald, within, type HeraldProcess } from './support/helpers.js';
import { redisSkip, startRedis, type TestRedis } from './support/redis-server.js';

const DEV_KEY = '!ChangeThisMercureHubJWTSecretKey!';
const secret = new TextEncoder().encode(DEV_KEY);
const SUBSCRIPTIONS = '/.well-known/mercure/subscriptions';
const WATCH = `/.well-known/mercure?topic=${encodeURIComponent(`${SUBSCRIPTIONS}{/topic}{/subscriber}`)}`;

interface Document {
  readonly [key: string]: any;
}

function classic(claim: { publish?: string[]; subscribe?: string[] }, sub: string): Promise<string> {
  return new SignJWT({ mercure: claim }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).sign(secret);
}

async function getJson(url: string, token: string): Promise<{ status: number; body: Document }> {
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as Document };
}

/** The subscription events a watcher got for `topic`, parsed, in order. */
function announced(watcher: SseTap, topic: string): Document[] {
  return watcher.events.map((event) => JSON.parse(event.data) as Document).filter((document) => document.topic === topic);
}

/** The pid of the process holding a stream, from its presence record's `node` (`host:pid-suffix`). */
function pidOf(node: string): number {
  return Number(/:(\d+)-[0-9a-f]+$/.exec(node)?.[1]);
}

let redis: TestRedis | undefined;
before(async () => {
  if (redisSkip === false) redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

test('--workers 2: subscriptions on both workers are announced and listed by either; a killed worker’s are reported ended once', async () => {
  const hub = await spawnHerald(['--workers', '2', '--jwt-key', DEV_KEY, '--heartbeat', '0', '--mercure-subscriptions', 'on']);
  const streams: SseTap[] = [];
  try {
    const token = await classic({ subscribe: ['*'] }, 'watcher');
    const watcher = await SseTap.open(hub.url, WATCH, { Authorization: `Bearer ${token}` });
    assert.equal(watcher.status, 200);
    const topic = `https://example.com/books/${process.pid}`;
    // The primary hands connections out in turn: eight streams land on both workers.
    for (let i = 0; i < 8; i++) streams.push(await SseTap.open(hub.url, `/.well-known/mercure?topic=${encodeURIComponent(topic)}`));
    await watcher.until(() => announced(watcher, topic).length === 8, 'eight active: true events');
    assert.ok(announced(watcher, topic).every((document) => document.active === true));

    // Every subscription is listed, whichever worker answers (each request may go to either).
    for (let ask = 0; ask < 4; ask++) {
      const listing = await getJson(`${hub.url}${SUBSCRIPTIONS}/${encodeVariable(topic)}`, token);
      assert.equal(listing.status, 200);
      assert.equal(listing.body.subscriptions.length, 8, `ask ${ask}`);
    }
    // Herald's own view, from either worker: the same streams, on two processes.
    const admin = await mintToken({ key: DEV_KEY, subscribe: ['**'], ttlSeconds: 3600 });
    const presence = await getJson(`${hub.url}/presence?topic=${encodeURIComponent(topic)}`, admin);
    assert.equal(presence.status, 200, JSON.stringify(presence.body));
    const records = presence.body.streams as Document[];
    assert.equal(records.length, 8);
    const nodes = new Set(records.map((record) => record.node));
    assert.equal(nodes.size, 2, `streams on both workers: ${[...nodes].join(', ')}`);

    // Kill the worker that does not hold the watcher: its streams end without a word from it.
    const everyStream = (await getJson(`${hub.url}/presence`, admin)).body.streams as Document[];
    const watcherNode = everyStream.find((record) => record.selectors[0] === `${SUBSCRIPTIONS}{/topic}{/subscriber}`)!.node as string;
    const doomed = records.filter((record) => record.node !== watcherNode);
    assert.ok(doomed.length > 0);
    process.kill(pidOf(doomed[0]!.node), 'SIGKILL');
    await watcher.until(() => announced(watcher, topic).filter((document) => document.active === false).length === doomed.length, `${doomed.length} active: false events`, 20_000);
    const ended = announced(watcher, topic).filter((document) => document.active === false);
    assert.deepEqual(ended.map((document) => document.subscriber).sort(), doomed.map((record) => record.subscriber).sort(), 'exactly the killed worker’s subscriptions');
    const listing = await getJson(`${hub.url}${SUBSCRIPTIONS}/${encodeVariable(topic)}`, token);
    assert.equal(listing.body.subscriptions.length, 8 - doomed.length);
    // A sentinel subscription after the kill: the watcher is still served, and no second report of the dead came meanwhile.
    streams.push(await SseTap.open(hub.url, `/.well-known/mercure?topic=${encodeURIComponent(`${topic}/sentinel`)}`));
    await watcher.until(() => announced(watcher, `${topic}/sentinel`).length === 1, 'the sentinel subscription');
    assert.equal(announced(watcher, topic).filter((document) => document.active === false).length, doomed.length, 'reported once');
    watcher.close();
  } finally {
    for (const stream of streams) stream.close();
    await stopHerald(hub);
  }
});

test('three nodes on Redis: a subscription on one node is announced on another and listed by all; a killed node’s are reported ended once', { skip: redisSkip }, async () => {
  const prefix = `mercure${process.pid}`;
  const nodes: HeraldProcess[] = [];
  const streams: SseTap[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(await spawnHerald(['--redis', redis!.url, '--redis-prefix', prefix, '--presence-lease', '1s', '--jwt-key', DEV_KEY, '--heartbeat', '0', '--mercure-subscriptions', 'on']));
    }
    const token = await classic({ subscribe: ['*'] }, 'watcher');
    const watcher = await SseTap.open(nodes[0]!.url, WATCH, { Authorization: `Bearer ${token}` });
    assert.equal(watcher.status, 200);
    const doomedTopic = `https://example.com/doomed/${process.pid}`;
    const keptTopic = `https://example.com/kept/${process.pid}`;
    streams.push(await SseTap.open(nodes[1]!.url, `/.well-known/mercure?topic=${encodeURIComponent(doomedTopic)}`));
    streams.push(await SseTap.open(nodes[2]!.url, `/.well-known/mercure?topic=${encodeURIComponent(keptTopic)}`));
    await watcher.until(() => announced(watcher, doomedTopic).length === 1 && announced(watcher, keptTopic).length === 1, 'both subscriptions announced on node 0');

    for (const node of nodes) {
      const listing = await getJson(`${node.url}${SUBSCRIPTIONS}`, token);
      assert.equal(listing.status, 200);
      const topics = (listing.body.subscriptions as Document[]).map((document) => document.topic);
      assert.ok(topics.includes(doomedTopic) && topics.includes(keptTopic), `${node.url} lists both: ${topics.join(', ')}`);
    }

    // Herald's own view from any node: the three streams, on the three nodes.
    const admin = await mintToken({ key: DEV_KEY, subscribe: ['**'], ttlSeconds: 3600 });
    const before = (await getJson(`${nodes[2]!.url}/presence`, admin)).body;
    assert.equal(before.count, 3, JSON.stringify(before));
    assert.equal(Object.keys(before.nodes).length, 3, 'one stream on each node');
    const doomedNode = (before.streams as Document[]).find((stream) => stream.selectors[0] === doomedTopic)!.node as string;
    assert.equal(pidOf(doomedNode), nodes[1]!.child.pid);

    nodes[1]!.child.kill('SIGKILL');
    await nodes[1]!.exited;
    await within(
      watcher.until(() => announced(watcher, doomedTopic).length === 2, 'the killed node’s subscription reported ended', 30_000),
      'the report',
      31_000,
    );
    assert.deepEqual(announced(watcher, doomedTopic)[1], { ...announced(watcher, doomedTopic)[0], active: false });
    for (const node of [nodes[0]!, nodes[2]!]) {
      const listing = await getJson(`${node.url}${SUBSCRIPTIONS}`, token);
      const topics = (listing.body.subscriptions as Document[]).map((document) => document.topic);
      assert.ok(!topics.includes(doomedTopic), 'the dead node’s subscription is no longer listed');
      assert.ok(topics.includes(keptTopic));
    }
    const afterwards = (await getJson(`${nodes[0]!.url}/presence`, admin)).body;
    assert.ok(!(afterwards.streams as Document[]).some((stream) => stream.node === doomedNode), 'the dead node is gone from /presence');
    assert.equal(afterwards.count, 2);
    // Ended streams on a live node are reported by that node, once.
    streams[1]!.close();
    await watcher.until(() => announced(watcher, keptTopic).length === 2, 'the kept subscription ended');
    assert.equal(announced(watcher, keptTopic)[1]!.active, false);
    assert.equal(announced(watcher, doomedTopic).length, 2, 'the dead node’s subscription was reported once');
    watcher.close();
  } finally {
    for (const stream of streams) stream.close();
    for (const node of nodes) await stopHerald(node);
  }
});

test('Redis down while a Mercure stream ends: its active: false is stored once Redis is back', { skip: redisSkip }, async () => {
  const outage = await startRedis();
  const hub = await startHub({ redis: outage.url, redisPrefix: `outage${process.pid}`, jwtKey: DEV_KEY, mercureSubscriptions: true });
  const token = await classic({ subscribe: ['*'] }, 'watcher');
  try {
    const watcher = await SseTap.open(hub.url, WATCH, { Authorization: `Bearer ${token}` });
    const topic = `https://example.com/outage/${process.pid}`;
    const client = await SseTap.open(hub.url, `/.well-known/mercure?topic=${encodeURIComponent(topic)}`);
    await watcher.until(() => announced(watcher, topic).length === 1, 'the active: true event');
    const startedId = watcher.events.find((event) => JSON.parse(event.data).topic === topic)!.id!;
    watcher.close();

    await outage.kill();
    client.close();
    await outage.restart();
    // Read the history after the start event until its end shows up (the hub asks the log again while it refuses).
    let ended: Document | undefined;
    for (let attempt = 0; attempt < 60 && ended === undefined; attempt++) {
      const again = await SseTap.open(hub.url, `${WATCH}&lastEventID=${encodeURIComponent(startedId)}`, { Authorization: `Bearer ${token}` });
      if (again.status === 200) {
        const sentinel = `https://example.com/outage-sentinel/${process.pid}/${attempt}`;
        // Its own subscription's start comes after anything stored before it: once seen, the replay is read.
        const probe = await SseTap.open(hub.url, `/.well-known/mercure?topic=${encodeURIComponent(sentinel)}`);
        await again.until(() => announced(again, sentinel).length >= 1 || again.ended, 'the probe', 20_000).catch(() => undefined);
        ended = announced(again, topic).find((document) => document.active === false);
        probe.close();
      }
      again.close();
      if (ended === undefined) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    assert.ok(ended, 'the active: false event was stored after the outage');
  } finally {
    await hub.close();
    await outage.stop();
  }
});
