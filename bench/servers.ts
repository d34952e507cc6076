/**
 * The servers a benchmark compares, started fresh for each run and pinned to
 * one core: Herald, nchan (nginx + the nchan module) and a naive Node server.
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processTree } from './proc.js';

export type ServerName = 'herald' | 'nchan' | 'naive';
export const SERVER_NAMES: readonly ServerName[] = ['herald', 'nchan', 'naive'];

export interface ServerUnderTest {
  readonly name: ServerName;
  readonly host: string;
  readonly port: number;
  /** The raw HTTP request that subscribes to `topic`. */
  subscribeRequest(topic: string): string;
  /** How to publish events whose data are the given JSON texts; `undefined` when the server cannot take a batch. */
  publishRequest(topic: string, dataTexts: readonly string[]): { path: string; contentType: string; body: string } | undefined;
  /** The server's processes now (the nginx master and worker, say). */
  pids(): number[];
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly port: number;
  /** CPU list for taskset, e.g. `0`; undefined: not pinned. */
  readonly cpu: string | undefined;
  /** Extra command-line flags for Herald. */
  readonly heraldArgs?: readonly string[];
  /** Herald's CLI (`dist/src/cli/main.js`) to run; default: this checkout's. Another build (an older version, say) can be measured with the same harness. */
  readonly heraldCli?: string;
  /**
   * Node's own flags for Herald, e.g. `--cpu-prof --cpu-prof-dir DIR`. With
   * any, Herald is stopped with SIGTERM and given time to exit, so that what
   * Node writes at exit (a profile) is written.
   */
  readonly nodeArgs?: readonly string[];
}

const HERE = fileURLToPath(new URL('.', import.meta.url));
const HERALD_CLI = join(HERE, '../src/cli/main.js');
const NAIVE_SERVER = join(HERE, 'peers/naive-server.js');
export const NCHAN_MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so';
const HOST = '127.0.0.1';

/** Why nchan cannot run here, or undefined when it can. */
export function nchanMissing(): string | undefined {
  if (spawnSync('nginx', ['-v']).error !== undefined) return 'nginx is not installed (run bench/setup)';
  if (!existsSync(NCHAN_MODULE)) return `the nchan module is missing at ${NCHAN_MODULE} (run bench/setup)`;
  return undefined;
}

function pinned(cpu: string | undefined, command: string, args: readonly string[]): [string, string[]] {
  return cpu === undefined ? [command, [...args]] : ['taskset', ['-c', cpu, command, ...args]];
}

function waitForPort(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (child.exitCode !== null) return reject(new Error(`server exited with ${child.exitCode} before listening`));
      const socket = connect(port, HOST);
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on ${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** SIGTERM, then up to `graceMs` for the process to exit by itself; whatever is left is killed. */
async function stopGracefully(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }
  await stopTree(child);
}

async function stopTree(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (const pid of processTree(child.pid).reverse()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await exited;
}

/** The raw request of an SSE subscriber: `GET path`, with `extra` header lines (each ending in CRLF). */
export function sseGet(path: string, port: number, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${HOST}:${port}\r\nAccept: text/event-stream\r\n${extra}\r\n`;
}

/** Herald's `POST /trigger`: one event, or a batch, on `topic`. */
export function jsonPublish(topic: string, dataTexts: readonly string[]): { path: string; contentType: string; body: string } {
  const items = dataTexts.map((data) => `{"topic":${JSON.stringify(topic)},"data":${data}}`);
  return { path: '/trigger', contentType: 'application/json', body: items.length === 1 ? items[0]! : `[${items.join(',')}]` };
}

function nodeServer(name: 'herald' | 'naive', child: ChildProcess, port: number): ServerUnderTest {
  return {
    name,
    host: HOST,
    port,
    subscribeRequest: (topic) => sseGet(`/events?topic=${encodeURIComponent(topic)}`, port),
    publishRequest: jsonPublish,
    pids: () => (child.pid === undefined ? [] : processTree(child.pid)),
    stop: () => stopTree(child),
  };
}

async function startHerald(options: StartOptions): Promise<ServerUnderTest> {
  const args = [
    ...(options.nodeArgs ?? []),
    options.heraldCli ?? HERALD_CLI,
    '--port', String(options.port), '--host', HOST,
    '--max-connections', '20000', '--heartbeat', '30s', '--history', '10000',
    ...(options.heraldArgs ?? []),
  ];
  const [command, argv] = pinned(options.cpu, process.execPath, args);
  const child = spawn(command, argv, { stdio: ['ignore', 'ignore', 'inherit'], env: withoutHeraldEnv() });
  await waitForPort(options.port, child);
  const server = nodeServer('herald', child, options.port);
  return (options.nodeArgs ?? []).length === 0 ? server : { ...server, stop: () => stopGracefully(child) };
}

async function startNaive(options: StartOptions): Promise<ServerUnderTest> {
  const [command, argv] = pinned(options.cpu, process.execPath, [NAIVE_SERVER]);
  const child = spawn(command, argv, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, PORT: String(options.port), HOST } });
  await waitForPort(options.port, child);
  return nodeServer('naive', child, options.port);
}

/**
 * nchan as its documentation sets it up for EventSource: one worker, the
 * channel id from the query, a message buffer so late readers can catch up.
 */
function nchanConfig(dir: string, port: number): string {
  return `load_module ${NCHAN_MODULE};
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log error;
events { worker_connections 20000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  nchan_shared_memory_size 256M;
  server {
    listen ${HOST}:${port} backlog=16384;
    location = /sub {
      nchan_subscriber eventsource;
      nchan_channel_id $arg_topic;
      nchan_subscriber_first_message newest;
      nchan_message_buffer_length 10000;
      nchan_message_timeout 1h;
    }
    location = /pub {
      nchan_publisher;
      nchan_channel_id $arg_topic;
      nchan_message_buffer_length 10000;
      nchan_message_timeout 1h;
    }
  }
}
`;
}

async function startNchan(options: StartOptions): Promise<ServerUnderTest> {
  const missing = nchanMissing();
  if (missing !== undefined) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-nchan-'));
  writeFileSync(join(dir, 'nginx.conf'), nchanConfig(dir, options.port));
  const [command, argv] = pinned(options.cpu, 'nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir]);
  const child = spawn(command, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(options.port, child);
  return {
    name: 'nchan',
    host: HOST,
    port: options.port,
    subscribeRequest: (topic) => sseGet(`/sub?topic=${encodeURIComponent(topic)}`, options.port),
    publishRequest: (topic, dataTexts) =>
      dataTexts.length === 1 ? { path: `/pub?topic=${encodeURIComponent(topic)}`, contentType: 'application/json', body: dataTexts[0]! } : undefined,
    pids: () => (child.pid === undefined ? [] : processTree(child.pid)),
    stop: async () => {
      await stopTree(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function startServer(name: ServerName, options: StartOptions): Promise<ServerUnderTest> {
  switch (name) {
    case 'herald':
      return startHerald(options);
    case 'naive':
      return startNaive(options);
    case 'nchan':
      return startNchan(options);
  }
}

function withoutHeraldEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(HERALD_|PORT$|HOST$)/.test(name)));
}
