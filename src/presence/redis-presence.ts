/**
 * Presence on Redis: the records of every open stream of every node that
 * shares one Redis event log.
 *
 * Design:
 * - Each node keeps its records in a hash of its own,
 *   `{prefix}:presence:<node>` (field: the subscriber id; value: the record
 *   as JSON), and its liveness in one sorted set, `{prefix}:presence:nodes`
 *   (member: the node; score: its lease deadline in ms of Redis's clock).
 *   Every deadline is set and compared with Redis's `TIME` inside a script,
 *   so the clocks of the nodes' machines never matter. Every key has the
 *   `{prefix}` hash tag, as the event log's keys do: one slot.
 * - `join` and `leave` change the local state at once and mark the record
 *   dirty; the changes of one event-loop turn go out as one script call (the
 *   hash's `HSET`/`HDEL` and the lease's renewal, atomically), and every
 *   caller of that turn is resolved when it is written. They never reject:
 *   a write that fails (Redis away) or is not answered in
 *   {@link WRITE_TIMEOUT_MS} resolves its callers all the same, and the
 *   node's next write replaces its whole hash (`DEL`, then every record).
 * - One write at a time per node, in order: a renewal is a write too, so a
 *   renewal never overtakes a batch, and an in-flight batch never races a
 *   full rewrite.
 * - Every lease/3 (and whenever the connection is ready again) the node
 *   renews its lease. The write script checks that the node is still a
 *   member of the sorted set and that its hash holds as many fields as the
 *   node has records: if not (another node reaped it after a freeze, Redis
 *   lost its data, somebody deleted the key), the node rewrites its whole
 *   hash at once. So a store that comes back is given the whole local state.
 * - `list()` asks the sorted set for the nodes whose deadline is still ahead
 *   (a script, for Redis's clock), then reads their hashes in one `MULTI`.
 *   Records of a node whose lease ran out are not listed, reaped or not.
 * - Reaping: a renewal also returns the members whose deadline has passed.
 *   For each, the node runs a script that checks the deadline is still past,
 *   reads the hash, deletes it and the member, and returns the records, in
 *   one atomic step: of all the nodes that try, exactly one gets them, and
 *   tells its `onLost` listeners (when there are records). A node without
 *   listeners reaps too (a restarted process is usually a node of a new
 *   name, and the set must not grow for ever), but only {@link UNHEARD_GRACE_LEASES}
 *   leases later, so a node that would report the records gets them first.
 *   A dead node's hash keeps a TTL of {@link TTL_LEASES} leases (renewed with
 *   every write), far beyond the lease, so it waits for a reaper; if every
 *   node of the hub died, the keys still go away on their own.
 * - A node's first write replaces whatever its hash held: records of an
 *   earlier process of the same name (`host:pid` repeats when a container
 *   restarts with the same host name as pid 1). Those streams are gone, so
 *   the node reports them to its own `onLost` listeners (register them as
 *   soon as the store is made: the first write goes out after this turn).
 * - Best effort where Redis cannot be: records a reaper took whose reply was
 *   lost (the connection dropped in between) are gone without a report.
 */

import type { Redis } from 'ioredis';
import { HeraldError } from '../errors.js';
import type { PresenceRecord, PresenceStore } from './presence.js';

export interface RedisPresenceOptions {
  /**
   * The connection (the Redis event log's command connection). The store
   * never closes it. It should fail commands at once while disconnected
   * (`enableOfflineQueue: false`), as the log's does; a queued command is
   * bounded by {@link WRITE_TIMEOUT_MS} all the same.
   */
  readonly redis: Redis;
  /** The key namespace of the hub, as the event log's (`{prefix}:…`). */
  readonly prefix: string;
  /** This node's name (see `nodeName`): unique among the live nodes of the hub. */
  readonly node: string;
  /**
   * How long a node stays listed without renewing, in ms (default
   * {@link DEFAULT_LEASE_MS}); it renews every third of it. A node that dies
   * is reported lost this long after its last renewal, at most a third more.
   */
  readonly leaseMs?: number;
  /** Told, in one line, when this node rewrites its records or reaps another node's. */
  readonly notify?: (message: string) => void;
  /**
   * Test seam, leave unset: awaited before each renewal, with every other
   * write of this node held behind it, so a test can freeze the node.
   */
  readonly beforeRenewal?: () => Promise<void>;
}

export const DEFAULT_LEASE_MS = 15_000;
/** The shortest lease taken (renewals every 33 ms). */
const MIN_LEASE_MS = 100;
/** A write, a listing or a reap Redis has not answered in this long is given up (as the log's command timeout). */
const WRITE_TIMEOUT_MS = 5000;
/** A node's hash and the set of nodes expire this many leases after their last write. */
const TTL_LEASES = 10;
/** How many leases more a node without `onLost` listeners waits before it reaps a dead node. */
const UNHEARD_GRACE_LEASES = 2;
/** Dead nodes one renewal looks at, at most (the rest wait for the next). */
const REAP_BATCH = 100;

/** Redis's clock in ms, inside a script. */
const NOW_LUA = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`;

/**
 * Writes a node's changes and renews its lease.
 * KEYS: the set of nodes, the node's hash. ARGV: the node, the lease (ms),
 * the TTL (ms), the mode (`full`: replace the hash with the records given;
 * `adopt`: the same, returning what the hash held before; `batch`: apply
 * the changes given), the number of records the node has
 * (after the batch), the reaping grace (ms; '' = do not look for dead
 * nodes), the number d of fields to delete, those d fields, then field and
 * value pairs to set.
 * Returns {0} without renewing when a batch finds the node gone from the
 * set, or its hash not of the node's size (the node then writes in full);
 * else {1, dead nodes, previous records}: the members whose deadline
 * passed more than the grace ago (never this node, just renewed), and (mode
 * `adopt`) the values the hash held before.
 */
const WRITE_SCRIPT = `
${NOW_LUA}
local full = ARGV[4] ~= 'batch'
local sets = 8 + tonumber(ARGV[7])
local previous = {}
if full then
  if ARGV[4] == 'adopt' then previous = redis.call('HVALS', KEYS[2]) end
  redis.call('DEL', KEYS[2])
else
  if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {0} end
  for i = 8, sets - 1 do redis.call('HDEL', KEYS[2], ARGV[i]) end
end
for i = sets, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
if not full and redis.call('HLEN', KEYS[2]) ~= tonumber(ARGV[5]) then return {0} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local dead = {}
if ARGV[6] ~= '' then
  dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[6])), 'LIMIT', 0, ${REAP_BATCH})
end
return {1, dead, previous}
`;

/**
 * Takes a dead node's records, once. KEYS: the set of nodes, the dead
 * node's hash. ARGV: the node, the grace (ms). If its deadline is still
 * more than the grace past, deletes its hash and its member and returns
 * its records (JSON); else nil (it renewed, or another node took them).
 */
const TAKE_SCRIPT = `
${NOW_LUA}
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not deadline or tonumber(deadline) >= now - tonumber(ARGV[2]) then return false end
local records = redis.call('HVALS', KEYS[2])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return records
`;

/** The live nodes: KEYS: the set of nodes; the members whose deadline is ahead of Redis's clock. */
const LIVE_SCRIPT = `
${NOW_LUA}
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
`;

type WriteReply = [0] | [1, string[], string[]];

interface PresenceScripts {
  heraldPresenceWrite(nodes: string, hash: string, ...args: (string | number)[]): Promise<WriteReply>;
  heraldPresenceTake(nodes: string, hash: string, node: string, graceMs: number): Promise<string[] | null>;
  heraldPresenceLive(nodes: string): Promise<string[]>;
}

/**
 * The presence store of the nodes of one Redis event log (see the file's
 * comment). The event log makes it: `log.presence(nodeName())`.
 *
 * @example
 * const store = new RedisPresence({ redis, prefix: 'herald', node: nodeName() });
 * await store.join(record);
 * const everywhere = await store.list();
 * await store.close();
 */
export class RedisPresence implements PresenceStore {
  private readonly redis: Redis & PresenceScripts;
  private readonly node: string;
  private readonly nodesKey: string;
  private readonly hashKey: string;
  private readonly keyPrefix: string;
  private readonly leaseMs: number;
  private readonly notify: (message: string) => void;
  private readonly beforeRenewal: () => Promise<void>;
  /** This node's records, as JSON, by subscriber: the truth Redis is brought back to. */
  private readonly local = new Map<string, string>();
  /** Subscribers joined or left since the last write. */
  private readonly dirty = new Set<string>();
  /** Callers waiting for the next write. */
  private waiting: (() => void)[] = [];
  private readonly lostListeners = new Set<(records: readonly PresenceRecord[]) => void>();
  private readonly restoredListeners = new Set<(records: readonly PresenceRecord[]) => void>();
  private readonly timer: NodeJS.Timeout;
  private readonly onReady = (): void => this.renewSoon();
  /** Whether Redis may not hold what `local` says: the next write replaces the whole hash. The first write does. */
  private resync = true;
  /**
   * Whether a full write went through: the first one takes over what the
   * hash held, records of an earlier process of the same name (a container
   * restarted with the same host name and pid), and reports them lost.
   */
  private adopted = false;
  private renewDue = false;
  private scheduled = false;
  /** The write loop, while it runs. */
  private writing: Promise<void> | undefined;
  private reaping = false;
  private closed = false;

  constructor(options: RedisPresenceOptions) {
    const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    if (!Number.isSafeInteger(leaseMs) || leaseMs < MIN_LEASE_MS) {
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `the presence lease must be an integer of at least ${MIN_LEASE_MS} ms, not ${String(leaseMs)}`);
    }
    this.redis = options.redis as Redis & PresenceScripts;
    this.node = options.node;
    this.keyPrefix = `{${options.prefix}}:presence:`;
    this.nodesKey = `{${options.prefix}}:presence:nodes`;
    this.hashKey = this.keyOf(options.node);
    this.leaseMs = leaseMs;
    this.notify = options.notify ?? (() => {});
    this.beforeRenewal = options.beforeRenewal ?? (() => Promise.resolve());
    // Defining them again on a shared connection (a second store) only replaces them with the same scripts.
    this.redis.defineCommand('heraldPresenceWrite', { numberOfKeys: 2, lua: WRITE_SCRIPT });
    this.redis.defineCommand('heraldPresenceTake', { numberOfKeys: 2, lua: TAKE_SCRIPT });
    this.redis.defineCommand('heraldPresenceLive', { numberOfKeys: 1, lua: LIVE_SCRIPT });
    this.redis.on('ready', this.onReady);
    this.timer = setInterval(() => this.renewSoon(), Math.max(1, Math.floor(leaseMs / 3)));
    this.timer.unref();
    // Listed as live from the start, even before its first record.
    this.renewSoon();
  }

  join(record: PresenceRecord): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.local.set(record.subscriber, toJson(record));
    this.dirty.add(record.subscriber);
    return this.nextWrite();
  }

  leave(record: PresenceRecord): Promise<void> {
    // Never joined here (or left already): nothing of it is in Redis.
    if (this.closed || !this.local.delete(record.subscriber)) return Promise.resolve();
    this.dirty.add(record.subscriber);
    return this.nextWrite();
  }

  /**
   * @throws HeraldError `HERALD_ERR_STORE_UNAVAILABLE` when Redis does not answer
   */
  async list(): Promise<readonly PresenceRecord[]> {
    let replies: [Error | null, unknown][] | null;
    try {
      const nodes = await bounded(this.redis.heraldPresenceLive(this.nodesKey), 'the presence listing');
      if (nodes.length === 0) return [];
      const transaction = this.redis.multi();
      for (const node of nodes) transaction.hvals(this.keyOf(node));
      replies = await bounded(transaction.exec(), 'the presence listing');
      if (replies === null) throw new Error('the transaction was aborted');
    } catch (error) {
      throw new HeraldError('HERALD_ERR_STORE_UNAVAILABLE', `Redis did not answer the presence listing (${messageOf(error)}); retry`, { retryAfter: 1 });
    }
    const records: PresenceRecord[] = [];
    for (const [error, values] of replies) if (error === null) records.push(...parseRecords(values));
    return records;
  }

  onLost(listener: (records: readonly PresenceRecord[]) => void): void {
    this.lostListeners.add(listener);
  }

  onRestored(listener: (records: readonly PresenceRecord[]) => void): void {
    this.restoredListeners.add(listener);
  }

  /** Stops renewing and deletes this node's records and lease from Redis (best effort, bounded); the connection stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.stop();
    // A write under way goes first (its callers are resolved already): the delete must not be overtaken by it.
    if (this.writing !== undefined) await bounded(this.writing, 'the last presence write').catch(() => undefined);
    try {
      await bounded(this.redis.multi().del(this.hashKey).zrem(this.nodesKey, this.node).exec(), 'the presence cleanup');
    } catch {
      // Redis away: the lease runs out, another node reaps the records (and reports them lost), or the TTL ends them.
    }
    this.local.clear();
  }

  /**
   * Stops this store as a crash of its process would: no more renewals or
   * writes, nothing deleted. Its lease runs out and another node reaps its
   * records. For tests, and for a process that must exit at once.
   */
  abandon(): void {
    if (!this.closed) this.stop();
  }

  private stop(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.redis.off('ready', this.onReady);
    this.dirty.clear();
    this.release();
  }

  private keyOf(node: string): string {
    return `${this.keyPrefix}${node}`;
  }

  private nextWrite(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.schedule();
    });
  }

  private renewSoon(): void {
    this.renewDue = true;
    this.schedule();
  }

  /** Starts the write loop after this turn of the event loop, so the turn's changes go out together. */
  private schedule(): void {
    if (this.scheduled || this.writing !== undefined || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.writing !== undefined || this.closed) return;
      this.writing = this.writeLoop().finally(() => {
        this.writing = undefined;
        // Callers resolved by the last write may have joined or left again before the loop was seen to end.
        if (this.dirty.size > 0 || this.renewDue) this.schedule();
      });
    });
  }

  private async writeLoop(): Promise<void> {
    while (!this.closed && (this.dirty.size > 0 || this.renewDue)) {
      const renewal = this.renewDue;
      this.renewDue = false;
      if (renewal) await this.beforeRenewal().catch(() => undefined);
      if (this.closed) return;
      const changed = [...this.dirty];
      this.dirty.clear();
      const waiting = this.release();
      const dead = await this.write(changed, renewal);
      for (const resolve of waiting) resolve();
      if (dead.length > 0) void this.reap(dead);
    }
  }

  /** Hands over the callers waiting for the next write (resolving them now when closed). */
  private release(): (() => void)[] {
    const waiting = this.waiting;
    this.waiting = [];
    if (this.closed) for (const resolve of waiting) resolve();
    return waiting;
  }

  /** The reaping grace: none for a node that reports what it reaps. */
  private graceMs(): number {
    return this.lostListeners.size > 0 ? 0 : UNHEARD_GRACE_LEASES * this.leaseMs;
  }

  /** One write (in full if needed); returns the dead nodes a renewal found. Never throws. */
  private async write(changed: readonly string[], renewal: boolean): Promise<string[]> {
    const reap = renewal ? String(this.graceMs()) : '';
    let restored = false;
    try {
      if (!this.resync) {
        const deletions: string[] = [];
        const sets: string[] = [];
        for (const subscriber of changed) {
          const json = this.local.get(subscriber);
          if (json === undefined) deletions.push(subscriber);
          else sets.push(subscriber, json);
        }
        const reply = await this.send('batch', reap, deletions, sets);
        if (reply[0] === 1) return reply[1];
        if (this.closed) return [];
        if (this.local.size > 0) this.notify(`redis presence: ${this.local.size} streams of ${this.node} were missing from Redis (its lease ran out and another node reaped it, or Redis lost its data); writing them again`);
        restored = true;
      }
      const sets: string[] = [];
      for (const [subscriber, json] of this.local) sets.push(subscriber, json);
      const reply = await this.send(this.adopted ? 'full' : 'adopt', reap, [], sets);
      this.resync = false;
      if (reply[0] !== 1) return [];
      // Streams still open that another node may have reported ended: their front ends announce them again.
      if (restored && this.local.size > 0) this.tellRestored(parseRecords([...this.local.values()]));
      if (!this.adopted) {
        this.adopted = true;
        const orphans = parseRecords(reply[2]).filter((record) => !this.local.has(record.subscriber));
        this.report(orphans, `an earlier process named ${this.node} left ${orphans.length} streams behind; reporting them as lost`);
      }
      return reply[1];
    } catch {
      // Redis away or silent: whatever happened, Redis gets the whole state with the next write.
      this.resync = true;
      return [];
    }
  }

  private send(mode: 'batch' | 'full' | 'adopt', reap: string, deletions: readonly string[], sets: readonly string[]): Promise<WriteReply> {
    const ttl = TTL_LEASES * this.leaseMs;
    return bounded(
      this.redis.heraldPresenceWrite(this.nodesKey, this.hashKey, this.node, this.leaseMs, ttl, mode, this.local.size, reap, deletions.length, ...deletions, ...sets),
      'a presence write',
    );
  }

  /** Tells the `onLost` listeners of records taken from Redis (if any, and unless closed). */
  private tellRestored(records: readonly PresenceRecord[]): void {
    for (const listener of this.restoredListeners) {
      try {
        listener(records);
      } catch (error) {
        this.notify(`redis presence: a listener of restored streams failed: ${messageOf(error)}`);
      }
    }
  }

  private report(records: readonly PresenceRecord[], why: string): void {
    if (records.length === 0 || this.closed) return;
    this.notify(`redis presence: ${why}`);
    for (const listener of this.lostListeners) {
      try {
        listener(records);
      } catch (error) {
        this.notify(`redis presence: a listener of lost streams failed: ${messageOf(error)}`);
      }
    }
  }

  /** Takes each dead node's records (if no other node took them first) and reports them. One reap at a time. */
  private async reap(dead: readonly string[]): Promise<void> {
    if (this.reaping) return;
    this.reaping = true;
    try {
      for (const node of dead) {
        if (this.closed) return;
        if (node === this.node) continue;
        const taken = await bounded(this.redis.heraldPresenceTake(this.nodesKey, this.keyOf(node), node, this.graceMs()), 'a presence reap');
        if (taken === null) continue;
        const records = parseRecords(taken);
        this.report(records, `node ${node} stopped renewing its lease; reporting its ${records.length} streams as lost`);
      }
    } catch {
      // Redis away: the next renewal looks again (records taken whose reply was lost are gone unreported).
    } finally {
      this.reaping = false;
    }
  }
}

/**
 * The record as JSON. Records are plain data; `undefined` in `payloads`
 * becomes null, and absent fields stay absent. A payload JSON cannot hold
 * (a BigInt, a cycle: never from a token) leaves the payloads out rather
 * than the stream.
 */
function toJson(record: PresenceRecord): string {
  try {
    return JSON.stringify(record);
  } catch {
    const { payloads: _dropped, ...rest } = record;
    return JSON.stringify(rest);
  }
}

/** Records from a hash's values; a value that is not a record (a key not written here) is skipped. */
function parseRecords(values: unknown): PresenceRecord[] {
  if (!Array.isArray(values)) return [];
  const records: PresenceRecord[] = [];
  for (const value of values) {
    if (typeof value !== 'string') continue;
    try {
      const record: unknown = JSON.parse(value);
      if (isRecord(record)) records.push(record);
    } catch {
      // Not JSON: skipped.
    }
  }
  return records;
}

function isRecord(value: unknown): value is PresenceRecord {
  if (typeof value !== 'object' || value === null) return false;
  const { subscriber, node, selectors } = value as Record<string, unknown>;
  return typeof subscriber === 'string' && typeof node === 'string' && Array.isArray(selectors);
}

/** Settles as `promise` does, or rejects after {@link WRITE_TIMEOUT_MS} (the promise's own outcome is then ignored). */
function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer ${what} within ${WRITE_TIMEOUT_MS} ms`)), WRITE_TIMEOUT_MS);
    timer.unref();
  });
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message || String(error) : String(error);
}
