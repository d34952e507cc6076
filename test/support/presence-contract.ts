/**
 * The presence store contract, written once: every store (one process,
 * the workers' IPC store, Redis) runs it through its own test file with a
 * {@link PresenceSubject} that opens n nodes of one hub.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newSubscriberId, recordMatches, type PresenceRecord, type PresenceStore } from '../../src/presence/presence.js';
import { anySelector, exactSelector, heraldSelector, uriTemplateSelector, urlPatternSelector } from '../../src/topics/selectors.js';
import { within } from './waiting.js';

/** Several nodes' stores of one hub. */
export interface PresenceCluster {
  readonly nodes: readonly PresenceStore[];
  /** Each node's name, as its records carry it. */
  readonly names: readonly string[];
  /**
   * Ends node `index` as a crash would (no `leave`). Absent for a store
   * that lives and dies with its only process.
   */
  crash?(index: number): Promise<void>;
  close(): Promise<void>;
}

export interface PresenceSubject {
  readonly name: string;
  /** Opens `nodes` nodes (at least 1; a subject of one process gives 1 whatever is asked, and says so with `maxNodes`). */
  open(nodes: number): Promise<PresenceCluster>;
  readonly maxNodes: number;
}

const BOUNDED = { timeout: 60_000 };

export function presenceRecord(node: string, overrides: Partial<PresenceRecord> = {}): PresenceRecord {
  return {
    subscriber: newSubscriberId(),
    protocol: 'mercure',
    selectors: [exactSelector('https://example.com/books/1')],
    since: Date.now(),
    node,
    ...overrides,
  };
}

function bySubscriber(records: readonly PresenceRecord[]): Map<string, PresenceRecord> {
  return new Map(records.map((record) => [record.subscriber, record]));
}

export function presenceContract(subject: PresenceSubject): void {
  describe(`presence contract: ${subject.name}`, BOUNDED, () => {
    test('a record joined on a node is listed by every node; after leave, by none', async () => {
      const cluster = await subject.open(2);
      try {
        const [first] = cluster.nodes;
        const record = presenceRecord(cluster.names[0]!);
        await first!.join(record);
        for (const node of cluster.nodes) assert.deepEqual((await node.list()).map((r) => r.subscriber), [record.subscriber]);
        await first!.leave(record);
        for (const node of cluster.nodes) assert.deepEqual(await node.list(), []);
      } finally {
        await cluster.close();
      }
    });

    test('records come back exactly as joined: every kind of selector, payloads, subject, since, node', async () => {
      const cluster = await subject.open(1);
      try {
        const node = cluster.nodes[0]!;
        const record = presenceRecord(cluster.names[0]!, {
          protocol: 'mercure',
          selectors: [
            heraldSelector('orders/*'),
            exactSelector('plain topic'),
            uriTemplateSelector('https://example.com/books/{id}'),
            urlPatternSelector('/authors/:id', 'https://hub.example/.well-known/mercure'),
            anySelector(),
          ],
          payloads: [{ tenant: 'a' }, null, undefined, ['x'], 'text'],
          subject: 'alice',
          since: 1_700_000_000_123,
        });
        const herald = presenceRecord(cluster.names[0]!, { protocol: 'herald', selectors: [] });
        await node.join(record);
        await node.join(herald);
        const listed = bySubscriber(await node.list());
        // JSON has no undefined in a list: a store that serialises gives null, which Mercure shows as "no payload" too.
        const got = listed.get(record.subscriber);
        assert.deepEqual({ ...got, payloads: got?.payloads?.map((payload) => payload ?? null) }, { ...record, payloads: [{ tenant: 'a' }, null, null, ['x'], 'text'] });
        assert.deepEqual(listed.get(herald.subscriber), herald);
        // What was listed still matches topics.
        const again = listed.get(record.subscriber)!;
        assert.ok(recordMatches(again, 'orders/7'));
        assert.ok(recordMatches(again, 'https://example.com/books/3'));
        assert.ok(recordMatches(again, 'https://hub.example/authors/9'));
        assert.ok(recordMatches(listed.get(herald.subscriber)!, 'anything'));
      } finally {
        await cluster.close();
      }
    });

    test('a thousand streams on two nodes, joined and left concurrently: the lists agree, no record twice', async () => {
      const cluster = await subject.open(2);
      try {
        const records = Array.from({ length: 1000 }, (_, i) => presenceRecord(cluster.names[i % cluster.nodes.length]!));
        const storeOf = (i: number): PresenceStore => cluster.nodes[i % cluster.nodes.length]!;
        await Promise.all(records.map((record, i) => storeOf(i).join(record)));
        // Every third leaves again.
        await Promise.all(records.map((record, i) => (i % 3 === 0 ? storeOf(i).leave(record) : Promise.resolve())));
        const expected = records.filter((_, i) => i % 3 !== 0).map((record) => record.subscriber).sort();
        for (const node of cluster.nodes) {
          const listed = (await node.list()).map((record) => record.subscriber).sort();
          assert.equal(new Set(listed).size, listed.length, 'no record twice');
          assert.deepEqual(listed, expected);
        }
      } finally {
        await cluster.close();
      }
    });

    test('leave of a record never joined, and a second leave, change nothing', async () => {
      const cluster = await subject.open(1);
      try {
        const node = cluster.nodes[0]!;
        const kept = presenceRecord(cluster.names[0]!);
        const gone = presenceRecord(cluster.names[0]!);
        await node.join(kept);
        await node.leave(gone);
        await node.join(gone);
        await node.leave(gone);
        await node.leave(gone);
        assert.deepEqual((await node.list()).map((record) => record.subscriber), [kept.subscriber]);
      } finally {
        await cluster.close();
      }
    });

    if (subject.maxNodes < 2) return;

    test('a node that dies without leaving: one survivor is told of its records once, and no node lists them', async () => {
      const cluster = await subject.open(3);
      try {
        const [, , dying] = cluster.nodes;
        const survivors = cluster.nodes.slice(0, 2);
        const lost: { node: number; records: readonly PresenceRecord[] }[] = [];
        let told!: () => void;
        const firstTold = new Promise<void>((resolve) => (told = resolve));
        survivors.forEach((store, node) =>
          store.onLost((records) => {
            lost.push({ node, records });
            told();
          }),
        );
        const kept = presenceRecord(cluster.names[0]!);
        const orphans = [presenceRecord(cluster.names[2]!), presenceRecord(cluster.names[2]!, { protocol: 'herald', selectors: [] })];
        await survivors[0]!.join(kept);
        for (const record of orphans) await dying!.join(record);
        assert.equal((await survivors[1]!.list()).length, 3);
        await cluster.crash!(2);
        await within(firstTold, 'a survivor to be told of the dead node’s streams', 30_000);
        const listed = (await survivors[1]!.list()).map((record) => record.subscriber);
        assert.deepEqual(listed, [kept.subscriber]);
        // Told once, to one node, with every orphan.
        assert.equal(lost.length, 1, `told ${lost.length} times`);
        assert.deepEqual(lost[0]!.records.map((record) => record.subscriber).sort(), orphans.map((record) => record.subscriber).sort());
        // A survivor's own records were never reported lost.
        assert.ok(!lost[0]!.records.some((record) => record.subscriber === kept.subscriber));
      } finally {
        await cluster.close();
      }
    });
  });
}
