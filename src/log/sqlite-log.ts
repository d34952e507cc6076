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
 * so an id handed out before a restart keeps its meaning after it.
 */

import Database from 'better-sqlite3';
import { HeraldError } from '../errors.js';
import { passesFilter, privacy, type EventDraft, type EventLog, type EventLogStats, type ReadPage, type ReadRequest, type StoredEvent, type TailListener } from './event-log.js';
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
}

interface PendingAppend {
  readonly drafts: readonly EventDraft[];
  readonly resolve: (events: readonly StoredEvent[]) => void;
  readonly reject: (error: unknown) => void;
}

/** Rows deleted per trimming step, so a large backlog never holds the event loop long. */
const TRIM_BATCH = 5000;

/** Rows one read looks at, at most. */
const SCAN_ROWS = 2000;

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
  private pending: PendingAppend[] = [];

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
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS events (
        ms INTEGER NOT NULL, n INTEGER NOT NULL, topic TEXT, type TEXT, data TEXT NOT NULL,
        PRIMARY KEY (ms, n)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, ms INTEGER NOT NULL, n INTEGER NOT NULL) WITHOUT ROWID;
    `);
    // Stores created before private events existed get the column; their events are all public.
    const columns = this.db.prepare<[], { name: string }>('SELECT name FROM pragma_table_info(\'events\')').all();
    if (!columns.some((column) => column.name === 'private')) this.db.exec('ALTER TABLE events ADD COLUMN private INTEGER');
    this.statements = {
      insert: this.db.prepare('INSERT INTO events (ms, n, topic, type, data, private) VALUES (?, ?, ?, ?, ?, ?)'),
      setMeta: this.db.prepare('INSERT INTO meta (key, ms, n) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET ms = excluded.ms, n = excluded.n'),
      getMeta: this.db.prepare<[string], { ms: number; n: number }>('SELECT ms, n FROM meta WHERE key = ?'),
      count: this.db.prepare<[], { size: number }>('SELECT count(*) AS size FROM events'),
      after: this.db.prepare<[number, number, number], Row>('SELECT ms, n, topic, type, data, private FROM events WHERE (ms, n) > (?, ?) ORDER BY ms, n LIMIT ?'),
      oldestN: this.db.prepare<[number], { ms: number; n: number }>('SELECT ms, n FROM events ORDER BY ms, n LIMIT 1 OFFSET ?'),
      first: this.db.prepare<[], { ms: number; n: number }>('SELECT ms, n FROM events ORDER BY ms, n LIMIT 1'),
      last: this.db.prepare<[], { ms: number; n: number }>('SELECT ms, n FROM events ORDER BY ms DESC, n DESC LIMIT 1'),
      deleteThrough: this.db.prepare('DELETE FROM events WHERE (ms, n) <= (?, ?)'),
      lastBefore: this.db.prepare<[number, number], { ms: number; n: number }>(
        'SELECT ms, n FROM events WHERE (ms, n) < (?, ?) ORDER BY ms DESC, n DESC LIMIT 1',
      ),
    };

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
        this.statements.insert.run(key.ms, key.seq, draft.topic ?? null, draft.event ?? null, draft.data, draft.private === true ? 1 : null);
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
      this.pending.push({ drafts, resolve, reject });
      if (this.pending.length === 1) setImmediate(this.commit);
    });
  }

  private readonly commit = (): void => {
    const appends = this.pending;
    this.pending = [];
    if (!this.db.open) {
      for (const append of appends) append.reject(new HeraldError('HERALD_ERR_STORE_UNAVAILABLE', 'the store is closed; the publish was not acknowledged'));
      return;
    }
    const now = this.now();
    const keys = appends.flatMap(({ drafts }) => drafts.map(() => this.ids.next(now)));
    try {
      this.db.transaction(this.insertAll)(appends, keys);
    } catch (error) {
      // Nothing was kept: hand out these ids again rather than leave holes.
      this.ids.rewind(this.newest);
      for (const append of appends) append.reject(error);
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
        const event: StoredEvent = { id: formatEventId(key), position: positionOf(key), time: key.ms, topic: draft.topic, event: draft.event, data: draft.data, ...privacy(draft) };
        all.push(event);
        return event;
      }),
    );
    for (const listener of this.listeners) listener(all);
    appends.forEach((append, i) => append.resolve(results[i]!));
  };

  async read(request: ReadRequest): Promise<ReadPage> {
    let after: EventId | undefined;
    if ('id' in request.after) {
      after = parseEventId(request.after.id);
      if (after === undefined || compareEventIds(after, this.newest) > 0) return { status: 'unknown' };
    } else {
      after = idOfPosition(request.after.cursor);
      if (after === undefined) throw new HeraldError('HERALD_ERR_INTERNAL', 'not a cursor of this store');
    }
    const expired = compareEventIds(after, this.horizon) < 0;
    const from = expired ? this.horizon : after;
    const rows = this.statements.after.all(from.ms, from.seq, SCAN_ROWS);
    const events: StoredEvent[] = [];
    let bytes = 0;
    let cursor = positionOf(from);
    let taken = 0;
    for (const row of rows) {
      if (passesFilter(request.topics, row.topic ?? undefined)) {
        if (events.length > 0 && (events.length >= request.limit || bytes + row.data.length > request.maxBytes)) break;
        events.push(toStoredEvent(row));
        bytes += row.data.length;
      }
      cursor = positionOf(toId(row));
      taken++;
    }
    return { status: expired ? 'expired' : 'complete', events, cursor, end: taken === rows.length && rows.length < SCAN_ROWS };
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
      oldestId: first === undefined ? undefined : formatEventId(toId(first)),
      newestId: last === undefined ? undefined : formatEventId(toId(last)),
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

function toId(row: { ms: number; n: number }): EventId {
  return { ms: row.ms, seq: row.n };
}

function toStoredEvent(row: Row): StoredEvent {
  const key = toId(row);
  return {
    id: formatEventId(key),
    position: positionOf(key),
    time: row.ms,
    topic: row.topic ?? undefined,
    event: row.type ?? undefined,
    data: row.data,
    ...(row.private === 1 ? { private: true } : {}),
  };
}
