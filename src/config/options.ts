/**
 * Every option, described once: its flag, its env vars, its default, its
 * help. The CLI, the env and `createHub()` all go through {@link resolveOptions}.
 */

import { availableParallelism } from 'node:os';
import { HeraldError } from '../errors.js';
import { parseOrigins } from './origins.js';

import { formatDuration, formatSize, parseDuration, parseSize } from './units.js';

/** A duration: milliseconds, or text such as `250ms`, `30s`, `5m`, `1h`. */
export type Duration = number | string;
/** A size: bytes, or text such as `512kb`, `1mb`. */
export type Size = number | string;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What a hub may serve besides `GET /events` and `POST /trigger`. */
export const ROUTES = ['page', 'dashboard', 'health', 'metrics', 'presence'] as const;
export type Route = (typeof ROUTES)[number];

/** The value an option of each kind has once resolved. */
interface KindValue {
  integer: number;
  duration: number;
  size: number;
  host: string;
  path: string;
  file: string;
  'redis-url': string;
  name: string;
  workers: number;
  secret: string;
  origins: string;
  urls: string;
  'log-level': LogLevel;
  routes: readonly Route[];
  switch: boolean;
}

/** What an option of each kind takes from a library user: the value, or text (flags and env vars are text). */
interface KindInput {
  integer: number | string;
  duration: Duration;
  size: Size;
  host: string;
  path: string;
  file: string;
  'redis-url': string;
  name: string;
  workers: number | string;
  secret: string;
  origins: string;
  urls: string;
  'log-level': LogLevel | string;
  routes: string | readonly Route[];
  switch: boolean | string;
}

type Kind = keyof KindValue;

interface SpecInput {
  readonly flag: string;
  /** Env vars read, first set wins. */
  readonly env: readonly string[];
  readonly kind: Kind;
  /** Absent: the option is unset (`undefined`) unless given. */
  readonly defaultValue?: number | string | boolean | readonly string[];
  /** The `herald` command's default, where it differs from the library's. */
  readonly cliDefault?: string;
  readonly min?: number;
  readonly max?: number;
  readonly description: string;
}

/** Timers in Node hold at most a signed 32-bit count of milliseconds. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Every option, once: its flag, env vars, kind, default and help. The types
 * of `createHub()`'s options and of the resolved options are derived from it,
 * the CLI's flags and `--help` read it, and so do the README's tests.
 */
export const OPTION_TABLE = {
  /** TCP port for `listen()`; `0` picks a free one. Default `3004`. */
  port: { flag: 'port', env: ['HERALD_PORT', 'PORT'], kind: 'integer', defaultValue: 3004, min: 0, max: 65535, description: 'TCP port to listen on (0 picks a free one)' },
  /** Address for `listen()`. Default `127.0.0.1`. */
  host: { flag: 'host', env: ['HERALD_HOST', 'HOST'], kind: 'host', defaultValue: '127.0.0.1', description: 'address to listen on (0.0.0.0 or :: for every interface)' },
  /** A PEM certificate file (the chain, leaf first): `listen()` then serves HTTPS, HTTP/2 by ALPN with HTTP/1.1 for older clients. Needs `tlsKey`. */
  tlsCert: { flag: 'tls-cert', env: ['HERALD_TLS_CERT'], kind: 'file', description: 'PEM certificate file: serve HTTPS, HTTP/2 with HTTP/1.1 fallback (needs --tls-key)' },
  /** The PEM private key file of `tlsCert`. Needs `tlsCert`. */
  tlsKey: { flag: 'tls-key', env: ['HERALD_TLS_KEY'], kind: 'file', description: 'PEM private key file of --tls-cert' },
  /** Comment sent on idle streams this often; `0` turns heartbeats off. Default `30s`. */
  heartbeat: { flag: 'heartbeat', env: ['HERALD_HEARTBEAT'], kind: 'duration', defaultValue: 30_000, min: 0, max: MAX_TIMER_MS, description: 'comment sent on idle streams this often (0 turns it off)' },
  /** Reconnection delay sent to clients in the `retry:` field. Default `3s`. */
  retry: { flag: 'retry', env: ['HERALD_RETRY'], kind: 'duration', defaultValue: 3000, min: 0, max: MAX_TIMER_MS, description: 'reconnection delay sent to clients (the retry: field)' },
  /** Events kept for resume through `Last-Event-ID`. Default `10000`. */
  history: { flag: 'history', env: ['HERALD_HISTORY'], kind: 'integer', defaultValue: 10_000, min: 0, max: 10_000_000, description: 'events kept for resume with Last-Event-ID' },
  /** Events older than this are dropped from history; `0` keeps them regardless of age. Default `0`. */
  historyTtl: { flag: 'history-ttl', env: ['HERALD_HISTORY_TTL'], kind: 'duration', defaultValue: 0, min: 0, max: 10 * 365 * 86_400_000, description: 'events older than this leave history, e.g. 24h (0 keeps them regardless of age)' },
  /** A SQLite file that keeps history across restarts; unset: history lives in memory. */
  store: { flag: 'store', env: ['HERALD_STORE'], kind: 'file', description: 'SQLite file keeping history across restarts (none: in memory)' },
  /** Redis URL (`redis://host:port/db`): every node publishes to and reads from it, so several processes or machines form one hub. */
  redis: { flag: 'redis', env: ['HERALD_REDIS_URL'], kind: 'redis-url', description: 'Redis URL, e.g. redis://127.0.0.1:6379: nodes sharing it form one hub (none: this process alone)' },
  /**
   * With Redis: how long a node's presence records (`GET /presence`, Mercure's subscriptions) outlive its last
   * renewal, renewed every third of it. A node that dies is dropped from the listings, and its Mercure
   * subscriptions reported ended, within about this long. Default `15s`.
   */
  presenceLease: { flag: 'presence-lease', env: ['HERALD_PRESENCE_LEASE'], kind: 'duration', defaultValue: 15_000, min: 300, max: 3_600_000, description: 'with --redis: how long a dead node stays in presence listings (GET /presence, Mercure subscriptions)' },
  /** Key namespace in Redis, so several hubs can share one server. Default `herald`. */
  redisPrefix: { flag: 'redis-prefix', env: ['HERALD_REDIS_PREFIX'], kind: 'name', defaultValue: 'herald', description: 'key namespace in Redis, so several hubs can share one server' },
  /** Processes serving the port (`node:cluster`); `auto` is one per core. Default `1`. Only the `herald` command uses it. */
  workers: { flag: 'workers', env: ['HERALD_WORKERS'], kind: 'workers', defaultValue: 1, min: 1, max: 256, description: 'processes serving the port; auto: one per core' },
  /** HS256 secret (at least 32 bytes) checking the tokens of publishers and subscribers. */
  jwtKey: { flag: 'jwt-key', env: ['HERALD_JWT_KEY'], kind: 'secret', description: 'HS256 secret (32+ bytes) checking publisher and subscriber tokens' },
  /** A PEM public key or certificate file (RS256, ES256/384/512, EdDSA) checking tokens. */
  jwtPublicKey: { flag: 'jwt-public-key', env: ['HERALD_JWT_PUBLIC_KEY'], kind: 'file', description: 'PEM public key file checking tokens (RS256, ES256/384/512, EdDSA)' },
  /** Key for publish tokens only: a PEM file path (`/`, `./`, `../` or `*.pem`), else an HS256 secret. */
  jwtPublisherKey: { flag: 'jwt-publisher-key', env: ['HERALD_JWT_PUBLISHER_KEY'], kind: 'secret', description: 'key for publish tokens only: a PEM file (/, ./, ../ or *.pem) or an HS256 secret' },
  /** Key for subscribe tokens only, as `jwtPublisherKey`. */
  jwtSubscriberKey: { flag: 'jwt-subscriber-key', env: ['HERALD_JWT_SUBSCRIBER_KEY'], kind: 'secret', description: 'key for subscribe tokens only, like --jwt-publisher-key' },
  /** A JWK Set file or http(s) URL; the token's `kid` picks the key. */
  jwtJwks: { flag: 'jwt-jwks', env: ['HERALD_JWT_JWKS'], kind: 'secret', description: 'JWK Set file or https URL; the token kid picks the key' },
  /** Tolerance on `exp` and `nbf`. Default `30s`. */
  jwtClockSkew: { flag: 'jwt-clock-skew', env: ['HERALD_JWT_CLOCK_SKEW'], kind: 'duration', defaultValue: 30_000, min: 0, max: 600_000, description: 'tolerance on token exp and nbf' },
  /**
   * The resource identifier a Mercure draft-08 token's `aud` must hold,
   * usually the hub's public URL. Unset: each request's own hub URL (from its
   * `Host`), fine for development; set it in production.
   */
  mercureAudience: { flag: 'mercure-audience', env: ['HERALD_MERCURE_AUDIENCE'], kind: 'urls', description: "the aud a Mercure draft-08 token must hold, e.g. https://hub.example/.well-known/mercure (none: the request's own hub URL)" },
  /** Issuers a Mercure draft-08 token's `iss` must be one of, comma-separated. Unset: not checked. */
  mercureIssuer: { flag: 'mercure-issuer', env: ['HERALD_MERCURE_ISSUER'], kind: 'urls', description: 'issuers a Mercure draft-08 token may come from, comma-separated (none: not checked)' },
  /**
   * Whether Mercure streams' subscriptions are announced as `active: true` / `false` updates (SPEC "Subscription
   * Events"). Off by default, as in the reference hub: each selector of each stream then writes two updates to
   * the history, which anonymous clients could use to push other updates out of it. The subscriptions API and
   * `GET /presence` answer either way. Default `off`.
   */
  mercureSubscriptions: { flag: 'mercure-subscriptions', env: ['HERALD_MERCURE_SUBSCRIPTIONS'], kind: 'switch', defaultValue: false, description: 'publish Mercure subscription events (active: true/false) for every Mercure stream: on or off' },
  /** The cookie a browser sends its token in. Default `herald_auth`. */
  authCookie: { flag: 'auth-cookie', env: ['HERALD_AUTH_COOKIE'], kind: 'name', defaultValue: 'herald_auth', description: 'cookie holding the token for browsers' },
  /** Open streams at most; more are refused with `503`. Default `10000`. */
  maxConnections: { flag: 'max-connections', env: ['HERALD_MAX_CONNECTIONS'], kind: 'integer', defaultValue: 10_000, min: 1, max: 10_000_000, description: 'open streams at most; more get 503 with Retry-After' },
  /** Largest accepted `POST /trigger` body. Default `1mb`. */
  maxBody: { flag: 'max-body', env: ['HERALD_MAX_BODY'], kind: 'size', defaultValue: 1024 ** 2, min: 1, max: 1024 ** 3, description: 'largest POST /trigger body; larger gets 413' },
  /** Bytes queued for one subscriber before it is dropped as too slow. Default `4mb`. */
  maxBuffer: { flag: 'max-buffer', env: ['HERALD_MAX_BUFFER'], kind: 'size', defaultValue: 4 * 1024 ** 2, min: 1024, max: 1024 ** 3, description: 'bytes queued for one subscriber before it is dropped as too slow' },
  /** A path prefix the handler strips, e.g. `/herald` when mounted there without a framework that strips it. Default none. */
  basePath: { flag: 'base-path', env: ['HERALD_BASE_PATH'], kind: 'path', description: 'path prefix to serve under, e.g. /herald (none by default)' },
  /**
   * Which of the page at `/`, the dashboard, `GET /health`, `GET /metrics` and `GET /presence` the hub serves
   * (`/events` and `/trigger` always): a list, or text such as `health,metrics`, `all`, `none`.
   * Default for `createHub()`: none, so a hub mounted at the root of an app takes only its two paths;
   * the `herald` command serves all.
   */
  routes: { flag: 'routes', env: ['HERALD_ROUTES'], kind: 'routes', defaultValue: [], cliDefault: 'all', description: 'what else to serve: page, dashboard, health, metrics, presence, comma-separated, all or none' },
  /** Origins whose pages may use the hub from the browser: a comma-separated list, or `*` (never with credentials). Default none. */
  corsOrigin: { flag: 'cors-origin', env: ['HERALD_CORS_ORIGIN'], kind: 'origins', description: 'origins allowed to use the hub from a browser, comma-separated, or * (none: same origin only)' },
  /** Streams one client address may hold; `0`: no limit. Default `0`. */
  maxConnectionsPerIp: { flag: 'max-connections-per-ip', env: ['HERALD_MAX_CONNECTIONS_PER_IP'], kind: 'integer', defaultValue: 0, min: 0, max: 10_000_000, description: 'streams one client address may hold; more get 429 (0: no limit)' },
  /** Events per second one client address may publish (token bucket); `0`: no limit. Default `0`. */
  publishRate: { flag: 'publish-rate', env: ['HERALD_PUBLISH_RATE'], kind: 'integer', defaultValue: 0, min: 0, max: 10_000_000, description: 'events per second one client address may publish; more get 429 (0: no limit)' },
  /** Events a client may publish at once before `publishRate` applies; `0`: as many as `publishRate`. Default `0`. */
  publishBurst: { flag: 'publish-burst', env: ['HERALD_PUBLISH_BURST'], kind: 'integer', defaultValue: 0, min: 0, max: 10_000_000, description: 'events a client may publish at once before --publish-rate applies (0: as many as the rate)' },
  /** Topic selectors one subscription may name. Default `64`. */
  maxTopics: { flag: 'max-topics', env: ['HERALD_MAX_TOPICS'], kind: 'integer', defaultValue: 64, min: 1, max: 10_000, description: 'topic selectors one subscription may name; more get 400' },
  /** Serve `GET /metrics` (and `/health`) on this port instead of the main one, so metrics need not be public; `0` picks a free port; unset: on the main port, if `routes` has `metrics`. */
  metricsPort: { flag: 'metrics-port', env: ['HERALD_METRICS_PORT'], kind: 'integer', min: 0, max: 65535, description: 'serve GET /metrics (and /health) on this port only, not on the main one; 0 picks a free one (none: on the main port)' },
  /** Log level: fatal, error, warn, info, debug, trace or silent. Default `info` (the `herald` command; `createHub()` logs only to a logger it is given). */
  logLevel: { flag: 'log-level', env: ['HERALD_LOG_LEVEL'], kind: 'log-level', defaultValue: 'info', description: 'fatal, error, warn, info, debug, trace or silent' },
  /** How long a client may take to send its request head, from its first byte (slowloris). Default `30s`. */
  headTimeout: { flag: 'head-timeout', env: ['HERALD_HEAD_TIMEOUT'], kind: 'duration', defaultValue: 30_000, min: 100, max: 600_000, description: 'time a client has to send its request head, from its first byte' },
  /** How long shutdown waits for in-flight publishes before closing anyway. Default `4s`. */
  shutdownTimeout: { flag: 'shutdown-timeout', env: ['HERALD_SHUTDOWN_TIMEOUT'], kind: 'duration', defaultValue: 4000, min: 0, max: MAX_TIMER_MS, description: 'on SIGTERM/SIGINT, how long to wait for in-flight publishes' },
} as const satisfies Record<string, SpecInput>;

type Table = typeof OPTION_TABLE;
export type OptionKey = keyof Table;

/** Options of `createHub()` and the `herald` command. Every field is optional; `undefined` means "not given". */
export type HeraldOptions = { [K in OptionKey]?: KindInput[Table[K]['kind']] | undefined };

/** Options after validation: plain numbers (milliseconds, bytes), frozen; an unset option without default is `undefined`. */
export type ResolvedOptions = {
  readonly [K in OptionKey]: Table[K] extends { readonly defaultValue: unknown } ? KindValue[Table[K]['kind']] : KindValue[Table[K]['kind']] | undefined;
};

/** One row of the table, with its key. */
export interface OptionSpec extends SpecInput {
  readonly key: OptionKey;
}

/** The table as a list, in its order (flags in `--help`, README rows). */
export const OPTION_SPECS: readonly OptionSpec[] = Object.freeze(
  (Object.entries(OPTION_TABLE) as [OptionKey, SpecInput][]).map(([key, spec]) => Object.freeze({ key, ...spec })),
);

const EXPECTED: Record<Kind, string> = {
  integer: 'a whole number',
  duration: 'a duration such as 250ms, 30s, 5m or a number of milliseconds',
  size: 'a size such as 512kb, 1mb or a number of bytes',
  host: 'a host name or IP address',
  path: 'a path such as /herald (starting with "/", not ending with one)',
  file: 'a file path',
  'redis-url': 'a URL such as redis://127.0.0.1:6379 or rediss://user:password@host:6380/0',
  name: 'letters, digits, ".", "_", ":" or "-"',
  workers: 'a whole number or auto',
  secret: 'text',
  'log-level': LOG_LEVELS.join(', '),
  origins: 'origins such as https://app.example.com (scheme, host and port only), comma-separated, or *',
  urls: 'absolute URLs such as https://hub.example, comma-separated',
  routes: `route names (${ROUTES.join(', ')}), comma-separated, all or none`,
  switch: 'on or off',
};

/** Kinds whose empty text means "not given" (an empty env var, `--store ''`). */
const EMPTY_IS_UNSET: ReadonlySet<Kind> = new Set(['file', 'secret', 'redis-url', 'path', 'origins', 'urls']);

function parseRoutes(value: unknown): readonly Route[] | undefined {
  if (Array.isArray(value)) return value.every((item) => (ROUTES as readonly string[]).includes(item)) ? Object.freeze([...new Set(value as Route[])]) : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (text === 'all') return ROUTES;
  if (text === 'none' || text === '') return Object.freeze([]);
  return parseRoutes(text.split(',').map((item) => item.trim()));
}

/** On/off as people write it in flags and env vars. */
const SWITCH_WORDS: Readonly<Record<string, boolean>> = { on: true, true: true, yes: true, '1': true, off: false, false: false, no: false, '0': false };

function convert(kind: Kind, value: unknown): number | string | boolean | readonly Route[] | undefined {
  if (kind === 'routes') return parseRoutes(value);
  if (kind === 'switch') {
    if (typeof value === 'boolean') return value;
    return typeof value === 'string' ? SWITCH_WORDS[value.trim().toLowerCase()] : undefined;
  }
  if (typeof value !== 'number' && typeof value !== 'string') return undefined;
  if (kind === 'host') return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
  if (kind === 'file' || kind === 'secret') return typeof value === 'string' ? value : undefined;
  if (kind === 'log-level') return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value.trim()) ? value.trim() : undefined;
  if (kind === 'origins') return typeof value === 'string' && parseOrigins(value) !== undefined ? value.trim() : undefined;
  if (kind === 'urls') return typeof value === 'string' && areUrls(value) ? value.trim() : undefined;
  if (kind === 'redis-url') return typeof value === 'string' && isRedisUrl(value) ? value : undefined;
  if (kind === 'name') return typeof value === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(value) ? value : undefined;
  if (kind === 'workers' && typeof value === 'string' && value.trim() === 'auto') return availableParallelism();
  if (kind === 'path') {
    if (typeof value !== 'string') return undefined;
    return /^(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/.test(value) ? value : undefined;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (kind === 'duration') return parseDuration(value);
  if (kind === 'size') return parseSize(value);
  return /^\s*\d+\s*$/.test(value) ? Number(value) : undefined;
}

function areUrls(text: string): boolean {
  const parts = text.split(',').map((part) => part.trim());
  return parts.every((part) => {
    try {
      return new URL(part).href !== '' && !/\s/.test(part);
    } catch {
      return false;
    }
  });
}

function isRedisUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'redis:' || url.protocol === 'rediss:';
  } catch {
    return false;
  }
}

/** Shows a default the way a user would type it; `surface` picks the `herald` command's default where it has its own. */
export function formatDefault(spec: OptionSpec, surface: 'library' | 'cli' = 'library'): string {
  if (surface === 'cli' && spec.cliDefault !== undefined) return spec.cliDefault;
  const value = spec.defaultValue;
  if (value === undefined) return '(none)';
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (spec.kind === 'duration') return formatDuration(value as number);
  if (spec.kind === 'size') return formatSize(value as number);
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.join(',');
  return String(value);
}

/** The `herald` command's own defaults, where they differ from the library's (it serves every route). */
export function cliDefaults(): HeraldOptions {
  const defaults: Record<string, string> = {};
  for (const spec of OPTION_SPECS) if (spec.cliDefault !== undefined) defaults[spec.key] = spec.cliDefault;
  return defaults as HeraldOptions;
}

/**
 * Validates options and fills in defaults.
 *
 * @param input options as given (numbers or text)
 * @param label how to name an option in an error, e.g. `--port` or `HERALD_PORT`
 * @throws HeraldError `HERALD_ERR_INVALID_OPTION`, with a one-line message naming the option
 */
export function resolveOptions(
  input: HeraldOptions = {},
  label: (spec: OptionSpec) => string = (spec) => `option "${spec.key}"`,
): ResolvedOptions {
  const resolved: Record<string, unknown> = {};
  for (const spec of OPTION_SPECS) {
    const given: unknown = input[spec.key];
    if (given === undefined || (given === '' && EMPTY_IS_UNSET.has(spec.kind))) {
      resolved[spec.key] = spec.defaultValue;
      continue;
    }
    const value = convert(spec.kind, given);
    const fail = (why: string): never => {
      // A secret is never repeated back: error messages end up in logs.
      const shown = spec.kind === 'secret' ? '' : ` ${JSON.stringify(given)}`;
      throw new HeraldError('HERALD_ERR_INVALID_OPTION', `invalid ${label(spec)}${shown}: ${why}`);
    };
    if (value === undefined) fail(`expected ${EXPECTED[spec.kind]}`);
    if (typeof value === 'number') {
      if (!Number.isInteger(value)) fail(`expected ${EXPECTED[spec.kind]}`);
      const { min = 0, max = Number.MAX_SAFE_INTEGER } = spec;
      if (value < min || value > max) {
        const show = spec.kind === 'duration' ? formatDuration : spec.kind === 'size' ? formatSize : String;
        fail(`must be between ${show(min)} and ${show(max)}`);
      }
    }
    resolved[spec.key] = value!;
  }
  if (resolved.redis !== undefined && resolved.store !== undefined) {
    const [redis, store] = ['redis', 'store'].map((key) => label(OPTION_SPECS.find((spec) => spec.key === key)!));
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${store} and ${redis} exclude each other: with Redis, history is kept in Redis`);
  }
  if ((resolved.tlsCert === undefined) !== (resolved.tlsKey === undefined)) {
    // The missing one was not given, so it has no label of the user's own: name every way to set it.
    const [given, missing] = resolved.tlsCert === undefined ? ['tlsKey', 'tlsCert'] : ['tlsCert', 'tlsKey'];
    const spec = OPTION_SPECS.find((candidate) => candidate.key === given)!;
    const wanted = missing === 'tlsKey' ? 'its private key: --tls-key, HERALD_TLS_KEY or option "tlsKey"' : 'a certificate: --tls-cert, HERALD_TLS_CERT or option "tlsCert"';
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${label(spec)} needs ${wanted} (HTTPS takes both or neither)`);
  }
  return Object.freeze(resolved) as unknown as ResolvedOptions;
}
