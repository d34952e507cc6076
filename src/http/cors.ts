/**
 * Cross-origin access for browsers (`--cors-origin`).
 *
 * Only origins listed exactly are answered with their own origin and
 * `Access-Control-Allow-Credentials: true`, so a page there can send the auth
 * cookie. `*` lets every other origin read public streams and answers, never
 * with credentials: an arbitrary `Origin` is never reflected.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeraldError } from '../errors.js';
import { sendError } from './respond.js';

export { parseOrigins } from '../config/origins.js';

/** Request headers a cross-origin client may send. */
const ALLOWED_HEADERS = 'Authorization, Content-Type, Last-Event-ID';
/** Response headers a cross-origin page may read. */
const EXPOSED_HEADERS = 'Retry-After, WWW-Authenticate';
/** How long a browser may cache a preflight answer, in seconds. */
const PREFLIGHT_MAX_AGE = '600';

export class CorsPolicy {
  private readonly listed: ReadonlySet<string>;
  private readonly anyOrigin: boolean;

  constructor(origins: readonly string[]) {
    this.listed = new Set(origins.filter((origin) => origin !== '*'));
    this.anyOrigin = origins.includes('*');
  }

  /** Whether the request comes from another origin at all (browsers send `Origin` then). */
  static isCrossOrigin(req: IncomingMessage): boolean {
    return typeof req.headers.origin === 'string';
  }

  /** CORS headers for the answer to this request; none when the origin is absent or not allowed. */
  headersFor(req: IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    if (typeof origin !== 'string') return {};
    if (this.listed.has(origin)) {
      return { 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true', 'Access-Control-Expose-Headers': EXPOSED_HEADERS, Vary: 'Origin' };
    }
    if (this.anyOrigin) return { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': EXPOSED_HEADERS };
    return {};
  }

  /** Sets this request's CORS headers on the response, before anything is written. */
  apply(req: IncomingMessage, res: ServerResponse): void {
    for (const [name, value] of Object.entries(this.headersFor(req))) res.setHeader(name, value);
  }

  /**
   * Answers a preflight (`OPTIONS` with `Access-Control-Request-Method`) for a
   * route taking `method`: `204` with the allowed method and headers, or `403`
   * naming the option when the origin is not allowed.
   */
  preflight(req: IncomingMessage, res: ServerResponse, method: string): void {
    const headers = this.headersFor(req);
    if (headers['Access-Control-Allow-Origin'] === undefined) {
      const origin = String(req.headers.origin ?? '(none)').slice(0, 200);
      sendError(res, new HeraldError('HERALD_ERR_FORBIDDEN', `origin ${JSON.stringify(origin)} is not allowed; list it in --cors-origin`));
      return;
    }
    res.writeHead(204, {
      ...headers,
      'Access-Control-Allow-Methods': method,
      'Access-Control-Allow-Headers': ALLOWED_HEADERS,
      'Access-Control-Max-Age': PREFLIGHT_MAX_AGE,
    });
    res.end();
  }
}

/** Whether a request is a CORS preflight. */
export function isPreflight(req: IncomingMessage): boolean {
  return req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
}
