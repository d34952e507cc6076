/**
 * A private `redis-server` for tests, on a free port with its own data
 * directory, so a test can kill and restart it without touching anyone's data.
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './sockets.js';
import { sleep } from './waiting.js';

const redisMissing = spawnSync('redis-server', ['--version']).error !== undefined;
/**
 * Why Redis tests are skipped (`redis-server` is not installed), or `false`.
 * With `CI` set they run regardless and fail: CI never passes without them.
 */
export const redisSkip: string | false =
  redisMissing && !process.env.CI ? 'redis-server is not installed (apt-get install redis-server); set CI to make this a failure' : false;
if (redisSkip !== false) console.log(`# Redis tests skipped: ${redisSkip}`);

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** The server's pid while it runs (for CPU accounting). */
  pid(): number | undefined;
  /** Kills the server (SIGKILL by default: no chance to save anything on the way out). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and data directory; `withoutData`: with its data files deleted first (Redis lost its data). */
  restart(options?: { withoutData?: boolean }): Promise<void>;
  /** Stops the process without ending it (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void;
  /** Stops it for good and removes its data. */
  stop(): Promise<void>;
}

export interface RedisSettings {
  /**
   * When the append-only file is synced: `always` (default) before each
   * answer, so an event Redis acknowledged survives a SIGKILL of the server;
   * `everysec`, Redis's own default, once a second.
   */
  readonly fsync?: 'always' | 'everysec';
  /** A CPU list for `taskset` (benchmarks pin Redis beside the server). */
  readonly cpu?: string;
}

/** Starts a private `redis-server` (AOF on, RDB snapshots off). */
export async function startRedis({ fsync = 'always', cpu }: RedisSettings = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'herald-redis-'));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', fsync];
    const started = cpu === undefined ? spawn('redis-server', args, { stdio: 'ignore' }) : spawn('taskset', ['-c', cpu, 'redis-server', ...args], { stdio: 'ignore' });
    child = started;
    exited = new Promise((resolve) => started.once('exit', () => resolve()));
    // Ready once it answers PING (bounded: 10 s).
    for (let attempt = 0; attempt < 200; attempt++) {
      if (await answersPing(port)) return;
      if (started.exitCode !== null) break;
      await sleep(50);
    }
    throw new Error(`redis-server did not start on port ${port}`);
  };

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: () => child?.pid,
    kill,
    restart: async ({ withoutData = false } = {}) => {
      if (withoutData) {
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir);
      }
      await launch();
    },
    pause: () => {
      child?.kill('SIGSTOP');
    },
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (chunk) => done(chunk.toString().startsWith('+PONG')));
  });
}
