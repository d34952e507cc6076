/**
 * `createHub()`: the facade over the hub core, its HTTP layer and, when
 * asked, a server of its own. Nothing below imports this file.
 */

import type { AddressInfo, Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { resolveOptions, type HeraldOptions, type OptionKey, type ResolvedOptions } from './config/options.js';
import { HeraldError } from './errors.js';
import { HttpLayer, type RequestHandler } from './http/handler.js';
import type { FetchInfo } from './http/fetch.js';
import { Hub, type HubCounters, type Published } from './hub/hub.js';
import type { PublishMessage, TextMessageMeta } from './hub/messages.js';
import type { EventLog } from './log/event-log.js';
import { createEventLog } from './log/create.js';
import { validUrlPattern } from './mercure/front-end.js';
import { resolveMercureTokenSettings } from './mercure/tokens.js';
import { createTokenVerifier } from './auth/index.js';
import { AccessPolicy } from './http/access.js';
import { AddressLimit } from './http/address-limit.js';
import { CorsPolicy, parseOrigins } from './http/cors.js';
import { PublishRateLimiter } from './http/rate-limit.js';
import { listenForMetrics } from './http/metrics-port.js';
import { BODY_TIMEOUT_MS, HubServer, type Listening } from './http/server.js';
import { silentLogger, type Logger } from './observe/logger.js';
import { HubMetrics } from './observe/metrics.js';
import { loadTlsCredentials, type TlsCredentials } from './http/tls.js';

export type { Listening } from './http/server.js';

/** Parts a library user may supply instead of the defaults. */
export interface HeraldParts {
  /** Where events are kept; default: the log the options choose (Redis with `redis`, the SQLite file of `store`, else an in-memory ring). */
  eventLog?: EventLog;
  /** Told, in one line, about events worth an operator's attention (Redis lost or back, an exposed publish endpoint); default: the logger's warn. */
  notify?: (message: string) => void;
  /** A logger for start, stop, errors and dropped subscribers (pino, or anything with its methods); default: none (silent). */
  logger?: Logger;
  /** Whether `listen()` warns about an exposed publish endpoint (the primary of `--workers` warns once for all). Default true. */
  warnOnExposure?: boolean;
  /** How to name an option in an error, e.g. `--jwt-key`; default `option "jwtKey"`. */
  label?: (key: OptionKey) => string;
}

export class Herald {
  /** The validated options, frozen. */
  readonly options: ResolvedOptions;
  /** The hub core (topics, fan-out, backpressure). */
  readonly hub: Hub;
  /**
   * A request listener for `node:http` and `node:http2`, and Express/Connect middleware:
   * serves `/events`, `/trigger` and the optional `routes`; unknown paths go to `next` when given, else `404`.
   */
  readonly handler: RequestHandler;
  /**
   * The Web-standard handler: `Request` in, `Response` out (a stream is a `ReadableStream` body),
   * for Hono, Bun, Deno and any fetch-based server.
   * @example
   * app.all('/herald/*', (c) => hub.fetch(c.req.raw, { remoteAddress: getConnInfo(c).remote.address }));
   */
  readonly fetch: (request: Request, info?: FetchInfo) => Promise<Response>;
  /** The hub's Prometheus metrics (served at `GET /metrics` with the `metrics` route, or on `metricsPort`). */
  readonly metrics: HubMetrics;
  readonly logger: Logger;
  private readonly http: HttpLayer;
  private readonly server: HubServer;
  private metricsServer: HttpServer | undefined;
  private readonly rate: PublishRateLimiter;
  private readonly notify: (message: string) => void;
  private readonly warnOnExposure: boolean;
  /** With `tlsCert`: the certificate and key, read and checked at construction. */
  private readonly tls: TlsCredentials | undefined;
  private attached: Promise<(socket: Socket) => void> | undefined;
  private listening = false;
  private closing: Promise<void> | undefined;

  constructor(options: ResolvedOptions, parts: HeraldParts = {}) {
    this.options = options;
    this.logger = parts.logger ?? silentLogger();
    const logger = this.logger;
    this.notify = parts.notify ?? ((message) => logger.warn(message));
    this.hub = new Hub(options, parts.eventLog ?? createEventLog(options, this.notify));
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
    const label = parts.label ?? ((key: OptionKey) => `option "${key}"`);
    // Read now, so a bad file stops the start with one line naming the option, before anything listens.
    this.tls = options.tlsCert === undefined ? undefined : loadTlsCredentials({ cert: options.tlsCert, key: options.tlsKey! }, label);
    const keys = {
      jwtKey: options.jwtKey,
      jwtPublicKey: options.jwtPublicKey,
      jwtPublisherKey: options.jwtPublisherKey,
      jwtSubscriberKey: options.jwtSubscriberKey,
      jwtJwks: options.jwtJwks,
      clockSkew: Math.round(options.jwtClockSkew / 1000),
    };
    const keyLabel = (setting: string): string => (setting === 'clockSkew' ? label('jwtClockSkew') : label(setting as OptionKey));
    const verifier = hasAnyKey(options) ? createTokenVerifier(keys, keyLabel) : undefined;
    // Mercure tokens are verified with the same keys; the hub's own selector engine checks their URL patterns.
    const mercureTokens = resolveMercureTokenSettings(
      { ...keys, mercureAudience: options.mercureAudience, mercureIssuer: options.mercureIssuer, validateUrlPattern: validUrlPattern },
      keyLabel,
    );
    this.warnOnExposure = parts.warnOnExposure ?? true;
    this.rate = new PublishRateLimiter(options.publishRate, options.publishBurst || options.publishRate);
    const routes = new Set(options.routes);
    // With --metrics-port, metrics are served there only.
    if (options.metricsPort !== undefined) routes.delete('metrics');
    this.http = new HttpLayer(this.hub, {
      access: new AccessPolicy(verifier, options.authCookie),
      cors: new CorsPolicy(parseOrigins(options.corsOrigin ?? '') ?? []),
      rate: this.rate,
      addresses: new AddressLimit(options.maxConnectionsPerIp, Math.max(1, Math.ceil(options.retry / 1000))),
      maxBody: options.maxBody,
      basePath: options.basePath,
      bodyTimeout: BODY_TIMEOUT_MS,
      metrics: this.metrics,
      routes,
      logger,
      retry: options.retry,
      mercure: {
        tokens: mercureTokens,
        maxTopics: options.maxTopics,
        secure: this.tls !== undefined,
        subscriptionEvents: options.mercureSubscriptions,
        trustedOrigins: (parseOrigins(options.corsOrigin ?? '') ?? []).filter((origin) => origin !== '*'),
      },
    });
    this.handler = this.http.handle;
    this.fetch = this.http.fetch;
    this.server = new HubServer(this.http, { headTimeout: options.headTimeout, basePath: options.basePath, tls: this.tls });
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
   * Resolves once the event log is open (and a shared one followed, or
   * waiting longer is pointless: the hub then answers 503 until it is back).
   * @throws HeraldError `HERALD_ERR_INVALID_OPTION` when the log cannot be opened at all (a store file that cannot be created)
   */
  async ready(): Promise<void> {
    await this.hub.log.ready?.();
  }

  /**
   * Starts a server of its own on `port` and `host` (default: the options'):
   * HTTP/1.1, or with `tlsCert` HTTPS with HTTP/2 (ALPN `h2`) and HTTP/1.1 fallback.
   */
  async listen(port: number = this.options.port, host: string = this.options.host): Promise<Listening> {
    if (this.listening) throw new HeraldError('HERALD_ERR_INVALID_STATE', 'the hub is already listening');
    this.listening = true;
    const warning = exposureWarning(this.options, host);
    if (warning !== undefined && this.warnOnExposure) this.notify(warning);
    await this.attach();
    if (this.options.metricsPort !== undefined) this.metricsServer = await listenForMetrics(this.metrics, this.options.metricsPort, host, this.handler);
    return this.server.listen(port, host);
  }

  /** Where `--metrics-port` listens, once {@link listen} started it. */
  get metricsAddress(): AddressInfo | undefined {
    return (this.metricsServer?.address() as AddressInfo | null) ?? undefined;
  }

  /**
   * Serves connections accepted elsewhere (the primary process of
   * `--workers` passes them on): returns the function that takes a socket,
   * once the event log is ready.
   */
  attach(): Promise<(socket: Socket) => void> {
    this.attached ??= this.ready().then(() => this.server.accept());
    return this.attached;
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
    const listening = this.server.stopListening();
    await this.http.drain(this.options.shutdownTimeout);
    await this.hub.close();
    this.metrics.close();
    this.rate.close();
    this.metricsServer?.close();
    this.metricsServer?.closeAllConnections();
    await this.server.close(listening);
  }
}

/**
 * The start-up warning for a hub reachable from other machines whose
 * publishers need no token (they are then refused, so nobody can publish
 * remotely until a key is set); `undefined` when there is nothing to say.
 */
export function exposureWarning(options: ResolvedOptions, host: string = options.host): string | undefined {
  if (options.jwtKey !== undefined || options.jwtPublicKey !== undefined || options.jwtJwks !== undefined || options.jwtPublisherKey !== undefined) return undefined;
  if (isLoopbackHost(host)) return undefined;
  return (
    `WARNING: listening on ${host} without a publisher key: POST /trigger is refused (401) for every client but this machine. ` +
    'Set --jwt-key (or --jwt-public-key, --jwt-jwks, --jwt-publisher-key) to let other machines publish with a token.'
  );
}

function hasAnyKey(options: ResolvedOptions): boolean {
  return [options.jwtKey, options.jwtPublicKey, options.jwtPublisherKey, options.jwtSubscriberKey, options.jwtJwks].some((value) => value !== undefined);
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
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
