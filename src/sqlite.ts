/**
 * `herald/sqlite`: the durable store as a log of one's own, e.g.
 * `createHub({}, { eventLog: new SqliteEventLog({ path: 'events.db', capacity: 100_000, maxAgeMs: 0 }) })`.
 * The `store` option opens the same log without this import.
 */

export { SqliteEventLog, type SqliteLogOptions } from './log/sqlite-log.js';
