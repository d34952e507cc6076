/**
 * The `herald` command in child processes: started on a free port, waited
 * on through what it prints, stopped with a bounded wait.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Waiters } from './waiting.js';

/** The compiled CLI entry point (dist/ mirrors the source tree: dist/test/support → dist/src). */
export const CLI_PATH = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface HeraldProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  /** Everything it printed so far, stdout and stderr interleaved. */
  readonly output: () => string;
  /** Resolves with the exit code (or signal name) once the process exits. */
  readonly exited: Promise<number | string>;
  /**
   * Resolves with the output once `match` (a pattern, a text, or a test of
   * the output) holds; fails after `timeoutMs`, or as soon as the process
   * exits without it, quoting the output.
   */
  untilOutput(match: RegExp | string | ((output: string) => boolean), what?: string, timeoutMs?: number): Promise<string>;
}

const started = new Set<ChildProcess>();

/** Runs the `herald` command in a child process and waits until it listens. */
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
  started.add(child);
  let output = '';
  /** Set once the process exited and its output is all read ('close' comes after the last byte). */
  let outputEnded = false;
  const waiters = new Waiters();
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      started.delete(child);
      resolve(code ?? signal ?? -1);
    }),
  );
  child.once('close', () => {
    outputEnded = true;
    waiters.notify();
  });
  const untilOutput = async (match: RegExp | string | ((text: string) => boolean), what?: string, timeoutMs = 10_000): Promise<string> => {
    const test = typeof match === 'function' ? match : typeof match === 'string' ? (text: string) => text.includes(match) : (text: string) => match.test(text);
    const name = what ?? (typeof match === 'function' ? 'the expected output' : `output matching ${String(match)}`);
    await waiters.until(() => test(output) || outputEnded, name, timeoutMs, () => `output so far: ${JSON.stringify(output.slice(-1500))}`);
    if (!test(output)) throw new Error(`herald exited (${child.exitCode ?? child.signalCode}) before printing ${name}; its output: ${JSON.stringify(output.slice(-1500))}`);
    return output;
  };
  return new Promise((resolve, reject) => {
    let listening = false;
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      waiters.notify();
      if (listening) return;
      const match = /listening on (https?:\/\/[^\s]+)/.exec(output);
      if (match !== null) {
        listening = true;
        const url = match[1]!;
        resolve({ child, url, port: Number(new URL(url).port), output: () => output, exited, untilOutput });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`herald exited (${code}) before listening: ${output}`)));
    // A process that does not listen in time is killed, so a failed start leaves nothing running.
    setTimeout(() => {
      if (listening) return;
      child.kill('SIGKILL');
      reject(new Error(`herald did not start within ${startTimeoutMs} ms: ${output}`));
    }, startTimeoutMs).unref();
  });
}

export function isRunning(herald: HeraldProcess): boolean {
  return herald.child.exitCode === null && herald.child.signalCode === null;
}

/**
 * Sends `signal` (if it still runs) and resolves with the exit code; a
 * process still running after `timeoutMs` is killed, and the answer says so
 * (never 0, so an `assert.equal(…, 0)` fails).
 */
export async function stopHerald(herald: HeraldProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | string> {
  if (isRunning(herald)) herald.child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const late = `still running ${timeoutMs} ms after ${signal} (killed)`;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      herald.child.kill('SIGKILL');
      resolve(late);
    }, timeoutMs);
  });
  try {
    return await Promise.race([herald.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGKILLs every `herald` this process started that still runs (for an `after` hook). */
export function killHeralds(): void {
  for (const child of started) child.kill('SIGKILL');
}

/** Resident memory of a process, in bytes, from /proc. */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}
