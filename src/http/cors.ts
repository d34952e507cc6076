/**
 * Cross-origin access for browsers (`--cors-origin`).
 *
 * Only origins listed exactly are answered with their own origin and
 * `Access-Control-Allow-Credentials: true`, so a page there can send the auth
 * cookie. `*` lets every other origin read public streams and answers, never
 * with credentials: an arbitrary `Origin` is never reflected.
 */

import { HeraldError } from '../errors.js';
import type { HeaderFields, RequestView } from './exchange.js';

export { parseOrigins } from '../config/origins.js';

/** Request headers a cross-origin client may send. */
const ALLOWED_HEADERS = 'Authorization, Cache-Control, Content-Type, Last-Event-ID';
/** Response headers a cross-origin page may read. */
const EXPOSED_HEADERS = 'Last-Event-ID, Mercure-Last-Event-ID, Retry-After, WWW-Authenticate, X-Request-Id';
/** How long a browser may cache a preflight answer, in seconds. */
const PREFLIGHT_MAX_AGE = '600';

const NONE: HeaderFields = Object.freeze({});

export class CorsPolicy {
  private readonly listed: ReadonlySet<string>;
  private readonly anyOrigin: boolean;

  constructor(origins: readonly string[]) {
    this.listed = new Set(origins.filter((origin) => origin !== '*'));
    this.anyOrigin = origins.includes('*');
  }

  /** CORS fields for the answer to this request; none when the origin is absent or not allowed. */
  fieldsFor(request: RequestView): HeaderFields {
    const origin = request.header('origin');
    if (origin === undefined) return NONE;
    if (this.listed.has(origin)) {
      return { 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true', 'Access-Control-Expose-Headers': EXPOSED_HEADERS, Vary: 'Origin' };
    }
    if (this.anyOrigin) return { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': EXPOSED_HEADERS };
    return NONE;
  }

  /**
   * The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`)
   * for a route taking `method`: the fields of a `204`.
   * @throws HeraldError 403 naming the option when the origin is not allowed
   */
  preflight(request: RequestView, method: string): HeaderFields {
    const fields = this.fieldsFor(request);
    if (fields['Access-Control-Allow-Origin'] === undefined) {
      const origin = (request.header('origin') ?? '(none)').slice(0, 200);
      throw new HeraldError('HERALD_ERR_FORBIDDEN', `origin ${JSON.stringify(origin)} is not allowed; list it in --cors-origin`);
    }
    return { ...fields, 'Access-Control-Allow-Methods': method, 'Access-Control-Allow-Headers': ALLOWED_HEADERS, 'Access-Control-Max-Age': PREFLIGHT_MAX_AGE };
  }
}

/** Whether a request is a CORS preflight. */
export function isPreflight(request: RequestView): boolean {
  return request.method === 'OPTIONS' && request.header('access-control-request-method') !== undefined;
}
