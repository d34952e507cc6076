/**
 * `herald/client`: a Herald stream read with `fetch`, for browsers and Node ≥ 20.
 *
 * What it does that `EventSource` cannot: send headers (a token as
 * `Authorization: Bearer`), use any method and `credentials`, listen to every
 * event type at once, retry with backoff after `503`/`429` (honouring
 * `Retry-After`), renew a token on `401`/`403`, notice a silently dead
 * connection (no byte, not even a heartbeat comment, for `heartbeatTimeout`),
 * and surface `herald-resync` as its own callback.
 *
 * Only Web-standard APIs are used (`fetch`, `AbortController`,
 * `ReadableStream`, `TextDecoder`, `setTimeout`); no platform types are
 * needed to compile against it.
 *
 * @example
 * import { connect } from 'herald/client';
 * const client = connect('http://127.0.0.1:3004/events', { topics: ['orders/*'], token: () => getToken() });
 * client.onAny((event) => console.log(event.type, event.id, event.json ?? event.data));
 * client.onResync((reason) => reloadOrders());
 * client.onError((error) => console.warn(error.code, error.message, error.fatal ? 'stopped' : `retry in ${error.retryIn} ms`));
 */

import { createParser, type EventStreamParser } from './parser.js';

export { createParser, type EventStreamParser, type ParsedEvent, type ParserHandlers } from './parser.js';

/** The event type Herald sends when a resume cannot be exact (see README, "When history cannot fill the gap"). */
export const RESYNC_EVENT = 'herald-resync';

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** One event as listeners receive it. A plain, frozen object (it survives `structuredClone`). */
export interface HeraldEvent {
  /** The last event ID at dispatch (§9.2.6): the event's own id, or the previous one when it had none. */
  readonly id: string;
  /** The `event:` field, `message` when absent. */
  readonly type: string;
  /** The data lines joined with LF. */
  readonly data: string;
  /** `data` parsed as JSON, or `undefined` when it is not JSON. */
  readonly json: unknown;
  /** The event's topic, when the hub sends it. Herald's wire format does not carry it today: always `undefined`. */
  readonly topic?: string | undefined;
}

export type HeaderMap = Readonly<Record<string, string>>;

/** The part of `fetch`'s answer the client reads; a `Response` fits. */
export interface FetchResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: { getReader(): StreamReader } | null;
  text(): Promise<string>;
}

export interface StreamReader {
  read(): Promise<{ done: boolean; value?: Uint8Array | undefined }>;
  cancel(reason?: unknown): Promise<void>;
}

/**
 * The platform's `AbortSignal` where it has one (DOM or Node types), so the
 * platform's `fetch` accepts a {@link FetchInit}; else the client's own shape.
 */
export type PlatformAbortSignal = typeof globalThis extends { AbortSignal: { prototype: infer Signal } } ? Signal : AbortSignalLike;

/** What the client passes to `fetch`. */
export interface FetchInit {
  method: string;
  headers: Record<string, string>;
  credentials?: 'omit' | 'same-origin' | 'include';
  signal: PlatformAbortSignal;
}

/** `fetch` itself fits (declared method-style so a platform's wider `RequestInit` is accepted). */
export type FetchFunction = { fetch(input: string, init: FetchInit): Promise<FetchResponse> }['fetch'];

/** An `AbortSignal`, as far as the client uses one. */
export interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Why a timer is asked for: tests tell them apart. */
export type TimerPurpose = 'reconnect' | 'watchdog';

/** Runs `callback` after `delayMs`; returns a function that cancels it. */
export type Schedule = (callback: () => void, delayMs: number, purpose: TimerPurpose) => () => void;

/** A `URL` (declared by shape, so no platform types are needed). */
export interface UrlLike {
  readonly href: string;
}

type Awaitable<T> = T | Promise<T>;

export interface ClientOptions {
  /** Extra request headers, or a function (maybe async) asked before every connection. */
  headers?: HeaderMap | (() => Awaitable<HeaderMap>);
  /** Sent as `Authorization: Bearer <token>`; a function (maybe async) is asked before every connection. Wins over `headers`. */
  token?: string | (() => Awaitable<string | undefined>);
  /**
   * Called on `401`/`403` with the error: return a fresh token to reconnect
   * with (it replaces `token` from then on), or `undefined` to stop with the
   * error. Without a hook, `401`/`403` stop the client.
   */
  onAuthError?: (error: HeraldClientError) => Awaitable<string | undefined>;
  /** Default `GET`. */
  method?: string;
  /** `fetch`'s `credentials` (cookies such as `herald_auth` on another origin need `include`). */
  credentials?: 'omit' | 'same-origin' | 'include';
  /** Resume after this id from the first connection on (sent as `Last-Event-ID`). */
  lastEventId?: string;
  /** Topic selectors, added to the URL as repeated `topic=` parameters. */
  topics?: readonly string[];
  /** Initial reconnection delay in ms (default 1000); the stream's `retry:` field replaces it. */
  retry?: number;
  /** Backoff cap in ms (default 30000). */
  maxRetry?: number;
  /**
   * Reconnect when no byte arrives for this many ms (default 75000, 2.5 × the
   * hub's default 30 s heartbeat; use about 2.5 × `--heartbeat`). Also bounds
   * the wait for the answer's head. `0` turns the watchdog off.
   */
  heartbeatTimeout?: number;
  /** Default `globalThis.fetch`. */
  fetch?: FetchFunction;
  /** Aborting it closes the client, as `close()` does. */
  signal?: AbortSignalLike;
  /** Timers (default `setTimeout`); for tests. */
  schedule?: Schedule;
  /** Random numbers in [0, 1) for the backoff's jitter (default `Math.random`); for tests. */
  random?: () => number;
}

/** Stable codes of failures the client itself finds (the hub's own are `HERALD_ERR_*`). */
export type ClientErrorCode =
  | 'HERALD_CLIENT_ERR_NETWORK'
  | 'HERALD_CLIENT_ERR_STREAM_ENDED'
  | 'HERALD_CLIENT_ERR_HEARTBEAT_TIMEOUT'
  | 'HERALD_CLIENT_ERR_HTTP'
  | 'HERALD_CLIENT_ERR_NO_CONTENT'
  | 'HERALD_CLIENT_ERR_CONTENT_TYPE'
  | 'HERALD_CLIENT_ERR_AUTH_HOOK'
  | 'HERALD_CLIENT_ERR_INVALID_OPTION';

/**
 * Why a connection failed. `code` is the hub's (`HERALD_ERR_*`, from the
 * JSON body `{"error":{"code","message"}}`) when the answer carried one,
 * else one of {@link ClientErrorCode}.
 */
export class HeraldClientError extends Error {
  override readonly name = 'HeraldClientError';
  readonly code: string;
  /** The HTTP status, when an answer came. */
  readonly status: number | undefined;
  /** `Retry-After` of the answer, in ms. */
  readonly retryAfter: number | undefined;
  /** `true` when the client stopped for it (state `closed`). */
  readonly fatal: boolean;
  /** When not fatal: the delay before the next attempt, in ms. */
  readonly retryIn: number | undefined;

  constructor(
    code: string,
    message: string,
    details: { status?: number | undefined; retryAfter?: number | undefined; fatal?: boolean; retryIn?: number | undefined; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.status = details.status;
    this.retryAfter = details.retryAfter;
    this.fatal = details.fatal ?? false;
    this.retryIn = details.retryIn;
  }
}

export type EventListener = (event: HeraldEvent) => void;
export type StateListener = (state: ClientState, previous: ClientState) => void;
export type ErrorListener = (error: HeraldClientError) => void;
/** `reason` is the resync event's `reason` (`expired`, `unknown`, ...); `data` its parsed JSON. */
export type ResyncListener = (reason: string, data: unknown, event: HeraldEvent) => void;

export interface HeraldClient {
  readonly state: ClientState;
  /** The last event ID seen (sent as `Last-Event-ID` on the next connection), `''` before any. */
  readonly lastEventId: string;
  /** Listens to one event type (`message` for events without `event:`); returns a function that removes the listener. */
  on(type: string, listener: EventListener): () => void;
  off(type: string, listener: EventListener): void;
  /** Listens to every event, whatever its type (except `herald-resync`, which goes to `onResync`). */
  onAny(listener: EventListener): () => void;
  offAny(listener: EventListener): void;
  onState(listener: StateListener): () => void;
  /** Every failure: each reason for reconnecting (`fatal: false`), and the one that stops the client (`fatal: true`). */
  onError(listener: ErrorListener): () => void;
  /** `herald-resync` events, which are not delivered to `on`/`onAny`. */
  onResync(listener: ResyncListener): () => void;
  /** Stops for good: aborts the stream, cancels timers, state `closed`. Idempotent. */
  close(): void;
}

interface Failure {
  readonly code: string;
  readonly message: string;
  readonly status?: number | undefined;
  readonly retryAfter?: number | undefined;
  readonly cause?: unknown;
}

interface AbortControllerLike {
  readonly signal: AbortSignalLike;
  abort(reason?: unknown): void;
}

interface WebGlobals {
  fetch?: FetchFunction;
  AbortController: new () => AbortControllerLike;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  queueMicrotask(callback: () => void): void;
  reportError?: (error: unknown) => void;
}

const web = globalThis as unknown as WebGlobals;

/** `setTimeout` holds at most 2^31 - 1 ms. */
const MAX_DELAY = 2_147_483_647;
const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

const defaultSchedule: Schedule = (callback, delayMs, purpose) => {
  const handle = web.setTimeout(callback, delayMs);
  // The watchdog never keeps a Node process alive on its own (the stream does);
  // a reconnect timer does, or a script would exit while it waits.
  if (purpose === 'watchdog') (handle as { unref?: () => void }).unref?.();
  return () => web.clearTimeout(handle);
};

/** A listener that throws must not break the stream: its error is reported as an uncaught one. */
function report(error: unknown): void {
  if (web.reportError !== undefined) web.reportError(error);
  else
    web.queueMicrotask(() => {
      throw error;
    });
}

function checkDelay(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new HeraldClientError('HERALD_CLIENT_ERR_INVALID_OPTION', `${name} must be a non-negative number of ms, got ${String(value)}`);
  }
  return Math.min(value, MAX_DELAY);
}

/** `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3), in ms; `undefined` when absent or malformed. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^[0-9]+$/.test(text)) return Math.min(Number(text) * 1000, MAX_DELAY);
  // An HTTP date begins with a day name ("Sun, 06 Nov 1994 08:49:37 GMT"); Date.parse takes '-1' too.
  if (!/^[A-Za-z]/.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.min(Math.max(0, date - now), MAX_DELAY);
}

async function failureOf(response: FetchResponse): Promise<Failure> {
  const status = response.status;
  const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
  let text = '';
  try {
    text = await response.text();
  } catch {
    // The body is only a better message; the status decides.
  }
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = body.error ?? {};
    if (typeof code === 'string') return { code, message: typeof message === 'string' ? message : `HTTP ${status}`, status, retryAfter };
  } catch {
    // Not Herald's JSON error.
  }
  return { code: 'HERALD_CLIENT_ERR_HTTP', message: `HTTP ${status}${text === '' ? '' : `: ${text.slice(0, 200)}`}`, status, retryAfter };
}

function parseJson(data: string): unknown {
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return undefined;
  }
}

/** One connection attempt's fate, decided once. */
type Outcome = { readonly retry: Failure } | { readonly stop: Failure } | { readonly auth: Failure } | { readonly closed: true };

class Client implements HeraldClient {
  private currentState: ClientState = 'connecting';
  private lastId: string;
  private readonly url: string;
  private readonly fetchFunction: FetchFunction;
  private readonly schedule: Schedule;
  private readonly random: () => number;
  private readonly maxRetry: number;
  private readonly heartbeatTimeout: number;
  /** The reconnection time: `retry` until the stream's `retry:` field says otherwise. */
  private baseDelay: number;
  /** Attempts that failed since the last successful open. */
  private failures = 0;
  /** A token returned by `onAuthError`, which replaces `options.token`. */
  private freshToken: string | undefined;
  private controller: AbortControllerLike | undefined;
  private cancelReconnect: (() => void) | undefined;
  private readonly typed = new Map<string, Set<EventListener>>();
  private readonly anyListeners = new Set<EventListener>();
  private readonly stateListeners = new Set<StateListener>();
  private readonly errorListeners = new Set<ErrorListener>();
  private readonly resyncListeners = new Set<ResyncListener>();
  private readonly parser: EventStreamParser;
  private readonly onExternalAbort = (): void => this.close();

  constructor(
    url: string | UrlLike,
    private readonly options: ClientOptions,
  ) {
    // A relative URL (`/events`) is read against the page's address in a browser.
    const target = new URL(typeof url === 'string' ? url : url.href, (globalThis as { location?: { href: string } }).location?.href);
    for (const topic of options.topics ?? []) target.searchParams.append('topic', topic);
    this.url = target.href;
    const fetchFunction = options.fetch ?? web.fetch?.bind(globalThis);
    if (fetchFunction === undefined) throw new HeraldClientError('HERALD_CLIENT_ERR_INVALID_OPTION', 'no fetch: pass options.fetch');
    this.fetchFunction = fetchFunction;
    this.schedule = options.schedule ?? defaultSchedule;
    this.random = options.random ?? Math.random;
    this.baseDelay = checkDelay('retry', options.retry, 1000);
    this.maxRetry = checkDelay('maxRetry', options.maxRetry, 30_000);
    this.heartbeatTimeout = checkDelay('heartbeatTimeout', options.heartbeatTimeout, 75_000);
    this.lastId = options.lastEventId ?? '';
    this.parser = createParser(
      {
        onEvent: (event) => this.deliver(event.type, event.data, event.id),
        onRetry: (milliseconds) => {
          this.baseDelay = Math.min(milliseconds, MAX_DELAY);
        },
      },
      this.lastId,
    );
    if (options.signal?.aborted) {
      this.currentState = 'closed';
      return;
    }
    options.signal?.addEventListener('abort', this.onExternalAbort, { once: true });
    // Listeners are attached after connect() returns: the first request waits a microtask.
    web.queueMicrotask(() => void this.run());
  }

  get state(): ClientState {
    return this.currentState;
  }

  get lastEventId(): string {
    return this.lastId;
  }

  on(type: string, listener: EventListener): () => void {
    let listeners = this.typed.get(type);
    if (listeners === undefined) this.typed.set(type, (listeners = new Set()));
    listeners.add(listener);
    return () => this.off(type, listener);
  }

  off(type: string, listener: EventListener): void {
    this.typed.get(type)?.delete(listener);
  }

  onAny(listener: EventListener): () => void {
    this.anyListeners.add(listener);
    return () => this.offAny(listener);
  }

  offAny(listener: EventListener): void {
    this.anyListeners.delete(listener);
  }

  onState(listener: StateListener): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  onError(listener: ErrorListener): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  onResync(listener: ResyncListener): () => void {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }

  close(): void {
    if (this.currentState === 'closed') return;
    this.shutDown();
  }

  private shutDown(): void {
    this.cancelReconnect?.();
    this.cancelReconnect = undefined;
    this.options.signal?.removeEventListener('abort', this.onExternalAbort);
    const controller = this.controller;
    this.controller = undefined;
    this.setState('closed');
    controller?.abort();
  }

  /** A method, not a comparison: the state changes across awaits, and TypeScript's narrowing would not see it. */
  private isClosed(): boolean {
    return this.currentState === 'closed';
  }

  private setState(next: ClientState): void {
    const previous = this.currentState;
    if (previous === next) return;
    this.currentState = next;
    for (const listener of [...this.stateListeners]) this.call(() => listener(next, previous));
  }

  private call(body: () => void): void {
    try {
      body();
    } catch (error) {
      report(error);
    }
  }

  private emitError(error: HeraldClientError): void {
    for (const listener of [...this.errorListeners]) this.call(() => listener(error));
  }

  private deliver(type: string, data: string, id: string): void {
    // A listener may have closed the client, or a watchdog replaced the connection, mid-chunk.
    if (this.currentState !== 'open') return;
    this.lastId = id;
    const event: HeraldEvent = Object.freeze({ id, type, data, json: parseJson(data), topic: undefined });
    if (type === RESYNC_EVENT) {
      const json = event.json as { reason?: unknown } | undefined;
      const reason = typeof json?.reason === 'string' ? json.reason : 'unknown';
      for (const listener of [...this.resyncListeners]) this.call(() => listener(reason, event.json, event));
      return;
    }
    for (const listener of [...(this.typed.get(type) ?? [])]) this.call(() => listener(event));
    for (const listener of [...this.anyListeners]) this.call(() => listener(event));
  }

  private async requestHeaders(): Promise<Record<string, string>> {
    const { headers, token } = this.options;
    const extra = typeof headers === 'function' ? await headers() : (headers ?? {});
    const result: Record<string, string> = { ...extra, Accept: 'text/event-stream' };
    const bearer = this.freshToken ?? (typeof token === 'function' ? await token() : token);
    if (bearer !== undefined && bearer !== '') result.Authorization = `Bearer ${bearer}`;
    // §9.2.4: the Last-Event-ID header, when the last event ID string is not empty.
    if (this.lastId !== '') result['Last-Event-ID'] = this.lastId;
    return result;
  }

  /** Connects until the client closes: one attempt, then the next after its delay. */
  private async run(): Promise<void> {
    if (this.isClosed()) return;
    const outcome = await this.attempt();
    if (this.isClosed() || 'closed' in outcome) return;
    if ('stop' in outcome) return this.stop(outcome.stop);
    if ('auth' in outcome) {
      const hook = this.options.onAuthError;
      if (hook === undefined) return this.stop(outcome.auth);
      let token: string | undefined;
      try {
        token = await hook(new HeraldClientError(outcome.auth.code, outcome.auth.message, { status: outcome.auth.status }));
      } catch (error) {
        return this.stop({ code: 'HERALD_CLIENT_ERR_AUTH_HOOK', message: `onAuthError threw: ${String(error)}`, status: outcome.auth.status, cause: error });
      }
      if (this.isClosed()) return;
      if (token === undefined) return this.stop(outcome.auth);
      this.freshToken = token;
      return this.retryLater(outcome.auth);
    }
    this.retryLater(outcome.retry);
  }

  private stop(failure: Failure): void {
    const error = new HeraldClientError(failure.code, failure.message, { ...failure, fatal: true });
    this.shutDown();
    this.emitError(error);
  }

  /** Exponential backoff with full jitter; never sooner than the answer's `Retry-After`. */
  private retryLater(failure: Failure): void {
    const ceiling = Math.min(this.maxRetry, this.baseDelay * 2 ** this.failures);
    const jittered = Math.floor(this.random() * ceiling);
    const delay = Math.min(MAX_DELAY, Math.max(failure.retryAfter ?? 0, jittered));
    this.failures++;
    this.emitError(new HeraldClientError(failure.code, failure.message, { ...failure, retryIn: delay }));
    if (this.isClosed()) return;
    this.setState('reconnecting');
    if (this.currentState !== 'reconnecting') return; // a state listener closed it
    this.cancelReconnect = this.schedule(
      () => {
        this.cancelReconnect = undefined;
        void this.run();
      },
      delay,
      'reconnect',
    );
  }

  /** One connection, from the request to the end of its stream. */
  private async attempt(): Promise<Outcome> {
    const controller = new web.AbortController();
    this.controller = controller;
    let timedOut = false;
    let cancelWatchdog: (() => void) | undefined;
    const watchdog = (): void => {
      cancelWatchdog?.();
      if (this.heartbeatTimeout === 0) return;
      cancelWatchdog = this.schedule(
        () => {
          timedOut = true;
          controller.abort();
        },
        this.heartbeatTimeout,
        'watchdog',
      );
    };
    const isCurrent = (): boolean => this.controller === controller && !this.isClosed();
    try {
      const headers = await this.requestHeaders();
      if (!isCurrent()) return { closed: true };
      watchdog();
      const init: FetchInit = { method: this.options.method ?? 'GET', headers, signal: controller.signal as PlatformAbortSignal };
      if (this.options.credentials !== undefined) init.credentials = this.options.credentials;
      const response = await this.fetchFunction(this.url, init);
      if (!isCurrent()) return { closed: true };
      const { status } = response;
      if (status !== 200) {
        if (status === 204) return { stop: { code: 'HERALD_CLIENT_ERR_NO_CONTENT', message: 'the hub answered 204: stop reconnecting', status } };
        const failure = await failureOf(response);
        if (status === 401 || status === 403) return { auth: failure };
        return RETRYABLE.has(status) ? { retry: failure } : { stop: failure };
      }
      // §9.2.3: a 200 whose type is not text/event-stream fails the connection.
      const type = response.headers.get('content-type') ?? '';
      if (type.split(';')[0]!.trim().toLowerCase() !== 'text/event-stream') {
        void response.body?.getReader().cancel().catch(() => undefined);
        return { stop: { code: 'HERALD_CLIENT_ERR_CONTENT_TYPE', message: `expected text/event-stream, got ${type === '' ? 'no Content-Type' : type}`, status } };
      }
      if (response.body === null) return { retry: { code: 'HERALD_CLIENT_ERR_STREAM_ENDED', message: 'the answer has no body', status } };
      const reader = response.body.getReader();
      watchdog();
      this.parser.reset();
      this.failures = 0;
      this.setState('open');
      for (;;) {
        const { done, value } = await reader.read();
        if (!isCurrent()) return { closed: true };
        if (done) return { retry: { code: 'HERALD_CLIENT_ERR_STREAM_ENDED', message: 'the hub closed the stream' } };
        watchdog();
        if (value !== undefined && value.length > 0) this.parser.feed(value);
        if (!isCurrent()) return { closed: true };
        // An event of only an `id` moves the last event ID without dispatching anything (§9.2.6).
        this.lastId = this.parser.lastEventId;
      }
    } catch (error) {
      if (!isCurrent()) return { closed: true };
      if (timedOut) {
        return { retry: { code: 'HERALD_CLIENT_ERR_HEARTBEAT_TIMEOUT', message: `no byte from the hub for ${this.heartbeatTimeout} ms` } };
      }
      return { retry: { code: 'HERALD_CLIENT_ERR_NETWORK', message: `connection failed: ${(error as Error)?.message ?? String(error)}`, cause: error } };
    } finally {
      cancelWatchdog?.();
      if (this.controller === controller) this.controller = undefined;
      // Ends the request of a connection left behind (a watchdog abort, a stream that ended).
      controller.abort();
    }
  }
}

/**
 * Opens a Herald stream (`/events`, or a Mercure hub URL) and keeps it open:
 * resumes with `Last-Event-ID`, backs off with jitter, honours `Retry-After`
 * and the stream's `retry:`, renews tokens through `onAuthError`, and
 * reconnects when nothing arrives for `heartbeatTimeout`.
 *
 * Stops (state `closed`, a fatal error to `onError`) on `204`, on a `4xx`
 * other than `401`/`403`/`408`/`429`, on `401`/`403` without a fresh token,
 * and on a `200` that is not `text/event-stream`. Retries on network errors,
 * a stream that ends or goes silent, and `408`/`429`/`500`/`502`/`503`/`504`.
 *
 * @param url the stream's URL (`topics` are appended as `topic=` parameters)
 * @param options see {@link ClientOptions}
 * @throws HeraldClientError `HERALD_CLIENT_ERR_INVALID_OPTION` for a negative delay or no `fetch`
 * @example
 * const client = connect('/events', { topics: ['chat/*'] });
 * client.on('message', (event) => show(event.data));
 * client.onState((state) => (badge.textContent = state));
 */
export function connect(url: string | UrlLike, options: ClientOptions = {}): HeraldClient {
  return new Client(url, options);
}
