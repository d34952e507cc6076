/**
 * Every failure Herald reports to a caller, in one place.
 *
 * A code is stable: once released it keeps its meaning and is never reused,
 * so clients may branch on it. Messages may improve over time.
 */

export const ERROR_CATALOGUE = {
  HERALD_ERR_INVALID_JSON: { status: 400, summary: 'The request body is not valid JSON.' },
  HERALD_ERR_INVALID_UTF8: { status: 400, summary: 'The request body is not valid UTF-8.' },
  HERALD_ERR_INVALID_EVENT: {
    status: 400,
    summary: 'A published event is malformed (not an object, missing `data`, unknown field, wrong type).',
  },
  HERALD_ERR_INVALID_EVENT_TYPE: {
    status: 400,
    summary: 'An `event` type is empty, too long, or holds CR, LF or NUL.',
  },
  HERALD_ERR_INVALID_TOPIC: {
    status: 400,
    summary: 'A published `topic` is empty, too long, holds CR, LF or NUL, has an empty segment or a wildcard.',
  },
  HERALD_ERR_INVALID_SELECTOR: {
    status: 400,
    summary: 'A `topic` selector of a subscription is malformed.',
  },
  HERALD_ERR_INVALID_UPDATE: {
    status: 400,
    summary: 'A Mercure update is malformed: no `topic`, an empty or bad field, an `id` that begins with `#`, a `retry` that is not digits.',
  },
  HERALD_ERR_EMPTY_BATCH: { status: 400, summary: 'A batch publish holds no event.' },
  HERALD_ERR_UNAUTHORIZED: {
    status: 401,
    summary: 'No token, or a token that is malformed, expired, not yet valid or wrongly signed; see `WWW-Authenticate`.',
  },
  HERALD_ERR_FORBIDDEN: { status: 403, summary: 'The token is valid but does not allow this topic.' },
  HERALD_ERR_BODY_TOO_LARGE: { status: 413, summary: 'The request body is larger than `--max-body`.' },
  HERALD_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    summary: 'POST /trigger takes `application/json` or `text/plain`.',
  },
  HERALD_ERR_METHOD_NOT_ALLOWED: { status: 405, summary: 'The path does not accept this method.' },
  HERALD_ERR_BAD_REQUEST: { status: 400, summary: 'The request is not well-formed HTTP (a bad header, length or request line).' },
  HERALD_ERR_HEADERS_TOO_LARGE: { status: 431, summary: 'The request head is larger than 16 KB.' },
  HERALD_ERR_EXPECTATION_FAILED: { status: 417, summary: 'An `Expect` header other than `100-continue`.' },
  HERALD_ERR_REQUEST_TIMEOUT: { status: 408, summary: 'The request head did not arrive in time (30 s).' },
  HERALD_ERR_RATE_LIMITED: {
    status: 429,
    summary: 'Too many publishes (`--publish-rate`) or streams (`--max-connections-per-ip`) from this address; see `Retry-After`.',
  },
  HERALD_ERR_NOT_FOUND: { status: 404, summary: 'No such path.' },
  HERALD_ERR_TOO_MANY_CONNECTIONS: {
    status: 503,
    summary: 'The hub holds `--max-connections` streams already; retry later.',
  },
  HERALD_ERR_SHUTTING_DOWN: { status: 503, summary: 'The hub is shutting down; retry on another node.' },
  HERALD_ERR_AUTH_UNAVAILABLE: {
    status: 503,
    summary: 'The JWT key set (`--jwt-jwks` URL) cannot be fetched now, so no token can be checked; retry later.',
  },
  HERALD_ERR_STORE_UNAVAILABLE: {
    status: 503,
    summary: 'The event store (Redis, or the primary process of `--workers`) cannot take the publish now; nothing was acknowledged. Retry later.',
  },
  HERALD_ERR_BODY_TIMEOUT: { status: 408, summary: 'The request body did not arrive in time.' },
  HERALD_ERR_REQUEST_ABORTED: {
    status: 400,
    summary: 'The client closed the request before its body arrived; nothing was stored (never answered: nobody is left to read it).',
  },
  HERALD_ERR_INVALID_STATE: {
    status: 500,
    summary: 'The library was used in a way the hub\'s state does not allow (listening twice, using a closed hub).',
  },
  HERALD_ERR_INVALID_OPTION: { status: 500, summary: 'A configuration option has an invalid value.' },
  HERALD_ERR_INTERNAL: { status: 500, summary: 'An unexpected failure inside the hub.' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** The JSON body of every error response: `{"error": {"code", "message"}}`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/**
 * Facts an error carries beyond its code and message. They are not HTTP:
 * the HTTP layer turns them into `Retry-After`, `Allow` and `WWW-Authenticate`.
 */
export interface ErrorDetails {
  /** Seconds after which trying again may succeed. */
  readonly retryAfter?: number;
  /** The methods the path does accept. */
  readonly allow?: readonly string[];
  /** The bearer-token challenge (RFC 6750 §3) of an authentication failure. */
  readonly challenge?: string;
}

export class HeraldError extends Error {
  override readonly name = 'HeraldError';
  readonly code: ErrorCode;
  /** The HTTP status this error is answered with. */
  readonly status: number;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message);
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.details = details;
  }

  toJSON(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

export function isHeraldError(value: unknown): value is HeraldError {
  return value instanceof HeraldError;
}
