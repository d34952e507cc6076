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

/** Options of `createHub()` and the `herald` command. Every field is optional. */
export interface HeraldOptions {
  /** TCP port for {@link Hub.listen}; `0` picks a free one. Default `3004`. */
  port?: number | string;
  /** Address for {@link Hub.listen}. Default `127.0.0.1`. */
  host?: string;
  /**
   * A PEM certificate file (the chain, leaf first): {@link Hub.listen} then serves HTTPS,
   * HTTP/2 by ALPN with HTTP/1.1 for older clients. Needs `tlsKey`.
   */
  tlsCert?: string;
  /** The PEM private key file of `tlsCert`. Needs `tlsCert`. */
  tlsKey?: string;
  /** Comment sent on idle streams this often; `0` turns heartbeats off. Default `30s`. */
  heartbeat?: Duration;
  /** Reconnection delay sent to clients in the `retry:` field. Default `3s`. */
  retry?: Duration;
  /** Events kept for resume through `Last-Event-ID`. Default `10000`. */
  history?: number | string;
  /** Open streams at most; more are refused with `503`. Default `10000`. */
  maxConnections?: number | string;
  /** Largest accepted `POST /trigger` body. Default `1mb`. */
  maxBody?: Size;
  /** Bytes queued for one subscriber before it is dropped as too slow. Default `4mb`. */
  maxBuffer?: Size;
  /** How long shutdown waits for in-flight publishes before closing anyway. Default `4s`. */
  shutdownTimeout?: Duration;
  /** A SQLite file that keeps history across restarts; none: history lives in memory. */
  store?: string;
  /** Events older than this are dropped from history; `0` keeps them regardless of age. Default `0`. */
  historyTtl?: Duration;
  /** Redis URL (`redis://host:port/db`): every node publishes to and reads from it, so several processes or machines form one hub. */
  redis?: string;
  /** Key namespace in Redis, so several hubs can share one server. Default `herald`. */
  redisPrefix?: string;
  /** Processes serving the port (`node:cluster`); `auto` is one per core. Default `1`. Only `listen()` and the CLI use it. */
  workers?: number | string;
  /** HS256 secret (at least 32 bytes) checking the tokens of publishers and subscribers. */
  jwtKey?: string;
  /** A PEM public key or certificate file (RS256, ES256/384/512, EdDSA) checking tokens. */
  jwtPublicKey?: string;
  /** Key for publish tokens only: a PEM file path (`/`, `./`, `../` or `*.pem`), else an HS256 secret. */
  jwtPublisherKey?: string;
  /** Key for subscribe tokens only, as `jwtPublisherKey`. */
  jwtSubscriberKey?: string;
  /** A JWK Set file or http(s) URL; the token's `kid` picks the key. */
  jwtJwks?: string;
  /** Tolerance on `exp` and `nbf`. Default `30s`. */
  jwtClockSkew?: Duration;
  /** The cookie a browser sends its token in. Default `herald_auth`. */
  authCookie?: string;
  /** Origins whose pages may use the hub from the browser: a comma-separated list, or `*` (never with credentials). Default none. */
  corsOrigin?: string;
  /** Streams one client address may hold; `0`: no limit. Default `0`. */
  maxConnectionsPerIp?: number | string;
  /** Events per second one client address may publish (token bucket); `0`: no limit. Default `0`. */
  publishRate?: number | string;
  /** Events a client may publish at once before `publishRate` applies; `0`: as many as `publishRate`. Default `0`. */
  publishBurst?: number | string;
  /** Topic selectors one subscription may name. Default `64`. */
  maxTopics?: number | string;
  /** How long a client may take to send its request head, from its first byte (slowloris). Default `30s`. */
  headTimeout?: Duration;
  /** Serve `GET /metrics` on this port instead of the main one, so metrics need not be public; `0`: on the main port. Default `0`. */
  metricsPort?: number | string;
  /** Log level: fatal, error, warn, info, debug, trace or silent. Default `info` (the `herald` command; `createHub()` logs only to a logger it is given). */
  logLevel?: string;
  /** A path prefix the handler strips, e.g. `/herald` when mounted there without a framework that strips it. Default none. */
  basePath?: string;
}

/** Options after validation: plain numbers (milliseconds, bytes), frozen. */
export interface ResolvedOptions {
  readonly port: number;
  readonly host: string;
  /** A PEM certificate file; `''`: plain HTTP. */
  readonly tlsCert: string;
  /** Its PEM private key file; `''` exactly when `tlsCert` is. */
  readonly tlsKey: string;
  readonly heartbeat: number;
  readonly retry: number;
  readonly history: number;
  readonly maxConnections: number;
  readonly maxBody: number;
  readonly maxBuffer: number;
  readonly shutdownTimeout: number;
  readonly basePath: string;
  readonly store: string;
  readonly historyTtl: number;
  readonly redis: string;
  readonly redisPrefix: string;
  readonly workers: number;
  readonly jwtKey: string;
  readonly jwtPublicKey: string;
  readonly jwtPublisherKey: string;
  readonly jwtSubscriberKey: string;
  readonly jwtJwks: string;
  readonly jwtClockSkew: number;
  readonly authCookie: string;
  readonly headTimeout: number;
  readonly corsOrigin: string;
  readonly maxConnectionsPerIp: number;
  readonly publishRate: number;
  readonly publishBurst: number;
  readonly maxTopics: number;
  readonly metricsPort: number;
  readonly logLevel: LogLevel;
}

type Kind = 'integer' | 'duration' | 'size' | 'host' | 'path' | 'file' | 'redis-url' | 'name' | 'workers' | 'secret' | 'origins' | 'log-level';

export interface OptionSpec {
  readonly key: keyof ResolvedOptions;
  readonly flag: string;
  /** Env vars read, first set wins. */
  readonly env: readonly string[];
  readonly kind: Kind;
  readonly defaultValue: number | string;
  readonly min: number;
  readonly max: number;
  readonly description: string;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Timers in Node hold at most a signed 32-bit count of milliseconds. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const OPTION_SPECS: readonly OptionSpec[] = [
  { key: 'port', flag: 'port', env: ['HERALD_PORT', 'PORT'], kind: 'integer', defaultValue: 3004, min: 0, max: 65535, description: 'TCP port to listen on (0 picks a free one)' },
  { key: 'host', flag: 'host', env: ['HERALD_HOST', 'HOST'], kind: 'host', defaultValue: '127.0.0.1', min: 0, max: 0, description: 'address to listen on (0.0.0.0 or :: for every interface)' },
  { key: 'tlsCert', flag: 'tls-cert', env: ['HERALD_TLS_CERT'], kind: 'file', defaultValue: '', min: 0, max: 0, description: 'PEM certificate file: serve HTTPS, HTTP/2 with HTTP/1.1 fallback (needs --tls-key)' },
  { key: 'tlsKey', flag: 'tls-key', env: ['HERALD_TLS_KEY'], kind: 'file', defaultValue: '', min: 0, max: 0, description: 'PEM private key file of --tls-cert' },
  { key: 'heartbeat', flag: 'heartbeat', env: ['HERALD_HEARTBEAT'], kind: 'duration', defaultValue: 30_000, min: 0, max: MAX_TIMER_MS, description: 'comment sent on idle streams this often (0 turns it off)' },
  { key: 'retry', flag: 'retry', env: ['HERALD_RETRY'], kind: 'duration', defaultValue: 3000, min: 0, max: MAX_TIMER_MS, description: 'reconnection delay sent to clients (the retry: field)' },
  { key: 'history', flag: 'history', env: ['HERALD_HISTORY'], kind: 'integer', defaultValue: 10_000, min: 0, max: 10_000_000, description: 'events kept for resume with Last-Event-ID' },
  { key: 'historyTtl', flag: 'history-ttl', env: ['HERALD_HISTORY_TTL'], kind: 'duration', defaultValue: 0, min: 0, max: 10 * 365 * 86_400_000, description: 'events older than this leave history, e.g. 24h (0 keeps them regardless of age)' },
  { key: 'store', flag: 'store', env: ['HERALD_STORE'], kind: 'file', defaultValue: '', min: 0, max: 0, description: 'SQLite file keeping history across restarts (none: in memory)' },
  { key: 'redis', flag: 'redis', env: ['HERALD_REDIS_URL'], kind: 'redis-url', defaultValue: '', min: 0, max: 0, description: 'Redis URL, e.g. redis://127.0.0.1:6379: nodes sharing it form one hub (none: this process alone)' },
  { key: 'redisPrefix', flag: 'redis-prefix', env: ['HERALD_REDIS_PREFIX'], kind: 'name', defaultValue: 'herald', min: 0, max: 0, description: 'key namespace in Redis, so several hubs can share one server' },
  { key: 'workers', flag: 'workers', env: ['HERALD_WORKERS'], kind: 'workers', defaultValue: 1, min: 1, max: 256, description: 'processes serving the port; auto: one per core' },
  { key: 'jwtKey', flag: 'jwt-key', env: ['HERALD_JWT_KEY'], kind: 'secret', defaultValue: '', min: 0, max: 0, description: 'HS256 secret (32+ bytes) checking publisher and subscriber tokens' },
  { key: 'jwtPublicKey', flag: 'jwt-public-key', env: ['HERALD_JWT_PUBLIC_KEY'], kind: 'file', defaultValue: '', min: 0, max: 0, description: 'PEM public key file checking tokens (RS256, ES256/384/512, EdDSA)' },
  { key: 'jwtPublisherKey', flag: 'jwt-publisher-key', env: ['HERALD_JWT_PUBLISHER_KEY'], kind: 'secret', defaultValue: '', min: 0, max: 0, description: 'key for publish tokens only: a PEM file (/, ./, ../ or *.pem) or an HS256 secret' },
  { key: 'jwtSubscriberKey', flag: 'jwt-subscriber-key', env: ['HERALD_JWT_SUBSCRIBER_KEY'], kind: 'secret', defaultValue: '', min: 0, max: 0, description: 'key for subscribe tokens only, like --jwt-publisher-key' },
  { key: 'jwtJwks', flag: 'jwt-jwks', env: ['HERALD_JWT_JWKS'], kind: 'secret', defaultValue: '', min: 0, max: 0, description: 'JWK Set file or https URL; the token kid picks the key' },
  { key: 'jwtClockSkew', flag: 'jwt-clock-skew', env: ['HERALD_JWT_CLOCK_SKEW'], kind: 'duration', defaultValue: 30_000, min: 0, max: 600_000, description: 'tolerance on token exp and nbf' },
  { key: 'authCookie', flag: 'auth-cookie', env: ['HERALD_AUTH_COOKIE'], kind: 'name', defaultValue: 'herald_auth', min: 0, max: 0, description: 'cookie holding the token for browsers' },
  { key: 'maxConnections', flag: 'max-connections', env: ['HERALD_MAX_CONNECTIONS'], kind: 'integer', defaultValue: 10_000, min: 1, max: 10_000_000, description: 'open streams at most; more get 503 with Retry-After' },
  { key: 'maxBody', flag: 'max-body', env: ['HERALD_MAX_BODY'], kind: 'size', defaultValue: 1024 ** 2, min: 1, max: 1024 ** 3, description: 'largest POST /trigger body; larger gets 413' },
  { key: 'maxBuffer', flag: 'max-buffer', env: ['HERALD_MAX_BUFFER'], kind: 'size', defaultValue: 4 * 1024 ** 2, min: 1024, max: 1024 ** 3, description: 'bytes queued for one subscriber before it is dropped as too slow' },
  { key: 'basePath', flag: 'base-path', env: ['HERALD_BASE_PATH'], kind: 'path', defaultValue: '', min: 0, max: 0, description: 'path prefix to serve under, e.g. /herald (none by default)' },
  { key: 'corsOrigin', flag: 'cors-origin', env: ['HERALD_CORS_ORIGIN'], kind: 'origins', defaultValue: '', min: 0, max: 0, description: 'origins allowed to use the hub from a browser, comma-separated, or * (none: same origin only)' },
  { key: 'maxConnectionsPerIp', flag: 'max-connections-per-ip', env: ['HERALD_MAX_CONNECTIONS_PER_IP'], kind: 'integer', defaultValue: 0, min: 0, max: 10_000_000, description: 'streams one client address may hold; more get 429 (0: no limit)' },
  { key: 'publishRate', flag: 'publish-rate', env: ['HERALD_PUBLISH_RATE'], kind: 'integer', defaultValue: 0, min: 0, max: 10_000_000, description: 'events per second one client address may publish; more get 429 (0: no limit)' },
  { key: 'publishBurst', flag: 'publish-burst', env: ['HERALD_PUBLISH_BURST'], kind: 'integer', defaultValue: 0, min: 0, max: 10_000_000, description: 'events a client may publish at once before --publish-rate applies (0: as many as the rate)' },
  { key: 'maxTopics', flag: 'max-topics', env: ['HERALD_MAX_TOPICS'], kind: 'integer', defaultValue: 64, min: 1, max: 10_000, description: 'topic selectors one subscription may name; more get 400' },
  { key: 'metricsPort', flag: 'metrics-port', env: ['HERALD_METRICS_PORT'], kind: 'integer', defaultValue: 0, min: 0, max: 65535, description: 'serve GET /metrics on this port only, not on the main one (0: on the main port)' },
  { key: 'logLevel', flag: 'log-level', env: ['HERALD_LOG_LEVEL'], kind: 'log-level', defaultValue: 'info', min: 0, max: 0, description: 'fatal, error, warn, info, debug, trace or silent' },
  { key: 'headTimeout', flag: 'head-timeout', env: ['HERALD_HEAD_TIMEOUT'], kind: 'duration', defaultValue: 30_000, min: 100, max: 600_000, description: 'time a client has to send its request head, from its first byte' },
  { key: 'shutdownTimeout', flag: 'shutdown-timeout', env: ['HERALD_SHUTDOWN_TIMEOUT'], kind: 'duration', defaultValue: 4000, min: 0, max: MAX_TIMER_MS, description: 'on SIGTERM/SIGINT, how long to wait for in-flight publishes' },
];

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
};

function convert(kind: Kind, value: number | string): number | string | undefined {
  if (kind === 'host') return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
  if (kind === 'file' || kind === 'secret') return typeof value === 'string' ? value : undefined;
  if (kind === 'log-level') return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value.trim()) ? value.trim() : undefined;
  if (kind === 'origins') return typeof value === 'string' && parseOrigins(value) !== undefined ? value.trim() : undefined;
  if (kind === 'redis-url') return typeof value === 'string' && (value === '' || isRedisUrl(value)) ? value : undefined;
  if (kind === 'name') return typeof value === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(value) ? value : undefined;
  if (kind === 'workers' && typeof value === 'string' && value.trim() === 'auto') return availableParallelism();
  if (kind === 'path') {
    if (typeof value !== 'string') return undefined;
    return value === '' || /^(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/.test(value) ? value : undefined;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (kind === 'duration') return parseDuration(value);
  if (kind === 'size') return parseSize(value);
  return /^\s*\d+\s*$/.test(value) ? Number(value) : undefined;
}

function isRedisUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'redis:' || url.protocol === 'rediss:';
  } catch {
    return false;
  }
}

/** Shows a default the way a user would type it. */
export function formatDefault(spec: OptionSpec): string {
  if (spec.kind === 'duration') return formatDuration(spec.defaultValue as number);
  if (spec.kind === 'size') return formatSize(spec.defaultValue as number);
  if (spec.defaultValue === '') return '(none)';
  return String(spec.defaultValue);
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
  const resolved: Record<string, number | string> = {};
  for (const spec of OPTION_SPECS) {
    const given = input[spec.key];
    if (given === undefined) {
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
      if (value < spec.min || value > spec.max) {
        const show = spec.kind === 'duration' ? formatDuration : spec.kind === 'size' ? formatSize : String;
        fail(`must be between ${show(spec.min)} and ${show(spec.max)}`);
      }
    }
    resolved[spec.key] = value!;
  }
  if (resolved.redis !== '' && resolved.store !== '') {
    const [redis, store] = ['redis', 'store'].map((key) => label(OPTION_SPECS.find((spec) => spec.key === key)!));
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${store} and ${redis} exclude each other: with Redis, history is kept in Redis`);
  }
  if ((resolved.tlsCert === '') !== (resolved.tlsKey === '')) {
    // The missing one was not given, so it has no label of the user's own: name every way to set it.
    const [given, missing] = resolved.tlsCert === '' ? ['tlsKey', 'tlsCert'] : ['tlsCert', 'tlsKey'];
    const spec = OPTION_SPECS.find((candidate) => candidate.key === given)!;
    const wanted = missing === 'tlsKey' ? 'its private key: --tls-key, HERALD_TLS_KEY or option "tlsKey"' : 'a certificate: --tls-cert, HERALD_TLS_CERT or option "tlsCert"';
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${label(spec)} needs ${wanted} (HTTPS takes both or neither)`);
  }
  return Object.freeze(resolved) as unknown as ResolvedOptions;
}
