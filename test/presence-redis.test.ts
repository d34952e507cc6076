/**
 * The Redis presence store: the presence contract on a redis-server of this
 * file's own (nodes with a 1 s lease, each on a connection of its own, as
 * nodes of a hub are), then what Redis brings of its own: Redis down when a
 * node joins or leaves, Redis back without its data, a node frozen past its
 * lease, the keys it leaves, and the store the Redis event log makes.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis, type RedisOptions } from 'ioredis';
import { isHeraldError } from '../src/errors.js';
import { RedisEventLog } from '../src/log/redis-log.js';
import type { PresenceRecord, PresenceStore } from '../src/presence/presence.js';
import { RedisPresence, type RedisPresenceOptions } from '../src/presence/redis-presence.js';
import { presenceContract, presenceRecord, type PresenceCluster } from './support/presence-contract.js';
import { redisSkip, startRedis, type TestRedis } from './support/redis-server.js';
import { pollUntil, within } from './support/waiting.js';

const BOUNDED = { timeout: 60_000 };
const LEASE_MS = 1000;
/** As the event log's command connection: commands fail at once while Redis is away. */
const CONNECTION: RedisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 2000, commandTimeout: 5000, retryStrategy: () => 50 };

let prefixes = 0;

function connected(client: Redis): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return within(new Promise((resolve) => client.once('ready', () => resolve())), 'a connection to the test Redis', 10_000);
}

interface RedisCluster extends PresenceCluster {
  readonly nodes: readonly RedisPresence[];
  readonly prefix: string;
  /** What each node's `notify` said. */
  readonly lines: readonly string[][];
}

/** `count` nodes of one hub (a prefix of their own), each on its own connection; `extra(i)` adds options to node i. */
async function openCluster(url: string, count: number, extra: (index: number) => Partial<RedisPresenceOptions> = () => ({})): Promise<RedisCluster> {
  const prefix = `presence${prefixes++}`;
  const connections = Array.from({ length: count }, () => new Redis(url, CONNECTION));
  await Promise.all(connections.map(connected));
  const names = connections.map((_, i) => `node-${i}`);
  const lines = connections.map((): string[] => []);
  const nodes = connections.map(
    (redis, i) => new RedisPresence({ redis, prefix, node: names[i]!, leaseMs: LEASE_MS, notify: (line) => lines[i]!.push(line), ...extra(i) }),
  );
  return {
    nodes,
    names,
    prefix,
    lines,
    crash: async (index) => {
      nodes[index]!.abandon();
      connections[index]!.disconnect();
    },
    close: async () => {
      await Promise.all(nodes.map((node) => node.close()));
      for (const client of connections) {
        if (client.status === 'ready') await client.quit().catch(() => undefined);
        client.disconnect();
      }
    },
  };
}

/** The subscribers a node lists, sorted; `unavailable` while Redis does not answer. */
async function listed(node: PresenceStore): Promise<string[] | 'unavailable'> {
  try {
    return (await node.list()).map((record) => record.subscriber).sort();
  } catch (error) {
    if (isHeraldError(error) && error.code === 'HERALD_ERR_STORE_UNAVAILABLE') return 'unavailable';
    throw error;
  }
}

function bySubscriber(records: readonly PresenceRecord[]): PresenceRecord[] {
  return [...records].sort((a, b) => (a.subscriber < b.subscriber ? -1 : 1));
}

function subscribers(records: readonly PresenceRecord[]): string[] {
  return records.map((record) => record.subscriber).sort();
}

/** Polls a node's list until it holds exactly `expected` (bounded). */
function listedAs(node: PresenceStore, expected: readonly PresenceRecord[], what: string): Promise<unknown> {
  const want = JSON.stringify(subscribers(expected));
  return pollUntil(() => listed(node), (seen) => JSON.stringify(seen) === want, what, { timeoutMs: 20_000 });
}

describe('presence: Redis', { skip: redisSkip }, () => {
  let redis: TestRedis | undefined;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  presenceContract({ name: 'Redis', maxNodes: 3, open: (count) => openCluster(redis!.url, count) });
});

describe('presence: Redis down, back, or back without its data; a frozen node; keys', { skip: redisSkip }, () => {
  test('Redis down when a node joins and leaves: both resolve, the listing is refused; once Redis is back, the node’s state is what Redis holds', BOUNDED, async () => {
    const server = await startRedis();
    const cluster = await openCluster(server.url, 2);
    try {
      const [node, other] = cluster.nodes;
      const left = presenceRecord(cluster.names[0]!);
      const kept = presenceRecord(cluster.names[0]!);
      await node!.join(left);
      await node!.join(kept);
      assert.deepEqual(await listed(other!), subscribers([left, kept]));
      await server.kill();
      const joined = presenceRecord(cluster.names[0]!);
      await within(node!.join(joined), 'a join while Redis is down to resolve');
      await within(node!.leave(left), 'a leave while Redis is down to resolve');
      assert.equal(await listed(other!), 'unavailable', 'a listing while Redis is down is refused, not empty');
      // Back with its data (AOF): it still holds `left`, and not `joined`.
      await server.restart();
      await listedAs(other!, [kept, joined], 'the record joined while Redis was down listed, the one left gone');
    } finally {
      await cluster.close();
      await server.stop();
    }
  });

  test('Redis restarted without its data: every node writes its records again on its own, none is reported lost', BOUNDED, async () => {
    const server = await startRedis();
    const cluster = await openCluster(server.url, 3);
    try {
      const lost: PresenceRecord[][] = [];
      for (const node of cluster.nodes) node.onLost((records) => lost.push([...records]));
      const records = cluster.names.flatMap((name) => [presenceRecord(name), presenceRecord(name, { protocol: 'herald', selectors: [] })]);
      await Promise.all(records.map((record) => cluster.nodes[cluster.names.indexOf(record.node)]!.join(record)));
      assert.deepEqual(await listed(cluster.nodes[0]!), subscribers(records));
      await server.kill();
      await server.restart({ withoutData: true });
      for (const node of cluster.nodes) await listedAs(node, records, 'every node’s records back after Redis lost its data');
      assert.deepEqual(lost, [], 'nothing was reported lost: no node died');
    } finally {
      await cluster.close();
      await server.stop();
    }
  });

  test('a node frozen past its lease: another node reaps it and reports its records once; thawed, it writes them again', BOUNDED, async () => {
    const server = await startRedis();
    // Node 1's renewals wait at this gate (open until the test closes it): every write of its waits behind them.
    let gate: Promise<void> = Promise.resolve();
    const cluster = await openCluster(server.url, 2, (i) => (i === 1 ? { beforeRenewal: () => gate } : {}));
    try {
      const [watcher, frozen] = cluster.nodes;
      const restored: PresenceRecord[][] = [];
      frozen!.onRestored!((records) => restored.push([...records]));
      const lost: PresenceRecord[][] = [];
      let told!: () => void;
      const firstTold = new Promise<void>((resolve) => (told = resolve));
      watcher!.onLost((records) => {
        lost.push([...records]);
        told();
      });
      const own = presenceRecord(cluster.names[0]!);
      const orphans = [presenceRecord(cluster.names[1]!), presenceRecord(cluster.names[1]!, { subject: 'alice', payloads: [{ tenant: 'a' }] })];
      await watcher!.join(own);
      for (const record of orphans) await frozen!.join(record);
      assert.deepEqual(await listed(watcher!), subscribers([own, ...orphans]));

      let thaw!: () => void;
      gate = new Promise<void>((resolve) => (thaw = resolve));
      await within(firstTold, 'the watcher to reap the frozen node', 30_000);
      assert.equal(lost.length, 1);
      assert.deepEqual(bySubscriber(lost[0]!), bySubscriber(orphans), 'its records, exactly as joined');
      assert.deepEqual(await listed(watcher!), subscribers([own]), 'the reaped records are listed no more');
      assert.deepEqual(await listed(frozen!), subscribers([own]), 'not even by the frozen node');

      thaw();
      await listedAs(watcher!, [own, ...orphans], 'the thawed node’s records listed again');
      assert.equal(lost.length, 1, 'reported lost once');
      // The thawed node tells its front ends which of its open streams it wrote again (Mercure announces them anew).
      assert.equal(restored.length, 1, 'told once');
      assert.deepEqual(bySubscriber(restored[0]!), bySubscriber(orphans));
      assert.ok(
        cluster.lines[1]!.some((line) => line.includes('missing from Redis')),
        `the thawed node says it wrote its records again: ${JSON.stringify(cluster.lines[1])}`,
      );
    } finally {
      await cluster.close();
      await server.stop();
    }
  });

  test('a node whose lease ran out is not listed, though nobody reaped it yet; the first node to renew reaps it', BOUNDED, async () => {
    const server = await startRedis();
    // Node 0's renewals wait at this gate once it is closed; `entered` says a renewal is held there.
    let gate: Promise<void> = Promise.resolve();
    let entered: () => void = () => {};
    const cluster = await openCluster(server.url, 2, (i) =>
      i === 0
        ? {
            beforeRenewal: () => {
              entered();
              return gate;
            },
          }
        : {},
    );
    const probe = new Redis(server.url);
    try {
      const [reader, dying] = cluster.nodes;
      const lost: PresenceRecord[][] = [];
      let told!: () => void;
      const firstTold = new Promise<void>((resolve) => (told = resolve));
      reader!.onLost((records) => {
        lost.push([...records]);
        told();
      });
      const mine = presenceRecord(cluster.names[0]!);
      const theirs = presenceRecord(cluster.names[1]!);
      await reader!.join(mine);
      await dying!.join(theirs);
      assert.deepEqual(await listed(reader!), subscribers([mine, theirs]));

      // The only node that could reap stops renewing: nothing is reaped from here on.
      let thaw!: () => void;
      const held = new Promise<void>((resolve) => (entered = resolve));
      gate = new Promise<void>((resolve) => (thaw = resolve));
      await within(held, 'the reader’s renewal to be held');
      await cluster.crash!(1);
      await listedAs(reader!, [], 'no record listed once both leases ran out');
      assert.equal(await probe.hlen(`{${cluster.prefix}}:presence:node-1`), 1, 'the dead node’s record is still in Redis: not reaped, only not listed');
      assert.deepEqual(lost, []);

      thaw();
      await within(firstTold, 'the thawed reader to reap the dead node');
      assert.deepEqual(lost, [[theirs]]);
      await listedAs(reader!, [mine], 'the reader listed again, the dead node not');
    } finally {
      probe.disconnect();
      await cluster.close();
      await server.stop();
    }
  });

  test('a process that takes over the name of a dead one (a restarted container): it reports the streams left behind, once', BOUNDED, async () => {
    const server = await startRedis();
    const cluster = await openCluster(server.url, 1);
    const connection = new Redis(server.url, CONNECTION);
    let successor: RedisPresence | undefined;
    try {
      const behind = [presenceRecord(cluster.names[0]!), presenceRecord(cluster.names[0]!)];
      for (const record of behind) await cluster.nodes[0]!.join(record);
      await cluster.crash!(0);
      await connected(connection);
      successor = new RedisPresence({ redis: connection, prefix: cluster.prefix, node: cluster.names[0]!, leaseMs: LEASE_MS });
      const lost: PresenceRecord[][] = [];
      let told!: () => void;
      const firstTold = new Promise<void>((resolve) => (told = resolve));
      successor.onLost((records) => {
        lost.push([...records]);
        told();
      });
      const fresh = presenceRecord(cluster.names[0]!);
      await successor.join(fresh);
      await within(firstTold, 'the successor to report the streams left behind');
      assert.deepEqual(lost.map(bySubscriber), [bySubscriber(behind)]);
      assert.deepEqual(await listed(successor), [fresh.subscriber]);
    } finally {
      await successor?.close();
      connection.disconnect();
      await cluster.close();
      await server.stop();
    }
  });

  test('keys: one hash slot, the records’ hash outlives the lease; close removes the node’s records at once, reporting nothing lost', BOUNDED, async () => {
    const server = await startRedis();
    const cluster = await openCluster(server.url, 2);
    const probe = new Redis(server.url);
    try {
      const [leaving, staying] = cluster.nodes;
      const lost: PresenceRecord[][] = [];
      staying!.onLost((records) => lost.push([...records]));
      const record = presenceRecord(cluster.names[0]!);
      await leaving!.join(record);
      await staying!.join(presenceRecord(cluster.names[1]!));
      const keys = (await probe.keys('*')).sort();
      const prefix = `{${cluster.prefix}}:presence:`;
      assert.deepEqual(keys, [`${prefix}node-0`, `${prefix}node-1`, `${prefix}nodes`].sort());
      assert.deepEqual(new Set(keys.map(hashTag)), new Set([cluster.prefix]), 'every key has the hub’s hash tag: one slot');
      const ttl = await probe.pttl(`${prefix}node-0`);
      assert.ok(ttl > LEASE_MS, `the hash outlives the lease (PTTL ${ttl} ms, lease ${LEASE_MS} ms)`);
      assert.equal(JSON.parse((await probe.hget(`${prefix}node-0`, record.subscriber))!).subscriber, record.subscriber);

      await leaving!.close();
      assert.equal(await probe.exists(`${prefix}node-0`), 0, 'its hash is gone');
      assert.equal(await probe.zscore(`${prefix}nodes`, 'node-0'), null, 'and its lease');
      assert.equal((await listed(staying!)).length, 1);
      await staying!.close();
      assert.deepEqual(await probe.keys('*'), [], 'nothing left once every node closed');
      assert.deepEqual(lost, []);
    } finally {
      probe.disconnect();
      await cluster.close();
      await server.stop();
    }
  });

  test('the Redis event log’s presence(): nodes of one log prefix see each other’s records', BOUNDED, async () => {
    const server = await startRedis();
    const logs = [0, 1].map(() => new RedisEventLog({ url: server.url, prefix: 'shared', capacity: 1000, maxAgeMs: 0 }));
    await Promise.all(logs.map((log) => log.ready()));
    const stores = logs.map((log, i) => log.presence(`log-node-${i}`));
    try {
      const record = presenceRecord('log-node-0');
      await stores[0]!.join(record);
      assert.deepEqual(await listed(stores[1]!), [record.subscriber]);
      await stores[0]!.leave(record);
      assert.deepEqual(await listed(stores[1]!), []);
    } finally {
      for (const store of stores) await store.close();
      for (const log of logs) await log.close();
      await server.stop();
    }
  });
});

/** The hash tag of a key: what decides its slot in a Redis Cluster. */
function hashTag(key: string): string {
  return /\{([^}]+)\}/.exec(key)?.[1] ?? key;
}
