/**
 * `herald tail`: follows `GET /events` and prints every event, resuming after
 * a drop with `Last-Event-ID` so nothing is lost or printed twice.
 *
 * The stream is parsed by `eventsource-parser` (WHATWG HTML §9.2.5-9.2.6);
 * reconnection follows §9.2.3: wait the reconnection time (the server's
 * `retry:` field, here with a growing back-off on top), then send the last
 * event id seen.
 */

import type { IncomingMessage } from 'node:http';
import { parseArgs } from 'node:util';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import {
  argumentProblem,
  describeErrorAnswer,
  endpoint,
  hubToken,
  hubUrl,
  networkProblem,
  processIO,
  readText,
  redact,
  send,
  shownUrl,
  UsageError,
  writeLine,
  type CommandIO,
  type CommandOutput,
} from './client.js';

export const TAIL_HELP = `Usage: herald tail [selectors...] [options]

Follows a Herald hub (GET /events) and prints each event as it arrives.
Selectors pick topics as in ?topic= (orders/42, orders/*, orders/**); without
any, every event is shown. After a drop it reconnects with a growing delay
(the hub's retry: time, then up to 5 s) and resumes after the last event it
printed, so nothing is missed or shown twice while the hub keeps history.

Options:
  --json                  one JSON object per line: {"id","event","data","received"};
                          data is the parsed value when the event's data is JSON, else the text
  --count <n>             exit after printing n events
  --last-event-id <id>    start after this event id (replays what the hub still has)
  --url <base>            the hub (default: HERALD_URL, then http://127.0.0.1:3004)
  --token <jwt>           a subscribe token, sent as Authorization: Bearer (default: HERALD_TOKEN)
  --help                  show this help and exit

Colours are used when stdout is a terminal and NO_COLOR is not set.
Connection notices and herald-resync warnings go to stderr. Ctrl-C exits 0.
Exit status: 0 done (--count reached, Ctrl-C, output closed), 1 refused by the
hub or unreachable at the start, 2 bad usage.

Examples:
  herald tail 'orders/*'
  herald tail --json 'orders/**' | jq -c 'select(.event == "order.paid") | .data'
`;

/** The first reconnection delay without a `retry:` from the hub, and the cap of the back-off. */
export const MIN_BACKOFF_MS = 250;
export const MAX_BACKOFF_MS = 5000;
/** Events larger than this (in characters) stop the command rather than fill memory. */
const MAX_EVENT_CHARS = 64 * 1024 * 1024;
const RESYNC_EVENT = 'herald-resync';

/**
 * The wait before reconnection attempt `attempt` (0 for the first after a
 * drop): 250 ms doubling up to 5 s, but never less than the hub's `retry:`.
 */
export function reconnectDelay(attempt: number, retryMs: number | undefined): number {
  const backoff = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(attempt, 30));
  return Math.max(retryMs ?? 0, backoff);
}

interface TailSettings {
  readonly selectors: readonly string[];
  readonly json: boolean;
  readonly count: number | undefined;
  readonly lastEventId: string | undefined;
  readonly url: string | undefined;
  readonly token: string | undefined;
}

function parseTailArgs(argv: readonly string[]): TailSettings | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        json: { type: 'boolean' },
        count: { type: 'string' },
        'last-event-id': { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw argumentProblem(error);
  }
  const { values, positionals } = parsed;
  if (values.help === true) return 'help';
  let count: number | undefined;
  if (values.count !== undefined) {
    count = /^\d{1,15}$/.test(values.count) ? Number(values.count) : 0;
    if (count < 1) throw new UsageError(`invalid --count ${JSON.stringify(values.count)}: expected a whole number of events, 1 or more`);
  }
  const lastEventId = values['last-event-id'];
  if (lastEventId !== undefined && /[\r\n\0]/.test(lastEventId)) throw new UsageError('invalid --last-event-id: it must not contain CR, LF or NUL');
  return { selectors: positionals, json: values.json === true, count, lastEventId, url: values.url, token: values.token };
}

// ---------------------------------------------------------------- printing

const STYLE = { dim: '\x1b[2m', id: '\x1b[33m', type: '\x1b[1;36m', warn: '\x1b[33m', reset: '\x1b[0m' } as const;

/** Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org). */
function useColour(out: CommandOutput, env: NodeJS.ProcessEnv): boolean {
  return out.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '');
}

/** Control characters from a publisher must not drive the terminal: shown escaped. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function clock(date: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

/**
 * One event for people: the time it arrived, its id and type, then its data
 * (pretty-printed when it is JSON) on the same line when short, else indented below.
 * The stream carries no topic, so none is shown.
 */
export function formatPretty(event: EventSourceMessage, received: Date, colour: boolean): string {
  const paint = (style: string, text: string): string => (colour ? `${style}${text}${STYLE.reset}` : text);
  const parsed = parseJson(event.data);
  const data = printable(parsed.ok ? JSON.stringify(parsed.value, null, 2) : event.data);
  const head = `${paint(STYLE.dim, clock(received))}  ${paint(STYLE.id, printable(event.id ?? '-'))}  ${paint(STYLE.type, printable(event.event ?? 'message'))}`;
  if (!data.includes('\n')) return `${head}  ${data}\n`;
  return `${head}\n${data.replace(/^/gm, '  ')}\n`;
}

/** One event for programs: one JSON object on one line. */
export function formatJson(event: EventSourceMessage, received: Date): string {
  const parsed = parseJson(event.data);
  const line = { id: event.id ?? null, event: event.event ?? 'message', data: parsed.ok ? parsed.value : event.data, received: received.toISOString() };
  return `${JSON.stringify(line)}\n`;
}

/** A `herald-resync` event in words: what the hub could not replay, and what follows. */
export function describeResync(data: string): string {
  const parsed = parseJson(data);
  const notice = (parsed.ok ? parsed.value : {}) as { reason?: unknown; lastEventId?: unknown };
  const after = typeof notice.lastEventId === 'string' ? printable(notice.lastEventId) : 'the last event shown';
  switch (notice.reason) {
    case 'expired':
      return `the hub no longer keeps the events after ${after}: some events may be missing here; continuing with everything it still has`;
    case 'unknown':
      return `the hub does not know the event id ${after} (malformed, or from another hub); continuing with new events only`;
    default:
      return `the hub says events may be missing here (${printable(data.slice(0, 200))})`;
  }
}

// ---------------------------------------------------------------- the stream

type Outcome =
  | { readonly kind: 'done' }
  | { readonly kind: 'fatal'; readonly message: string }
  | { readonly kind: 'dropped'; readonly why: string; readonly network: boolean; readonly retryAfterMs?: number };

/** Ids are safe in a header when printable ASCII; others go in `?lastEventId=`. */
const HEADER_SAFE = /^[\x20-\x7e]*$/;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

class Tail {
  private lastId: string | undefined;
  private retryMs: number | undefined;
  private printed = 0;
  private readonly colour: boolean;
  private readonly warnColour: boolean;
  private readonly base: URL;
  private readonly token: string | undefined;

  constructor(
    private readonly settings: TailSettings,
    env: NodeJS.ProcessEnv,
    private readonly io: CommandIO,
    private readonly stop: AbortSignal,
  ) {
    this.base = hubUrl(settings.url, env);
    this.token = hubToken(settings.token, env);
    this.lastId = settings.lastEventId;
    this.colour = !settings.json && useColour(io.stdout, env);
    this.warnColour = useColour(io.stderr, env);
  }

  notice(text: string, warning = false): void {
    const line = `herald tail: ${redact(text, this.token)}`;
    writeLine(this.io.stderr, warning && this.warnColour ? `${STYLE.warn}${line}${STYLE.reset}` : line);
  }

  private target(): { url: URL; headers: Record<string, string> } {
    const query = new URLSearchParams();
    for (const selector of this.settings.selectors) query.append('topic', selector);
    const headers: Record<string, string> = { Accept: 'text/event-stream', 'Cache-Control': 'no-cache' };
    if (this.token !== undefined) headers.Authorization = `Bearer ${this.token}`;
    if (this.lastId !== undefined) {
      if (HEADER_SAFE.test(this.lastId)) headers['Last-Event-ID'] = this.lastId;
      else query.set('lastEventId', this.lastId);
    }
    return { url: endpoint(this.base, '/events', query), headers };
  }

  private topicsText(): string {
    return this.settings.selectors.length === 0 ? 'every topic' : `topics ${this.settings.selectors.join(', ')}`;
  }

  /** Runs until done; resolves to the exit status. */
  async run(): Promise<number> {
    let attempt = 0;
    let connectedOnce = false;
    while (!this.stop.aborted) {
      const outcome = await this.connect(connectedOnce, () => {
        connectedOnce = true;
        attempt = 0;
      });
      if (outcome.kind === 'done' || this.stop.aborted) return 0;
      if (outcome.kind === 'fatal') {
        this.notice(outcome.message);
        return 1;
      }
      // Nothing ever answered: most likely a wrong --url, better said than retried forever.
      if (!connectedOnce && outcome.network) {
        this.notice(outcome.why);
        return 1;
      }
      const delay = Math.max(reconnectDelay(attempt++, this.retryMs), outcome.retryAfterMs ?? 0);
      const from = this.lastId === undefined ? '' : ` after ${printable(this.lastId)}`;
      this.notice(`${outcome.why}; reconnecting in ${(delay / 1000).toFixed(delay < 1000 ? 2 : 1)} s${from}`, true);
      await sleep(delay, this.stop);
    }
    return 0;
  }

  /** One connection, from the request to the end of its stream. */
  private connect(reconnecting: boolean, onOpen: () => void): Promise<Outcome> {
    const { url, headers } = this.target();
    const connection = new AbortController();
    const abort = (): void => connection.abort();
    this.stop.addEventListener('abort', abort, { once: true });
    const outcome = new Promise<Outcome>((resolve) => {
      send(url, { method: 'GET', headers, signal: connection.signal }).then(
        (res) => void this.follow(res, reconnecting, onOpen, resolve),
        (error: unknown) => {
          if (this.stop.aborted) resolve({ kind: 'done' });
          else resolve({ kind: 'dropped', why: networkProblem(this.base, error), network: true });
        },
      );
    });
    return outcome.finally(() => {
      this.stop.removeEventListener('abort', abort);
      connection.abort();
    });
  }

  private async follow(res: IncomingMessage, reconnecting: boolean, onOpen: () => void, resolve: (outcome: Outcome) => void): Promise<void> {
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      let body = '';
      try {
        body = await readText(res, 64 * 1024);
      } catch {
        // The answer broke off: its status says enough.
      }
      const why = describeErrorAnswer(res, body);
      // 4xx is the request's fault (selectors, token) and will not change by retrying; 408 and 429 will.
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) return resolve({ kind: 'fatal', message: why });
      const seconds = Number(res.headers['retry-after']);
      return resolve({ kind: 'dropped', why, network: false, ...(Number.isFinite(seconds) && seconds > 0 ? { retryAfterMs: Math.min(seconds, 60) * 1000 } : {}) });
    }
    const type = String(res.headers['content-type'] ?? '');
    if (!type.toLowerCase().startsWith('text/event-stream')) {
      res.destroy();
      return resolve({ kind: 'fatal', message: `${shownUrl(this.base)}/events did not answer with an event stream (Content-Type ${JSON.stringify(type)}): is --url a Herald hub?` });
    }
    onOpen();
    res.socket?.setKeepAlive(true, 15_000);
    this.notice(`${reconnecting ? 'reconnected to' : 'following'} ${shownUrl(this.base)} (${this.topicsText()})`);

    let finished = false;
    const finish = (outcome: Outcome): void => {
      if (finished) return;
      finished = true;
      res.destroy();
      resolve(outcome);
    };
    const parser = createParser({
      maxBufferSize: MAX_EVENT_CHARS,
      onRetry: (ms) => (this.retryMs = ms),
      onEvent: (event) => {
        if (finished) return;
        if (event.event === RESYNC_EVENT && event.id === undefined) {
          this.notice(describeResync(event.data), true);
          return;
        }
        if (!this.print(event, res)) return;
        if (this.settings.count !== undefined && this.printed >= this.settings.count) finish({ kind: 'done' });
      },
      onError: (error) => {
        if (error.type === 'max-buffer-size-exceeded') finish({ kind: 'fatal', message: `an event larger than ${MAX_EVENT_CHARS} characters arrived; stopping` });
      },
    });
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      if (!finished) parser.feed(chunk);
    });
    res.on('end', () => finish({ kind: 'dropped', why: 'the stream ended', network: false }));
    res.on('close', () => finish({ kind: 'dropped', why: 'the connection was lost', network: false }));
    res.on('error', (error) => finish({ kind: 'dropped', why: `the connection was lost (${error.message})`, network: false }));
  }

  /** Prints one event and remembers its id; false when stdout is gone. */
  private print(event: EventSourceMessage, res: IncomingMessage): boolean {
    const received = new Date();
    const text = this.settings.json ? formatJson(event, received) : formatPretty(event, received, this.colour);
    let flowing: boolean;
    try {
      flowing = this.io.stdout.write(text);
    } catch {
      return false;
    }
    // Printed: a reconnection resumes after it. (An event without an id keeps the last one, as in §9.2.6.)
    if (event.id !== undefined) this.lastId = event.id;
    this.printed++;
    // A slow reader of our output (a pipe): stop reading the stream until it catches up; the hub buffers.
    if (!flowing && this.io.stdout.once !== undefined) {
      res.pause();
      this.io.stdout.once('drain', () => res.resume());
    }
    return true;
  }
}

/**
 * Runs `herald tail`; resolves to the exit status (0 done, 1 refused or unreachable, 2 bad usage).
 * It ends after `--count` events, when `io.signal` aborts, or (without `io.signal`) on SIGINT.
 *
 * @example
 * const status = await tailCommand(['orders/*', '--count', '1', '--json'], process.env);
 */
export async function tailCommand(argv: readonly string[], env: NodeJS.ProcessEnv, io: CommandIO = processIO()): Promise<number> {
  const stop = new AbortController();
  const cleanups: Array<() => void> = [];
  if (io.signal !== undefined) {
    const abort = (): void => stop.abort();
    if (io.signal.aborted) stop.abort();
    io.signal.addEventListener('abort', abort, { once: true });
    cleanups.push(() => io.signal!.removeEventListener('abort', abort));
  } else {
    const onSigint = (): void => stop.abort();
    process.on('SIGINT', onSigint);
    cleanups.push(() => process.off('SIGINT', onSigint));
  }
  // `herald tail | head -3`: once the reader is gone, stop quietly.
  let outputFailed = false;
  const onOutputError = (error: Error): void => {
    if ((error as NodeJS.ErrnoException).code !== 'EPIPE') outputFailed = true;
    stop.abort();
  };
  io.stdout.on?.('error', onOutputError);
  cleanups.push(() => io.stdout.off?.('error', onOutputError));
  try {
    const settings = parseTailArgs(argv);
    if (settings === 'help') {
      io.stdout.write(TAIL_HELP);
      return 0;
    }
    const status = await new Tail(settings, env, io, stop.signal).run();
    return outputFailed ? 1 : status;
  } catch (error) {
    if (error instanceof UsageError) {
      writeLine(io.stderr, `herald tail: ${error.message} (see herald tail --help)`);
      return 2;
    }
    throw error;
  } finally {
    for (const cleanup of cleanups) cleanup();
  }
}
