/**
 * The durable store: history in a SQLite file (WAL mode), so acknowledged
 * events survive a restart or a crash.
 *
 * An append commits before it resolves, and the hub answers `202` only after
 * that: an acknowledged event is in the file. With `synchronous = NORMAL` in
 * WAL mode a commit survives the process being killed (SIGKILL, a crash); a
 * power cut or kernel crash may lose the last commits, unless `sync: 'full'`
 * makes every commit wait for the disk.
 *
 * Ids keep the memory log's scheme and continue after the newest stored id,
 * so an id handed out before a restart keeps its meaning after it. The key
 * of a row, (ms, n), is always the log's own id; a chosen id is a column
 * (`id`, NULL for the log's own) with a partial index, `events_by_id`, so a
 * resume after one is a seek, and a trimmed row takes its id along.
 *
 * Every topic of an event is indexed: the canonical one in `events_by_topic`
 * on `events`, the alternates (`alsoTopics`) as rows (ms, n, topic) of
 * `alternate_topics`, indexed by topic too. A filtered read asks both and
 * merges the keys; the list as published stays in `events.also_topics`
 * (JSON), for reading back.
 *
 * Reads for resume are bounded in time and memory whatever the size of the
 * history, and filter at the source:
 * - only exact topics (or prefixes covering few topics): one range query per
 *   topic on the index `events_by_topic` (topic, ms, n) and, once the store
 *   holds alternates, one on `alternate_topics_by_topic`, merged in position
 *   order; the keys come from the covering index, then the rows one by one
 *   until the byte budget is spent, so a page of large events is never
 *   loaded whole;
 * - no filter: the sizes of the next rows first (no data read), then exactly
 *   the rows that fit the budget;
 * - any other filter (a prefix over many topics, very many topics): a window
 *   of at most {@link SCAN_ROWS} keys in key order, filtered in SQL (and the
 *   alternates of the same range of keys, filtered alike); the page's cursor
 *   is then the window's last key, so a client of a rare topic pages through
 *   history a bounded step at a time.
 * A read loads at most {@link ROWS_PER_READ} rows by key, and reads run from
 * a queue a time slice at a time ({@link READ_SLICE_MS}), so a reconnect
 * storm shares the event loop with live delivery rather than stalling it.
 */

import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { HeraldError } from '../errors.js';
import { checkDrafts, extras, type EventDraft, type EventLog, type EventLogStats, type ReadPage, type ReadRequest, type StoredEvent, type TailListener, type TopicFilter } from './event-log.js';
import { compareEventIds, EventIdGenerator, formatEventId, idOfPosition, parseEventId, positionOf, type EventId } from './event-id.js';

export interface SqliteLogOptions {
  /** The database file; created when missing. */
  readonly path: string;
  /** Events kept at most; older ones are trimmed. */
  readonly capacity: number;
  /** Events older than this many ms are trimmed; 0 keeps them regardless of age. */
  readonly maxAgeMs: number;
  /** `normal`: durable across process crashes; `full`: across power loss too, slower. */
  readonly sync?: 'normal' | 'full';
  /** How often age and count trimming run in the background. */
  readonly trimIntervalMs?: number;
  readonly now?: () => number;
}

interface Row {
  ms: number;
  n: number;
  topic: string | null;
  type: string | null;
  data: string;
  private: number | null;
  /** The chosen id; NULL: the log's own (`ms-n`). */
  id: string | null;
  /** The alternates as published, a JSON array; NULL: none. */
  also_topics: string | null;
  retry: number | null;
}

interface PendingAppend {
  readonly drafts: readonly EventDraft[];
  readonly resolve: (events: readonly StoredEvent[]) => void;
  readonly reject: (error: unknown) => void;
}

/** Rows deleted per trimming step, so a large backlog never holds the event loop long. */
const TRIM_BATCH = 5000;

/** Keys one read scans in key order, at most, when the index cannot serve its filter. */
const SCAN_ROWS = 2000;

/**
 * Rows one read loads by key, at most: each is a seek to a page of its own,
 * the costly part of a filtered read. A page may then hold fewer events
 * than asked for; the next read goes on from its cursor.
 */
const ROWS_PER_READ = 128;

/**
 * Topics one indexed read looks up, at most (exact ones and those found under
 * its prefixes). Each costs one index seek per page; a filter naming more is
 * served by the bounded scan instead.
 */
const MAX_INDEXED_TOPICS = 64;

/**
 * How long queued reads run before the log yields to the event loop. The hub
 * asks for the pages of many replays in one turn (a reconnect storm); each
 * read is bounded, and this bounds what they add up to in one turn.
 */
const READ_SLICE_MS = 8;

/** SQLite's page cache for the store, in KiB. */
const PAGE_CACHE_KIB = 16 * 1024;

/** Prefixes a scan filter spells out in SQL; a filter with more passes them as one JSON array. */
const MAX_SPELLED_PREFIXES = 8;

/** The columns a row is read back with (see {@link toStoredEvent}). */
const ROW_COLUMNS = 'ms, n, topic, type, data, private, id, also_topics, retry';

/**
 * The queries resume reads run, each a seek and a bounded range (the tests
 * check their plans with `EXPLAIN QUERY PLAN`). Parameters are positions as
 * (ms, n) pairs, topics, and limits.
 */
export const RESUME_QUERIES = {
  /** Unfiltered, first step: the next keys and the size of their data, which SQLite knows without reading it. */
  sizesAfter: 'SELECT ms, n, octet_length(data) AS bytes FROM events WHERE (ms, n) > (?, ?) ORDER BY ms, n LIMIT ?',
  /** Unfiltered, second step: the rows of a range of keys. */
  rowsThrough: `SELECT ${ROW_COLUMNS} FROM events WHERE (ms, n) > (?, ?) AND (ms, n) <= (?, ?) ORDER BY ms, n`,
  /** One row by its key. */
  row: `SELECT ${ROW_COLUMNS} FROM events WHERE ms = ? AND n = ?`,
  /** The newest row carrying a chosen id (only rows with one are in the partial index). */
  newestWithId: 'SELECT ms, n FROM events INDEXED BY events_by_id WHERE id = ? ORDER BY ms DESC, n DESC LIMIT 1',
  /** The chosen id of one row (NULL: it carries the log's own). */
  idAt: 'SELECT id FROM events WHERE ms = ? AND n = ?',
  /** The last key of a scan window (none when the window is not full). */
  windowEnd: 'SELECT ms, n FROM events WHERE (ms, n) > (?, ?) ORDER BY ms, n LIMIT 1 OFFSET ?',
  // INDEXED BY: the plan must not depend on statistics (a key-order scan here would read every event of every topic).
  /** The keys of one topic in a range of positions, from the covering index. */
  keysOfTopic: 'SELECT ms, n FROM events INDEXED BY events_by_topic WHERE topic = ? AND (ms, n) > (?, ?) AND (ms, n) <= (?, ?) ORDER BY ms, n LIMIT ?',
  /** The first stored topic in [from, to). */
  firstTopicFrom: 'SELECT topic FROM events INDEXED BY events_by_topic WHERE topic >= ? AND topic < ? ORDER BY topic LIMIT 1',
  /** The first stored topic in (after, to). */
  firstTopicAfter: 'SELECT topic FROM events INDEXED BY events_by_topic WHERE topic > ? AND topic < ? ORDER BY topic LIMIT 1',
  /** As `keysOfTopic`, for the events that have the topic as an alternate. */
  keysOfAlternate:
    'SELECT ms, n FROM alternate_topics INDEXED BY alternate_topics_by_topic WHERE topic = ? AND (ms, n) > (?, ?) AND (ms, n) <= (?, ?) ORDER BY ms, n LIMIT ?',
  /** As `firstTopicFrom`, among alternates. */
  firstAlternateFrom: 'SELECT topic FROM alternate_topics INDEXED BY alternate_topics_by_topic WHERE topic >= ? AND topic < ? ORDER BY topic LIMIT 1',
  /** As `firstTopicAfter`, among alternates. */
  firstAlternateAfter: 'SELECT topic FROM alternate_topics INDEXED BY alternate_topics_by_topic WHERE topic > ? AND topic < ? ORDER BY topic LIMIT 1',
} as const;

/**
 * The scan query for a filter with `prefixes` prefixes: the keys of the
 * window after a position that pass the filter. Exact topics come as one
 * JSON array; prefixes spelled out (`substr(topic, 1, length) = prefix`),
 * or, past {@link MAX_SPELLED_PREFIXES}, as a JSON array too.
 */
export function scanQuery(prefixes: number): string {
  return `SELECT ms, n FROM (SELECT ms, n, topic FROM events WHERE (ms, n) > (?, ?) ORDER BY ms, n LIMIT ?) WHERE ${topicCondition(prefixes)} ORDER BY ms, n LIMIT ?`;
}

/**
 * The scan query's counterpart for alternates: the keys in a range (after a
 * position, through another) of the events with an alternate passing the
 * filter, each once. Parameters as {@link scanQuery}'s, the range's two ends
 * in place of the window's size.
 */
export function alternatesScanQuery(prefixes: number): string {
  // `+topic`: the range on the key, never the topic index (which would have to sort what it finds).
  return `SELECT DISTINCT ms, n FROM alternate_topics WHERE (ms, n) > (?, ?) AND (ms, n) <= (?, ?) AND (${topicCondition(prefixes, '+topic')}) ORDER BY ms, n LIMIT ?`;
}

/** A topic passes a filter: the exact topics as one JSON array, then the prefixes (see {@link scanQuery}). */
function topicCondition(prefixes: number, topic = 'topic'): string {
  const byPrefix =
    prefixes > MAX_SPELLED_PREFIXES
      ? ` OR EXISTS (SELECT 1 FROM json_each(?) WHERE substr(${topic}, 1, length(value)) = value)`
      : ` OR substr(${topic}, 1, ?) = ?`.repeat(prefixes);
  return `${topic} IN (SELECT value FROM json_each(?))${byPrefix}`;
}

/** Above every id: the open upper end of a range on (ms, n). */
const END_OF_IDS: EventId = { ms: Number.MAX_SAFE_INTEGER, seq: Number.MAX_SAFE_INTEGER };

interface Key {
  ms: number;
  n: number;
}

/** Events of one page and where it stopped, before the status is added. */
interface PageBody {
  readonly events: StoredEvent[];
  readonly cursor: string;
  readonly end: boolean;
}

export class SqliteEventLog implements EventLog {
  readonly shared = false;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly ids: EventIdGenerator;
  private readonly listeners = new Set<TailListener>();
  private readonly capacity: number;
  private readonly maxAgeMs: number;
  private readonly trimTimer: NodeJS.Timeout;
  private size: number;
  /** Everything at or before this id is gone (trimmed, or from before the store existed). */
  private horizon: EventId;
  private newest: EventId;
  private readonly statements;
  /**
   * A page is read in one transaction: its queries share one snapshot and one
   * lock of the WAL, rather than taking it per statement (a hundred row
   * lookups would otherwise cost a hundred rounds of locking system calls).
   */
  private readonly readInOneTransaction: (request: ReadRequest) => ReadPage;
  /** Scan queries by their number of prefixes (see {@link scanQuery}). */
  private readonly scanStatements = new Map<number, Database.Statement<unknown[], Key>>();
  /** The same for alternates (see {@link alternatesScanQuery}). */
  private readonly alternatesScanStatements = new Map<number, Database.Statement<unknown[], Key>>();
  /**
   * Whether any event was ever stored with alternates (set at open and by
   * appends; trimming leaves it set): until then, filtered reads skip the
   * alternates' index, and Herald's own events cost nothing extra.
   */
  private hasAlternates: boolean;
  private pending: PendingAppend[] = [];
  /** Reads waiting for their turn (see {@link READ_SLICE_MS}). */
  private readQueue: (() => void)[] = [];
  private readsScheduled = false;

  constructor(options: SqliteLogOptions) {
    this.now = options.now ?? Date.now;
    this.capacity = options.capacity;
    this.maxAgeMs = options.maxAgeMs;
    try {
      this.db = new Database(options.path);
    } catch (error) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `cannot open the store ${JSON.stringify(options.path)}: ${(error as Error).message}`);
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.sync === 'full' ? 'FULL' : 'NORMAL'}`);
    // Resumes of one topic read the same scattered pages over and over (each of its events sits on a page
    // of its own in a long history): a 16 MiB page cache keeps them, where the 2 MB default thrashes.
    this.db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS events (
        ms INTEGER NOT NULL, n INTEGER NOT NULL, topic TEXT, type TEXT, data TEXT NOT NULL,
        PRIMARY KEY (ms, n)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, ms INTEGER NOT NULL, n INTEGER NOT NULL) WITHOUT ROWID;
    `);
    // Stores created before private events existed get the column; their events are all public. Stores from before
    // chosen ids, alternates and retry get theirs: their events carry the log's own ids, one topic, no retry.
    const columns = this.db.prepare<[], { name: string }>('SELECT name FROM pragma_table_info(\'events\')').all();
    for (const [name, type] of [['private', 'INTEGER'], ['id', 'TEXT'], ['also_topics', 'TEXT'], ['retry', 'INTEGER']] as const) {
      if (!columns.some((column) => column.name === name)) this.db.exec(`ALTER TABLE events ADD COLUMN ${name} ${type}`);
    }
    // Filtered resume reads go through this index; a store from before it gets it built once, here.
    // (A WITHOUT ROWID table's index holds the primary key too: entries are (topic, ms, n).)
    this.db.exec('CREATE INDEX IF NOT EXISTS events_by_topic ON events (topic)');
    // Resumes after a chosen id: only rows that have one are indexed, so the log's own events add nothing to it.
    // Alternates: one row per (event, topic), keyed by the event first (trimming deletes a range of keys) and indexed by
    // topic (entries (topic, ms, n), as events_by_topic's). A store from before them gets both empty: nothing to rebuild.
    this.db.exec(`
      CREATE INDEX IF NOT EXISTS events_by_id ON events (id) WHERE id IS NOT NULL;
      CREATE TABLE IF NOT EXISTS alternate_topics (
        ms INTEGER NOT NULL, n INTEGER NOT NULL, topic TEXT NOT NULL,
        PRIMARY KEY (ms, n, topic)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS alternate_topics_by_topic ON alternate_topics (topic);
    `);
    this.statements = {
      insert: this.db.prepare('INSERT INTO events (ms, n, topic, type, data, private, id, also_topics, retry) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      insertAlternate: this.db.prepare('INSERT OR IGNORE INTO alternate_topics (ms, n, topic) VALUES (?, ?, ?)'),
      anyAlternate: this.db.prepare<[], { one: number }>('SELECT 1 AS one FROM alternate_topics LIMIT 1'),
      setMeta: this.db.prepare('INSERT INTO meta (key, ms, n) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET ms = excluded.ms, n = excluded.n'),
      getMeta: this.db.prepare<[string], { ms: number; n: number }>('SELECT ms, n FROM meta WHERE key = ?'),
      count: this.db.prepare<[], { size: number }>('SELECT count(*) AS size FROM events'),
      sizesAfter: this.db.prepare<[number, number, number], Key & { bytes: number }>(RESUME_QUERIES.sizesAfter),
      rowsThrough: this.db.prepare<[number, number, number, number], Row>(RESUME_QUERIES.rowsThrough),
      row: this.db.prepare<[number, number], Row>(RESUME_QUERIES.row),
      windowEnd: this.db.prepare<[number, number, number], Key>(RESUME_QUERIES.windowEnd),
      keysOfTopic: this.db.prepare<[string, number, number, number, number, number], Key>(RESUME_QUERIES.keysOfTopic),
      firstTopicFrom: this.db.prepare<[string, string], { topic: string }>(RESUME_QUERIES.firstTopicFrom),
      firstTopicAfter: this.db.prepare<[string, string], { topic: string }>(RESUME_QUERIES.firstTopicAfter),
      newestWithId: this.db.prepare<[string], Key>(RESUME_QUERIES.newestWithId),
      idAt: this.db.prepare<[number, number], { id: string | null }>(RESUME_QUERIES.idAt),
      keysOfAlternate: this.db.prepare<[string, number, number, number, number, number], Key>(RESUME_QUERIES.keysOfAlternate),
      firstAlternateFrom: this.db.prepare<[string, string], { topic: string }>(RESUME_QUERIES.firstAlternateFrom),
      firstAlternateAfter: this.db.prepare<[string, string], { topic: string }>(RESUME_QUERIES.firstAlternateAfter),
      oldestN: this.db.prepare<[number], { ms: number; n: number }>('SELECT ms, n FROM events ORDER BY ms, n LIMIT 1 OFFSET ?'),
      first: this.db.prepare<[], Key & { id: string | null }>('SELECT ms, n, id FROM events ORDER BY ms, n LIMIT 1'),
      last: this.db.prepare<[], Key & { id: string | null }>('SELECT ms, n, id FROM events ORDER BY ms DESC, n DESC LIMIT 1'),
      deleteThrough: this.db.prepare('DELETE FROM events WHERE (ms, n) <= (?, ?)'),
      deleteAlternatesThrough: this.db.prepare('DELETE FROM alternate_topics WHERE (ms, n) <= (?, ?)'),
      lastBefore: this.db.prepare<[number, number], { ms: number; n: number }>(
        'SELECT ms, n FROM events WHERE (ms, n) < (?, ?) ORDER BY ms DESC, n DESC LIMIT 1',
      ),
    };

    this.readInOneTransaction = this.db.transaction((request: ReadRequest) => this.readPage(request));
    this.hasAlternates = this.statements.anyAlternate.get() !== undefined;

    const storedHorizon = this.statements.getMeta.get('horizon');
    const storedNewest = this.statements.getMeta.get('newest');
    if (storedHorizon === undefined || storedNewest === undefined) {
      // A new store knows nothing before now.
      this.horizon = { ms: this.now(), seq: -1 };
      this.newest = this.horizon;
      this.saveMeta('horizon', this.horizon);
      this.saveMeta('newest', this.newest);
    } else {
      this.horizon = toId(storedHorizon);
      this.newest = toId(storedNewest);
    }
    this.ids = new EventIdGenerator(this.newest);
    this.size = this.statements.count.get()!.size;
    this.trim();
    this.trimTimer = setInterval(() => this.trim(), options.trimIntervalMs ?? 1000);
    this.trimTimer.unref();
  }

  private saveMeta(key: 'horizon' | 'newest', id: EventId): void {
    this.statements.setMeta.run(key, id.ms, id.seq);
  }

  private readonly insertAll = (appends: readonly PendingAppend[], keys: readonly EventId[]): void => {
    let k = 0;
    for (const { drafts } of appends) {
      for (const draft of drafts) {
        const key = keys[k++]!;
        const alternates = draft.alsoTopics !== undefined && draft.alsoTopics.length > 0 ? draft.alsoTopics : undefined;
        this.statements.insert.run(
          key.ms,
          key.seq,
          draft.topic ?? null,
          draft.event ?? null,
          draft.data,
          draft.private === true ? 1 : null,
          draft.id ?? null,
          alternates === undefined ? null : JSON.stringify(alternates),
          draft.retry ?? null,
        );
        if (alternates === undefined) continue;
        // The canonical topic is in events_by_topic already; a topic listed twice is indexed once.
        for (const topic of alternates) if (topic !== draft.topic) this.statements.insertAlternate.run(key.ms, key.seq, topic);
        this.hasAlternates = true;
      }
    }
    this.saveMeta('newest', keys[keys.length - 1]!);
  };

  /**
   * Group commit: the appends of one event-loop turn share one transaction,
   * so a burst of single-event publishes costs one commit, not one each. A
   * batch is never split; if the commit fails, every append in it fails, so
   * no publisher is told "stored" for an event that is not.
   */
  append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent[]> {
    return new Promise((resolve, reject) => {
      // Refused alone, before it joins a group: the other appends of the turn commit regardless.
      checkDrafts(drafts);
      this.pending.push({ drafts, resolve, reject });
      if (this.pending.length === 1) setImmediate(this.commit);
    });
  }

  private readonly commit = (): void => {
    const appends = this.pending;
    this.pending = [];
    if (!this.db.open) {
      for (const append of appends) append.reject(new HeraldError('HERALD_ERR_STORE_UNAVAILABLE', 'the store is closed; the publish was not acknowledged', { retryAfter: 1 }));
      return;
    }
    const now = this.now();
    const keys = appends.flatMap(({ drafts }) => drafts.map(() => this.ids.next(now)));
    try {
      this.db.transaction(this.insertAll)(appends, keys);
    } catch (error) {
      // Nothing was kept: hand out these ids again rather than leave holes.
      this.ids.rewind(this.newest);
      const failure = new HeraldError('HERALD_ERR_STORE_UNAVAILABLE', `the store could not commit the publish (${(error as Error).message}); it was not acknowledged`, {
        retryAfter: 1,
      });
      for (const append of appends) append.reject(failure);
      return;
    }
    this.newest = keys[keys.length - 1]!;
    this.size += keys.length;
    if (this.size > this.capacity) this.trimToCapacity();
    let k = 0;
    const all: StoredEvent[] = [];
    const results = appends.map(({ drafts }) =>
      drafts.map((draft): StoredEvent => {
        const key = keys[k++]!;
        const event: StoredEvent = { id: draft.id ?? formatEventId(key), position: positionOf(key), time: key.ms, topic: draft.topic, event: draft.event, data: draft.data, ...extras(draft) };
        all.push(event);
        return event;
      }),
    );
    for (const listener of this.listeners) listener(all);
    appends.forEach((append, i) => append.resolve(results[i]!));
  };

  read(request: ReadRequest): Promise<ReadPage> {
    return new Promise((resolve, reject) => {
      this.readQueue.push(() => {
        try {
          resolve(this.readNow(request));
        } catch (error) {
          reject(error);
        }
      });
      if (!this.readsScheduled) {
        this.readsScheduled = true;
        setImmediate(this.runReads);
      }
    });
  }

  /**
   * Runs queued reads for one time slice, then yields. A read that waits
   * still keeps the promise `read()` makes: what is appended meanwhile is in
   * its page, and reaches the tail as well.
   */
  private readonly runReads = (): void => {
    const started = performance.now();
    let index = 0;
    const queue = this.readQueue;
    while (index < queue.length && (index === 0 || performance.now() - started < READ_SLICE_MS)) queue[index++]!();
    this.readQueue = queue.slice(index);
    if (this.readQueue.length > 0) setImmediate(this.runReads);
    else this.readsScheduled = false;
  };

  private readNow(request: ReadRequest): ReadPage {
    if (!this.db.open) throw new HeraldError('HERALD_ERR_STORE_UNAVAILABLE', 'the store is closed', { retryAfter: 1 });
    return this.readInOneTransaction(request);
  }

  private readPage(request: ReadRequest): ReadPage {
    let after: EventId | undefined;
    if ('id' in request.after) {
      after = this.startOf(request.after.id);
      if (after === undefined) return { status: 'unknown' };
    } else {
      after = idOfPosition(request.after.cursor);
      if (after === undefined) throw new HeraldError('HERALD_ERR_INTERNAL', 'not a cursor of this store');
    }
    const expired = compareEventIds(after, this.horizon) < 0;
    // Nothing at or before the horizon is kept: an expired read goes on from the oldest retained event.
    const from = expired ? this.horizon : after;
    const limit = Math.max(1, Math.floor(request.limit));
    const body = request.topics === undefined ? this.readEverything(from, limit, request.maxBytes) : this.readTopics(request.topics, from, limit, request.maxBytes);
    return { status: expired ? 'expired' : 'complete', ...body };
  }

  /**
   * Where a read after a client's id starts (see `ReadStart`): the key of the
   * newest retained row carrying it, else the place a log id names, else
   * `undefined` (unknown).
   */
  private startOf(id: string): EventId | undefined {
    const chosen = this.statements.newestWithId.get(id);
    const key = parseEventId(id);
    if (chosen !== undefined) {
      const found = toId(chosen);
      // The id also names a row of the log's own: that row carries it too, unless it has a chosen id instead.
      if (key === undefined || compareEventIds(found, key) >= 0 || formatEventId(key) !== id) return found;
      const there = this.statements.idAt.get(key.ms, key.seq);
      if (there === undefined || there.id !== null) return found;
    }
    if (key === undefined || compareEventIds(key, this.newest) > 0) return undefined;
    return key;
  }

  /** No filter: the sizes of the next rows, then the rows that fit the byte budget (at least one), in one range. */
  private readEverything(from: EventId, limit: number, maxBytes: number): PageBody {
    // One more than the page takes: whether anything follows it.
    const sizes = this.statements.sizesAfter.all(from.ms, from.seq, limit + 1);
    let taken = 0;
    let bytes = 0;
    while (taken < Math.min(limit, sizes.length) && (taken === 0 || bytes + sizes[taken]!.bytes <= maxBytes)) bytes += sizes[taken++]!.bytes;
    if (taken === 0) return { events: [], cursor: positionOf(from), end: true };
    const last = toId(sizes[taken - 1]!);
    const events = this.statements.rowsThrough.all(from.ms, from.seq, last.ms, last.seq).map(toStoredEvent);
    return { events, cursor: positionOf(last), end: taken === sizes.length };
  }

  private readTopics(filter: TopicFilter, from: EventId, limit: number, maxBytes: number): PageBody {
    const wanted = Math.min(limit, ROWS_PER_READ);
    const topics = this.topicsOf(filter);
    if (topics === undefined) return this.scanFiltered(filter, from, wanted, maxBytes);
    const keys = this.firstKeysOf(topics, from, wanted);
    const page = this.rowsOf(keys, maxBytes);
    if (page.stoppedAt !== undefined) return { events: page.events, cursor: positionOf(page.stoppedAt), end: false };
    if (keys.length === wanted) return { events: page.events, cursor: positionOf(toId(keys[keys.length - 1]!)), end: false };
    // Every wanted topic ran out before the page filled: the page looked through the newest event.
    return { events: page.events, cursor: positionOf(this.newestFrom(from)), end: true };
  }

  /** The newest id, or `from` if that is later: where a read that found nothing more stops. */
  private newestFrom(from: EventId): EventId {
    return compareEventIds(this.newest, from) > 0 ? this.newest : from;
  }

  /**
   * The exact topics a filter stands for in this store: its exact ones, and
   * those stored under its prefixes (found by seeks on the index, one per
   * topic). `undefined` when that is more than {@link MAX_INDEXED_TOPICS},
   * or a prefix has no range (the empty prefix): the index cannot serve it.
   */
  private topicsOf(filter: TopicFilter): Set<string> | undefined {
    const topics = new Set(filter.exact);
    if (topics.size > MAX_INDEXED_TOPICS) return undefined;
    const lists = this.hasAlternates
      ? [
          [this.statements.firstTopicFrom, this.statements.firstTopicAfter],
          [this.statements.firstAlternateFrom, this.statements.firstAlternateAfter],
        ]
      : [[this.statements.firstTopicFrom, this.statements.firstTopicAfter]];
    for (const prefix of filter.prefixes) {
      const end = prefixEnd(prefix);
      if (end === undefined) return undefined;
      for (const [firstFrom, firstAfter] of lists) {
        let found = firstFrom!.get(prefix, end);
        while (found !== undefined) {
          topics.add(found.topic);
          if (topics.size > MAX_INDEXED_TOPICS) return undefined;
          found = firstAfter!.get(found.topic, end);
        }
      }
    }
    return topics;
  }

  /**
   * The first `limit` keys after `from` over all these topics, in key order,
   * each once: one index range query per topic (and one on the alternates,
   * once there are any), merged. Once `limit` keys are held, the next topics
   * are only asked for keys before the last of them.
   */
  private firstKeysOf(topics: ReadonlySet<string>, from: EventId, limit: number): Key[] {
    let merged: Key[] = [];
    let upTo = END_OF_IDS;
    const queries = this.hasAlternates ? [this.statements.keysOfTopic, this.statements.keysOfAlternate] : [this.statements.keysOfTopic];
    for (const topic of topics) {
      for (const query of queries) {
        const keys = query.all(topic, from.ms, from.seq, upTo.ms, upTo.seq, limit);
        if (keys.length === 0) continue;
        // An event may come twice: its canonical topic and an alternate, or two alternates, may both be wanted.
        merged = mergeKeys(merged, keys, limit);
        if (merged.length === limit) upTo = toId(merged[limit - 1]!);
      }
    }
    return merged;
  }

  /** Loads the rows of these keys in order until the byte budget is spent (a page holds at least one event). */
  private rowsOf(keys: readonly Key[], maxBytes: number): { events: StoredEvent[]; stoppedAt: EventId | undefined } {
    const events: StoredEvent[] = [];
    let bytes = 0;
    let last: EventId | undefined;
    for (const key of keys) {
      // Reads are synchronous: no trim runs between finding a key and loading its row.
      const row = this.statements.row.get(key.ms, key.n);
      if (row === undefined) continue;
      if (events.length > 0 && bytes + row.data.length > maxBytes) return { events, stoppedAt: last };
      events.push(toStoredEvent(row));
      bytes += row.data.length;
      last = toId(row);
    }
    return { events, stoppedAt: undefined };
  }

  /**
   * A filter the index cannot serve: the keys that pass it among the next
   * {@link SCAN_ROWS} (filtered in SQL: no row crosses into JS unless it is
   * wanted, no data is read), then their rows.
   */
  private scanFiltered(filter: TopicFilter, from: EventId, wanted: number, maxBytes: number): PageBody {
    const prefixes = filter.prefixes.length;
    const filterParameters = [
      JSON.stringify(filter.exact),
      ...(prefixes > MAX_SPELLED_PREFIXES ? [JSON.stringify(filter.prefixes)] : filter.prefixes.flatMap((prefix) => [Array.from(prefix).length, prefix])),
    ];
    let matches = prepared(this.db, this.scanStatements, prefixes, scanQuery).all(from.ms, from.seq, SCAN_ROWS, ...filterParameters, wanted);
    // Where the page looked through: the last match if the page is full, else the window's last key (none: the window held everything after `from`).
    const windowEnd = matches.length === wanted ? undefined : this.statements.windowEnd.get(from.ms, from.seq, SCAN_ROWS - 1);
    if (this.hasAlternates) {
      // The alternates of the same range: only keys up to where the topics' scan stopped can be in this page.
      const through = matches.length === wanted ? toId(matches[wanted - 1]!) : windowEnd === undefined ? END_OF_IDS : toId(windowEnd);
      const alternates = prepared(this.db, this.alternatesScanStatements, prefixes, alternatesScanQuery).all(from.ms, from.seq, through.ms, through.seq, ...filterParameters, wanted);
      matches = mergeKeys(matches, alternates, wanted);
    }
    const page = this.rowsOf(matches, maxBytes);
    if (page.stoppedAt !== undefined) return { events: page.events, cursor: positionOf(page.stoppedAt), end: false };
    if (matches.length === wanted) return { events: page.events, cursor: positionOf(toId(matches[matches.length - 1]!)), end: false };
    if (windowEnd !== undefined) return { events: page.events, cursor: positionOf(toId(windowEnd)), end: false };
    // The window held everything after `from`.
    return { events: page.events, cursor: positionOf(this.newestFrom(from)), end: true };
  }

  /** Drops the oldest events past `capacity`, remembering the newest one dropped as the horizon. */
  private trimToCapacity(): void {
    const excess = Math.min(this.size - this.capacity, TRIM_BATCH);
    if (excess <= 0) return;
    const through = this.statements.oldestN.get(excess - 1);
    if (through !== undefined) this.dropThrough(toId(through));
  }

  private dropThrough(id: EventId): void {
    this.db.transaction(() => {
      const deleted = this.statements.deleteThrough.run(id.ms, id.seq).changes;
      if (this.hasAlternates) this.statements.deleteAlternatesThrough.run(id.ms, id.seq);
      this.size -= deleted;
      if (compareEventIds(id, this.horizon) > 0) {
        this.horizon = id;
        this.saveMeta('horizon', id);
      }
    })();
  }

  /** Background trimming by count and by age, in bounded steps. */
  trim(): void {
    if (this.size > this.capacity) this.trimToCapacity();
    if (this.maxAgeMs > 0) {
      const expired = this.statements.lastBefore.get(this.now() - this.maxAgeMs, 0);
      if (expired === undefined) return;
      // At most one batch per step; the next tick takes the rest.
      const batchEnd = this.statements.oldestN.get(TRIM_BATCH - 1);
      const through = batchEnd !== undefined && compareEventIds(toId(batchEnd), toId(expired)) < 0 ? batchEnd : expired;
      this.dropThrough(toId(through));
    }
  }

  tail(listener: TailListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stats(): EventLogStats {
    const first = this.statements.first.get();
    const last = this.statements.last.get();
    return {
      size: this.size,
      oldestId: first === undefined ? undefined : (first.id ?? formatEventId(toId(first))),
      newestId: last === undefined ? undefined : (last.id ?? formatEventId(toId(last))),
    };
  }

  async close(): Promise<void> {
    // Appends already accepted are committed before the file closes.
    if (this.pending.length > 0) this.commit();
    clearInterval(this.trimTimer);
    this.listeners.clear();
    if (this.db.open) this.db.close();
  }
}

/**
 * The smallest string above every string that starts with `prefix`: the
 * prefix with its last code point incremented. SQLite compares text as UTF-8
 * bytes, whose order is code point order, so `topic >= prefix AND topic <
 * prefixEnd(prefix)` holds exactly the topics under the prefix. `undefined`
 * when there is none (the empty prefix: every topic).
 */
export function prefixEnd(prefix: string): string | undefined {
  const codePoints = Array.from(prefix);
  while (codePoints.length > 0) {
    let next = codePoints.pop()!.codePointAt(0)! + 1;
    if (next === 0xd800) next = 0xe000; // surrogates are not characters
    if (next <= 0x10ffff) return codePoints.join('') + String.fromCodePoint(next);
  }
  return undefined;
}

/** Two ascending key lists merged, a key in both kept once, the first `limit` kept. */
function mergeKeys(a: readonly Key[], b: readonly Key[], limit: number): Key[] {
  const merged: Key[] = [];
  let i = 0;
  let j = 0;
  while (merged.length < limit && (i < a.length || j < b.length)) {
    const order = i >= a.length ? 1 : j >= b.length ? -1 : a[i]!.ms - b[j]!.ms || a[i]!.n - b[j]!.n;
    if (order <= 0) merged.push(a[i++]!);
    else merged.push(b[j++]!);
    if (order === 0) j++;
  }
  return merged;
}

/** The statement for a query built for `prefixes` prefixes, prepared once. */
function prepared(db: Database.Database, cache: Map<number, Database.Statement<unknown[], Key>>, prefixes: number, query: (prefixes: number) => string): Database.Statement<unknown[], Key> {
  let statement = cache.get(prefixes);
  if (statement === undefined) {
    statement = db.prepare<unknown[], Key>(query(prefixes));
    cache.set(prefixes, statement);
  }
  return statement;
}

function toId(row: { ms: number; n: number }): EventId {
  return { ms: row.ms, seq: row.n };
}

function toStoredEvent(row: Row): StoredEvent {
  const key = toId(row);
  return {
    id: row.id ?? formatEventId(key),
    position: positionOf(key),
    time: row.ms,
    topic: row.topic ?? undefined,
    event: row.type ?? undefined,
    data: row.data,
    ...(row.private === 1 ? { private: true } : {}),
    ...(row.also_topics === null ? {} : { alsoTopics: JSON.parse(row.also_topics) as string[] }),
    ...(row.retry === null ? {} : { retry: row.retry }),
  };
}
