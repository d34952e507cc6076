/**
 * What `herald publish` and `herald tail` share: the hub's address and token,
 * one HTTP request, Herald's error answers, and the streams a command writes to.
 * Both are thin clients of the HTTP API, so they work against any Herald.
 */

import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Where the commands go when neither `--url` nor `HERALD_URL` says otherwise. */
export const DEFAULT_URL = 'http://127.0.0.1:3004';

/** A stream a command writes to: `process.stdout` or a test's collector. */
export interface CommandOutput {
  write(text: string): boolean;
  readonly isTTY?: boolean | undefined;
  once?(event: 'drain', listener: () => void): unknown;
  on?(event: 'error', listener: (error: Error) => void): unknown;
  off?(event: 'error', listener: (error: Error) => void): unknown;
}

/** A command's standard streams; tests pass their own. */
export interface CommandIO {
  readonly stdin: AsyncIterable<string | Uint8Array> & { readonly isTTY?: boolean | undefined };
  readonly stdout: CommandOutput;
  readonly stderr: CommandOutput;
  /**
   * Stops a long-running command (`tail`), which then exits 0.
   * Without one, `tail` stops on SIGINT (Ctrl-C) itself.
   */
  readonly signal?: AbortSignal | undefined;
}

export function processIO(): CommandIO {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
}

/** Bad usage: the command prints the message and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A failure the command reports in one line and exits 1 for. */
export class CommandFailure extends Error {
  override readonly name = 'CommandFailure';
}

/** The first line of a `node:util` `parseArgs` error, which is all a user needs. */
export function argumentProblem(error: unknown): UsageError {
  return new UsageError((error as Error).message.split('\n')[0] ?? 'invalid arguments');
}

/** `--url`, else `HERALD_URL`, else the default; an http(s) URL, possibly with a base path. */
export function hubUrl(flag: string | undefined, env: NodeJS.ProcessEnv): URL {
  const text = flag ?? (env.HERALD_URL || DEFAULT_URL);
  const source = flag === undefined && env.HERALD_URL ? 'HERALD_URL' : '--url';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`invalid ${source} ${JSON.stringify(text)}: expected a URL such as ${DEFAULT_URL}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`invalid ${source} ${JSON.stringify(text)}: expected an http:// or https:// URL`);
  }
  return url;
}

/** `--token`, else `HERALD_TOKEN`; an empty value is no token. */
export function hubToken(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const token = flag ?? env.HERALD_TOKEN;
  return token === undefined || token === '' ? undefined : token;
}

/** `base` joined with a path of the API, keeping a base path such as `/herald`. */
export function endpoint(base: URL, path: string, query?: URLSearchParams): URL {
  const url = new URL(base.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  url.search = query === undefined ? '' : query.toString();
  url.hash = '';
  return url;
}

/** The hub as shown to people: scheme, host and base path; never credentials. */
export function shownUrl(base: URL): string {
  return `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
}

/** Removes the token from text about to be printed, whatever put it there. */
export function redact(text: string, token: string | undefined): string {
  return token === undefined || token.length < 4 ? text : text.split(token).join('<token>');
}

export interface RequestOptions {
  readonly method: 'GET' | 'POST';
  readonly headers: OutgoingHttpHeaders;
  readonly body?: string | Uint8Array | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * One request on a connection of its own (no keep-alive pool, so a finished
 * command exits at once). Resolves with the response as soon as its head arrives.
 */
export function send(url: URL, options: RequestOptions): Promise<IncomingMessage> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method, headers: options.headers, agent: false, signal: options.signal }, resolve);
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Reads a response body as text, at most `limit` bytes (an error page, an answer). */
export async function readText(res: IncomingMessage, limit = 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `code: message` of an error answer: Herald's `{"error": {"code", "message"}}`,
 * or, from something else on the way (a proxy's error page), the HTTP status.
 */
export function describeErrorAnswer(res: IncomingMessage, body: string): string {
  try {
    const { error } = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    if (typeof error?.code === 'string' && typeof error.message === 'string') return `${error.code}: ${error.message}`;
  } catch {
    // Not Herald's JSON: fall through to the status line.
  }
  return `HTTP ${res.statusCode ?? 0}: ${res.statusMessage || 'error'}`;
}

const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is Herald running there?)',
  ECONNRESET: 'the connection was reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'the connection was closed',
};

/** One line saying why `base` could not be reached. */
export function networkProblem(base: URL, error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  const known = code === undefined ? undefined : NETWORK_ERRORS[code];
  return `cannot reach ${shownUrl(base)}: ${known === undefined ? message : `${known} (${code})`}`;
}

/** Writes one line to a stream, ignoring a closed one. */
export function writeLine(out: CommandOutput, line: string): void {
  try {
    out.write(`${line}\n`);
  } catch {
    // A closed pipe: nobody is listening any more.
  }
}
