/**
 * The event log contract, written once and run against every log: memory,
 * SQLite (a temporary file), Redis (a redis-server of this file's own, AOF
 * on) and the workers' IPC log (a `WorkerEventLog` talking to the
 * primary's real `PrimaryLogService` over an in-process channel that
 * serialises every message as `process.send` does).
 *
 * Then what each engine has of its own: Redis down at start, mid-read,
 * back with or without its data, the hash of chosen ids and entries the log
 * did not write; the primary gone mid-read; a SQLite file from before the
 * topic index or from before chosen ids, and the alternates' index trimmed.
 */

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { isWorkerMessage, type PrimaryMessage, type WorkerMessage } from '../src/cluster/ipc.js';
import { PrimaryLogService, type WorkerEnd } from '../src/cluster/log-service.js';
import { WorkerEventLog, type PrimaryChannel } from '../src/cluster/worker-log.js';
import { isHeraldError } from '../src/errors.js';
import { formatEventId, idOfPosition, parseEventId, positionOf } from '../src/log/event-id.js';
import { passesFilter, type EventDraft, type EventLog, type ReadPage, type ReadRequest, type StoredEvent, type TopicFilter } from '../src/log/event-log.js';
import { MemoryEventLog } from '../src/log/memory-log.js';
import { MIN_STREAM_LENGTH, RedisEventLog } from '../src/log/redis-log.js';
import { alternatesScanQuery, RESUME_QUERIES, scanQuery, SqliteEventLog } from '../src/log/sqlite-log.js';
import { Waiters } from './support/helpers.js';
import { InProcessChannel } from './support/ipc-channel.js';
import { redisSkip, startRedis, type TestRedis } from './support/redis-server.js';

/** A hang is a failure too: no test here may wait longer. */
const BOUNDED = { timeout: 60_000 };

// ---------------------------------------------------------------------------
// The subjects

interface LogSettings {
  /** Events kept at most (an engine may keep more: Redis keeps at least MIN_STREAM_LENGTH). */
  readonly capacity?: number;
  /** Events older than this many ms are trimmed; 0 keeps them regardless of age. */
  readonly maxAgeMs?: number;
}

/** A log under test, with the knobs the contract needs. */
interface Subject {
  /** The open log (a new one after `restart()`). */
  readonly log: EventLog;
  /** Events it keeps, at most. */
  readonly capacity: number;
  /** Whether a restart keeps the history (and so the meaning of earlier ids). */
  readonly durable: boolean;
  /** What the log's clock says (a test clock where the engine takes one, else the wall clock). */
  now(): number;
  /** Sets the clock age trimming measures against (and, where the log's clock makes the ids, the ids' clock). */
  setClock(ms: number): void;
  /** Returns once the clock has passed every event stored so far: the next append gets a later millisecond. */
  later(): Promise<void>;
  /** Runs age trimming now. */
  trimByAge(): Promise<void>;
  /** Brings `stats()` up to date (Redis gathers them in the background). */
  refreshStats(): Promise<void>;
  /** Closes the log and opens another on the same history, as a restarted process would. */
  restart(): Promise<EventLog>;
  close(): Promise<void>;
}

interface Engine {
  readonly name: string;
  readonly skip: string | false;
  /** Whether reads honour the topic filter exactly (the filter is a hint: a log may return more, never less). */
  readonly filtersExactly: boolean;
  setUp?(): Promise<void>;
  tearDown?(): Promise<void>;
  open(settings?: LogSettings): Promise<Subject>;
}

/** A test clock starting at the wall clock's time, so ids look like real ones. */
function testClock(): { now: () => number; set: (ms: number) => void } {
  let current = Date.now();
  return { now: () => current, set: (ms) => (current = ms) };
}

const memoryEngine: Engine = {
  name: 'memory',
  skip: false,
  filtersExactly: true,
  async open({ capacity = 1000, maxAgeMs = 0 } = {}) {
    const clock = testClock();
    const create = (): MemoryEventLog => new MemoryEventLog({ capacity, maxAgeMs, now: clock.now });
    let log = create();
    return {
      get log() {
        return log;
      },
      capacity,
      durable: false,
      now: clock.now,
      setClock: clock.set,
      later: async () => clock.set(clock.now() + 1000),
      trimByAge: async () => log.trimByAge(),
      refreshStats: async () => {},
      async restart() {
        await log.close();
        clock.set(clock.now() + 1000);
        log = create();
        return log;
      },
      close: () => log.close(),
    };
  },
};

let sqliteDir = '';
let sqliteFiles = 0;
const sqliteEngine: Engine = {
  name: 'sqlite',
  skip: false,
  filtersExactly: true,
  async setUp() {
    sqliteDir = mkdtempSync(join(tmpdir(), 'herald-contract-'));
  },
  async tearDown() {
    rmSync(sqliteDir, { recursive: true, force: true });
  },
  async open({ capacity = 1000, maxAgeMs = 0 } = {}) {
    const clock = testClock();
    const path = join(sqliteDir, `store-${sqliteFiles++}.db`);
    // Trimming runs when the test says so (and at open, as always).
    const create = (): SqliteEventLog => new SqliteEventLog({ path, capacity, maxAgeMs, now: clock.now, trimIntervalMs: 3_600_000 });
    let log = create();
    return {
      get log() {
        return log;
      },
      capacity,
      durable: true,
      now: clock.now,
      setClock: clock.set,
      later: async () => clock.set(clock.now() + 1000),
      trimByAge: async () => log.trim(),
      refreshStats: async () => {},
      async restart() {
        await log.close();
        log = create();
        return log;
      },
      close: () => log.close(),
    };
  },
};

let contractRedis: TestRedis | undefined;
let redisPrefixes = 0;
const redisEngine: Engine = {
  name: 'redis',
  skip: redisSkip,
  filtersExactly: true,
  async setUp() {
    contractRedis = await startRedis();
  },
  async tearDown() {
    await contractRedis?.stop();
  },
  async open({ capacity = 1000, maxAgeMs = 0 } = {}) {
    const url = contractRedis!.url;
    const prefix = `contract${redisPrefixes++}`;
    // Redis's clock makes the ids; the test clock only says when age trimming thinks it is.
    let trimClock: number | undefined;
    const create = async (): Promise<RedisEventLog> => {
      const log = new RedisEventLog({ url, prefix, capacity, maxAgeMs, now: () => trimClock ?? Date.now() });
      await log.ready();
      if (!log.health().ok) {
        await log.close();
        assert.fail(`the Redis log is not ready: ${JSON.stringify(log.health())}`);
      }
      return log;
    };
    let log = await create();
    return {
      get log() {
        return log;
      },
      capacity: Math.max(capacity, MIN_STREAM_LENGTH),
      durable: true,
      now: () => trimClock ?? Date.now(),
      setClock: (ms) => (trimClock = ms),
      later: () => nextMillisecond(),
      trimByAge: () => log.housekeeping(),
      refreshStats: () => log.housekeeping(),
      async restart() {
        await log.close();
        log = await create();
        return log;
      },
      close: () => log.close(),
    };
  },
};

/** A worker's channel to the primary's log service, registered with it as the primary registers a forked worker. */
function logChannel(service: PrimaryLogService): InProcessChannel {
  const channel = new InProcessChannel((primary, message) => {
    if (message.herald === 'append' || message.herald === 'read') void service.serve(primary, message);
  });
  service.add(channel.primary);
  return channel;
}

const workerEngine: Engine = {
  name: 'workers (IPC)',
  skip: false,
  filtersExactly: true,
  async open({ capacity = 1000, maxAgeMs = 0 } = {}) {
    // The primary owns a memory log, as `--workers` without --store.
    const clock = testClock();
    const inner = new MemoryEventLog({ capacity, maxAgeMs, now: clock.now });
    const service = new PrimaryLogService(inner);
    let channel = logChannel(service);
    let log = new WorkerEventLog(channel.worker);
    // The worker learns the primary's stats with each batch it passes on.
    const waiters = new Waiters();
    let newestSeen: string | undefined;
    const follow = (worker: WorkerEventLog): void => {
      worker.tail((events) => {
        newestSeen = events.at(-1)?.id ?? newestSeen;
        waiters.notify();
      });
    };
    follow(log);
    return {
      get log() {
        return log;
      },
      capacity,
      durable: true,
      now: clock.now,
      setClock: clock.set,
      later: async () => clock.set(clock.now() + 1000),
      trimByAge: async () => inner.trimByAge(),
      refreshStats: () => waiters.until(() => newestSeen === inner.stats().newestId, 'the newest batch at the worker', 20_000, () => `seen ${newestSeen}`),
      async restart() {
        // A worker restarts; the primary and its log live on.
        await log.close();
        channel.disconnect();
        service.remove(channel.primary);
        channel = logChannel(service);
        log = new WorkerEventLog(channel.worker);
        follow(log);
        return log;
      },
      async close() {
        await log.close();
        channel.disconnect();
        service.close();
        await inner.close();
      },
    };
  },
};

const ENGINES: readonly Engine[] = [memoryEngine, sqliteEngine, redisEngine, workerEngine];

// ---------------------------------------------------------------------------
// Helpers

/** Waits for the wall clock to pass the millisecond it is in (bounded: 200 turns of 1 ms timers). */
async function nextMillisecond(): Promise<void> {
  const start = Date.now();
  for (let turn = 0; turn < 200 && Date.now() <= start; turn++) await new Promise((resolve) => setTimeout(resolve, 1));
  assert.ok(Date.now() > start, 'the clock moved on');
}

const draft = (data: string, topic?: string, extra: Partial<EventDraft> = {}): EventDraft => ({ data, topic, ...extra });

/** Appends `count` events in batches of at most 200, topics from `topicOf(i)`. */
async function appendMany(log: EventLog, count: number, topicOf: (i: number) => string | undefined = () => undefined, dataOf: (i: number) => string = String): Promise<StoredEvent[]> {
  const stored: StoredEvent[] = [];
  for (let start = 0; start < count; start += 200) {
    const batch = Array.from({ length: Math.min(200, count - start) }, (_, k) => draft(dataOf(start + k), topicOf(start + k)));
    stored.push(...(await log.append(batch)));
  }
  return stored;
}

interface Paged {
  readonly status: 'complete' | 'expired' | 'unknown';
  readonly events: StoredEvent[];
  readonly pages: ReadPage[];
}

/**
 * Reads every page after `id`, as the hub does, checking what holds for every page on the way.
 * `startsAfter`: the position the read must start after (default: the place `id` names as a log id; a chosen id names none).
 */
async function readAll(log: EventLog, id: string, options: Partial<Omit<ReadRequest, 'after'>> = {}, startsAfter?: string): Promise<Paged> {
  const request = { limit: 1000, maxBytes: 1 << 30, ...options };
  let page = await log.read({ ...request, after: { id } });
  if (page.status === 'unknown') return { status: 'unknown', events: [], pages: [page] };
  const status = page.status;
  const pages: ReadPage[] = [page];
  const events: StoredEvent[] = [];
  const start = parseEventId(id);
  let previousCursor: string | undefined = startsAfter ?? (start === undefined ? undefined : positionOf(start));
  for (;;) {
    if (page.status === 'unknown') assert.fail('a continued read came back unknown');
    assert.ok(page.events.length <= request.limit, `a page holds at most ${request.limit} events`);
    const bytes = page.events.reduce((sum, event) => sum + event.data.length, 0);
    assert.ok(page.events.length <= 1 || bytes <= request.maxBytes, 'a page keeps to maxBytes unless it holds a single event');
    for (const event of page.events) assert.ok(event.position <= page.cursor, 'the cursor is at or after every event of its page');
    if (previousCursor !== undefined) assert.ok(page.end ? page.cursor >= previousCursor : page.cursor > previousCursor, 'a page that is not the end moves the cursor on');
    if (page.events.length > 0 && events.length > 0) assert.ok(page.events[0]!.position > events.at(-1)!.position, 'a page goes on after the one before');
    events.push(...page.events);
    if (page.end) break;
    assert.ok(pages.length < 100_000, 'the read reaches its end');
    previousCursor = page.cursor;
    page = await log.read({ ...request, after: { cursor: page.cursor } });
    pages.push(page);
  }
  return { status, events, pages };
}

/** What a reader of `filter` must get from `events` (all of the log after its start). */
function wanted(events: readonly StoredEvent[], filter: TopicFilter | undefined): StoredEvent[] {
  return events.filter((event) => passesFilter(filter, event));
}

/** The fields an event must keep from append to read and tail. */
function shape(event: StoredEvent): unknown {
  return {
    id: event.id,
    position: event.position,
    time: event.time,
    topic: event.topic,
    event: event.event,
    data: event.data,
    private: event.private,
    alsoTopics: event.alsoTopics,
    retry: event.retry,
  };
}
const shapes = (events: readonly StoredEvent[]): unknown[] => events.map(shape);
const idsOf = (events: readonly StoredEvent[]): string[] => events.map((event) => event.id);

/** Every tail batch a log passes on, with promises that resolve when enough has arrived. */
class TailRecorder {
  readonly batches: StoredEvent[][] = [];
  private readonly waiters = new Waiters();
  readonly stop: () => void;

  constructor(log: EventLog) {
    this.stop = log.tail((events) => {
      this.batches.push([...events]);
      this.waiters.notify();
    });
  }

  get events(): StoredEvent[] {
    return this.batches.flat();
  }

  until(count: number): Promise<void> {
    return this.waiters.until(() => this.events.length >= count, `${count} tail events`, 20_000, () => `got ${this.events.length}`);
  }

  /** Resolves once every one of these events has come through. */
  untilAll(events: readonly StoredEvent[]): Promise<void> {
    const seen = (): Set<string> => new Set(idsOf(this.events));
    return this.waiters.until(() => events.every((event) => seen().has(event.id)), `${events.length} given tail events`, 20_000, () => `got ${idsOf(this.events).join(' ')}`);
  }
}

async function rejectsUnavailable(promise: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isHeraldError(error), `${what}: a HeraldError, not ${String(error)}`);
    assert.equal(error.code, 'HERALD_ERR_STORE_UNAVAILABLE', what);
    assert.equal(error.details.retryAfter, 1, `${what}: with a retry delay`);
    return true;
  });
}

// ---------------------------------------------------------------------------
// The contract

for (const engine of ENGINES) {
  describe(`event log contract: ${engine.name}`, { skip: engine.skip }, () => {
    if (engine.setUp !== undefined) before(engine.setUp);
    if (engine.tearDown !== undefined) after(engine.tearDown);

    /** Opens a subject, runs `body`, closes it whatever happens. */
    const withLog = async (settings: LogSettings, body: (subject: Subject) => Promise<void>): Promise<void> => {
      const subject = await engine.open(settings);
      try {
        await body(subject);
      } finally {
        await subject.close();
      }
    };

    test('append assigns unique, increasing ids and positions in append order; batches stay whole and in order', BOUNDED, async () => {
      await withLog({}, async ({ log }) => {
        const single = [];
        for (let i = 0; i < 5; i++) single.push(...(await log.append([draft(`s${i}`)])));
        // Appends racing each other: each batch must come out whole and in its own order.
        const batches = await Promise.all(Array.from({ length: 6 }, (_, b) => log.append(Array.from({ length: 4 }, (_, k) => draft(`b${b}.${k}`, `t/${b}`)))));
        for (const [b, batch] of batches.entries()) assert.deepEqual(batch.map((e) => e.data), ['0', '1', '2', '3'].map((k) => `b${b}.${k}`));
        const appended = [...single, ...batches.flat()];
        assert.equal(new Set(idsOf(appended)).size, appended.length, 'ids are unique');
        assert.equal(new Set(appended.map((e) => e.position)).size, appended.length, 'positions are unique');
        for (let i = 1; i < single.length; i++) assert.ok(single[i]!.position > single[i - 1]!.position, 'sequential appends: positions increase');

        const all = (await readAll(log, single[0]!.id, { limit: 5 })).events;
        assert.deepEqual(new Set(idsOf(all)), new Set(idsOf(appended.slice(1))), 'the log holds what was appended');
        const sorted = [...all.map((e) => e.position)].sort();
        assert.deepEqual(all.map((e) => e.position), sorted, 'positions sort as plain strings in log order');
        for (const batch of batches) {
          const at = all.findIndex((e) => e.id === batch[0]!.id);
          assert.deepEqual(idsOf(all.slice(at, at + batch.length)), idsOf(batch), 'a batch is stored as one run, nothing between its events');
        }
        for (const id of idsOf(appended)) assert.ok(parseEventId(id) !== undefined && !/[\r\n\0]/.test(id), `${id} is an id of the scheme`);
      });
    });

    test('ids keep increasing when the clock stands still or steps back', BOUNDED, async () => {
      await withLog({}, async (subject) => {
        const { log } = subject;
        const events = [...(await log.append([draft('a'), draft('b')]))];
        const start = subject.now();
        subject.setClock(start - 5000);
        events.push(...(await log.append([draft('c')])));
        subject.setClock(start - 5000);
        events.push(...(await log.append([draft('d')])));
        for (let i = 1; i < events.length; i++) assert.ok(events[i]!.position > events[i - 1]!.position, `${events[i]!.id} after ${events[i - 1]!.id}`);
      });
    });

    test('an event keeps its fields from append through read and tail; `time` is when it was stored', BOUNDED, async () => {
      await withLog({}, async (subject) => {
        const { log } = subject;
        const tail = new TailRecorder(log);
        const [anchor] = await log.append([draft('anchor')]);
        const before = subject.now();
        const stored = await log.append([
          draft('plain'),
          draft('typed', 'a/b', { event: 'update' }),
          draft('secret', 'a/b', { private: true }),
          draft('', 'empty'),
          draft('line one\nline two'),
        ]);
        const afterAppend = subject.now();
        for (const event of stored) assert.ok(event.time >= before && event.time <= afterAppend, `time ${event.time} within [${before}, ${afterAppend}]`);
        assert.equal(stored[2]!.private, true, 'a private event is flagged');
        for (const event of [stored[0]!, stored[1]!, stored[3]!]) assert.equal(event.private, undefined, 'a public event carries no flag');
        assert.equal(stored[0]!.topic, undefined);
        assert.equal(stored[0]!.event, undefined);
        const read = await readAll(log, anchor!.id);
        assert.deepEqual(shapes(read.events), shapes(stored), 'read back exactly as stored, private events kept and flagged');
        await tail.until(6);
        assert.deepEqual(shapes(tail.events.slice(1)), shapes(stored), 'the tail passes on exactly what was stored');
        tail.stop();
      });
    });

    test('resume after every retained id gets exactly the events after it; the newest gets none, with end', BOUNDED, async () => {
      await withLog({}, async ({ log }) => {
        const topics = ['a', 'a/b', 'b', undefined];
        const stored = await appendMany(log, 30, (i) => topics[i % topics.length]);
        for (const [i, event] of stored.entries()) {
          const read = await readAll(log, event.id, { limit: 3 });
          assert.equal(read.status, 'complete', `after ${event.id}`);
          assert.deepEqual(idsOf(read.events), idsOf(stored.slice(i + 1)), `after ${event.id}`);
        }
        const newest = await log.read({ after: { id: stored.at(-1)!.id }, limit: 10, maxBytes: 1 << 20 });
        assert.ok(newest.status === 'complete' && newest.events.length === 0 && newest.end, 'nothing after the newest, and the page says it is the end');
        const first = await log.read({ after: { id: stored[0]!.id }, limit: 1, maxBytes: 1 << 20 });
        assert.ok(first.status === 'complete' && !first.end && first.events.length === 1, 'a page that stopped early does not claim the end');
      });
    });

    test('malformed ids and ids ahead of the newest are unknown; ids from before the history began are expired', BOUNDED, async () => {
      await withLog({}, async ({ log }) => {
        const stored = await log.append([draft('a'), draft('b')]);
        const newest = parseEventId(stored[1]!.id)!;
        const unknown = ['', 'garbage', '1', '1-', '-1', '1-2-3', ' 1-0', '1-0 ', '1e3-0', '1234567890123456-0', '1-1234567890', '１-0'];
        unknown.push(formatEventId({ ms: newest.ms, seq: newest.seq + 1 }), formatEventId({ ms: newest.ms + 1, seq: 0 }), formatEventId({ ms: newest.ms + 10 ** 9, seq: 0 }));
        for (const id of unknown) assert.equal((await log.read({ after: { id }, limit: 10, maxBytes: 1 << 20 })).status, 'unknown', JSON.stringify(id));
        for (const id of ['0-0', '1-0', formatEventId({ ms: parseEventId(stored[0]!.id)!.ms - 60_000, seq: 0 })]) {
          const read = await readAll(log, id);
          assert.equal(read.status, 'expired', id);
          assert.deepEqual(idsOf(read.events), idsOf(stored), `${id}: from the oldest retained on`);
        }
      });
    });

    test('ids of an earlier run keep their meaning after a restart, and new ids come after them', BOUNDED, async () => {
      await withLog({}, async (subject) => {
        const earlier = await subject.log.append([draft('1'), draft('2', 'x'), draft('3')]);
        const log = await subject.restart();
        const later = await log.append([draft('4')]);
        assert.ok(later[0]!.position > earlier[2]!.position, 'new ids come after the earlier run\'s');
        const read = await readAll(log, earlier[0]!.id);
        if (subject.durable) {
          assert.equal(read.status, 'complete');
          assert.deepEqual(shapes(read.events), shapes([...earlier.slice(1), ...later]));
        } else {
          assert.equal(read.status, 'expired', 'a history that did not survive: the client is told events may be missing');
          assert.deepEqual(idsOf(read.events), idsOf(later));
        }
      });
    });

    test('paging: limits and byte budgets are kept, a page holds at least one event, cursors continue exactly', BOUNDED, async () => {
      await withLog({}, async ({ log }) => {
        const [anchor] = await log.append([draft('anchor')]);
        const sizes = [10, 10, 10, 50, 5, 5, 5, 5, 200, 1];
        const stored = await log.append(sizes.map((size, i) => draft(String(i % 10).repeat(size), i % 2 === 0 ? 'even' : undefined)));
        for (const limit of [1, 2, 3, 7, 1000]) {
          for (const maxBytes of [1, 25, 60, 1 << 20]) {
            const read = await readAll(log, anchor!.id, { limit, maxBytes });
            assert.deepEqual(idsOf(read.events), idsOf(stored), `limit ${limit}, maxBytes ${maxBytes}: every event once, in order`);
            for (const page of read.pages) assert.ok(page.status === 'unknown' || page.events.length > 0 || page.end, 'an unfiltered page is empty only at the end');
          }
        }
        const big = await log.read({ after: { id: stored[7]!.id }, limit: 10, maxBytes: 10 });
        assert.ok(big.status === 'complete' && big.events.length === 1 && big.events[0]!.data.length === 200, 'an event larger than the budget still comes, alone');
        assert.equal(big.status === 'complete' && big.cursor, stored[8]!.position, 'the cursor is the last event the page holds');
      });
    });

    test('filtered reads skip other topics yet never miss a wanted event (exact, prefix, none, topicless events)', BOUNDED, async () => {
      await withLog({}, async ({ log }) => {
        const [anchor] = await log.append([draft('anchor')]);
        const topics = ['a', 'a/b', 'a/c/d', 'b', 'ab', 'a0', 'b/a', undefined, 'c'];
        // A deterministic shuffle of topics, so every filter sees runs and gaps.
        const stored = await appendMany(log, 120, (i) => topics[(i * 7 + (i >> 3)) % topics.length]);
        const filters: (TopicFilter | undefined)[] = [
          undefined,
          { exact: ['a'], prefixes: [] },
          { exact: ['a/b', 'b'], prefixes: [] },
          { exact: [], prefixes: ['a/'] },
          { exact: ['b'], prefixes: ['a/'] },
          { exact: ['a/b'], prefixes: ['a/'] },
          { exact: [], prefixes: ['b/', 'a/c/'] },
          { exact: ['nowhere'], prefixes: ['nothing/'] },
          { exact: [], prefixes: [] },
        ];
        for (const topicsFilter of filters) {
          for (const limit of [1, 4, 1000]) {
            const read = await readAll(log, anchor!.id, { topics: topicsFilter, limit, maxBytes: limit === 4 ? 3 : 1 << 20 });
            const label = `${JSON.stringify(topicsFilter)}, limit ${limit}`;
            const expected = wanted(stored, topicsFilter);
            const got = new Set(idsOf(read.events));
            for (const event of expected) assert.ok(got.has(event.id), `${label}: ${event.id} (${event.topic}) is not missed`);
            assert.equal(got.size, read.events.length, `${label}: nothing twice`);
            const all = new Set(idsOf(stored));
            for (const event of read.events) assert.ok(all.has(event.id), `${label}: only events of the log after the start`);
            if (engine.filtersExactly) assert.deepEqual(idsOf(read.events), idsOf(expected), `${label}: exactly the wanted events`);
          }
        }
      });
    });

    test('a long history: filtered reads page through in bounded steps and reach the end with every wanted event', BOUNDED, async () => {
      await withLog({ capacity: 10_000 }, async ({ log }) => {
        const [anchor] = await log.append([draft('anchor')]);
        // 2,600 events: a rare topic, one prefix over 100 topics, a few without a topic.
        const topicOf = (i: number): string | undefined => (i % 500 === 7 ? 'rare' : i % 13 === 0 ? undefined : `many/${i % 100}`);
        const stored = await appendMany(log, 2600, topicOf, (i) => `event ${i}`);
        const readers: { filter: TopicFilter | undefined; limit: number }[] = [
          { filter: { exact: ['rare'], prefixes: [] }, limit: 500 },
          { filter: { exact: [], prefixes: ['many/'] }, limit: 500 },
          { filter: { exact: ['rare'], prefixes: ['many/9'] }, limit: 7 },
          { filter: undefined, limit: 500 },
        ];
        for (const { filter, limit } of readers) {
          const read = await readAll(log, anchor!.id, { topics: filter, limit, maxBytes: 256 * 1024 });
          const label = JSON.stringify(filter);
          assert.equal(read.status, 'complete');
          assert.deepEqual(idsOf(read.events), idsOf(wanted(stored, filter)), `${label}: every wanted event once, in order`);
          // A page holds an event, or has looked through a whole scan window (a thousand entries or more).
          assert.ok(read.pages.length <= read.events.length + Math.ceil(2601 / 1000) + 1, `${label}: ${read.pages.length} pages for ${read.events.length} events`);
        }
      });
    });

    test('trimming by count: older ids are expired, the horizon and later ids are complete', BOUNDED, async () => {
      await withLog({ capacity: 5 }, async (subject) => {
        const { log, capacity } = subject;
        const stored = await appendMany(log, capacity + 3);
        const retained = stored.slice(3);
        const fromTrimmed = await readAll(log, stored[0]!.id, { limit: 400 });
        assert.equal(fromTrimmed.status, 'expired');
        assert.deepEqual(idsOf(fromTrimmed.events), idsOf(retained), 'from the oldest retained on');
        const fromHorizon = await readAll(log, stored[2]!.id, { limit: 400 });
        assert.equal(fromHorizon.status, 'complete', 'the newest trimmed id: everything after it is retained');
        assert.deepEqual(idsOf(fromHorizon.events), idsOf(retained));
        const fromRetained = await readAll(log, stored[3]!.id, { limit: 400 });
        assert.equal(fromRetained.status, 'complete');
        assert.deepEqual(idsOf(fromRetained.events), idsOf(retained.slice(1)));
        await subject.refreshStats();
        assert.deepEqual(log.stats(), { size: capacity, oldestId: retained[0]!.id, newestId: stored.at(-1)!.id });
        if (subject.durable) {
          const reopened = await subject.restart();
          assert.equal((await readAll(reopened, stored[0]!.id, { limit: 400 })).status, 'expired', 'what was trimmed stays known as trimmed after a restart');
          assert.equal((await readAll(reopened, stored[2]!.id, { limit: 400 })).status, 'complete');
        }
      });
    });

    test('trimming by age: events older than maxAge leave; resuming before them is expired', BOUNDED, async () => {
      await withLog({ maxAgeMs: 10_000 }, async (subject) => {
        const { log } = subject;
        const [old] = await log.append([draft('old')]);
        await subject.later();
        const [recent] = await log.append([draft('recent')]);
        assert.ok(recent!.time > old!.time);
        // Now `old` is older than maxAge, `recent` exactly maxAge old (still kept).
        subject.setClock(recent!.time + 10_000);
        await subject.trimByAge();
        const fromOld = await readAll(log, old!.id);
        assert.equal(fromOld.status, 'complete', 'the newest trimmed id is the horizon');
        assert.deepEqual(idsOf(fromOld.events), [recent!.id]);
        const beforeOld = await readAll(log, formatEventId({ ms: old!.time - 1, seq: 0 }));
        assert.equal(beforeOld.status, 'expired');
        assert.deepEqual(idsOf(beforeOld.events), [recent!.id]);
        // The workers' log learns the primary's stats with each batch; trimming alone sends none.
        if (engine !== workerEngine) {
          await subject.refreshStats();
          assert.deepEqual(log.stats(), { size: 1, oldestId: recent!.id, newestId: recent!.id });
        }
      });
    });

    test('trimming mid-replay: a continuation cursor that fell behind the horizon reads as expired', BOUNDED, async () => {
      await withLog({ capacity: 5 }, async (subject) => {
        const { log, capacity } = subject;
        const first = await appendMany(log, 4);
        const page = await log.read({ after: { id: first[0]!.id }, limit: 1, maxBytes: 1 << 20 });
        assert.ok(page.status === 'complete' && !page.end);
        const cursor = page.cursor;
        // Enough appends to trim past the cursor.
        const more = await appendMany(log, capacity);
        const next = await log.read({ after: { cursor }, limit: 1000, maxBytes: 1 << 30 });
        if (next.status !== 'expired') assert.fail(`the continuation learns events were trimmed under it (got ${next.status})`);
        const rest = [...next.events];
        if (!next.end) rest.push(...(await readAll(log, rest.at(-1)!.id)).events);
        assert.deepEqual(idsOf(rest), idsOf([...first, ...more].slice(-capacity)), 'and goes on from the oldest retained');
      });
    });

    test('the tail passes every batch, in order, to every listener registered; an unsubscribed one gets nothing more', BOUNDED, async () => {
      await withLog({}, async ({ log }) => {
        const one = new TailRecorder(log);
        const two = new TailRecorder(log);
        const appended = (await Promise.all(Array.from({ length: 8 }, (_, b) => log.append([draft(`${b}a`, 't'), draft(`${b}b`), draft(`${b}c`, 'u', { private: true })])))).flat();
        appended.push(...(await log.append([draft('last')])));
        const inOrder = [...appended].sort((a, b) => (a.position < b.position ? -1 : 1));
        await one.until(inOrder.length);
        await two.until(inOrder.length);
        for (const recorder of [one, two]) {
          assert.deepEqual(shapes(recorder.events), shapes(inOrder), 'every event once, in log order, as stored');
          for (const batch of recorder.batches) assert.ok(batch.length > 0, 'no empty batch');
        }
        one.stop();
        const [after] = await log.append([draft('after stop')]);
        await two.until(inOrder.length + 1);
        assert.equal(two.events.at(-1)!.id, after!.id);
        assert.equal(one.events.length, inOrder.length, 'an unsubscribed listener gets nothing more');
        two.stop();
      });
    });

    test('an event appended after a read is called is in its page or reaches the tail', BOUNDED, async () => {
      await withLog({}, async ({ log }) => {
        const [anchor] = await log.append([draft('anchor')]);
        const tail = new TailRecorder(log);
        const reading = log.read({ after: { id: anchor!.id }, limit: 1000, maxBytes: 1 << 30 });
        const racing = await log.append([draft('racing')]);
        const page = await reading;
        assert.ok(page.status === 'complete');
        const [later] = await log.append([draft('later')]);
        // The tail got `later`: everything stored before it has come through too.
        await tail.untilAll([later!]);
        const seen = new Set([...idsOf(page.events), ...idsOf(tail.events)]);
        for (const event of [...racing, later!]) assert.ok(seen.has(event.id), `${event.id} is delivered one way or the other`);
        tail.stop();
      });
    });

    // -------------------------------------------------------------------------
    // Chosen ids, alternate topics, retry (Mercure's updates)

    test('chosen ids are kept verbatim as the events\' ids, positions still order; a mixed batch; the optional fields round-trip or stay absent', BOUNDED, async () => {
      await withLog({}, async (subject) => {
        const { log } = subject;
        const tail = new TailRecorder(log);
        const [anchor] = await log.append([draft('anchor', undefined, { id: 'anchor-id' })]);
        const alternates = ['c', 'd/e'];
        const drafts = [
          draft('chosen', 'a', { id: 'urn:uuid:5e3c0a6e-0d1a-4c43-9f6b-1f0c2b7d9a01' }),
          draft('own'),
          draft('spaces and more', 'a', { id: ' ein Schlüssel → 🔑 ' }),
          draft('looks like a log id', undefined, { id: '1-0' }),
          draft('everything', 'a/b', { id: 'all', event: 'update', private: true, alsoTopics: alternates, retry: 2500 }),
          draft('retry zero', undefined, { retry: 0 }),
          draft('no alternates after all', 'a', { alsoTopics: [] }),
          draft('own again', 'a'),
        ];
        const stored = await log.append(drafts);
        // The stored event belongs to the log: changing the draft afterwards changes nothing.
        alternates.push('not published');
        for (const [i, d] of drafts.entries()) {
          if (d.id !== undefined) assert.equal(stored[i]!.id, d.id, `event ${i}: the chosen id, verbatim`);
          else assert.ok(parseEventId(stored[i]!.id) !== undefined, `event ${i}: an id of the log's own (${stored[i]!.id})`);
        }
        const all = [anchor!, ...stored];
        for (let i = 1; i < all.length; i++) assert.ok(all[i]!.position > all[i - 1]!.position, `positions increase in append order (${i})`);
        assert.deepEqual(stored[4]!.alsoTopics, ['c', 'd/e']);
        assert.equal(stored[4]!.retry, 2500);
        assert.equal(stored[5]!.retry, 0, 'a retry of 0 is a retry');
        const absent = (events: readonly StoredEvent[], label: string): void => {
          for (const i of [0, 1, 2, 3, 6, 7]) {
            assert.ok(!Object.hasOwn(events[i]!, 'alsoTopics') && !Object.hasOwn(events[i]!, 'retry') && !Object.hasOwn(events[i]!, 'private'), `${label} ${i}: nothing extra`);
          }
          assert.ok(!Object.hasOwn(events[5]!, 'alsoTopics'), `${label}: no alternates where none were given`);
        };
        absent(stored, 'appended');
        const read = await readAll(log, anchor!.id, { limit: 3 }, anchor!.position);
        assert.equal(read.status, 'complete');
        assert.deepEqual(shapes(read.events), shapes(stored), 'read back exactly as stored');
        absent(read.events, 'read');
        await tail.until(all.length);
        assert.deepEqual(shapes(tail.events), shapes(all), 'the tail passes on exactly what was stored');
        absent(tail.events.slice(1), 'tail');
        // The same chosen id again, in a later batch: a label, not a key.
        const again = await log.append([draft('the same id again', 'a', { id: drafts[0]!.id }), draft('last', undefined, { id: 'newest-chosen' })]);
        assert.equal(again[0]!.id, drafts[0]!.id);
        assert.ok(again[0]!.position > stored.at(-1)!.position && again[1]!.position > again[0]!.position);
        await subject.refreshStats();
        assert.deepEqual(log.stats(), { size: all.length + 2, oldestId: 'anchor-id', newestId: 'newest-chosen' }, 'stats name events by their ids');
        tail.stop();
      });
    });

    test('resume after a chosen id goes on after the newest retained event carrying it; an id nobody published is unknown', BOUNDED, async () => {
      await withLog({}, async ({ log }) => {
        const first = await log.append([draft('A', 't', { id: 'dup' }), draft('B', 't', { id: 'twice' }), draft('C', 'u', { id: 'twice' })]);
        const second = await log.append([draft('D', 't'), draft('E', 'u', { id: 'dup' })]);
        const third = await log.append([draft('F', 't'), draft('G', 'u', { id: 'other' }), draft('H', 't')]);
        const stored = [...first, ...second, ...third];
        const after = (id: string, from: StoredEvent, options: Partial<Omit<ReadRequest, 'after'>> = {}): Promise<Paged> => readAll(log, id, options, from.position);
        const data = (read: Paged): string[] => read.events.map((e) => e.data);

        const dup = await after('dup', second[1]!, { limit: 1 });
        assert.equal(dup.status, 'complete');
        assert.deepEqual(data(dup), ['F', 'G', 'H'], 'after the newest of the two, in another batch');
        const twice = await after('twice', first[2]!);
        assert.deepEqual(data(twice), ['D', 'E', 'F', 'G', 'H'], 'after the newest of the two, in the same batch');
        assert.deepEqual(shapes(twice.events), shapes(stored.slice(3)));
        assert.deepEqual(data(await after('dup', second[1]!, { topics: { exact: ['t'], prefixes: [] } })), ['F', 'H'], 'filtered, after the same event');
        assert.deepEqual(data(await after('dup', second[1]!, { topics: { exact: [], prefixes: ['u'] }, limit: 1 })), ['G']);
        const other = await after('other', third[1]!);
        assert.deepEqual([other.status, data(other)], ['complete', ['H']]);
        for (const id of ['never published', 'urn:uuid:00000000-0000-0000-0000-000000000000', 'Dup', 'dup ']) {
          assert.equal((await log.read({ after: { id }, limit: 10, maxBytes: 1 << 20 })).status, 'unknown', JSON.stringify(id));
          assert.equal((await log.read({ after: { id }, topics: { exact: ['t'], prefixes: [] }, limit: 10, maxBytes: 1 << 20 })).status, 'unknown', `${JSON.stringify(id)}, filtered`);
        }
        // The log's own ids are resolved as before.
        const own = await readAll(log, third[0]!.id);
        assert.deepEqual([own.status, data(own)], ['complete', ['G', 'H']]);
      });
    });

    test('a chosen id that looks like a log id is resolved as the chosen id it is', BOUNDED, async (t) => {
      await withLog({}, async (subject) => {
        const { log } = subject;
        const [x] = await log.append([draft('x')]);
        const future = formatEventId({ ms: subject.now() + 10 ** 9, seq: 0 });
        const stored = await log.append([
          draft('chooses an old-looking id', 't', { id: '1-0' }),
          draft('chooses one from the future', 't', { id: future }),
          draft('chooses the id x was given', 't', { id: x!.id }),
          draft('after'),
        ]);
        const data = (read: Paged): string[] => read.events.map((e) => e.data);
        const old = await readAll(log, '1-0', {}, stored[0]!.position);
        assert.deepEqual([old.status, data(old)], ['complete', ['chooses one from the future', 'chooses the id x was given', 'after']], 'not expired: an event carries it');
        const ahead = await readAll(log, future, {}, stored[1]!.position);
        assert.deepEqual([ahead.status, data(ahead)], ['complete', ['chooses the id x was given', 'after']], 'not unknown: an event carries it');
        const taken = await readAll(log, x!.id, {}, stored[2]!.position);
        assert.deepEqual([taken.status, data(taken)], ['complete', ['after']], 'the newest event carrying it is the one that chose it');

        // The other way round: a publisher chooses an id the log has not given out yet; then the log gives it out.
        if (engine === redisEngine) {
          t.diagnostic('Redis\'s clock makes its ids: the redis section forces this case with an entry of its own');
          return;
        }
        const later = subject.now() + 10 ** 7;
        const label = formatEventId({ ms: later, seq: 0 });
        const [chooser] = await log.append([draft('chooses an id the log will give out', 't', { id: label })]);
        subject.setClock(later);
        const [given] = await log.append([draft('is given that id by the log')]);
        assert.equal(given!.id, label, 'the log gave out the same id');
        assert.ok(given!.position > chooser!.position);
        const [last] = await log.append([draft('last')]);
        const resumed = await readAll(log, label, {}, given!.position);
        assert.deepEqual(idsOf(resumed.events), [last!.id], 'after the newest event carrying it: the one the log gave it to');
      });
    });

    test('a chosen id whose events were all trimmed (by count) is not retained: unknown, unless it reads as a log id', BOUNDED, async () => {
      await withLog({ capacity: 5 }, async (subject) => {
        const { log, capacity } = subject;
        const future = formatEventId({ ms: subject.now() + 10 ** 9, seq: 0 });
        const early = await log.append([
          draft('gone', 't', { id: 'gone-id' }),
          draft('old-looking', 't', { id: '1-5' }),
          draft('future-looking', 't', { id: future }),
          draft('both, first', 't', { id: 'both' }),
        ]);
        const before = await readAll(log, 'gone-id', {}, early[0]!.position);
        assert.deepEqual([before.status, before.events.length], ['complete', 3], 'resolved while retained');
        // Enough events to trim exactly the four: capacity - 2 fillers, the second 'both', one more.
        const fillers: StoredEvent[] = [];
        for (let start = 0; start < capacity - 2; start += 200) {
          fillers.push(...(await log.append(Array.from({ length: Math.min(200, capacity - 2 - start) }, (_, k) => draft(`filler ${start + k}`, k % 2 === 0 ? 't' : undefined)))));
        }
        const [bothAgain, last] = await log.append([draft('both, again', 't', { id: 'both' }), draft('last', 't')]);
        const retained = [...fillers, bothAgain!, last!];
        await subject.refreshStats();
        assert.equal(log.stats().size, capacity, 'the first four were trimmed');
        for (const id of ['gone-id', future]) {
          assert.equal((await log.read({ after: { id }, limit: 10, maxBytes: 1 << 20 })).status, 'unknown', `${id}: not retained, and no place of the log's own`);
          assert.equal((await log.read({ after: { id }, topics: { exact: ['t'], prefixes: [] }, limit: 10, maxBytes: 1 << 20 })).status, 'unknown', `${id}, filtered`);
        }
        const oldLooking = await readAll(log, '1-5', { limit: 400 });
        assert.equal(oldLooking.status, 'expired', 'not retained, but a log id from before the history: the old rules');
        assert.deepEqual(idsOf(oldLooking.events), idsOf(retained));
        const both = await readAll(log, 'both', {}, bothAgain!.position);
        assert.deepEqual([both.status, idsOf(both.events)], ['complete', [last!.id]], 'the retained one of the two');
        if (subject.durable) {
          const reopened = await subject.restart();
          assert.equal((await reopened.read({ after: { id: 'gone-id' }, limit: 10, maxBytes: 1 << 20 })).status, 'unknown', 'still not retained after a restart');
          assert.deepEqual(idsOf((await readAll(reopened, 'both', {}, bothAgain!.position)).events), [last!.id]);
        }
      });
    });

    test('a chosen id whose event was trimmed by age is not retained', BOUNDED, async () => {
      await withLog({ maxAgeMs: 10_000 }, async (subject) => {
        const { log } = subject;
        const [old] = await log.append([draft('old', 't', { id: 'old-id' })]);
        await subject.later();
        const [recent] = await log.append([draft('recent', 't', { id: 'recent-id' })]);
        subject.setClock(recent!.time + 10_000);
        await subject.trimByAge();
        assert.equal((await log.read({ after: { id: 'old-id' }, limit: 10, maxBytes: 1 << 20 })).status, 'unknown');
        const fromRecent = await readAll(log, 'recent-id', {}, recent!.position);
        assert.deepEqual([fromRecent.status, fromRecent.events.length], ['complete', 0]);
        assert.deepEqual(idsOf((await readAll(log, formatEventId({ ms: old!.time - 1, seq: 0 }))).events), ['recent-id'], 'only the recent one is left');
      });
    });

    test('alternate topics: an event passes a filter for any of its topics (exact, prefix), once, and is returned with them', BOUNDED, async () => {
      await withLog({}, async ({ log }) => {
        const [anchor] = await log.append([draft('anchor')]);
        const stored = await log.append([
          draft('0', 'a/1', { alsoTopics: ['b/1', 'c'] }),
          draft('1', 'x', { alsoTopics: ['b/2'] }),
          draft('2', 'b/3'),
          draft('3', 'y', { alsoTopics: ['y'] }),
          draft('4', 'z', { alsoTopics: ['q', 'q', 'c'] }),
          draft('5'),
          draft('6', 'other'),
          draft('7', 'c', { id: 'chosen' }),
          draft('8', 'w', { alsoTopics: ['b/4'], private: true, retry: 10 }),
        ]);
        assert.deepEqual(stored[4]!.alsoTopics, ['q', 'q', 'c'], 'kept as published');
        const cases: [TopicFilter, string[]][] = [
          [{ exact: ['c'], prefixes: [] }, ['0', '4', '7']],
          [{ exact: ['b/2'], prefixes: [] }, ['1']],
          [{ exact: [], prefixes: ['b/'] }, ['0', '1', '2', '8']],
          [{ exact: ['a/1', 'c'], prefixes: [] }, ['0', '4', '7']],
          [{ exact: ['c'], prefixes: ['b/'] }, ['0', '1', '2', '4', '7', '8']],
          [{ exact: ['q', 'y'], prefixes: [] }, ['3', '4']],
          [{ exact: [], prefixes: ['q'] }, ['4']],
          [{ exact: [], prefixes: ['b/1', 'b/4'] }, ['0', '8']],
          [{ exact: ['nowhere'], prefixes: ['nothing/'] }, []],
        ];
        for (const [topics, expected] of cases) {
          assert.deepEqual(wanted(stored, topics).map((e) => e.data), expected, `passesFilter agrees: ${JSON.stringify(topics)}`);
          for (const limit of [1, 2, 1000]) {
            const read = await readAll(log, anchor!.id, { topics, limit });
            const label = `${JSON.stringify(topics)}, limit ${limit}`;
            assert.equal(read.status, 'complete', label);
            assert.deepEqual(read.events.map((e) => e.data), expected, label);
            assert.deepEqual(shapes(read.events), shapes(stored.filter((e) => expected.includes(e.data))), `${label}: returned with their topics`);
          }
        }
      });
    });

    test('alternate topics in a long history: filtered reads find every event by its alternates, in bounded pages', BOUNDED, async () => {
      await withLog({ capacity: 10_000 }, async ({ log }) => {
        const [anchor] = await log.append([draft('anchor')]);
        // 2,600 events, every one with a canonical topic; some with a rare alternate, a third with one of 100 others.
        const alsoOf = (i: number): string[] | undefined => (i % 500 === 7 ? ['rare'] : i % 3 === 0 ? [`many/${i % 100}`] : undefined);
        const stored: StoredEvent[] = [];
        for (let start = 0; start < 2600; start += 200) {
          stored.push(...(await log.append(Array.from({ length: 200 }, (_, k) => draft(`event ${start + k}`, `other/${(start + k) % 100}`, { alsoTopics: alsoOf(start + k) })))));
        }
        const readers: { filter: TopicFilter; limit: number }[] = [
          { filter: { exact: ['rare'], prefixes: [] }, limit: 500 },
          { filter: { exact: [], prefixes: ['many/'] }, limit: 500 },
          { filter: { exact: ['rare'], prefixes: ['many/9'] }, limit: 7 },
          { filter: { exact: [], prefixes: ['many/', 'other/1'] }, limit: 50 },
          // Both topics of one event wanted: it comes once.
          { filter: { exact: ['other/3', 'many/3'], prefixes: [] }, limit: 5 },
        ];
        for (const { filter, limit } of readers) {
          const read = await readAll(log, anchor!.id, { topics: filter, limit, maxBytes: 256 * 1024 });
          const label = JSON.stringify(filter);
          const expected = wanted(stored, filter);
          assert.ok(expected.length > 0, `${label}: the case wants something`);
          assert.equal(read.status, 'complete');
          assert.deepEqual(idsOf(read.events), idsOf(expected), `${label}: every wanted event once, in order`);
          assert.ok(read.pages.length <= read.events.length + Math.ceil(2601 / 1000) + 1, `${label}: ${read.pages.length} pages for ${read.events.length} events`);
        }
      });
    });

    test('chosen ids, alternates and retry survive a restart; chosen ids still resolve', BOUNDED, async () => {
      await withLog({}, async (subject) => {
        const earlier = await subject.log.append([
          draft('A', 't', { id: 'first-chosen', alsoTopics: ['u'], retry: 1500 }),
          draft('B', 'u'),
          draft('C', 'v', { id: 'dup' }),
          draft('D', 'x', { id: 'dup', alsoTopics: ['u/1'] }),
          draft('E'),
        ]);
        const log = await subject.restart();
        const fromFirst = await readAll(log, 'first-chosen', {}, earlier[0]!.position);
        if (!subject.durable) {
          assert.equal(fromFirst.status, 'unknown', 'a history that did not survive: nothing carries the id now');
          return;
        }
        assert.equal(fromFirst.status, 'complete');
        assert.deepEqual(shapes(fromFirst.events), shapes(earlier.slice(1)), 'fields as stored');
        assert.deepEqual(idsOf((await readAll(log, 'dup', {}, earlier[3]!.position)).events), idsOf(earlier.slice(4)));
        const all = await readAll(log, '1-0');
        assert.deepEqual(shapes(all.events), shapes(earlier), 'alternates and retry kept');
        assert.deepEqual(idsOf((await readAll(log, '1-0', { topics: { exact: ['u'], prefixes: [] } })).events), idsOf([earlier[0]!, earlier[1]!]), 'alternates still indexed');
        assert.deepEqual(idsOf((await readAll(log, '1-0', { topics: { exact: [], prefixes: ['u/'] } })).events), idsOf([earlier[3]!]));
        const [again] = await log.append([draft('F', undefined, { id: 'dup' })]);
        assert.ok(again!.position > earlier[4]!.position);
        const fromDup = await readAll(log, 'dup', {}, again!.position);
        assert.deepEqual([fromDup.status, fromDup.events.length], ['complete', 0], 'after the newest, published after the restart');
      });
    });

    test('a draft the log cannot keep faithfully is refused with INVALID_EVENT, its whole batch with it; other publishes go on', BOUNDED, async () => {
      await withLog({}, async ({ log }) => {
        const [anchor] = await log.append([draft('anchor')]);
        const invalid: EventDraft[] = [
          draft('x', 't', { id: '' }),
          draft('x', 't', { id: 'a\nb' }),
          draft('x', 't', { id: 'a\rb' }),
          draft('x', 't', { id: 'a\0b' }),
          draft('x', undefined, { alsoTopics: ['t'] }),
          draft('x', 't', { alsoTopics: [''] }),
          draft('x', 't', { alsoTopics: ['fine', 'lone \ud800 surrogate'] }),
          draft('x', 't', { id: 'lone \udc00 surrogate' }),
          draft('x', 't', { retry: -1 }),
          draft('x', 't', { retry: 1.5 }),
          draft('x', 't', { retry: Number.NaN }),
        ];
        for (const bad of invalid) {
          await assert.rejects(log.append([draft('valid', 't'), bad]), (error: unknown) => {
            assert.ok(isHeraldError(error) && error.code === 'HERALD_ERR_INVALID_EVENT', `${JSON.stringify(bad)}: ${String(error)}`);
            return true;
          });
        }
        const [kept, refused] = await Promise.allSettled([log.append([draft('kept')]), log.append([draft('x', 't', { id: '' })]), log.append([draft('kept too', undefined, { id: 'fine' })])]);
        assert.equal(kept.status, 'fulfilled');
        assert.equal(refused.status, 'rejected');
        const read = await readAll(log, anchor!.id);
        assert.deepEqual(read.events.map((e) => e.data), ['kept', 'kept too'], 'nothing of a refused batch was stored');
      });
    });

    test('a closed log refuses appends and reads with STORE_UNAVAILABLE', BOUNDED, async () => {
      const subject = await engine.open();
      const [anchor] = await subject.log.append([draft('a')]);
      await subject.close();
      await rejectsUnavailable(subject.log.append([draft('b')]), 'append after close');
      if (engine !== memoryEngine) await rejectsUnavailable(subject.log.read({ after: { id: anchor!.id }, limit: 1, maxBytes: 1 }), 'read after close');
    });
  });
}

// ---------------------------------------------------------------------------
// Memory

test('memory: capacity 0 keeps nothing but still resumes from the newest id', async () => {
  const log = new MemoryEventLog({ capacity: 0 });
  const [a, b] = await log.append([draft('1'), draft('2')]);
  assert.equal(log.stats().size, 0);
  const fromNewest = await readAll(log, b!.id);
  assert.deepEqual([fromNewest.status, fromNewest.events], ['complete', []]);
  assert.equal((await readAll(log, a!.id)).status, 'expired');
  await log.close();
});

// ---------------------------------------------------------------------------
// SQLite

describe('sqlite log: the store itself', () => {
  let dir = '';
  let files = 0;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'herald-sqlite-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const newPath = (): string => join(dir, `store-${files++}.db`);

  test('appends of one event-loop turn are committed together, each keeping its own ids and order', async () => {
    const log = new SqliteEventLog({ path: newPath(), capacity: 100, maxAgeMs: 0 });
    const tail = new TailRecorder(log);
    const [a, b, c] = await Promise.all([log.append([draft('1')]), log.append([draft('2'), draft('3')]), log.append([draft('4')])]);
    assert.deepEqual([a!, b!, c!].map((events) => events.map((e) => e.data)), [['1'], ['2', '3'], ['4']]);
    assert.deepEqual(tail.batches.map((batch) => batch.map((e) => e.data)), [['1', '2', '3', '4']], 'one commit, one tail call, in order');
    await log.close();
  });

  test('a store from before the topic index and private events is migrated in place and reads filtered', async () => {
    const path = newPath();
    const old = new Database(path);
    old.exec(`
      CREATE TABLE events (ms INTEGER NOT NULL, n INTEGER NOT NULL, topic TEXT, type TEXT, data TEXT NOT NULL, PRIMARY KEY (ms, n)) WITHOUT ROWID;
      CREATE TABLE meta (key TEXT PRIMARY KEY, ms INTEGER NOT NULL, n INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO meta VALUES ('horizon', 1000, -1), ('newest', 1002, 0);
      INSERT INTO events VALUES (1000, 0, 'x', NULL, 'a'), (1001, 0, 'y', NULL, 'b'), (1002, 0, 'x', 'kind', 'c');
    `);
    old.close();
    const log = new SqliteEventLog({ path, capacity: 100, maxAgeMs: 0 });
    const read = await readAll(log, '1000-0', { topics: { exact: ['x'], prefixes: [] } });
    assert.deepEqual(read.events.map((e) => [e.id, e.data, e.event, e.private]), [['1002-0', 'c', 'kind', undefined]]);
    const [added] = await log.append([draft('d', 'x', { private: true })]);
    assert.ok(added!.position > read.events[0]!.position, 'ids go on after the stored ones');
    await log.close();
    const check = new Database(path, { readonly: true });
    const indexes = check.prepare<[], { name: string }>("SELECT name FROM pragma_index_list('events')").all().map((row) => row.name);
    check.close();
    assert.ok(indexes.includes('events_by_topic'), `the topic index was built: ${indexes.join(', ')}`);
  });

  test('a store from before chosen ids, alternates and retry is migrated in place, reads as before, and takes them from then on', async () => {
    const path = newPath();
    const old = new Database(path);
    // The schema as the log created it before: `private` in the table, the topic index, nothing more.
    old.exec(`
      CREATE TABLE events (ms INTEGER NOT NULL, n INTEGER NOT NULL, topic TEXT, type TEXT, data TEXT NOT NULL, private INTEGER, PRIMARY KEY (ms, n)) WITHOUT ROWID;
      CREATE TABLE meta (key TEXT PRIMARY KEY, ms INTEGER NOT NULL, n INTEGER NOT NULL) WITHOUT ROWID;
      CREATE INDEX events_by_topic ON events (topic);
      INSERT INTO meta VALUES ('horizon', 1000, -1), ('newest', 1002, 0);
      INSERT INTO events VALUES (1000, 0, 'x', NULL, 'a', NULL), (1001, 0, 'y', NULL, 'b', 1), (1002, 0, 'x', 'kind', 'c', NULL);
    `);
    old.close();
    const fields = (events: readonly StoredEvent[]): unknown[] => events.map((e) => [e.id, e.data, e.topic, e.private, e.alsoTopics, e.retry]);
    const check = async (log: SqliteEventLog, label: string): Promise<void> => {
      const everything = await readAll(log, '1000-0');
      assert.deepEqual(fields(everything.events.slice(0, 2)), [['1001-0', 'b', 'y', true, undefined, undefined], ['1002-0', 'c', 'x', undefined, undefined, undefined]], `${label}: the old rows`);
      for (const event of everything.events.slice(0, 2)) assert.ok(!Object.hasOwn(event, 'alsoTopics') && !Object.hasOwn(event, 'retry'), `${label}: nothing extra on old rows`);
      assert.deepEqual(fields(everything.events.slice(2)), [['chosen', 'd', 'x', undefined, ['z'], 100], [everything.events[3]!.id, 'e', 'y', undefined, undefined, undefined]], `${label}: the new rows`);
      assert.deepEqual((await readAll(log, 'chosen', {}, everything.events[2]!.position)).events.map((e) => e.data), ['e'], `${label}: a chosen id resolves`);
      assert.deepEqual((await readAll(log, '1000-0', { topics: { exact: ['z'], prefixes: [] } })).events.map((e) => e.data), ['d'], `${label}: an alternate is indexed`);
      assert.deepEqual((await readAll(log, '1000-0', { topics: { exact: ['x'], prefixes: [] } })).events.map((e) => e.data), ['c', 'd'], `${label}: the canonical topics too`);
      assert.deepEqual((await readAll(log, '1001-0')).events.map((e) => e.data), ['c', 'd', 'e'], `${label}: an old id resolves as before`);
    };
    const log = new SqliteEventLog({ path, capacity: 100, maxAgeMs: 0 });
    const appended = await log.append([draft('d', 'x', { id: 'chosen', alsoTopics: ['z'], retry: 100 }), draft('e', 'y')]);
    assert.ok(appended[0]!.position > positionOf({ ms: 1002, seq: 0 }), 'positions go on after the stored ones');
    await check(log, 'migrated');
    await log.close();
    const reopened = new SqliteEventLog({ path, capacity: 100, maxAgeMs: 0 });
    await check(reopened, 'reopened');
    await reopened.close();
    const db = new Database(path, { readonly: true });
    const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('events')").all().map((row) => row.name);
    const indexes = db.prepare<[], { name: string }>("SELECT name FROM sqlite_schema WHERE type = 'index'").all().map((row) => row.name);
    db.close();
    for (const column of ['id', 'also_topics', 'retry']) assert.ok(columns.includes(column), `the column ${column}: ${columns.join(', ')}`);
    for (const index of ['events_by_topic', 'events_by_id', 'alternate_topics_by_topic']) assert.ok(indexes.includes(index), `the index ${index}: ${indexes.join(', ')}`);
  });

  test('trimming takes the alternates\' index rows and the chosen ids along with the events', async () => {
    const path = newPath();
    let clock = Date.now();
    const log = new SqliteEventLog({ path, capacity: 5, maxAgeMs: 10_000, now: () => clock, trimIntervalMs: 3_600_000 });
    const db = new Database(path, { readonly: true });
    const count = (sql: string): number => db.prepare<[], { count: number }>(sql).get()!.count;
    try {
      for (let i = 0; i < 12; i++) await log.append([draft(String(i), 't', { id: `c-${i % 4}`, alsoTopics: ['p', `q/${i}`] })]);
      assert.equal(count('SELECT count(*) AS count FROM events'), 5);
      assert.equal(count('SELECT count(*) AS count FROM alternate_topics'), 10, 'two alternates for each of the five retained');
      assert.equal(count('SELECT count(*) AS count FROM alternate_topics a WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.ms = a.ms AND e.n = a.n)'), 0, 'none of a trimmed event');
      assert.equal(count('SELECT count(*) AS count FROM events INDEXED BY events_by_id WHERE id IS NOT NULL'), 5);
      clock += 60_000;
      log.trim();
      assert.equal(count('SELECT count(*) AS count FROM events'), 0);
      assert.equal(count('SELECT count(*) AS count FROM alternate_topics'), 0, 'trimming by age takes them too');
      assert.equal((await log.read({ after: { id: 'c-3' }, limit: 10, maxBytes: 1 << 20 })).status, 'unknown');
    } finally {
      db.close();
      await log.close();
    }
  });

  test('every resume query is a seek and a bounded range on an index (EXPLAIN QUERY PLAN)', async () => {
    const path = newPath();
    const log = new SqliteEventLog({ path, capacity: 100_000, maxAgeMs: 0 });
    await appendMany(log, 1000, (i) => (i % 3 === 0 ? undefined : `t/${i % 10}`));
    // Chosen ids and alternates too, so their index and table hold rows the planner could weigh.
    await log.append(Array.from({ length: 200 }, (_, i) => draft(String(i), `t/${i % 10}`, { id: `chosen-${i % 50}`, alsoTopics: [`u/${i % 7}`, `v/${i % 3}`] })));
    await log.close();
    const db = new Database(path, { readonly: true });
    try {
      const primaryRange = 'SEARCH events USING PRIMARY KEY ((ms,n)>(?,?))';
      const alternatesRange = 'SEARCH alternate_topics USING PRIMARY KEY ((ms,n)>(?,?) AND (ms,n)<(?,?))';
      const expected: Record<string, [sql: string, step: string]> = {
        sizesAfter: [RESUME_QUERIES.sizesAfter, primaryRange],
        rowsThrough: [RESUME_QUERIES.rowsThrough, 'SEARCH events USING PRIMARY KEY ((ms,n)>(?,?) AND (ms,n)<(?,?))'],
        row: [RESUME_QUERIES.row, 'SEARCH events USING PRIMARY KEY (ms=? AND n=?)'],
        windowEnd: [RESUME_QUERIES.windowEnd, primaryRange],
        keysOfTopic: [RESUME_QUERIES.keysOfTopic, 'SEARCH events USING COVERING INDEX events_by_topic (topic=? AND (ms,n)>(?,?) AND (ms,n)<(?,?))'],
        firstTopicFrom: [RESUME_QUERIES.firstTopicFrom, 'SEARCH events USING COVERING INDEX events_by_topic (topic>? AND topic<?)'],
        firstTopicAfter: [RESUME_QUERIES.firstTopicAfter, 'SEARCH events USING COVERING INDEX events_by_topic (topic>? AND topic<?)'],
        newestWithId: [RESUME_QUERIES.newestWithId, 'SEARCH events USING COVERING INDEX events_by_id (id=?)'],
        idAt: [RESUME_QUERIES.idAt, 'SEARCH events USING PRIMARY KEY (ms=? AND n=?)'],
        keysOfAlternate: [
          RESUME_QUERIES.keysOfAlternate,
          'SEARCH alternate_topics USING COVERING INDEX alternate_topics_by_topic (topic=? AND (ms,n)>(?,?) AND (ms,n)<(?,?))',
        ],
        firstAlternateFrom: [RESUME_QUERIES.firstAlternateFrom, 'SEARCH alternate_topics USING COVERING INDEX alternate_topics_by_topic (topic>? AND topic<?)'],
        firstAlternateAfter: [RESUME_QUERIES.firstAlternateAfter, 'SEARCH alternate_topics USING COVERING INDEX alternate_topics_by_topic (topic>? AND topic<?)'],
        // The scan's window is a bounded range on the key; the filter runs over the window only.
        'scan, exact topics only': [scanQuery(0), primaryRange],
        'scan, two prefixes': [scanQuery(2), primaryRange],
        'scan, many prefixes': [scanQuery(9), primaryRange],
        // The alternates of the window: a range on their key, never the topic index (whose finds would need sorting).
        'scan of alternates, exact topics only': [alternatesScanQuery(0), alternatesRange],
        'scan of alternates, two prefixes': [alternatesScanQuery(2), alternatesRange],
        'scan of alternates, many prefixes': [alternatesScanQuery(9), alternatesRange],
      };
      assert.deepEqual(Object.keys(RESUME_QUERIES).sort(), Object.keys(expected).filter((name) => !name.startsWith('scan')).sort(), 'every resume query is checked');
      for (const [name, [sql, step]] of Object.entries(expected)) {
        const parameters = (sql.match(/\?/g) ?? []).map(() => 1);
        const plan = db.prepare<number[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`).all(...parameters).map((row) => row.detail);
        assert.ok(plan.includes(step), `${name}: ${step} in ${plan.join(' | ')}`);
        assert.ok(!plan.some((detail) => /^SCAN (events|alternate_topics)\b/.test(detail)), `${name}: no scan of the table: ${plan.join(' | ')}`);
        assert.ok(!plan.some((detail) => detail.includes('TEMP B-TREE')), `${name}: no sorting: ${plan.join(' | ')}`);
      }
    } finally {
      db.close();
    }
  });

  test('a rare topic far back in a long history is found through the index: one page, not a scan', async () => {
    const log = new SqliteEventLog({ path: newPath(), capacity: 100_000, maxAgeMs: 0 });
    try {
      const [anchor] = await log.append([draft('anchor')]);
      const stored = await appendMany(log, 20_000, (i) => (i % 5000 === 4999 ? 'rare' : i % 3 === 0 ? 'orders/eu' : i % 3 === 1 ? 'orders/us' : `user/${i % 200}`));
      const rare = stored.filter((e) => e.topic === 'rare');
      const exact = await readAll(log, anchor!.id, { topics: { exact: ['rare'], prefixes: [] }, limit: 500 });
      assert.deepEqual(idsOf(exact.events), idsOf(rare));
      assert.equal(exact.pages.length, 1, 'the first page holds them all and knows it is the end');
      assert.equal(exact.pages[0]!.status !== 'unknown' && exact.pages[0]!.cursor, stored.at(-1)!.position, 'the page looked through the newest event');
      // A prefix over two topics goes through the index too.
      const orders = await readAll(log, anchor!.id, { topics: { exact: ['rare'], prefixes: ['orders/'] }, limit: 500 });
      assert.deepEqual(idsOf(orders.events), idsOf(stored.filter((e) => e.topic === 'rare' || e.topic!.startsWith('orders/'))));
      // A prefix over 200 topics is scanned in bounded steps (2000 keys a page): never one unbounded call.
      const users = await readAll(log, stored[19_000]!.id, { topics: { exact: [], prefixes: ['user/'] }, limit: 500 });
      assert.deepEqual(idsOf(users.events), idsOf(stored.slice(19_001).filter((e) => e.topic!.startsWith('user/'))));
      assert.ok(users.pages.length >= 1);
    } finally {
      await log.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Redis: the engine's own faults and keys, each test on a redis-server of its own

describe('redis log: Redis down, back, or back without its data; the hash of chosen ids', { skip: redisSkip }, () => {
  let prefixes = 0;

  /** A Redis log whose notifications wake waiters: health changes are events, not polls. */
  function openLog(redis: TestRedis, extra: Partial<ConstructorParameters<typeof RedisEventLog>[0]> = {}) {
    const waiters = new Waiters();
    const lines: string[] = [];
    const log = new RedisEventLog({
      url: redis.url,
      prefix: `faults${prefixes++}`,
      capacity: 1000,
      maxAgeMs: 0,
      notify: (line) => {
        lines.push(line);
        waiters.notify();
      },
      ...extra,
    });
    const gaps = { count: 0 };
    log.onGap(() => {
      gaps.count++;
      waiters.notify();
    });
    const until = (condition: () => boolean, what: string): Promise<void> => waiters.until(condition, what, 20_000, () => `notifications: ${JSON.stringify(lines)}`);
    return { log, lines, gaps, until, healthy: () => until(() => log.health().ok, 'the log to be healthy') };
  }

  test('Redis not running when the log is created: appends and reads fail fast; once it is up everything works, nothing lost', BOUNDED, async () => {
    const redis = await startRedis();
    await redis.kill();
    const { log, healthy } = openLog(redis);
    try {
      await log.ready();
      assert.equal(log.health().ok, false);
      await rejectsUnavailable(log.append([draft('refused')]), 'append while Redis is down');
      await rejectsUnavailable(log.read({ after: { id: '1-0' }, limit: 10, maxBytes: 1 << 20 }), 'read while Redis is down');
      await redis.restart();
      await healthy();
      const tail = new TailRecorder(log);
      const stored = await log.append([draft('1', 'a'), draft('2'), draft('3', 'a')]);
      await tail.until(3);
      assert.deepEqual(shapes(tail.events), shapes(stored), 'the tail follows from the first event on');
      const read = await readAll(log, stored[0]!.id);
      assert.deepEqual(shapes(read.events), shapes(stored.slice(1)));
      const all = await readAll(log, '1-0');
      assert.deepEqual(idsOf(all.events), idsOf(stored), 'the refused publish was never stored');
    } finally {
      await log.close();
      await redis.stop();
    }
  });

  test('until the tail has read where the stream stands, a read waits for it, then is served or refused (never served with a hole)', BOUNDED, async () => {
    const redis = await startRedis();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { log } = openLog(redis, { beforeFirstFollow: () => held });
    const writer = openLog(redis, { prefix: `faults${prefixes - 1}` }).log;
    try {
      await writer.ready();
      // The log's own command connection is up once it stores a publish (bounded: 200 tries).
      let anchor: StoredEvent | undefined;
      for (let attempt = 0; anchor === undefined && attempt < 200; attempt++) {
        anchor = await log.append([draft('anchor')]).then(([stored]) => stored, () => undefined);
        if (anchor === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(anchor !== undefined, 'the command connection is up');
      assert.equal(log.health().ok, false, 'not healthy while the tail does not follow');
      await rejectsUnavailable(log.read({ after: { id: anchor!.id }, limit: 10, maxBytes: 1 << 20 }), 'a read the tail never came to');
      const waiting = log.read({ after: { id: anchor!.id }, limit: 10, maxBytes: 1 << 20 });
      const [between] = await writer.append([draft('between')]);
      const tail = new TailRecorder(log);
      release();
      const page = await waiting;
      assert.ok(page.status === 'complete');
      assert.deepEqual(idsOf(page.events), [between!.id], 'the read is served once the tail follows, with what was stored meanwhile');
      const [later] = await writer.append([draft('later')]);
      await tail.until(1);
      assert.deepEqual(idsOf(tail.events), [later!.id], 'and the tail goes on from there');
      assert.ok(log.health().ok);
    } finally {
      release();
      await log.close();
      await writer.close();
      await redis.stop();
    }
  });

  test('Redis dies mid-replay: the next read and a read in flight reject, never hang; back with its data (AOF): resume and tail go on without a gap', BOUNDED, async () => {
    const redis = await startRedis();
    const { log, gaps, healthy } = openLog(redis);
    try {
      await healthy();
      const tail = new TailRecorder(log);
      const stored = await appendMany(log, 10, (i) => (i % 2 === 0 ? 'a' : undefined));
      await tail.until(10);
      const first = await log.read({ after: { id: stored[0]!.id }, limit: 3, maxBytes: 1 << 20 });
      assert.ok(first.status === 'complete' && !first.end);
      await redis.kill();
      await rejectsUnavailable(log.read({ after: { cursor: first.cursor }, limit: 3, maxBytes: 1 << 20 }), 'the next page while Redis is down');
      await rejectsUnavailable(log.append([draft('refused')]), 'an append while Redis is down');

      await redis.restart();
      await healthy();
      // A read in flight when Redis goes away: it hangs (SIGSTOP), then dies.
      redis.pause();
      const inFlight = rejectsUnavailable(log.read({ after: { cursor: first.cursor }, limit: 3, maxBytes: 1 << 20 }), 'a read in flight when Redis died');
      await redis.kill();
      await inFlight;

      await redis.restart();
      await healthy();
      const rest = await readAll(log, stored[0]!.id, { limit: 3 });
      assert.equal(rest.status, 'complete');
      assert.deepEqual(idsOf(rest.events), idsOf(stored.slice(1)), 'every acknowledged event is still there, the refused one never was');
      const after = await log.append([draft('after', 'a')]);
      await tail.until(11);
      assert.deepEqual(idsOf(tail.events), idsOf([...stored, ...after]), 'the tail goes on from where it was');
      assert.equal(gaps.count, 0, 'no gap: Redis kept its data');
    } finally {
      await log.close();
      await redis.stop();
    }
  });

  test('the chosen ids\' hash is kept with the stream: set by each append, trimmed with it by count and by age, never larger than what is retained', BOUNDED, async () => {
    const redis = await startRedis();
    let clock: number | undefined;
    const { log, healthy } = openLog(redis, { maxAgeMs: 10_000, now: () => clock ?? Date.now() });
    const probe = new Redis(redis.url);
    const prefix = `faults${prefixes - 1}`;
    try {
      await healthy();
      const stored: StoredEvent[] = [];
      for (let start = 0; start < 2500; start += 250) {
        stored.push(...(await log.append(Array.from({ length: 250 }, (_, k) => draft(String(start + k), 't', { id: (start + k) % 10 === 0 ? 'same' : `c-${start + k}` })))));
      }
      assert.equal(await probe.xlen(`{${prefix}}:events`), MIN_STREAM_LENGTH);
      assert.equal(await probe.hlen(`{${prefix}}:ids`), 901, 'one field for each chosen id of a retained entry: 900 distinct and "same"');
      assert.equal(await probe.hget(`{${prefix}}:ids`, 'c-1499'), null, 'an id of a trimmed entry is gone');
      assert.equal(await probe.hget(`{${prefix}}:ids`, 'same'), formatEventId(idOfPosition(stored[2490]!.position)!), 'the newest entry carrying it');
      const fromSame = await readAll(log, 'same', {}, stored[2490]!.position);
      assert.deepEqual(fromSame.events.map((e) => e.data), ['2491', '2492', '2493', '2494', '2495', '2496', '2497', '2498', '2499']);
      // Everything older than 10 s, in several bounded steps.
      clock = Date.now() + 60_000;
      await log.housekeeping();
      assert.equal(await probe.xlen(`{${prefix}}:events`), 0);
      assert.equal(await probe.exists(`{${prefix}}:ids`), 0, 'trimming by age empties the hash with the stream');
      assert.equal((await log.read({ after: { id: 'same' }, limit: 10, maxBytes: 1 << 20 })).status, 'unknown');
    } finally {
      probe.disconnect();
      await log.close();
      await redis.stop();
    }
  });

  test('entries the log did not write itself: a chosen id the stream later gives out as its own (the newer carrier wins), one deleted by hand (XDEL, not retained), alternates that do not decode', BOUNDED, async () => {
    const redis = await startRedis();
    const { log, healthy } = openLog(redis);
    const probe = new Redis(redis.url);
    const prefix = `faults${prefixes - 1}`;
    try {
      await healthy();
      const label = formatEventId({ ms: Date.now() + 3_600_000, seq: 0 });
      await log.append([draft('chooses an id the stream will give out', 't', { id: label })]);
      // The stream gives out exactly that id to an entry of its own (as the log writes them): Redis's clock cannot be set.
      const n = await probe.incr(`{${prefix}}:count`);
      await probe.xadd(`{${prefix}}:events`, label, 'n', String(n), 'd', 'given that id', 't', 't');
      const [last] = await log.append([draft('last', 't')]);
      for (const topics of [undefined, { exact: ['t'], prefixes: [] }]) {
        const page = await log.read({ after: { id: label }, topics, limit: 10, maxBytes: 1 << 20 });
        assert.ok(page.status === 'complete', JSON.stringify(page));
        assert.deepEqual(idsOf(page.events), [last!.id], `after the entry carrying it as its own id, the newer (${JSON.stringify(topics)})`);
      }
      const [doomed, next] = await log.append([draft('doomed', 't', { id: 'deleted-by-hand' }), draft('next', 't')]);
      assert.deepEqual(idsOf((await readAll(log, 'deleted-by-hand', {}, doomed!.position)).events), [next!.id]);
      await probe.xdel(`{${prefix}}:events`, formatEventId(idOfPosition(doomed!.position)!));
      assert.equal((await log.read({ after: { id: 'deleted-by-hand' }, limit: 10, maxBytes: 1 << 20 })).status, 'unknown', 'checked on lookup: the entry is gone');
      // An entry whose alternates do not decode passes every filter (more than asked, never less), and breaks no read.
      const m = await probe.incr(`{${prefix}}:count`);
      const odd = await probe.xadd(`{${prefix}}:events`, '*', 'n', String(m), 'd', 'odd', 't', 'elsewhere', 'a', '["unterminated');
      const filtered = await log.read({ after: { id: next!.id }, topics: { exact: ['wanted'], prefixes: [] }, limit: 10, maxBytes: 1 << 20 });
      assert.ok(filtered.status === 'complete' && filtered.events.length === 1 && filtered.events[0]!.data === 'odd' && filtered.cursor === positionOf(parseEventId(odd!)!), JSON.stringify(filtered));
    } finally {
      probe.disconnect();
      await log.close();
      await redis.stop();
    }
  });

  test('Redis restarted with its data (AOF): chosen ids still resolve, alternates and retry are kept', BOUNDED, async () => {
    const redis = await startRedis();
    const { log, healthy } = openLog(redis);
    try {
      await healthy();
      const stored = await log.append([draft('A', 't', { id: 'kept', alsoTopics: ['u'], retry: 3000 }), draft('B', 'v'), draft('C', 'w', { id: 'kept too', alsoTopics: ['u/1'] })]);
      await redis.kill();
      await redis.restart();
      await healthy();
      const fromKept = await readAll(log, 'kept', {}, stored[0]!.position);
      assert.equal(fromKept.status, 'complete');
      assert.deepEqual(shapes(fromKept.events), shapes(stored.slice(1)));
      assert.deepEqual(idsOf((await readAll(log, 'kept too', {}, stored[2]!.position)).events), []);
      assert.deepEqual(shapes((await readAll(log, '1-0', { topics: { exact: ['u'], prefixes: ['u/'] } })).events), shapes([stored[0]!, stored[2]!]));
    } finally {
      await log.close();
      await redis.stop();
    }
  });

  test('Redis back without its data: the gap listener fires, old ids read as expired, the tail follows the new stream', BOUNDED, async () => {
    const redis = await startRedis();
    const { log, gaps, until, healthy } = openLog(redis);
    try {
      await healthy();
      const tail = new TailRecorder(log);
      const stored = await log.append([draft('1'), draft('2')]);
      await tail.until(2);
      await redis.kill();
      await redis.restart({ withoutData: true });
      await until(() => gaps.count > 0, 'the gap listener');
      await healthy();
      const fresh = await log.append([draft('fresh')]);
      await tail.until(3);
      assert.deepEqual(idsOf(tail.events.slice(2)), idsOf(fresh), 'the tail follows the new stream from its first event');
      const read = await readAll(log, stored[1]!.id);
      assert.equal(read.status, 'expired', 'an id of the lost stream: events may be missing');
      assert.deepEqual(idsOf(read.events), idsOf(fresh));
    } finally {
      await log.close();
      await redis.stop();
    }
  });
});

// ---------------------------------------------------------------------------
// Workers: the primary's own faults

describe('workers\' IPC log: the primary gone, errors across the channel', () => {
  test('the primary gone mid-read: the read in flight and every later one reject, never hang', BOUNDED, async () => {
    const inner = new MemoryEventLog({ capacity: 100 });
    const service = new PrimaryLogService(inner);
    const channel = logChannel(service);
    const log = new WorkerEventLog(channel.worker);
    try {
      const [anchor] = await log.append([draft('a'), draft('b')]);
      const inFlight = log.read({ after: { id: anchor!.id }, limit: 1, maxBytes: 1 << 20 });
      const appending = log.append([draft('c')]);
      channel.disconnect();
      await rejectsUnavailable(inFlight, 'a read in flight');
      await rejectsUnavailable(appending, 'an append in flight');
      await rejectsUnavailable(log.read({ after: { id: anchor!.id }, limit: 1, maxBytes: 1 << 20 }), 'a read after the primary left');
      assert.equal(log.health().ok, false);
    } finally {
      await log.close();
      service.close();
      await inner.close();
    }
  });

  test('an error of the primary\'s log crosses with its code and retry delay', BOUNDED, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-ipc-'));
    const inner = new SqliteEventLog({ path: join(dir, 'store.db'), capacity: 100, maxAgeMs: 0 });
    const service = new PrimaryLogService(inner);
    const channel = logChannel(service);
    const log = new WorkerEventLog(channel.worker);
    try {
      const [anchor] = await log.append([draft('a')]);
      const malformed = log.read({ after: { cursor: 'not a cursor' }, limit: 1, maxBytes: 1 << 20 });
      await assert.rejects(malformed, (error: unknown) => (isHeraldError(error) && error.code === 'HERALD_ERR_INTERNAL') || assert.fail(String(error)));
      await inner.close();
      await rejectsUnavailable(log.read({ after: { id: anchor!.id }, limit: 1, maxBytes: 1 << 20 }), 'a read the primary\'s store refused');
      await rejectsUnavailable(log.append([draft('b')]), 'an append the primary\'s store refused');
    } finally {
      await log.close();
      channel.disconnect();
      service.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
