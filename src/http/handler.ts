/**
 * The HTTP layer: routes requests to the hub. Usable as a `node:http`
 * request listener and as Express/Connect middleware (unknown paths go to `next`).
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeraldError } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import { settleWithin } from '../settle.js';
import { VERSION } from '../version.js';
import type { AccessPolicy } from './access.js';
import { CorsPolicy, isPreflight } from './cors.js';
import type { PublishRateLimiter } from './rate-limit.js';
import { handleEvents } from './events.js';
import { servePage } from './page.js';
import { sendError, sendJson } from './respond.js';
import { handleTrigger } from './trigger.js';
import { DashboardFeed } from './dashboard.js';
import { serveMetrics } from './metrics-port.js';
import { requestIdOf, type Logger } from '../observe/logger.js';
import { refusalReason, type HubMetrics } from '../observe/metrics.js';

/** The path of a request target, without its query (which may hold a token). */
function pathOnly(target: string | undefined): string {
  return (target ?? '/').split('?')[0]!.slice(0, 200);
}


const ORIGIN = 'http://herald.invalid';

export type NextFunction = (error?: unknown) => void;
export type RequestHandler = (req: IncomingMessage, res: ServerResponse, next?: NextFunction) => void;

export interface HttpSettings {
  readonly access: AccessPolicy;
  readonly cors: CorsPolicy;
  readonly rate: PublishRateLimiter;
  readonly maxBody: number;
  readonly basePath: string;
  /** How long a publisher may take to send its body. */
  readonly bodyTimeout: number;
  readonly metrics: HubMetrics;
  /** Whether `GET /metrics` is served here (not when `--metrics-port` serves it elsewhere). */
  readonly serveMetrics: boolean;
  readonly logger: Logger;
  /** The reconnection delay sent to dashboard viewers. */
  readonly retry: number;
}

function methodNotAllowed(allow: string): HeraldError {
  return new HeraldError('HERALD_ERR_METHOD_NOT_ALLOWED', `use ${allow.split(', ').join(' or ')} on this path`, { Allow: allow });
}

export class HttpLayer {
  private readonly startedAt = Date.now();
  private readonly publishing = new Set<Promise<void>>();
  private draining = false;

  private readonly dashboard: DashboardFeed;

  constructor(
    private readonly hub: Hub,
    private readonly settings: HttpSettings,
  ) {
    this.dashboard = new DashboardFeed(hub, settings.access, settings.retry);
  }

  /** The request listener. */
  readonly handle: RequestHandler = (req, res, next) => {
    const requestId = requestIdOf(req.headers['x-request-id']);
    if (!res.headersSent) res.setHeader('X-Request-Id', requestId);
    const fail = (error: unknown): void => this.fail(req, res, requestId, error);
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      fail(new HeraldError('HERALD_ERR_BAD_REQUEST', 'an HTTP/1.1 request needs a Host header'));
      return;
    }
    let url: URL;
    try {
      // An origin-form target like `//events` must stay a path, not become a host.
      const target = req.url ?? '/';
      url = new URL(target.startsWith('/') ? `${ORIGIN}${target}` : target, ORIGIN);
    } catch {
      fail(new HeraldError('HERALD_ERR_NOT_FOUND', 'the request URL is malformed'));
      return;
    }
    let path = url.pathname;
    const base = this.settings.basePath;
    if (base !== '' && (path === base || path.startsWith(`${base}/`))) path = path.slice(base.length) || '/';
    try {
      this.route(path, req, res, url, requestId, fail, next);
    } catch (error) {
      fail(error);
    }
  };

  /** Answers an error; failures of Herald itself (5xx but unavailability) are logged with the request id. */
  private fail(req: IncomingMessage, res: ServerResponse, requestId: string, error: unknown): void {
    const known = error instanceof HeraldError ? error : undefined;
    if (known === undefined || known.code === 'HERALD_ERR_INTERNAL') {
      this.settings.logger.error({ requestId, method: req.method, path: pathOnly(req.url), err: error }, 'request failed');
    } else {
      this.settings.logger.debug({ requestId, code: known.code, status: known.status }, known.message);
    }
    sendError(res, error);
  }

  private route(
    path: string,
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    requestId: string,
    fail: (error: unknown) => void,
    next?: NextFunction,
  ): void {
    const method = req.method ?? 'GET';
    const { cors } = this.settings;
    if (CorsPolicy.isCrossOrigin(req)) {
      const routeMethod = path === '/trigger' ? 'POST' : path === '/events' ? 'GET' : undefined;
      if (routeMethod !== undefined && isPreflight(req)) {
        cors.preflight(req, res, routeMethod);
        return;
      }
      // Errors carry the headers too, so a page can read why it was refused.
      cors.apply(req, res);
    }
    switch (path) {
      case '/events':
        if (method !== 'GET') throw methodNotAllowed('GET');
        handleEvents(this.hub, req, res, url, this.settings.access, requestId).catch((error: unknown) => {
          this.refused(error);
          fail(error);
        });
        return;
      case '/trigger':
        if (method !== 'POST') throw methodNotAllowed('POST');
        this.trigger(req, res, url, fail);
        return;
      case '/health':
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET, HEAD');
        this.health(res);
        return;
      case '/dashboard/stream':
        if (method !== 'GET') throw methodNotAllowed('GET');
        this.dashboard.open(req, res, url).catch(fail);
        return;
      case '/metrics':
        if (this.settings.serveMetrics) {
          if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed('GET, HEAD');
          serveMetrics(this.settings.metrics, res).catch(fail);
          return;
        }
    }
    // Not ours: the page, the framework's next handler, or 404.
    if (servePage(path, method, res)) return;
    if (next !== undefined) {
      next();
      return;
    }
    throw new HeraldError('HERALD_ERR_NOT_FOUND', `no route for ${method} ${path.slice(0, 200)}; see GET /events, POST /trigger, GET /health`);
  }

  private trigger(req: IncomingMessage, res: ServerResponse, url: URL, fail: (error: unknown) => void): void {
    if (this.draining) throw new HeraldError('HERALD_ERR_SHUTTING_DOWN', 'the hub is shutting down; publish to another node', { 'Retry-After': '1' });
    const limits = { maxBody: this.settings.maxBody, bodyTimeout: this.settings.bodyTimeout, rate: this.settings.rate };
    const done = handleTrigger(this.hub, req, res, url, limits, this.settings.access).catch(fail);
    this.publishing.add(done);
    void done.finally(() => this.publishing.delete(done));
  }

  private health(res: ServerResponse): void {
    const counters = this.hub.counters();
    const closing = this.hub.isClosing || this.draining;
    const log = this.hub.health();
    const status = closing ? 'shutting-down' : log.ok ? 'ok' : 'unavailable';
    sendJson(res, status === 'ok' ? 200 : 503, {
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
    });
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
