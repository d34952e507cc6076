/**
 * Where a Mercure request carries its token, for both generations of the
 * protocol on the one endpoint (digest §6.4).
 *
 * Precedence is header > query > cookie, as both SPEC-CLASSIC and SPEC-08
 * require: the first carrier that holds a token is used and the others are
 * ignored, even when they hold a different token. (Herald's own `/events`
 * reads header > cookie > query; Mercure clients expect the order of their
 * spec, so this is a reader of its own.)
 *
 * 1. `Authorization: Bearer <token>` (RFC 6750 §2.1). The scheme is compared
 *    case-insensitively; a header with another scheme (`Basic`) is not a
 *    token and does not hide the carriers below.
 * 2. The query parameters of {@link MercureTokenCarriers.queryParameters}, by
 *    default `authorization` only: the classic spec's parameter, which classic
 *    clients send. The draft-08 `access_token` parameter is **off by default**:
 *    SPEC-08 makes it a MAY that SHOULD NOT be used, RFC 9700 advises against
 *    tokens in URLs (they end up in access logs and browser history), the
 *    reference hub refuses it, and no client needs it (browsers have the
 *    cookie). Add it to the list to accept it.
 * 3. The cookies of {@link MercureTokenCarriers.cookies}, in this order:
 *    `__Secure-mercure_access_token` (SPEC-08's name; browsers only keep it
 *    when it was set over HTTPS, so it is the most trustworthy and goes first),
 *    `mercure_access_token` (the same without the prefix, for development over
 *    plain http, where browsers refuse `__Secure-` cookies), and
 *    `mercureAuthorization` (SPEC-CLASSIC's name).
 *
 * An empty credential, parameter or cookie counts as absent, as in Herald's
 * own reader, so a cookie cleared on logout does not hide a token sent
 * another way.
 */

import { bearerToken, cookieValue, type TokenCarrier } from '../auth/transport.js';

/** The classic query parameter (SPEC-CLASSIC). */
export const CLASSIC_QUERY_PARAMETER = 'authorization';
/** The draft-08 query parameter (RFC 6750 §2.3); not read unless configured. */
export const ACCESS_TOKEN_QUERY_PARAMETER = 'access_token';
/** The classic cookie (SPEC-CLASSIC). */
export const CLASSIC_COOKIE = 'mercureAuthorization';
/** The draft-08 cookie (SPEC-08); browsers accept it only over HTTPS. */
export const SECURE_COOKIE = '__Secure-mercure_access_token';
/** The draft-08 cookie without its prefix, for development over plain http. */
export const PLAIN_HTTP_COOKIE = 'mercure_access_token';

/** Which query parameters and cookies are read, each list in order of precedence. */
export interface MercureTokenCarriers {
  readonly queryParameters: readonly string[];
  readonly cookies: readonly string[];
}

export const DEFAULT_MERCURE_CARRIERS: MercureTokenCarriers = Object.freeze({
  queryParameters: Object.freeze([CLASSIC_QUERY_PARAMETER]),
  cookies: Object.freeze([SECURE_COOKIE, PLAIN_HTTP_COOKIE, CLASSIC_COOKIE]),
});

export type MercureTokenSource = 'header' | 'query' | 'cookie';

export interface FoundMercureToken {
  readonly token: string;
  readonly source: MercureTokenSource;
  /**
   * Which carrier: `authorization` for the header, else the query parameter's
   * or cookie's name. A POST authenticated by a cookie needs a CSRF check of
   * its `Origin` (digest §6.4); a 2xx answer to a token sent in the query
   * SHOULD carry `Cache-Control: private`.
   */
  readonly name: string;
}

/**
 * Finds the token a Mercure request carries.
 *
 * @param request the request's headers and parsed URL (an `HttpExchange` or `RequestView` will do)
 * @param carriers the query parameters and cookies to read; default {@link DEFAULT_MERCURE_CARRIERS}
 * @returns the token and where it came from, or `undefined` when the request carries none
 * @example
 * const found = readMercureToken(exchange);
 * if (found === undefined) throw mercureTokenRequiredError();
 * const grant = await verifyMercureToken(found.token, 'subscribe', settings, hubUrl);
 */
export function readMercureToken(request: TokenCarrier, carriers: MercureTokenCarriers = DEFAULT_MERCURE_CARRIERS): FoundMercureToken | undefined {
  const fromHeader = bearerToken(request.header('authorization'));
  if (fromHeader !== undefined) return { token: fromHeader, source: 'header', name: 'authorization' };
  for (const name of carriers.queryParameters) {
    // get() returns the first of repeated parameters: the precedence rule picks one token, never a list.
    const value = request.url.searchParams.get(name);
    if (value !== null && value !== '') return { token: value, source: 'query', name };
  }
  // Several Cookie headers arrive joined with "; ", so one header read sees them all.
  const cookies = request.header('cookie');
  if (cookies !== undefined) {
    for (const name of carriers.cookies) {
      const value = cookieValue(cookies, name);
      if (value !== undefined && value !== '') return { token: value, source: 'cookie', name };
    }
  }
  return undefined;
}

/**
 * How a missing token is explained: the carriers this hub reads, so the
 * message names the ones actually configured.
 */
export function describeCarriers(carriers: MercureTokenCarriers = DEFAULT_MERCURE_CARRIERS): string {
  const ways = ['"Authorization: Bearer <token>"'];
  if (carriers.cookies.length > 0) ways.push(`the ${carriers.cookies.join(' or ')} cookie`);
  if (carriers.queryParameters.length > 0) ways.push(`the ${carriers.queryParameters.join(' or ')} query parameter`);
  return ways.length === 1 ? ways[0]! : `${ways.slice(0, -1).join(', ')} or ${ways.at(-1)!}`;
}
