/**
 * Where a request carries its token.
 *
 * Three places, first found wins:
 * 1. `Authorization: Bearer <token>` (RFC 6750 §2.1), for servers and the
 *    `eventsource` client, which can set headers;
 * 2. a cookie, `herald_auth` unless configured otherwise, for browsers, whose
 *    `EventSource` cannot set headers but sends cookies;
 * 3. the `access_token` query parameter (RFC 6750 §2.3), a last resort: URLs
 *    end up in access logs, proxy logs and browser history, so a token sent
 *    this way should be short-lived.
 *
 * The header wins over the cookie because a browser attaches the cookie to
 * every request, including ones whose author chose a header on purpose.
 */

/** What a token is looked for in: a request's headers and URL, whatever the transport. */
export interface TokenCarrier {
  header(name: string): string | undefined;
  readonly url: URL;
}

export const DEFAULT_COOKIE_NAME = 'herald_auth';
export const QUERY_PARAMETER = 'access_token';

export type TokenSource = 'header' | 'cookie' | 'query';

export interface FoundToken {
  readonly token: string;
  readonly source: TokenSource;
}

/**
 * The credentials of a `Bearer` authorization header, or `undefined` for any
 * other scheme or empty credentials. The scheme is case-insensitive (RFC 7235
 * §2.1). Credentials that are not a well-formed token are still returned: the
 * client chose this header on purpose, so it should hear that its token is
 * malformed rather than be judged by a stale cookie.
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^[ \t]*bearer(?:[ \t]+(.*))?$/is.exec(header);
  const credentials = match?.[1]?.trim();
  return credentials === '' ? undefined : credentials;
}

/**
 * Parses a `Cookie` header into name/value pairs, in order (RFC 6265 §5.4
 * sends the cookie with the most specific path first, so the first of two
 * same-named cookies is the one meant for this path).
 *
 * Lenient where browsers and proxies are: pairs split on `;`, spaces around
 * names and values ignored, a value in double quotes unquoted, pairs without
 * `=` skipped. Values are not percent-decoded: a JWT never holds `%`, and
 * decoding could only turn garbage into different garbage.
 *
 * @example
 * parseCookies('a=1; herald_auth="eyJ..."; b') // [['a', '1'], ['herald_auth', 'eyJ...']]
 */
export function parseCookies(header: string): Array<[name: string, value: string]> {
  const cookies: Array<[string, string]> = [];
  for (const pair of header.split(';')) {
    const equals = pair.indexOf('=');
    if (equals === -1) continue;
    const name = pair.slice(0, equals).trim();
    if (name === '') continue;
    let value = pair.slice(equals + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    cookies.push([name, value]);
  }
  return cookies;
}

/** The value of the first cookie named `name` (case-sensitive, RFC 6265 §5.4), or `undefined`. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  return parseCookies(header).find(([cookie]) => cookie === name)?.[1];
}

/**
 * Finds the token a request carries.
 *
 * An empty header credential, cookie or parameter counts as absent, so a
 * cookie cleared on logout does not hide a token sent another way.
 *
 * @param request the request's headers and parsed URL
 * @param cookieName the cookie to read, normally {@link DEFAULT_COOKIE_NAME}
 * @returns the token and where it came from, or `undefined` when there is none
 * @example
 * const found = tokenFromRequest(request, 'herald_auth');
 * if (found === undefined) throw missingTokenError('herald_auth');
 * const grant = await verifier.verify(found.token, 'subscribe');
 */
export function tokenFromRequest(request: TokenCarrier, cookieName: string): FoundToken | undefined {
  const fromHeader = bearerToken(request.header('authorization'));
  if (fromHeader !== undefined) return { token: fromHeader, source: 'header' };
  // Several Cookie headers arrive joined with "; ", so one parse sees them all.
  const fromCookie = cookieValue(request.header('cookie'), cookieName);
  if (fromCookie !== undefined && fromCookie !== '') return { token: fromCookie, source: 'cookie' };
  const fromQuery = request.url.searchParams.get(QUERY_PARAMETER);
  if (fromQuery !== null && fromQuery !== '') return { token: fromQuery, source: 'query' };
  return undefined;
}
