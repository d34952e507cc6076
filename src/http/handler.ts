/**
 * The HTTP layer: routes requests to the hub, whatever carried them. One
 * router serves `node:http` and `node:http2` (as a request listener and as
 * Express/Connect middleware: unknown paths go to `next`) and Web-standard
 * `Request`s (`hub.fetch`). The transports only adapt their objects to an
 * {@link HttpExchange}; every route, check and error answer lives here once.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { HeraldError, isHeraldError } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import { settleWithin } from '../settle.js';
import { VERSION } from '../version.js';
import type { Route } from '../config/options.js';
import type { AccessPolicy } from './access.js';
import type { AddressLimit } from './address-limit.js';
import { CorsPolicy, isPreflight } from './cors.js';
import { DashboardFeed } from './dashboard.js';
import { EventStreams } from './events.js';
import type { HeaderFields, HttpExchange } from './exchange.js';
import { fetchExchange, type FetchInfo } from './fetch.js';
import type { MetricsSource } from './metrics-port.js';
import { nodeExchange } from './node.js';
import { servePage } from './page.js';
import type { PublishRateLimiter } from './rate-limit.js';
import { asHeraldError, jsonResponse, respondError, respondJson, sendError } from './respond.js';
import { streamHead, stripBasePath } from './stream-head.js';
import { publishRequest } from './trigger.js';
import { requestIdOf, type Logger } from '../observe/logger.js';
import { refusalReason, type HubMetrics } from '../observe/metrics.js';

import { MercureFrontEnd, RESOURCE_METADATA_PATH, type MercureRequest, type MercureSettings } from '../mercure/front-end.js';
import { SUBSCRIPTIONS_PATH } from '../mercure/subscriptions.js';
import { MERCURE_PATH } from '../mercure/tokens.js';
import { presenceAnswer } from './presence.js';

export type NextFunction = (error?: unknown) => void;
/** A `node:http` / `node:http2` request listener that also works as Express/Connect middleware. */
export type RequestHandler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, next?: NextFunction) => void;


export interface HttpSettings {
  readonly access: AccessPolicy;
  readonly cors: CorsPolicy;
  readonly rate: PublishRateLimiter;
  readonly addresses: AddressLimit;
  readonly maxBody: number;
  readonly basePath: string | undefined;
  /** How long a publisher may take to send its body. */
  readonly bodyTimeout: number;
  readonly metrics: HubMetrics;
  /** The optional routes this hub serves (`/metrics` only when it is not on `--metrics-port`). */
  readonly routes: ReadonlySet<Route>;
  readonly logger: Logger;
  /** The reconnection delay sent to dashboard viewers. */
  readonly retry: number;
  /** Serves Mercure at `/.well-known/mercure`. */
  readonly mercure: Omit<MercureSettings, 'rate' | 'addresses' | 'maxBody' | 'bodyTimeout' | 'basePath'>;
}

/** The path of a request target, without its query (which may hold a token), for logs. */
function pathOnly(exchange: HttpExchange): string {
  return exchange.url.pathname.slice(0, 200);
}

function methodNotAllowed(...allow: string[]): HeraldError {
  return new HeraldError('HERALD_ERR_METHOD_NOT_ALLOWED', `use ${allow.join(' or ')} on this path`, { allow });
}

/** The routes whose cross-origin requests a browser preflights, with the method each takes. */
const PREFLIGHTED: Readonly<Record<string, string>> = { '/events': 'GET', '/trigger': 'POST', [MERCURE_PATH]: 'GET, POST', '/presence': 'GET' };

function preflightedMethod(path: string): string | undefined {
  return PREFLIGHTED[path] ?? (isSubscriptionsPath(path) ? 'GET' : undefined);
}

/** Mercure's subscriptions API: the collection and every resource below it. */
function isSubscriptionsPath(path: string): boolean {
  return path === SUBSCRIPTIONS_PATH || path.startsWith(`${SUBSCRIPTIONS_PATH}/`);
}

/** What one request carries through the router: its id and CORS fields go on every answer. */
class RequestContext {
  cors: HeaderFields = {};

  constructor(
    readonly exchange: HttpExchange,
    readonly requestId: string,
  ) {}

  /** The fields every answer to this request starts with: its id, then CORS. */
  get fields(): HeaderFields {
    return { 'X-Request-Id': this.requestId, ...this.cors };
  }
}

export class HttpLayer {
  private readonly startedAt = Date.now();
  private readonly publishing = new Set<Promise<void>>();
  private draining = false;
  private readonly dashboard: DashboardFeed;
  /** Opens streams; the front door shares it, so both paths subscribe alike. */
  readonly streams: EventStreams;
  private readonly mercure: MercureFrontEnd;

  constructor(
    private readonly hub: Hub,
    private readonly settings: HttpSettings,
  ) {
    this.dashboard = new DashboardFeed(hub, settings.access, settings.retry);
    this.streams = new EventStreams(hub, settings.access, settings.addresses);
    this.mercure = new MercureFrontEnd(hub, {
      ...settings.mercure,
      rate: settings.rate,
      addresses: settings.addresses,
      maxBody: settings.maxBody,
      bodyTimeout: settings.bodyTimeout,
      basePath: settings.basePath,
    });
  }

  /** The `node:http` / `node:http2` request listener and Express/Connect middleware. */
  readonly handle: RequestHandler = (req, res, next) => {
    // The HTTP/2 compatibility objects offer what this layer uses of node:http's.
    const request = req as IncomingMessage;
    const response = res as ServerResponse;
    let exchange: HttpExchange;
    try {
      exchange = nodeExchange(request, response);
    } catch (error) {
      // A target that is not even a URL: answered here, before any route could be chosen.
      if (!response.headersSent) response.setHeader('X-Request-Id', requestIdOf(undefined));
      sendError(response, error);
      return;
    }
    void this.serve(exchange, next);
  };

  /**
   * The Web-standard handler: `Request` in, `Response` out; a stream is a `ReadableStream` body.
   * @param info what the server knows beyond the request (the client's address)
   */
  readonly fetch = async (request: Request, info?: FetchInfo): Promise<Response> => {
    let built: ReturnType<typeof fetchExchange>;
    try {
      built = fetchExchange(request, info);
    } catch (error) {
      const known = asHeraldError(error);
      const answer = jsonResponse(known.toJSON());
      return new Response(answer.body, { status: known.status, headers: { ...answer.fields } });
    }
    await this.serve(built.exchange);
    // A route that left without answering (the client went away meanwhile) still owes the server a Response.
    if (!built.answered()) built.exchange.respond(499, {}, undefined);
    return built.response;
  };

  /** Routes one request; never rejects (every failure is answered, or logged when nobody is left to answer). */
  private async serve(exchange: HttpExchange, next?: NextFunction): Promise<void> {
    const requestId = requestIdOf(exchange.header('x-request-id'));
    const context = new RequestContext(exchange, requestId);
    try {
      if (exchange.httpVersion === '1.1' && exchange.header('host') === undefined) {
        throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'an HTTP/1.1 request needs a Host header');
      }
      const path = stripBasePath(exchange.url.pathname, this.settings.basePath);
      if (exchange.header('origin') !== undefined) {
        const method = preflightedMethod(path);
        if (method !== undefined && isPreflight(exchange)) {
          exchange.respond(204, { ...context.fields, ...this.settings.cors.preflight(exchange, method) });
          return;
        }
        // Errors carry the fields too, so a page can read why it was refused.
        context.cors = this.settings.cors.fieldsFor(exchange);
      }
      await this.route(path, context, next);
    } catch (error) {
      this.fail(context, error);
    }
  }

  private async route(path: string, context: RequestContext, next?: NextFunction): Promise<void> {
    const { exchange } = context;
    const { method } = exchange;
    const { routes } = this.settings;
    switch (path) {
      case '/events':
        if (method !== 'GET') throw methodNotAllowed('GET');
        return this.events(context);
      case '/trigger':
        if (method !== 'POST') throw methodNotAllowed('POST');
        return this.trigger(context);
      case MERCURE_PATH:
        if (method === 'GET') return this.mercureSubscribe(context);
        if (method === 'POST') return this.mercurePublish(context);
        throw methodNotAllowed('GET', 'POST');
      case RESOURCE_METADATA_PATH:
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET', 'HEAD');
        return this.mercure.resourceMetadata(this.mercureRequest(context));
      case '/presence':
        if (!routes.has('presence')) break;
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET', 'HEAD');
        return presenceAnswer(this.hub, this.settings.access, exchange, context.fields);
      case '/health':
        if (!routes.has('health')) break;
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET', 'HEAD');
        return this.health(context);
      case '/dashboard/stream':
        if (!routes.has('dashboard')) break;
        if (method !== 'GET') throw methodNotAllowed('GET');
        return this.dashboard.open(exchange, () => exchange.openStream(streamHead(context.requestId, context.cors, exchange.streamFraming)), () => exchange.isGone());
      case '/metrics':
        if (!routes.has('metrics')) break;
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET', 'HEAD');
        return this.serveMetrics(context, this.settings.metrics);
    }
    if (isSubscriptionsPath(path)) {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET', 'HEAD');
      return this.mercure.subscriptions(this.mercureRequest(context), path);
    }
    if (servePage(path, exchange, routes, context.fields)) return;
    // Not ours: the framework's next handler, or 404.
    if (next !== undefined) {
      next();
      return;
    }
    throw new HeraldError('HERALD_ERR_NOT_FOUND', `no route for ${method} ${path.slice(0, 200)}; see GET /events, POST /trigger${routes.has('health') ? ', GET /health' : ''}`);
  }

  private async events(context: RequestContext): Promise<void> {
    const { exchange, requestId, cors } = context;
    try {
      await this.streams.open(exchange, { requestId, cors, framing: exchange.streamFraming, open: (head) => exchange.openStream(head) }, () => exchange.isGone());
    } catch (error) {
      this.refused(error);
      throw error;
    }
  }

  private mercureRequest(context: RequestContext): MercureRequest {
    return { exchange: context.exchange, requestId: context.requestId, cors: context.cors, fields: context.fields };
  }

  private async mercureSubscribe(context: RequestContext): Promise<void> {
    const { exchange } = context;
    try {
      await this.mercure.subscribe(this.mercureRequest(context), () => exchange.isGone());
    } catch (error) {
      this.refused(error);
      throw error;
    }
  }

  /** Answers `200`, `text/plain`, the update's id (SPEC). */
  private async mercurePublish(context: RequestContext): Promise<void> {
    if (this.draining) throw new HeraldError('HERALD_ERR_SHUTTING_DOWN', 'the hub is shutting down; publish to another node', { retryAfter: 1 });
    const { exchange } = context;
    const done = this.mercure.publish(this.mercureRequest(context)).then((id) => {
      if (id === undefined) return;
      exchange.respond(200, { ...context.fields, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(id)) }, id);
    });
    this.publishing.add(done);
    try {
      await done;
    } finally {
      this.publishing.delete(done);
    }
  }

  private async trigger(context: RequestContext): Promise<void> {
    if (this.draining) throw new HeraldError('HERALD_ERR_SHUTTING_DOWN', 'the hub is shutting down; publish to another node', { retryAfter: 1 });
    const { exchange } = context;
    const limits = { maxBody: this.settings.maxBody, bodyTimeout: this.settings.bodyTimeout, rate: this.settings.rate, basePath: this.settings.basePath };
    const done = publishRequest(this.hub, exchange, limits, this.settings.access).then((published) => {
      if (published !== undefined) respondJson(exchange, 202, published, context.fields);
    });
    this.publishing.add(done);
    try {
      await done;
    } finally {
      this.publishing.delete(done);
    }
  }

  private health({ exchange, fields }: RequestContext): void {
    const counters = this.hub.counters();
    const closing = this.hub.isClosing || this.draining;
    const log = this.hub.health();
    const status = closing ? 'shutting-down' : log.ok ? 'ok' : 'unavailable';
    respondJson(
      exchange,
      status === 'ok' ? 200 : 503,
      {
        status,
        ...(log.ok ? {} : { reason: log.reason }),
        version: VERSION,
        pid: process.pid,
        uptime: Math.round((Date.now() - this.startedAt) / 1000),
        connections: counters.connections,
        published: counters.published,
        delivered: counters.delivered,
        dropped: counters.dropped,
        history: this.hub.log.stats(),
      },
      fields,
    );
  }

  private async serveMetrics({ exchange, fields }: RequestContext, source: MetricsSource): Promise<void> {
    const text = await source.render();
    exchange.respond(200, { ...fields, 'Content-Type': source.contentType, 'Cache-Control': 'no-store', 'Content-Length': String(Buffer.byteLength(text)) }, text);
  }

  /** Answers an error; failures of Herald itself are logged with the request id, a client's own mistakes at debug level. */
  private fail({ exchange, requestId, fields }: RequestContext, error: unknown): void {
    const known = asHeraldError(error);
    if (!isHeraldError(error) || known.code === 'HERALD_ERR_INTERNAL') {
      this.settings.logger.error({ requestId, method: exchange.method, path: pathOnly(exchange), err: error }, 'request failed');
    } else {
      this.settings.logger.debug({ requestId, code: known.code, status: known.status }, known.message);
    }
    // Nobody is left to read an answer (the client closed its request).
    if (known.code === 'HERALD_ERR_REQUEST_ABORTED' && exchange.isGone()) return;
    respondError(exchange, known, fields);
  }

  /** Counts a refused subscription (the front door reports its own through here too). */
  readonly refused = (error: unknown): void => {
    this.settings.metrics.refused(refusalReason(error instanceof HeraldError ? error.code : 'HERALD_ERR_INTERNAL'));
  };

  /** Refuses new publishes and waits for those under way (at most `timeoutMs`). */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.dashboard.close();
    await settleWithin(this.publishing, timeoutMs);
  }
}
