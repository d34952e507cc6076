/**
 * `createHub()`: the hub core, its HTTP layer and an optional server of its own.
 */

import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { resolveOptions, type HeraldOptions, type ResolvedOptions } from './config/options.js';
import { FrontDoor } from './http/front-door.js';
import { HttpLayer, type RequestHandler } from './http/handler.js';
import { Hub, type HubCounters, type Published } from './hub/hub.js';
import type { PublishMessage, TextMessageMeta } from './hub/messages.js';
import type { EventLog } from './log/event-log.js';
import { MemoryEventLog } from './log/memory-log.js';
import { RedisEventLog } from './log/redis-log.js';
import { createTokenVerifier } from './auth/index.js';
import { AccessPolicy } from './http/access.js';
import { answerClientErrors } from './http/client-errors.js';
import { CorsPolicy, parseOrigins } from './http/cors.js';
import { PublishRateLimiter } from './http/rate-limit.js';
import { listenForMetrics } from './http/metrics-port.js';
import { silentLogger, type Logger } from './observe/logger.js';
import { HubMetrics } from './observe/metrics.js';
import { SqliteEventLog } from './log/sqlite-log.js';
import { loadTlsCredentials, SecureDoor, type TlsCredentials } from './http/tls.js';

/** Parts a library user may supply instead of the defaults. */
export interface HeraldParts {
  /** Where events are kept; default: Redis with `redis`, the SQLite file of `store`, else an in-memory ring. */
  eventLog?: EventLog;
  /** Told, in one line, about events worth an operator's attention (Redis lost or back, an exposed publish endpoint); default: the logger's warn. */
  notify?: (message: string) => void;
  /** A pino logger for start, stop, errors and dropped subscribers; default: none (silent). */
  logger?: Logger;
  /** Whether `listen()` warns about an exposed publish endpoint (the primary of `--workers` warns once for all). Default true. */
  warnOnExposure?: boolean;
  /** How to name an option in an error, e.g. `--jwt-key`; default `option "jwtKey"`. */
  label?: (key: keyof ResolvedOptions) => string;
}

export interface Listening {
  /**
   * The listening server; its connections go to Herald's front door, then to a `node:http` server,
   * or with `tlsCert` to a `node:http2` secure server (HTTP/2, HTTP/1.1 fallback).
   */
  readonly server: Server;
  /** e.g. `http://127.0.0.1:3004`, or `https://127.0.0.1:3004` with `tlsCert` */
  readonly url: string;
  readonly port: number;
}

/**
 * Pending connections the kernel queues before accepting. Node's default (511)
 * overflows in a reconnect storm, and each dropped SYN costs the client a
 * one-second retransmit; the kernel caps this at `net.core.somaxconn`.
 */
export const LISTEN_BACKLOG = 4096;

/** How long a publisher may take to send its body before it gets `408`. */
const BODY_TIMEOUT_MS = 30_000;
/** How often Node checks its connections' head and request deadlines (its default, 30 s, lets them run late). */
const DEADLINE_CHECK_MS = 1000;

export class Herald {
  /** The validated options, frozen. */
  readonly options: ResolvedOptions;
  /** The hub core (topics, fan-out, backpressure). */
  readonly hub: Hub;
  /**
   * A request listener for `node:http` and Express/Connect middleware:
   * serves `/events`, `/trigger`, `/health` and the page at `/`; unknown paths go to `next` when given, else `404`.
   */
  readonly handler: RequestHandler;
  /** The hub's Prometheus metrics (served at `GET /metrics`, or on `metricsPort`). */
  readonly metrics: HubMetrics;
  readonly logger: Logger;
  private readonly http: HttpLayer;
  private metricsServer: ReturnType<typeof createHttpServer> | undefined;
  private readonly access: AccessPolicy;
  private readonly rate: PublishRateLimiter;
  private readonly notify: (message: string) => void;
  private readonly warnOnExposure: boolean;
  private server: Server | undefined;
  private frontDoor: FrontDoor | undefined;
  private httpServer: ReturnType<typeof createHttpServer> | undefined;
  /** With `tlsCert`: the certificate and key, read and checked at construction. */
  private readonly tls: TlsCredentials | undefined;
  private secureDoor: SecureDoor | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: ResolvedOptions, parts: HeraldParts = {}) {
    this.options = options;
    this.logger = parts.logger ?? silentLogger();
    const logger = this.logger;
    this.notify = parts.notify ?? ((message) => logger.warn(message));
    this.hub = new Hub(options, parts.eventLog ?? defaultEventLog(options, this.notify));
    this.metrics = new HubMetrics(this.hub);
    this.hub.observe({
      disconnected: (subscriber, reason) => {
        if (reason !== 'slow-consumer') return;
        logger.warn(
          { requestId: subscriber.requestId, client: subscriber.address, topics: subscriber.selectors.map((s) => s.source), maxBuffer: options.maxBuffer },
          'subscriber dropped: it did not read fast enough (--max-buffer); it can reconnect and resume',
        );
      },
    });
    const label = parts.label ?? ((key: string) => `option "${key}"`);
    // Read now, so a bad file stops the start with one line naming the option, before anything listens.
    this.tls = options.tlsCert === '' ? undefined : loadTlsCredentials({ cert: options.tlsCert, key: options.tlsKey }, label);
    const verifier = hasAnyKey(options)
      ? createTokenVerifier(
          {
            jwtKey: options.jwtKey,
            jwtPublicKey: options.jwtPublicKey,
            jwtPublisherKey: options.jwtPublisherKey,
            jwtSubscriberKey: options.jwtSubscriberKey,
            jwtJwks: options.jwtJwks,
            clockSkew: Math.round(options.jwtClockSkew / 1000),
          },
          (setting) => (setting === 'clockSkew' ? label('jwtClockSkew') : label(setting)),
        )
      : undefined;
    this.access = new AccessPolicy(verifier, options.authCookie);
    this.warnOnExposure = parts.warnOnExposure ?? true;
    this.rate = new PublishRateLimiter(options.publishRate, options.publishBurst || options.publishRate);
    this.http = new HttpLayer(this.hub, {
      access: this.access,
      cors: new CorsPolicy(parseOrigins(options.corsOrigin) ?? []),
      rate: this.rate,
      maxBody: options.maxBody,
      basePath: options.basePath,
      bodyTimeout: BODY_TIMEOUT_MS,
      metrics: this.metrics,
      serveMetrics: options.metricsPort === 0,
      logger,
      retry: options.retry,
    });
    this.handler = this.http.handle;
  }

  /** Publishes one JSON message, or a batch atomically; see {@link Hub.publish}. */
  publish(message: PublishMessage): Promise<Published>;
  publish(messages: readonly PublishMessage[]): Promise<Published[]>;
  publish(input: PublishMessage | readonly PublishMessage[]): Promise<Published | Published[]> {
    return this.hub.publish(input as PublishMessage);
  }

  /** Publishes text as the data, verbatim. */
  publishText(text: string, meta?: TextMessageMeta): Promise<Published> {
    return this.hub.publishText(text, meta);
  }

  counters(): HubCounters {
    return this.hub.counters();
  }

  /**
   * Starts a server of its own on `port` and `host` (default: the options'):
   * HTTP/1.1, or with `tlsCert` HTTPS with HTTP/2 (ALPN `h2`) and HTTP/1.1 fallback.
   */
  async listen(port: number = this.options.port, host: string = this.options.host): Promise<Listening> {
    if (this.server !== undefined) throw new Error('the hub is already listening');
    const warning = exposureWarning(this.options, host);
    if (warning !== undefined && this.warnOnExposure) this.notify(warning);
    const accept = await this.attach();
    if (this.server !== undefined) throw new Error('the hub is already listening');
    const server = createNetServer({ noDelay: true }, accept);
    this.server = server;
    if (this.options.metricsPort !== 0) this.metricsServer = await listenForMetrics(this.metrics, this.options.metricsPort, host, this.handler);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
        server.off('error', reject);
        const address = server.address() as AddressInfo;
        const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        const scheme = this.tls === undefined ? 'http' : 'https';
        resolve({ server, port: address.port, url: `${scheme}://${shownHost}:${address.port}` });
      });
    });
  }

  /** Where `--metrics-port` listens, once {@link listen} started it. */
  get metricsAddress(): AddressInfo | undefined {
    return (this.metricsServer?.address() as AddressInfo | null) ?? undefined;
  }

  /**
   * Serves connections accepted elsewhere (the primary process of
   * `--workers` passes them on): returns the function that takes a socket.
   * Resolves once a shared log is followed, or waiting longer is pointless.
   */
  async attach(): Promise<(socket: Socket) => void> {
    if (this.accepting !== undefined) return this.accepting;
    // A shared log that is reachable is followed before clients arrive; one that is not
    // does not stop the hub from starting (it reports 503 until the log is back).
    await this.hub.log.ready?.();
    // Another call may have attached while this one waited.
    const attached = this.accepting as ((socket: Socket) => void) | undefined;
    if (attached !== undefined) return attached;
    if (this.tls !== undefined) {
      // HTTPS: no raw-socket fast path; every connection goes to the secure server, whatever its protocol.
      const secureDoor = new SecureDoor(this.handler, this.tls, {
        headTimeout: this.options.headTimeout,
        bodyTimeout: BODY_TIMEOUT_MS,
        checkInterval: Math.min(DEADLINE_CHECK_MS, this.options.headTimeout),
      });
      this.secureDoor = secureDoor;
      return secureDoor.accept;
    }
    // Deadlines against slow clients (slowloris): the head within --head-timeout, the body within 30 s more.
    // Host is checked by the HTTP layer, so its absence gets a JSON answer like every other error.
    const http = createHttpServer(
      {
        noDelay: true,
        headersTimeout: this.options.headTimeout,
        requestTimeout: this.options.headTimeout + BODY_TIMEOUT_MS,
        connectionsCheckingInterval: Math.min(DEADLINE_CHECK_MS, this.options.headTimeout),
        requireHostHeader: false,
      },
      this.handler,
    );
    answerClientErrors(http);
    // This server never listens itself (the front door hands it connections), so start
    // its header and request timeouts the way `listen` would.
    http.emit('listening');
    const frontDoor = new FrontDoor(this.hub, http, this.options.basePath, this.options.headTimeout, this.http.refused);
    this.httpServer = http;
    this.frontDoor = frontDoor;
    return frontDoor.accept;
  }

  /** The `connection` listener of whichever door {@link attach} opened. */
  private get accepting(): ((socket: Socket) => void) | undefined {
    return this.frontDoor?.accept ?? this.secureDoor?.accept;
  }

  /**
   * Shuts down: stops accepting, lets in-flight publishes finish (up to
   * `shutdownTimeout`), ends every stream so clients reconnect elsewhere,
   * then closes the server if {@link listen} started one.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const { server, httpServer: http, frontDoor, secureDoor } = this;
    const serverClosed = server === undefined ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    await this.http.drain(this.options.shutdownTimeout);
    await this.hub.close();
    this.rate.close();
    this.metricsServer?.close();
    this.metricsServer?.closeAllConnections();
    if (http !== undefined && frontDoor !== undefined) {
      http.close();
      http.closeIdleConnections();
      // Connections still busy after a grace period (a stalled upload, a client that stopped reading) are cut.
      const force = setTimeout(() => {
        http.closeAllConnections();
        frontDoor.destroyAll();
      }, 500);
      force.unref();
      await serverClosed;
      clearTimeout(force);
    }
    if (secureDoor !== undefined) {
      // Streams were ended above: HTTP/2 sessions get GOAWAY and close once their streams are done.
      const force = setTimeout(() => secureDoor.destroyAll(), 500);
      force.unref();
      await Promise.all([serverClosed, secureDoor.close()]);
      clearTimeout(force);
    }
  }
}

/**
 * The start-up warning for a hub reachable from other machines whose
 * publishers need no token (they are then refused, so nobody can publish
 * remotely until a key is set); `undefined` when there is nothing to say.
 */
export function exposureWarning(options: ResolvedOptions, host: string = options.host): string | undefined {
  if (options.jwtKey !== '' || options.jwtPublicKey !== '' || options.jwtJwks !== '' || options.jwtPublisherKey !== '') return undefined;
  if (isLoopbackHost(host)) return undefined;
  return (
    `WARNING: listening on ${host} without a publisher key: POST /trigger is refused (401) for every client but this machine. ` +
    'Set --jwt-key (or --jwt-public-key, --jwt-jwks, --jwt-publisher-key) to let other machines publish with a token.'
  );
}

function hasAnyKey(options: ResolvedOptions): boolean {
  return [options.jwtKey, options.jwtPublicKey, options.jwtPublisherKey, options.jwtSubscriberKey, options.jwtJwks].some((value) => value !== '');
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** History in Redis with `--redis`, in the SQLite file of `--store`, or in memory. */
export function defaultEventLog(options: ResolvedOptions, notify?: (message: string) => void): EventLog {
  if (options.redis !== '') {
    return new RedisEventLog({ url: options.redis, prefix: options.redisPrefix, capacity: options.history, maxAgeMs: options.historyTtl, notify });
  }
  if (options.store !== '') {
    return new SqliteEventLog({ path: options.store, capacity: options.history, maxAgeMs: options.historyTtl });
  }
  return new MemoryEventLog({ capacity: options.history, maxAgeMs: options.historyTtl });
}

/**
 * Creates a hub.
 *
 * @param options the same options as the `herald` command (see README); durations and sizes take numbers or text like `30s`, `1mb`
 * @throws HeraldError `HERALD_ERR_INVALID_OPTION` when an option is invalid
 * @example
 * import { createServer } from 'node:http';
 * import { createHub } from 'herald';
 *
 * const hub = createHub({ heartbeat: '15s', history: 1000 });
 * createServer(hub.handler).listen(3004);
 * await hub.publish({ event: 'greeting', topic: 'news', data: { text: 'hello' } });
 */
export function createHub(options: HeraldOptions = {}, parts: HeraldParts = {}): Herald {
  return new Herald(resolveOptions(options), parts);
}
