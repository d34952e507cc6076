/**
 * `herald/redis`: the Redis Streams log as a log of one's own, e.g.
 * `createHub({}, { eventLog: new RedisEventLog({ url: 'redis://127.0.0.1:6379', prefix: 'herald', capacity: 10_000, maxAgeMs: 0 }) })`.
 * The `redis` option opens the same log without this import.
 */

export { RedisEventLog, MIN_STREAM_LENGTH, type RedisLogOptions } from './log/redis-log.js';
export { RedisPresence, DEFAULT_LEASE_MS, type RedisPresenceOptions } from './presence/redis-presence.js';
