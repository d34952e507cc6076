/**
 * Shared test helpers: real servers on port 0, real clients, and waits on
 * what happened rather than on the clock. One import for the test files;
 * each concern lives in its own module beside this one:
 *
 * - hubs.ts       in-process hubs, `trigger`, `/health`, `HubWatch` (waits on the hub's observer)
 * - sse-tap.ts    `SseTap`, a subscriber keeping exact bytes and parsed events
 * - sockets.ts    `RawSocket`, `rawRequest`, `freePort`
 * - processes.ts  the `herald` command in a child process (`spawnHerald`, `stopHerald`, output waits)
 * - waiting.ts    `Waiters`, `Recorder`, `within`, `pollUntil`, and `sleep` (for pacing only)
 * - ids.ts        `<ms>-<seq>` ids, parsed and compared
 * - load.ts       `seededRandom`, `pool`
 *
 * `redis-server.ts` and `chromium.ts` are imported on their own: they look
 * for (and report on) a program of the machine when loaded.
 */

export { HubWatch, health, startHub, trigger, watchHub, withHub, type PublishResult, type RunningHub } from './hubs.js';
export { compareIds, parseId } from './ids.js';
export { pool, seededRandom } from './load.js';
export { CLI_PATH, isRunning, killHeralds, rssOf, spawnHerald, stopHerald, type HeraldProcess } from './processes.js';
export { freePort, rawRequest, RawSocket } from './sockets.js';
export { SseTap, type TappedEvent } from './sse-tap.js';
export { pollUntil, Recorder, sleep, Waiters, within } from './waiting.js';
