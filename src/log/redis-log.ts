/**
 * History and fan-out through one Redis Stream, shared by every node.
 *
 * Design:
 * - One stream per hub (`{prefix}:events`). Redis assigns its ids, so ids are
 *   unique and strictly increasing across all topics and all nodes, and every
 *   subscriber, whatever its selectors, sees them in order. Per-topic streams
 *   would lose that order for a subscriber of several topics.
 * - A publish is one script call: a batch is stored atomically and in order,
 *   and `MAXLEN` trims to `--history` in the same step.
 * - Every node follows the stream with a blocking `XREAD` on a connection of
 *   its own and fans out locally. Reading never waits for any subscriber:
 *   a slow consumer is dropped by the hub, so no topic can hold up another.
 * - Resume reads the range after the client's id from Redis in one `MULTI`
 *   (with the stream's trim horizon), so any node can serve any id.
 * - Redis's ids are the positions. A publisher's chosen id is the entry's
 *   field `i`, and the hash `{prefix}:ids` maps each chosen id to the stream
 *   id of the newest entry carrying it: the append script sets it in the
 *   same step as the `XADD`, and every trim (by `MAXLEN` in the append
 *   script, by age in its own script) deletes the entries of what it trims
 *   in that step too, so the hash holds at most one field per retained
 *   entry. A first page asks the hash in the same step as it reads; a
 *   client's id the hash knows (or that is not of the stream's form) is
 *   resolved inside Redis, by a script that finds the entry and reads the
 *   range after it. The script checks on lookup that the entry is still
 *   there: one deleted by hand (`XDEL`) is not retained, and its field stays
 *   until the id is published again (Herald itself never deletes so).
 * - When Redis is away, appends fail at once (no offline queue, no resend of
 *   a command that may have run), the tail retries with backoff and, once
 *   back, continues from the last id it read: nothing in between is skipped.
 *   If trimming overtook it meanwhile, or Redis lost its data, the hub is told
 *   through `onGap` and ends its streams so clients resume from their own ids.
 *
 * The promise `read()` makes (an event appended after the read was called is
 * in its page or reaches the tail) rests on the tail's cursor: the tail
 * passes on everything after it, or reports a gap. So no read is served
 * before the tail has read where the stream stands (its first read, at start
 * or when Redis only comes up after this node): a read waits for that a
 * little, then fails with `HERALD_ERR_STORE_UNAVAILABLE`, and the client
 * resumes again. Once the cursor is set, reads are safe even while the tail
 * is away: it catches up from its cursor, or reports the gap.
 *
 * What a filtered resume costs: one stream holds every topic, and Redis
 * cannot select entries of a stream by a field, so a read scans entries in
 * id order ({@link SCAN_COUNT} per page). The scan and the filter run inside
 * Redis (a script): only the wanted entries cross the wire. A client of a rare
 * topic still makes Redis look at the whole history, a page per round trip.
 * An index would remove that cost: beside the stream, a sorted set per topic
 * of the ids appended to it (`ZADD` in the append script, trimmed with the
 * stream), so a read asks `ZRANGE ... BYLEX`/`BYSCORE` for the ids of its
 * topics after the cursor and `XRANGE`s only those.
 */

import { Redis, type RedisOptions } from 'ioredis';
import { HeraldError } from '../errors.js';
import { checkDrafts, extras, type EventDraft, type EventLog, type EventLogStats, type LogHealth, type ReadPage, type ReadRequest, type StoredEvent, type TailListener } from './event-log.js';
import { compareEventIds, formatEventId, idOfPosition, parseEventId, positionOf, type EventId } from './event-id.js';
import type { PresenceStore } from '../presence/presence.js';
import { RedisPresence } from '../presence/redis-presence.js';

export interface RedisLogOptions {
  /** e.g. `redis://127.0.0.1:6379/0` */
  readonly url: string;
  /** Key namespace, so several hubs can share one Redis. */
  readonly prefix: string;
  /** Events kept for resume (the stream's `MAXLEN`, at least {@link MIN_STREAM_LENGTH}). */
  readonly capacity: number;
  /** Events older than this many ms are trimmed; 0 keeps them regardless of age. */
  readonly maxAgeMs: number;
  /** Told, in one line, when the connection to Redis is lost or back. */
  readonly notify?: (message: string) => void;
  /** How long a node's presence records outlive its last renewal (`--presence-lease`); default `DEFAULT_LEASE_MS`. */
  readonly presenceLeaseMs?: number;
  /** The clock age trimming measures against; tests replace it (ids come from Redis's clock regardless). */
  readonly now?: () => number;
  /**
   * Test seam, leave unset: awaited by the tail before each attempt at its
   * first read of the stream (where it learns where to start following), so
   * a test can hold open the window between the command connection being up
   * and the tail following.
   */
  readonly beforeFirstFollow?: () => Promise<void>;
}

/**
 * The stream keeps at least this many events even with a smaller `--history`,
 * so a node that falls briefly behind still reads every event live.
 */
export const MIN_STREAM_LENGTH = 1000;
/** Events per `XREAD`; the hub dispatches each read as one batch. */
const READ_COUNT = 1000;
/** How long one `XREAD` blocks; bounded so closing and health checks stay prompt. */
const BLOCK_MS = 2000;
const CONNECT_TIMEOUT_MS = 2000;
const MAX_BACKOFF_MS = 2000;
/**
 * A command Redis has not answered in this long fails (a Redis that hangs
 * rather than closes): appends and reads then reject instead of waiting for ever.
 */
const COMMAND_TIMEOUT_MS = 5000;
/** How long a read waits for the tail's first read of the stream before it gives up. */
const FOLLOW_WAIT_MS = 2000;

/**
 * Lua: `forget(ids, gone)` deletes from the hash of chosen ids the fields of
 * entries about to be trimmed, each only if it still names that entry (a
 * newer entry may carry the same id). Nothing to do without chosen ids.
 */
const FORGET_LUA = `
local function forget(idsKey, gone)
  if redis.call('EXISTS', idsKey) == 0 then return end
  for _, entry in ipairs(gone) do
    local fields = entry[2]
    for j = 1, #fields, 2 do
      if fields[j] == 'i' then
        if redis.call('HGET', idsKey, fields[j + 1]) == entry[1] then redis.call('HDEL', idsKey, fields[j + 1]) end
        break
      end
    end
  end
end
`;

/**
 * Appends a batch atomically, in order, and trims to the max length.
 * KEYS: the stream, its birth time, its horizon (the newest id trimmed away),
 * its counter, its chosen ids (hash). Each entry gets the next count as field
 * `n`, so a reader sees a hole (events trimmed before it read them, or lost
 * with Redis's data) as a jump in `n` without asking Redis anything else.
 * ARGV: max length, then for each event topic, type, private ('1' or ''),
 * data, chosen id, alternates (a JSON array of strings), retry (decimal ms);
 * '' = absent, so none of them but data may be empty when present.
 * Entry fields: `n`, `d` (data), and when present `t` (topic), `e` (type),
 * `p` (private), `i` (chosen id), `a` (alternates, JSON), `r` (retry).
 *
 * The birth time marks where this stream's knowledge starts: an id from before
 * it (from an earlier stream Redis lost, say) may have missed events. Redis 7
 * does not record the ids that `MAXLEN` trims, so the script keeps the horizon.
 */
const APPEND_SCRIPT = `
${FORGET_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[2], tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
end
local ids = {}
for i = 2, #ARGV, 7 do
  local fields = {'n', redis.call('INCR', KEYS[4]), 'd', ARGV[i + 3]}
  if ARGV[i] ~= '' then fields[#fields + 1] = 't'; fields[#fields + 1] = ARGV[i] end
  if ARGV[i + 1] ~= '' then fields[#fields + 1] = 'e'; fields[#fields + 1] = ARGV[i + 1] end
  if ARGV[i + 2] ~= '' then fields[#fields + 1] = 'p'; fields[#fields + 1] = '1' end
  if ARGV[i + 4] ~= '' then fields[#fields + 1] = 'i'; fields[#fields + 1] = ARGV[i + 4] end
  if ARGV[i + 5] ~= '' then fields[#fields + 1] = 'a'; fields[#fields + 1] = ARGV[i + 5] end
  if ARGV[i + 6] ~= '' then fields[#fields + 1] = 'r'; fields[#fields + 1] = ARGV[i + 6] end
  local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
  ids[#ids + 1] = id
  if ARGV[i + 4] ~= '' then redis.call('HSET', KEYS[5], ARGV[i + 4], id) end
end
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if excess > 0 then
  local gone = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
  redis.call('SET', KEYS[3], gone[#gone][1])
  forget(KEYS[5], gone)
  redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', ARGV[1])
end
return ids
`;

/**
 * Trims events older than ARGV[1] (ms); KEYS: the stream, its horizon, its
 * chosen ids. Without chosen ids, all of them in one step. With some, the
 * entries trimmed must be looked at (their ids leave the hash), so at most
 * ARGV[2] of them per call. Returns 1 when more may be left to trim.
 */
const TRIM_BY_AGE_SCRIPT = `
${FORGET_LUA}
if redis.call('EXISTS', KEYS[3]) == 0 then
  local gone = redis.call('XREVRANGE', KEYS[1], '(' .. ARGV[1] .. '-0', '-', 'COUNT', 1)
  if #gone > 0 then
    redis.call('SET', KEYS[2], gone[1][1])
    redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
  end
  return 0
end
local gone = redis.call('XRANGE', KEYS[1], '-', '(' .. ARGV[1] .. '-0', 'COUNT', ARGV[2])
if #gone == 0 then return 0 end
local last = gone[#gone][1]
redis.call('SET', KEYS[2], last)
forget(KEYS[3], gone)
local ms, seq = string.match(last, '^(%d+)-(%d+)$')
redis.call('XTRIM', KEYS[1], 'MINID', ms .. '-' .. string.format('%d', tonumber(seq) + 1))
if #gone < tonumber(ARGV[2]) then return 0 end
return 1
`;

/** Entries an age-trimming call looks at, at most, once there are chosen ids to forget. */
const AGE_TRIM_BATCH = 500;

/**
 * Reads a page of a resume inside Redis: a first page (from a client's id,
 * which may be a chosen one) or a filtered page, so that the id is resolved
 * where the entries are and only the wanted entries cross the wire and get
 * parsed here.
 * KEYS: the stream, its chosen ids. ARGV: the stream id to read after
 * (exclusive; '' when the client's id is not of that form), the client's id
 * to resolve first ('' for a continued page), how many entries to look at,
 * at most how many to return and (after the first) how many data bytes, the
 * number of exact topics (-1: no filter, every entry is wanted), the exact
 * topics, then the prefixes.
 * An id is resolved as `ReadStart` says: the newest entry carrying it as its
 * chosen id (field `i`) if still in the stream, unless the entry whose stream
 * id is exactly this id (and has no chosen id, so carries it) is newer.
 * An entry is wanted when its topic (field `t`) or one of its alternates
 * (field `a`) is one of the exact topics or starts with one of the prefixes.
 * Returns the stream id read after ('' for none: the client's id is unknown),
 * 1 if that came from a chosen id (else 0), the last id it looked at ('' for
 * none), how many entries it looked at, how many the scan found, and the
 * wanted entries.
 */
const READ_SCRIPT = `
local function older(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  ams, bms = tonumber(ams), tonumber(bms)
  if ams ~= bms then return ams < bms end
  return tonumber(aseq) < tonumber(bseq)
end
local function hasField(entry, name)
  for j = 1, #entry[2], 2 do if entry[2][j] == name then return true end end
  return false
end
local after = ARGV[1]
local resolved = 0
if ARGV[2] ~= '' then
  local hit = redis.call('HGET', KEYS[2], ARGV[2])
  if hit and #redis.call('XRANGE', KEYS[1], hit, hit) == 1 then
    local carrier = nil
    if after ~= '' and older(hit, after) then carrier = redis.call('XRANGE', KEYS[1], after, after)[1] end
    if carrier == nil or carrier[1] ~= ARGV[2] or hasField(carrier, 'i') then
      after = hit
      resolved = 1
    end
  end
end
if after == '' then return {'', 0, '', 0, 0, {}} end
local entries = redis.call('XRANGE', KEYS[1], '(' .. after, '+', 'COUNT', ARGV[3])
local limit = tonumber(ARGV[4])
local maxBytes = tonumber(ARGV[5])
local exactCount = tonumber(ARGV[6])
local everything = exactCount < 0
local exact = {}
for i = 7, 6 + exactCount do exact[ARGV[i]] = true end
local prefixes = {}
for i = 7 + math.max(exactCount, 0), #ARGV do prefixes[#prefixes + 1] = ARGV[i] end
local function passes(topic)
  if exact[topic] then return true end
  for _, prefix in ipairs(prefixes) do
    if string.sub(topic, 1, #prefix) == prefix then return true end
  end
  return false
end
local wanted = {}
local bytes = 0
local last = ''
local looked = 0
for _, entry in ipairs(entries) do
  local fields = entry[2]
  local topic = nil
  local alternates = nil
  local size = 0
  for j = 1, #fields, 2 do
    local name = fields[j]
    if name == 't' then topic = fields[j + 1] elseif name == 'd' then size = #fields[j + 1] elseif name == 'a' then alternates = fields[j + 1] end
  end
  local match = everything
  if not match and topic ~= nil then
    match = passes(topic)
    if not match and alternates ~= nil then
      -- A list that does not decode passes: a filter may return more than asked, never less.
      local decoded, list = pcall(cjson.decode, alternates)
      if not decoded or type(list) ~= 'table' then match = true else
        for _, alternate in ipairs(list) do
          if type(alternate) ~= 'string' or passes(alternate) then match = true break end
        end
      end
    end
  end
  if match then
    if #wanted > 0 and (#wanted >= limit or bytes + size > maxBytes) then break end
    wanted[#wanted + 1] = entry
    bytes = bytes + size
  end
  last = entry[1]
  looked = looked + 1
end
return {after, resolved, last, looked, #entries, wanted}
`;

type StreamEntry = [id: string, fields: string[]];

/** What {@link READ_SCRIPT} returns. */
type ScriptedReply = [readAfter: string, resolved: number, lastLooked: string, looked: number, scanned: number, wanted: StreamEntry[]];

interface ScriptCommands {
  heraldAppend(stream: string, born: string, horizon: string, counter: string, ids: string, maxLength: number, ...args: string[]): Promise<string[]>;
  heraldTrimByAge(stream: string, horizon: string, ids: string, minMs: number, batch: number): Promise<number>;
}

/** The scripted read, queued in a transaction (ioredis adds defined commands to pipelines too). */
interface ScriptedReadCommand {
  heraldRead(stream: string, ids: string, after: string, resolve: string, scan: number, limit: number, maxBytes: number, exactCount: number, ...topics: string[]): unknown;
}

/** What `XINFO STREAM` and the birth key say about the stream, read together. */
interface StreamState {
  readonly exists: boolean;
  readonly length: number;
  readonly lastGenerated: EventId;
  readonly maxDeleted: EventId;
  readonly born: EventId;
  /** Events ever appended (the counter of the newest entry). */
  readonly count: number;
  readonly firstId: string | undefined;
  readonly lastId: string | undefined;
}

const ZERO: EventId = { ms: 0, seq: 0 };
const NOT_CONNECTED = 'not connected yet';

/**
 * Entries one filtered read looks at, at most. The scan runs inside Redis, which serves nobody else meanwhile:
 * 1000 entries take well under a millisecond there.
 */
const SCAN_COUNT = 1000;

export class RedisEventLog implements EventLog {
  readonly shared = true;
  private readonly commands: Redis & ScriptCommands;
  private readonly reader: Redis;
  /** Resume reads go on a connection of their own, so a publish never queues behind a reconnect storm's pages. */
  private readonly replays: Redis;
  /**
   * Reads under way, by what they ask: clients that resume from the same id
   * (a storm after a deploy) share one round trip per page.
   */
  private readonly readsUnderWay = new Map<string, Promise<ReadPage>>();
  private readonly streamKey: string;
  private readonly bornKey: string;
  private readonly horizonKey: string;
  private readonly counterKey: string;
  /** Chosen id → stream id of the newest entry carrying it (see the file's comment). */
  private readonly idsKey: string;
  private readonly prefix: string;
  private readonly presenceLeaseMs: number | undefined;
  private readonly maxLength: number;
  private readonly maxAgeMs: number;
  private readonly notify: (message: string) => void;
  private readonly now: () => number;
  private readonly beforeFirstFollow: () => Promise<void>;
  private readonly listeners = new Set<TailListener>();
  private readonly gapListeners = new Set<() => void>();
  private readonly trimTimer: NodeJS.Timeout;
  /**
   * The id of the last event the tail passed on (or where it started
   * following); `undefined` until its first read of the stream. Reads are
   * served only once it is set.
   */
  private cursor: string | undefined;
  /** The count (`n`) of that event. */
  private cursorCount = 0;
  private readerFailure: string | undefined;
  private lastError = NOT_CONNECTED;
  private wasHealthy: boolean | undefined;
  /** Whether it was ever healthy: the first time it is, it says "connected", not "back". */
  private everHealthy = false;
  private cachedStats: EventLogStats = { size: 0, oldestId: undefined, newestId: undefined };
  private closed = false;
  private readonly following: Promise<void>;
  private readonly firstRead: Promise<void>;
  private markFirstRead!: () => void;
  /** Ends the tail's wait between attempts (the reader is connected again, or the log closes). */
  private wake: (() => void) | undefined;

  constructor(options: RedisLogOptions) {
    this.streamKey = `{${options.prefix}}:events`;
    this.bornKey = `{${options.prefix}}:born`;
    this.horizonKey = `{${options.prefix}}:horizon`;
    this.counterKey = `{${options.prefix}}:count`;
    this.idsKey = `{${options.prefix}}:ids`;
    this.prefix = options.prefix;
    this.presenceLeaseMs = options.presenceLeaseMs;
    this.maxLength = Math.max(options.capacity, MIN_STREAM_LENGTH);
    this.maxAgeMs = options.maxAgeMs;
    this.notify = options.notify ?? (() => {});
    this.now = options.now ?? Date.now;
    this.beforeFirstFollow = options.beforeFirstFollow ?? (() => Promise.resolve());
    const connection: RedisOptions = {
      // Fail at once while disconnected: a publish must not wait in a queue, or be resent after it may have run.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      retryStrategy: (attempt) => backoff(attempt),
      lazyConnect: false,
    };
    try {
      this.commands = new Redis(options.url, { ...connection, enableAutoPipelining: true, commandTimeout: COMMAND_TIMEOUT_MS }) as Redis & ScriptCommands;
      this.reader = new Redis(options.url, connection);
      this.replays = new Redis(options.url, { ...connection, enableAutoPipelining: true, commandTimeout: COMMAND_TIMEOUT_MS });
    } catch (error) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `invalid Redis URL ${JSON.stringify(options.url)}: ${(error as Error).message}`);
    }
    this.commands.defineCommand('heraldAppend', { numberOfKeys: 5, lua: APPEND_SCRIPT });
    this.commands.defineCommand('heraldTrimByAge', { numberOfKeys: 3, lua: TRIM_BY_AGE_SCRIPT });
    this.replays.defineCommand('heraldRead', { numberOfKeys: 2, lua: READ_SCRIPT });
    for (const client of [this.commands, this.reader, this.replays]) {
      client.on('error', (error: Error) => {
        this.lastError = error.message || String(error);
        this.reportHealth();
      });
      client.on('ready', () => this.reportHealth());
      client.on('close', () => {
        if (this.wasHealthy === true) this.lastError = 'the connection to Redis closed';
        this.reportHealth();
      });
    }
    // Back after an outage: the tail tries again at once rather than finishing its backoff.
    this.reader.on('ready', () => this.wake?.());
    this.firstRead = new Promise((resolve) => (this.markFirstRead = resolve));
    this.following = this.follow();
    this.trimTimer = setInterval(() => void this.housekeeping(), 1000);
    this.trimTimer.unref();
  }

  /**
   * Resolves once the log is healthy (the command and replay connections
   * are up and the tail follows the stream), or after `timeoutMs` if Redis cannot be
   * reached: a hub may listen without Redis and recover when it comes.
   */
  ready(timeoutMs = CONNECT_TIMEOUT_MS + 500): Promise<void> {
    // The connections come up independently: the tail may follow before publishes can go out, or resumes be read.
    const up = (client: Redis): Promise<void> => (client.status === 'ready' ? Promise.resolve() : new Promise((resolve) => client.once('ready', () => resolve())));
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      void this.firstRead.then(() => Promise.all([up(this.commands), up(this.replays)])).then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Healthy when publishes are taken, the tail follows the stream and reads are served. */
  health(): LogHealth {
    if (this.commands.status !== 'ready') return { ok: false, reason: `redis unavailable: ${this.lastError}` };
    if (this.readerFailure !== undefined) return { ok: false, reason: `redis unavailable: ${this.readerFailure}` };
    if (this.replays.status !== 'ready') return { ok: false, reason: `redis unavailable for resumes: ${this.lastError}` };
    if (this.cursor === undefined) return { ok: false, reason: 'redis unavailable: this node does not follow the stream yet' };
    return { ok: true };
  }

  private reportHealth(): void {
    const health = this.health();
    if (this.closed || health.ok === this.wasHealthy) return;
    // Still connecting for the first time: nothing to report yet.
    if (this.wasHealthy === undefined && !health.ok && this.lastError === NOT_CONNECTED) return;
    const first = this.wasHealthy === undefined;
    this.wasHealthy = health.ok;
    const firstConnection = !this.everHealthy;
    if (health.ok) this.everHealthy = true;
    if (health.ok) this.notify(firstConnection ? 'redis: connected' : 'redis: connection back; publishing again, streams catching up');
    else if (!first) this.notify(`redis: ${health.reason}; publishes get 503 until it is back, streams stay open`);
    else this.notify(`redis: ${health.reason}; retrying`);
  }

  async append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent[]> {
    if (this.closed) throw new HeraldError('HERALD_ERR_STORE_UNAVAILABLE', 'the Redis event log is closed; the publish was not acknowledged', { retryAfter: 1 });
    checkDrafts(drafts);
    const args: string[] = [];
    for (const draft of drafts) {
      const alternates = draft.alsoTopics !== undefined && draft.alsoTopics.length > 0 ? JSON.stringify(draft.alsoTopics) : '';
      args.push(draft.topic ?? '', draft.event ?? '', draft.private === true ? '1' : '', draft.data, draft.id ?? '', alternates, draft.retry === undefined ? '' : String(draft.retry));
    }
    let ids: string[];
    try {
      ids = await this.commands.heraldAppend(this.streamKey, this.bornKey, this.horizonKey, this.counterKey, this.idsKey, this.maxLength, ...args);
    } catch (error) {
      this.lastError = (error as Error).message;
      this.reportHealth();
      throw new HeraldError(
        'HERALD_ERR_STORE_UNAVAILABLE',
        `Redis did not confirm the publish (${(error as Error).message}); it was not acknowledged, retry later`,
        { retryAfter: 1 },
      );
    }
    return drafts.map((draft, i) => {
      const key = parseEventId(ids[i]!)!;
      return { id: draft.id ?? ids[i]!, position: positionOf(key), time: key.ms, topic: draft.topic, event: draft.event, data: draft.data, ...extras(draft) };
    });
  }

  async read(request: ReadRequest): Promise<ReadPage> {
    if (this.closed) throw new HeraldError('HERALD_ERR_STORE_UNAVAILABLE', 'the Redis event log is closed', { retryAfter: 1 });
    await this.tailFollows();
    const key = JSON.stringify([request.after, request.topics, request.limit, request.maxBytes]);
    const underWay = this.readsUnderWay.get(key);
    if (underWay !== undefined) {
      const page = await underWay.catch(() => undefined);
      // A full page holds the same entries whenever it is read. A page that reached the stream's end may have been
      // read before an event this caller must see was appended: that caller reads for itself. (A first page after a
      // chosen id published again meanwhile would go on after the older of the two: more than asked for, never less.)
      if (page !== undefined && page.status !== 'unknown' && !page.end) return page;
    }
    const reading = this.readPage(request);
    this.readsUnderWay.set(key, reading);
    try {
      return await reading;
    } finally {
      if (this.readsUnderWay.get(key) === reading) this.readsUnderWay.delete(key);
    }
  }

  /**
   * One page, in one `MULTI`. A filtered page, or a first page whose id is
   * not of the stream's form, goes through {@link READ_SCRIPT}. An unfiltered
   * first page whose id is of the stream's form reads the range after it
   * directly (no page of entries copied through Lua, the cost of a resume
   * storm), asking the hash of chosen ids in the same step: if a chosen id
   * is what it is, the page is read again, through the script (`resolve`).
   */
  private async readPage(request: ReadRequest, resolve = false): Promise<ReadPage> {
    if (this.replays.status !== 'ready') throw new HeraldError('HERALD_ERR_STORE_UNAVAILABLE', `Redis is unreachable (${this.lastError}); retry`, { retryAfter: 1 });
    const first = 'id' in request.after;
    // A client's id that is not of the stream's form may still be a chosen one: the script resolves it.
    const after = 'id' in request.after ? parseEventId(request.after.id) : idOfPosition(request.after.cursor);
    if (after === undefined && !first) throw new HeraldError('HERALD_ERR_INTERNAL', 'not a cursor of this stream');
    const topics = request.topics;
    // Unfiltered, every entry is wanted: fetch no more than the page takes.
    const limit = Math.max(1, Math.floor(request.limit));
    const count = topics === undefined ? limit : SCAN_COUNT;
    const scripted = resolve || topics !== undefined || after === undefined;
    // Whether the id may be a chosen one, though it has the stream's form: the hash says.
    const askHash = first && !scripted;
    let info: unknown;
    let marks: unknown;
    let chosen: unknown = null;
    let range: unknown;
    try {
      const transaction = this.replays.multi().xinfo('STREAM', this.streamKey).mget(this.bornKey, this.horizonKey);
      if (askHash) transaction.hexists(this.idsKey, (request.after as { id: string }).id);
      if (!scripted) transaction.xrange(this.streamKey, `(${formatEventId(after!)}`, '+', 'COUNT', count);
      else {
        (transaction as typeof transaction & ScriptedReadCommand).heraldRead(
          this.streamKey,
          this.idsKey,
          after === undefined ? '' : formatEventId(after),
          'id' in request.after ? request.after.id : '',
          count,
          limit,
          request.maxBytes,
          topics === undefined ? -1 : topics.exact.length,
          ...(topics === undefined ? [] : [...topics.exact, ...topics.prefixes]),
        );
      }
      const replies = await transaction.exec();
      if (replies === null) throw new Error('the transaction was aborted');
      const [infoReply, marksReply] = replies;
      const rangeReply = replies.at(-1);
      if (rangeReply![0] !== null) throw rangeReply![0];
      // XINFO fails when the stream does not exist: that is a state, not an error.
      info = infoReply![0] === null ? infoReply![1] : undefined;
      marks = marksReply![1];
      if (askHash) chosen = replies[2]![1];
      range = rangeReply![1];
    } catch (error) {
      throw new HeraldError('HERALD_ERR_STORE_UNAVAILABLE', `Redis did not answer the resume read (${(error as Error).message}); retry`, { retryAfter: 1 });
    }
    if (askHash && chosen === 1) return this.readPage(request, true);
    const state = streamState(info, marks);
    const statusAfter = (from: EventId): 'expired' | 'complete' =>
      compareEventIds(from, state.maxDeleted) < 0 || compareEventIds(from, state.born) < 0 ? 'expired' : 'complete';
    if (scripted) {
      const [readAfter, resolved, lastLooked, looked, scanned, wanted] = range as ScriptedReply;
      const from = parseEventId(readAfter);
      if (from === undefined) return { status: 'unknown' };
      // A chosen id names a retained entry; a log id may name a place this stream never reached.
      if (first && resolved !== 1 && (!state.exists || compareEventIds(from, state.lastGenerated) > 0)) return { status: 'unknown' };
      const events = wanted.map(toStoredEvent);
      const cursor = lastLooked === '' ? positionOf(from) : positionOf(parseEventId(lastLooked) ?? from);
      return { status: statusAfter(from), events, cursor, end: looked === scanned && scanned < count };
    }
    if (first && (!state.exists || compareEventIds(after!, state.lastGenerated) > 0)) return { status: 'unknown' };
    const status = statusAfter(after!);
    const entries = range as StreamEntry[];
    const events: StoredEvent[] = [];
    let bytes = 0;
    let cursor = positionOf(after!);
    for (const entry of entries) {
      const event = toStoredEvent(entry);
      if (events.length > 0 && (events.length >= limit || bytes + event.data.length > request.maxBytes)) break;
      events.push(event);
      bytes += event.data.length;
      cursor = event.position;
    }
    return { status, events, cursor, end: events.length === entries.length && entries.length < count };
  }

  /**
   * Resolves once the tail has a cursor (see the file's comment): at once,
   * normally; at start, or when Redis came up after this node, it waits up
   * to {@link FOLLOW_WAIT_MS} for the tail's first read.
   * @throws HeraldError `HERALD_ERR_STORE_UNAVAILABLE` when Redis is unreachable or the tail does not follow in time
   */
  private async tailFollows(): Promise<void> {
    if (this.cursor !== undefined) return;
    // Without a command connection the read would fail anyway: say so at once.
    if (this.commands.status !== 'ready') throw new HeraldError('HERALD_ERR_STORE_UNAVAILABLE', `Redis is unreachable (${this.lastError}); retry`, { retryAfter: 1 });
    let timer: NodeJS.Timeout | undefined;
    const followed = await Promise.race([
      this.firstRead.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), FOLLOW_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (!followed || this.closed) {
      throw new HeraldError('HERALD_ERR_STORE_UNAVAILABLE', 'this node does not follow the Redis stream yet, so a replay could miss events; retry', { retryAfter: 1 });
    }
  }

  private async readState(client: Redis = this.commands): Promise<StreamState> {
    const replies = await client.multi().xinfo('STREAM', this.streamKey).mget(this.bornKey, this.horizonKey, this.counterKey).exec();
    if (replies === null) throw new Error('the stream state read was aborted');
    const [info, marks] = replies;
    return streamState(info![0] === null ? info![1] : undefined, marks![1]);
  }

  /**
   * The tail: follows the stream from where it left off, across disconnections,
   * with one blocking `XREAD` per batch. Entry counts must follow on from the
   * cursor's; a jump means events this node never read are gone.
   */
  private async follow(): Promise<void> {
    let failures = 0;
    // After a failure the stream may have been lost and begun anew (Redis restarted without its data).
    let recheck = false;
    while (!this.closed) {
      try {
        if (this.cursor === undefined) {
          await this.beforeFirstFollow();
          const state = await this.readState(this.reader);
          if (this.closed) return;
          this.cursor = formatEventId(state.lastGenerated);
          this.cursorCount = state.count;
          this.readerFailure = undefined;
          recheck = false;
          this.markFirstRead();
          this.reportHealth();
        } else if (recheck) {
          const state = await this.readState(this.reader);
          recheck = false;
          // The reader answers again: healthy now, not after the next XREAD (which may block).
          this.healthy();
          if (this.lostSinceCursor(state)) {
            // Follow the new stream from its start; the streams that relied on the old one end.
            this.cursor = formatEventId(state.lastGenerated);
            this.cursorCount = state.count;
            this.reportGap();
          }
        }
        const reply = (await this.reader.xread('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', this.streamKey, this.cursor)) as
          | [string, StreamEntry[]][]
          | null;
        failures = 0;
        this.healthy();
        const entries = reply?.[0]?.[1];
        if (entries === undefined || entries.length === 0) continue;
        const events = entries.map(toStoredEvent);
        const counts = entries.map(countOf);
        const last = events.length - 1;
        const contiguous = counts.every((n, i) => n === (i === 0 ? this.cursorCount : counts[i - 1]!) + 1);
        // The stream's id, not the event's (which may be a chosen one).
        this.cursor = entries[last]![0];
        this.cursorCount = counts[last]!;
        this.cachedStats = { ...this.cachedStats, newestId: events[last]!.id };
        if (!contiguous) {
          this.reportGap();
          continue;
        }
        for (const listener of this.listeners) listener(events);
      } catch (error) {
        if (this.closed) return;
        this.readerFailure = (error as Error).message || String(error);
        this.reportHealth();
        recheck = true;
        await this.pause(backoff(++failures));
      }
    }
  }

  /**
   * Whether the stream no longer holds what the cursor saw: it has fewer
   * appends than the cursor's count, or its newest id is older than the
   * cursor (Redis restarted without its data, or lost its last writes).
   */
  private lostSinceCursor(state: StreamState): boolean {
    const cursor = parseEventId(this.cursor ?? '0-0') ?? ZERO;
    return state.count < this.cursorCount || compareEventIds(state.lastGenerated, cursor) < 0;
  }

  /** Waits before the tail's next attempt; the reader coming back (or closing) ends the wait early. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wake = done;
    });
  }

  private healthy(): void {
    if (this.readerFailure === undefined) return;
    this.readerFailure = undefined;
    this.reportHealth();
  }

  /**
   * Events after the cursor are gone before this node read them (trimmed
   * while it was behind or disconnected, or lost with Redis's data). The hub
   * ends its streams: each client resumes from its own id and learns exactly
   * what it missed; live delivery goes on from the newest event.
   */
  private reportGap(): void {
    this.notify('redis: this node missed events (trimmed before it read them, or Redis lost data); ending streams so clients resume');
    for (const listener of this.gapListeners) listener();
  }

  /** Age trimming and the figures `stats()` reports; runs every second, and on demand (tests). */
  async housekeeping(): Promise<void> {
    if (this.commands.status !== 'ready') return;
    try {
      if (this.maxAgeMs > 0) {
        const minMs = this.now() - this.maxAgeMs;
        // Each call is bounded; other commands run between them.
        while ((await this.commands.heraldTrimByAge(this.streamKey, this.horizonKey, this.idsKey, minMs, AGE_TRIM_BATCH)) === 1 && !this.closed);
      }
      const state = await this.readState();
      this.cachedStats = { size: state.length, oldestId: state.firstId, newestId: state.lastId };
    } catch {
      // The connection's error handler has recorded why; the next tick tries again.
    }
  }

  tail(listener: TailListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onGap(listener: () => void): () => void {
    this.gapListeners.add(listener);
    return () => this.gapListeners.delete(listener);
  }

  stats(): EventLogStats {
    return this.cachedStats;
  }

  /**
   * The presence store of the nodes sharing this log (see `RedisPresence`),
   * on the command connection: it fails fast while Redis is away, as
   * presence wants. Close the store before the log, which closes the connection.
   */
  presence(node: string): PresenceStore {
    return new RedisPresence({ redis: this.commands, prefix: this.prefix, node, notify: this.notify, ...(this.presenceLeaseMs === undefined ? {} : { leaseMs: this.presenceLeaseMs }) });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.trimTimer);
    this.listeners.clear();
    this.gapListeners.clear();
    this.reader.disconnect();
    this.wake?.();
    await this.following;
    for (const client of [this.commands, this.replays]) {
      if (client.status === 'ready') await client.quit().catch(() => undefined);
      client.disconnect();
    }
  }
}

function backoff(attempt: number): number {
  const base = Math.min(MAX_BACKOFF_MS, 50 * 2 ** Math.min(attempt, 6));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/** The entry's place in the sequence of all appends (field `n`); 0 if it has none. */
function countOf([, fields]: StreamEntry): number {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === 'n') return Number(fields[i + 1]);
  return 0;
}

function toStoredEvent([id, fields]: StreamEntry): StoredEvent {
  const key = parseEventId(id) ?? ZERO;
  let topic: string | undefined;
  let type: string | undefined;
  let hidden = false;
  let data = '';
  let chosen: string | undefined;
  let alternates: string | undefined;
  let retry: string | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    const value = fields[i + 1]!;
    switch (fields[i]) {
      case 'd':
        data = value;
        break;
      case 't':
        topic = value;
        break;
      case 'e':
        type = value;
        break;
      case 'p':
        hidden = true;
        break;
      case 'i':
        chosen = value;
        break;
      case 'a':
        alternates = value;
        break;
      case 'r':
        retry = value;
        break;
    }
  }
  const stored: StoredEvent = { id: chosen ?? id, position: positionOf(key), time: key.ms, topic, event: type, data };
  if (!hidden && alternates === undefined && retry === undefined) return stored;
  return {
    ...stored,
    ...(hidden ? { private: true } : {}),
    ...(alternates === undefined ? {} : alternatesOf(alternates)),
    ...(retry === undefined || !/^\d{1,15}$/.test(retry) ? {} : { retry: Number(retry) }),
  };
}

/**
 * The alternates of an entry (field `a`), as a field to spread: absent if
 * they do not decode to a list of strings (an entry the log did not write),
 * so one odd entry never stops the tail or a read.
 */
function alternatesOf(text: string): { alsoTopics?: string[] } {
  try {
    const list: unknown = JSON.parse(text);
    if (Array.isArray(list) && list.length > 0 && list.every((topic) => typeof topic === 'string')) return { alsoTopics: list as string[] };
  } catch {
    // Not JSON: as if absent.
  }
  return {};
}

/**
 * Reads the flat `XINFO STREAM` reply (undefined when the stream does not
 * exist) and the stream's birth time and horizon (`MGET` reply).
 */
function streamState(info: unknown, marks: unknown): StreamState {
  const [born, horizon, counter] = Array.isArray(marks) ? marks : [];
  const count = typeof counter === 'string' && /^\d+$/.test(counter) ? Number(counter) : 0;
  const bornId: EventId = typeof born === 'string' && /^\d+$/.test(born) ? { ms: Number(born), seq: 0 } : ZERO;
  const trimmedThrough = (typeof horizon === 'string' && parseEventId(horizon)) || ZERO;
  if (!Array.isArray(info)) {
    return { exists: false, length: 0, lastGenerated: ZERO, maxDeleted: ZERO, born: bornId, count, firstId: undefined, lastId: undefined };
  }
  const fields = new Map<string, unknown>();
  for (let i = 0; i + 1 < info.length; i += 2) fields.set(String(info[i]), info[i + 1]);
  const idOf = (name: string): EventId => parseEventId(String(fields.get(name) ?? '0-0')) ?? ZERO;
  // The event's id: its chosen one (field `i`) if it has one, else the stream's.
  const entryId = (name: string): string | undefined => {
    const entry = fields.get(name);
    if (!Array.isArray(entry) || typeof entry[0] !== 'string') return undefined;
    const entryFields: unknown = entry[1];
    if (Array.isArray(entryFields)) for (let i = 0; i + 1 < entryFields.length; i += 2) if (entryFields[i] === 'i') return String(entryFields[i + 1]);
    return entry[0];
  };
  // Trimming is recorded by our scripts; XDEL by Redis itself.
  const deleted = idOf('max-deleted-entry-id');
  return {
    exists: true,
    length: Number(fields.get('length') ?? 0),
    lastGenerated: idOf('last-generated-id'),
    maxDeleted: compareEventIds(deleted, trimmedThrough) > 0 ? deleted : trimmedThrough,
    born: bornId,
    count,
    firstId: entryId('first-entry'),
    lastId: entryId('last-entry'),
  };
}
