/**
 * Shared test helpers: real servers on port 0, real clients.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createServer as createNetServer, connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { createHub, type Herald, type HeraldOptions } from '../src/index.js';

/** The compiled CLI entry point. */
export const CLI_PATH = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export interface RunningHub {
  readonly herald: Herald;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** An in-process hub listening on 127.0.0.1 and a free port. */
export async function startHub(options: HeraldOptions = {}): Promise<RunningHub> {
  const herald = createHub({ heartbeat: 0, routes: 'all', ...options });
  const { url, port } = await herald.listen(0, '127.0.0.1');
  return { herald, url, port, close: () => herald.close() };
}

/** Runs `body` against a fresh hub and closes the hub afterwards, whatever happens. */
export async function withHub(options: HeraldOptions, body: (hub: RunningHub) => Promise<void>): Promise<void> {
  const hub = await startHub(options);
  try {
    await body(hub);
  } finally {
    await hub.close();
  }
}

export interface PublishResult {
  readonly status: number;
  readonly headers: Headers;
  readonly body: any;
}

/** POSTs to /trigger; `body` that is not a string is sent as JSON. */
export async function trigger(
  url: string,
  body: unknown,
  { contentType = 'application/json', query = '' }: { contentType?: string; query?: string } = {},
): Promise<PublishResult> {
  const response = await fetch(`${url}/trigger${query}`, {
    method: 'POST',
    headers: { 'Content-Type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
}

/**
 * Promises that settle when a condition becomes true: the owner calls
 * `notify()` whenever its state changes (bytes arrived, the stream ended).
 */
export class Waiters {
  private readonly checks = new Set<() => void>();

  notify(): void {
    for (const check of this.checks) check();
  }

  /** Resolves once `condition()` holds; rejects after `timeoutMs`, naming `what` and what `describe()` says. */
  until(condition: () => boolean, what: string, timeoutMs: number, describe: () => string): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!condition()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; ${describe()}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.checks.delete(check);
      };
      this.checks.add(check);
    });
  }
}

/** A small seeded generator (mulberry32), so a failing run can be replayed with its printed seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A parsed event plus its exact bytes on the wire. */
export interface TappedEvent extends EventSourceMessage {}

/**
 * A subscriber on a plain HTTP request: keeps the exact body bytes and the
 * events parsed by `eventsource-parser` (a spec-compliant parser).
 */
export class SseTap {
  readonly events: TappedEvent[] = [];
  readonly comments: string[] = [];
  retry: number | undefined;
  raw = '';
  status = 0;
  headers: IncomingHttpHeaders = {};
  ended = false;
  private readonly waiters = new Waiters();
  private socket: Socket | undefined;

  private constructor() {}

  static open(url: string, path = '/events', headers: Record<string, string> = {}): Promise<SseTap> {
    const tap = new SseTap();
    const parser = createParser({
      onEvent: (event) => tap.events.push(event),
      onComment: (comment) => tap.comments.push(comment),
      onRetry: (retry) => (tap.retry = retry),
    });
    return new Promise((resolve, reject) => {
      const req = request(`${url}${path}`, { headers, agent: false }, (res) => {
        tap.status = res.statusCode ?? 0;
        tap.headers = res.headers;
        tap.socket = res.socket;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          tap.raw += chunk;
          parser.feed(chunk);
          tap.notify();
        });
        const finish = (): void => {
          tap.ended = true;
          tap.notify();
        };
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
        resolve(tap);
      });
      req.on('error', reject);
      req.end();
    });
  }

  private notify(): void {
    this.waiters.notify();
  }

  /** Waits until `condition()` holds, or fails after `timeoutMs` with `what` in the message. */
  until(condition: () => boolean, what = 'condition', timeoutMs = 10_000): Promise<void> {
    const describe = (): string => `got ${this.events.length} events, raw tail: ${JSON.stringify(this.raw.slice(-300))}`;
    return this.waiters.until(condition, what, timeoutMs, describe);
  }

  waitForEvents(count: number, timeoutMs?: number): Promise<void> {
    return this.until(() => this.events.length >= count, `${count} events`, timeoutMs);
  }

  waitForEnd(timeoutMs?: number): Promise<void> {
    return this.until(() => this.ended, 'the stream to end', timeoutMs);
  }

  close(): void {
    this.socket?.destroy();
  }
}

/** Sends raw bytes and collects the raw answer (headers and body, chunked encoding untouched). */
export function rawRequest(port: number, text: string, { waitMs = 300 } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', reject);
    socket.on('connect', () => socket.write(text, 'latin1'));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(received);
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
  });
}

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface HeraldProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  readonly output: () => string;
  /** Resolves with the exit code (or signal name) once the process exits. */
  readonly exited: Promise<number | string>;
}

/**
 * Runs the `herald` command in a child process and waits until it listens.
 * A process that does not listen within `startTimeoutMs` is killed, so a
 * failed start leaves nothing running.
 */
export function spawnHerald(
  args: string[] = [],
  env: Record<string, string> = {},
  { startTimeoutMs = 15_000 }: { startTimeoutMs?: number } = {},
): Promise<HeraldProcess> {
  // The developer's own HERALD_* settings must not change the servers tests start.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(HERALD_|PORT$|HOST$)/.test(name)));
  const child = spawn(process.execPath, [CLI_PATH, '--host', '127.0.0.1', ...args], {
    env: { ...inherited, HERALD_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  let listening = false;
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /listening on (https?:\/\/[^\s]+)/.exec(output);
      if (match !== null && !listening) {
        listening = true;
        const url = match[1]!;
        resolve({ child, url, port: Number(new URL(url).port), output: () => output, exited });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`herald exited (${code}) before listening: ${output}`)));
    setTimeout(() => {
      if (listening) return;
      child.kill('SIGKILL');
      reject(new Error(`herald did not start within ${startTimeoutMs} ms: ${output}`));
    }, startTimeoutMs).unref();
  });
}

/** Resident memory of a process, in bytes, from /proc. */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Every retained event after `lastEventId`, read page by page as the hub reads them (small pages, to exercise paging). */
export async function readAfter(
  log: import('../src/index.js').EventLog,
  lastEventId: string,
  pageSize = 7,
): Promise<{ status: 'complete' | 'expired' | 'unknown'; events: import('../src/index.js').StoredEvent[] }> {
  let page = await log.read({ after: { id: lastEventId }, limit: pageSize, maxBytes: 1 << 30 });
  if (page.status === 'unknown') return { status: 'unknown', events: [] };
  const status = page.status;
  const events = [...page.events];
  for (let pages = 0; !page.end; pages++) {
    if (pages > 1_000_000) throw new Error('the log never reached the end of its pages');
    page = await log.read({ after: { cursor: page.cursor }, limit: pageSize, maxBytes: 1 << 30 });
    if (page.status === 'unknown') throw new Error('a continued read came back unknown');
    events.push(...page.events);
  }
  return { status, events };
}
