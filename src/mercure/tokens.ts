/**
 * Mercure tokens, both generations on one endpoint (digest §1, §6):
 *
 * - **classic** (SPEC-CLASSIC): a JWS whose `mercure` claim lists `publish`
 *   and `subscribe` selector strings, with an optional `payload`. It may have
 *   no `exp`, `typ`, `aud` or `iss` (the conformance token has none), so
 *   `exp` and `nbf` are enforced only when present.
 * - **draft-08** (SPEC-08 "Token Validation"): an RFC 9068 access token,
 *   header `typ: at+jwt`, rights in `authorization_details`; `exp` is
 *   required, `aud` must hold the hub's resource identifier, and `iss` must
 *   be a trusted issuer when issuers are configured.
 *
 * The signature is checked first, with the key Herald's own settings give
 * the role (`--jwt-key`, `--jwt-public-key`, `--jwt-jwks`, the per-role
 * keys: src/auth/verifier.ts resolves them for both formats), each key pinned
 * to the algorithms of its type (src/auth/keys.ts; never `none`, never the
 * token's choice). Only then are the claims read, so every claim-based
 * message describes a token the key really signed, and the generation is
 * told from signed data.
 *
 * Messages name the failed check the way Herald's `/events` does (the client
 * may be a developer with a wrong `aud`), but never hold the token, the key,
 * its algorithms or file, the expected audience or the trusted issuers. With
 * `explainFailures: false` every invalid token gets one generic message,
 * which is what SPEC-08 suggests ("avoids disclosing why validation
 * failed"); the reason then stays in the error's `cause`, for the log.
 */

import { decodeProtectedHeader, errors, jwtVerify, type JWTVerifyOptions, type JWTVerifyResult } from 'jose';
import { unauthorizedError } from '../auth/challenge.js';
import type { TokenCarrier } from '../auth/transport.js';
import { resolveVerification, type KeySetting, type Role, type TokenVerifierSettings, type VerificationSetup } from '../auth/verifier.js';
import { HeraldError } from '../errors.js';
import {
  classicRights,
  DEFAULT_MERCURE_TOKEN_LIMITS,
  draft08Rights,
  type MercureRights,
  type MercureTokenLimits,
  type UrlPatternValidator,
} from './claims.js';
import type { MercureGrant } from './grant.js';

export * from './carriers.js';
export * from './challenge.js';
export {
  classicMatcher,
  DEFAULT_MERCURE_TOKEN_LIMITS,
  isMatcherText,
  MERCURE_DETAIL_TYPES,
  type MercureTokenLimits,
  type UrlPatternValidator,
} from './claims.js';
export * from './grant.js';

/** The hub's path (SPEC-CLASSIC MUST, SPEC-08 SHOULD). */
export const MERCURE_PATH = '/.well-known/mercure';

/** The message of every invalid token when failures are not explained. */
export const GENERIC_INVALID_TOKEN = 'the token is invalid';

/** Mercure token settings as given: Herald's key settings plus the Mercure ones. */
export interface MercureTokenOptions extends TokenVerifierSettings {
  /**
   * `--mercure-audience` / `HERALD_MERCURE_AUDIENCE`: the hub's resource
   * identifier, which a draft-08 token's `aud` must hold (and a classic
   * token's `aud`, when it has one). Unset: the hub URL of each request, as
   * the reference hub derives it, which lets the client's `Host` choose it:
   * set it in production.
   */
  mercureAudience?: string | undefined;
  /**
   * `--mercure-issuer` / `HERALD_MERCURE_ISSUER`: trusted issuers, a list or
   * comma-separated text. Set: a draft-08 token's `iss` must be one of them
   * (and a classic token's, when it has one). Unset: `iss` is not checked,
   * which SPEC-08 allows a hub taking only self-issued tokens.
   */
  mercureIssuer?: string | readonly string[] | undefined;
  /** Checks `urlpattern` matchers (see {@link UrlPatternValidator}); supplied by whoever holds the URL Pattern engine. */
  validateUrlPattern: UrlPatternValidator;
  /** Whether an invalid token's message says which check failed. Default `true`, as on `/events`. */
  explainFailures?: boolean | undefined;
  /** Bounds on one token; each defaults to {@link DEFAULT_MERCURE_TOKEN_LIMITS}. */
  limits?: Partial<MercureTokenLimits> | undefined;
}

export type MercureSetting = KeySetting | 'mercureAudience' | 'mercureIssuer' | 'limits';

/** Settings ready for {@link verifyMercureToken}, keys read. Frozen. */
export interface MercureTokenSettings extends VerificationSetup {
  /** The configured resource identifier; `undefined`: the request's hub URL. */
  readonly audience: string | undefined;
  /** The trusted issuers; `undefined`: any. */
  readonly issuers: readonly string[] | undefined;
  readonly validateUrlPattern: UrlPatternValidator;
  readonly explainFailures: boolean;
  readonly limits: MercureTokenLimits;
}

/** Text fit for a claim value we compare against: not empty, no space or control character. */
const IDENTIFIER = /^[^\s\u0000-\u001f\u007f-\u009f]+$/;

/**
 * Reads and checks Mercure token settings, reading key files now so that a
 * bad key stops the start rather than the first request.
 *
 * @param label how to name a setting in an error, e.g. `--mercure-audience`; key values are never quoted
 * @throws HeraldError `HERALD_ERR_INVALID_OPTION` for a bad key, audience, issuer list or limit
 * @example
 * const settings = resolveMercureTokenSettings({ jwtKey: process.env.HERALD_JWT_KEY, mercureAudience: 'https://hub.example/.well-known/mercure', validateUrlPattern });
 */
export function resolveMercureTokenSettings(
  options: MercureTokenOptions,
  label: (setting: MercureSetting) => string = (setting) => `option "${setting}"`,
): MercureTokenSettings {
  const fail = (setting: MercureSetting, why: string): never => {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `invalid ${label(setting)}: ${why}`);
  };
  const verification = resolveVerification(options, label);

  let audience: string | undefined;
  if (options.mercureAudience !== undefined && options.mercureAudience !== '') {
    audience = options.mercureAudience.trim();
    if (!IDENTIFIER.test(audience)) fail('mercureAudience', 'expected a resource identifier such as https://hub.example/.well-known/mercure (no spaces)');
  }

  let issuers: readonly string[] | undefined;
  const given = options.mercureIssuer;
  if (given !== undefined) {
    const list = (typeof given === 'string' ? given.split(',') : [...given]).map((issuer) => (typeof issuer === 'string' ? issuer.trim() : issuer));
    const named = list.filter((issuer) => issuer !== '');
    for (const issuer of named) {
      if (typeof issuer !== 'string' || !IDENTIFIER.test(issuer)) fail('mercureIssuer', 'expected issuer identifiers such as https://auth.example, comma-separated');
    }
    if (named.length > 0) issuers = Object.freeze([...new Set(named)]);
  }

  // A wiring slip, not a user's setting: without it no URL pattern in a token could be checked.
  if (typeof options.validateUrlPattern !== 'function') throw new HeraldError('HERALD_ERR_INVALID_OPTION', 'validateUrlPattern must be a function');

  const limits: Record<string, number> = { ...DEFAULT_MERCURE_TOKEN_LIMITS };
  for (const [name, value] of Object.entries(options.limits ?? {})) {
    if (!(name in DEFAULT_MERCURE_TOKEN_LIMITS)) fail('limits', `unknown limit ${JSON.stringify(name)}`);
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < 1) fail('limits', `${name} must be a whole number of at least 1`);
    limits[name] = value;
  }

  return Object.freeze({
    ...verification,
    audience,
    issuers,
    validateUrlPattern: options.validateUrlPattern,
    explainFailures: options.explainFailures ?? true,
    limits: Object.freeze(limits) as unknown as MercureTokenLimits,
  });
}

/** Whether tokens for `role` can be checked; without a key, the role is not protected by tokens. */
export function hasMercureKey(settings: MercureTokenSettings, role: Role): boolean {
  return settings.keys[role] !== undefined;
}

/**
 * The hub URL a request reached, `<scheme>://<host><basePath>/.well-known/mercure`:
 * the default resource identifier (the reference hub derives it the same
 * way) and the base of relative URL patterns.
 *
 * The `Host` is the client's to choose, so an audience derived from it binds
 * a token to whatever host the client names: fine for development and the
 * conformance suite, not for hubs sharing keys; configure the audience there.
 *
 * @param request the request's headers; `Host`, else HTTP/2's `:authority` (the request URL's own origin is a placeholder in Herald's adapters)
 * @param options `secure`: whether the client reached the hub over TLS; `basePath`: Herald's `--base-path`
 * @returns the URL, or `undefined` when the request names no usable host
 * @example
 * mercureHubUrl(exchange, { secure: true }); // 'https://localhost/.well-known/mercure'
 */
export function mercureHubUrl(request: Pick<TokenCarrier, 'header'>, options: { secure: boolean; basePath?: string | undefined }): string | undefined {
  const host = request.header('host') ?? request.header(':authority');
  if (host === undefined || host === '') return undefined;
  let url: URL;
  try {
    url = new URL(`${options.secure ? 'https' : 'http'}://${host}`);
  } catch {
    return undefined;
  }
  // A Host holding credentials, a path or a query is not a host.
  if (url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.hostname === '') return undefined;
  return `${url.origin}${options.basePath ?? ''}${MERCURE_PATH}`;
}

/** RFC 9068 §4: `typ` is `at+jwt`, with or without `application/`, in any case (RFC 7515 §4.1.9). */
export function isAccessTokenType(typ: unknown): boolean {
  return typeof typ === 'string' && /^(?:application\/)?at\+jwt$/i.test(typ);
}

/**
 * Tells the generation from a token's signed header and claims (digest §1):
 * `typ: at+jwt` or an `authorization_details` claim makes a draft-08 token,
 * which must then pass every draft-08 check; anything else is classic. So a
 * token cannot escape the draft-08 checks by dropping its `typ`, nor the
 * classic token pass as draft-08.
 */
export function tokenGeneration(header: Readonly<Record<string, unknown>>, payload: Readonly<Record<string, unknown>>): MercureGrant['generation'] {
  return isAccessTokenType(header.typ) || Object.hasOwn(payload, 'authorization_details') ? 'draft-08' : 'classic';
}

/** RFC 7519 §4.1.3: `aud` is one string or a list of strings; the identifier must equal it or one of them. */
function audienceHolds(aud: unknown, identifier: string): boolean {
  return aud === identifier || (Array.isArray(aud) && aud.includes(identifier));
}

/**
 * Checks a Mercure token and returns what it allows.
 *
 * Both generations: the size cap, then the signature with the role's key and
 * its algorithms, then `exp` and `nbf` when present (with the clock skew).
 * Draft-08 also: `typ` is `at+jwt`, `exp` is present, `aud` holds the
 * audience, `iss` is trusted (when issuers are configured), and every
 * Mercure entry of `authorization_details` is valid. Classic also: the
 * `mercure` claim is well-formed, and `aud` and `iss`, when present, pass
 * the same checks as draft-08 against what is configured.
 *
 * @param token the compact JWS, as {@link readMercureToken} found it
 * @param role which key checks it: the publisher key for `publish`, the subscriber key for `subscribe`
 * @param hubUrl this request's hub URL ({@link mercureHubUrl}): the audience when none is configured, and the base of relative URL patterns
 * @returns the token's rights, frozen
 * @throws HeraldError `HERALD_ERR_UNAUTHORIZED` (401, `error="invalid_token"`) for any invalid token
 * @throws HeraldError `HERALD_ERR_AUTH_UNAVAILABLE` (503) when a remote key set cannot be fetched
 * @example
 * const found = readMercureToken(exchange);
 * const grant = await verifyMercureToken(found.token, 'publish', settings, 'https://localhost/.well-known/mercure');
 * if (!anyMatcherMatches(grant.publish, topic, engines)) throw insufficientScopeError('publish', topic);
 */
export async function verifyMercureToken(token: string, role: Role, settings: MercureTokenSettings, hubUrl: string): Promise<MercureGrant> {
  const invalid = (reason: string): never => {
    throw invalidTokenError(reason, settings.explainFailures);
  };
  // Before any decoding: the cap bounds the work an unauthenticated client can cause.
  if (Buffer.byteLength(token, 'utf8') > settings.limits.maxTokenBytes) invalid(`the token is longer than ${settings.limits.maxTokenBytes} bytes`);
  const key = settings.keys[role];
  // The HTTP layer asks hasMercureKey() first; reaching here is a wiring slip, so fail closed.
  if (key === undefined) throw unauthorizedError(`no key is configured to check tokens that ${role}`, true);

  const options: JWTVerifyOptions = {
    algorithms: [...key.algorithms],
    clockTolerance: settings.clockSkew,
    currentDate: new Date(settings.now()),
  };
  let verified: JWTVerifyResult;
  try {
    // Two calls because jose's overloads tell a key from a key lookup by type.
    verified = typeof key.key === 'function' ? await jwtVerify(token, key.key, options) : await jwtVerify(token, key.key, options);
  } catch (error) {
    throw explainJoseFailure(error, token, settings.explainFailures);
  }
  const header = verified.protectedHeader as Readonly<Record<string, unknown>>;
  const payload = verified.payload as Readonly<Record<string, unknown>>;
  const generation = tokenGeneration(header, payload);
  const audience = settings.audience ?? hubUrl;

  let rights: MercureRights;
  if (generation === 'draft-08') {
    // SPEC-08 "Token Validation", in its order.
    if (!isAccessTokenType(header.typ)) invalid('the token\'s "typ" header must be "at+jwt" (an RFC 9068 access token)');
    if (payload.exp === undefined) invalid('the token has no "exp" claim; access tokens must expire');
    if (!audienceHolds(payload.aud, audience)) invalid('the token\'s "aud" claim does not name this hub');
    if (settings.issuers !== undefined && !settings.issuers.includes(payload.iss as string)) invalid('the token\'s "iss" claim is not a trusted issuer');
    rights = draft08Rights(payload.authorization_details, { limits: settings.limits, validateUrlPattern: settings.validateUrlPattern, hubUrl }, invalid);
  } else {
    // A classic token need not carry aud or iss, but one that does is held to what the hub is configured with
    // (RFC 7519 §4.1.3: a present aud that does not name the recipient is rejected). Only a configured
    // audience counts here: classic tokens predate the derived one.
    if (payload.aud !== undefined && settings.audience !== undefined && !audienceHolds(payload.aud, settings.audience)) {
      invalid('the token\'s "aud" claim does not name this hub');
    }
    if (payload.iss !== undefined && settings.issuers !== undefined && !settings.issuers.includes(payload.iss as string)) {
      invalid('the token\'s "iss" claim is not a trusted issuer');
    }
    rights = classicRights(payload, { limits: settings.limits, validateUrlPattern: settings.validateUrlPattern, hubUrl }, invalid);
  }

  // jose has checked that a present exp is a number.
  const exp = payload.exp as number | undefined;
  return Object.freeze({
    generation,
    ...rights,
    expiresAt: exp === undefined ? undefined : exp * 1000,
    ...(typeof payload.sub === 'string' ? { subject: payload.sub } : {}),
    ...(typeof payload.iss === 'string' ? { issuer: payload.iss } : {}),
  });
}

/** The 401 for an invalid token, explained or not. */
function invalidTokenError(reason: string, explain: boolean): HeraldError {
  if (explain) return unauthorizedError(reason, true);
  const error = unauthorizedError(GENERIC_INVALID_TOKEN, true);
  error.cause = new Error(reason);
  return error;
}

function instant(seconds: unknown): string {
  return typeof seconds === 'number' && Number.isFinite(seconds) && Math.abs(seconds) < 8.64e12 ? new Date(seconds * 1000).toISOString() : 'an invalid time';
}

function headerAlgorithm(token: string): unknown {
  try {
    return decodeProtectedHeader(token).alg;
  } catch {
    return undefined;
  }
}

/**
 * Turns a jose failure into the 401 to answer with. Unlike the messages of
 * `/events`, none names the key's algorithms: on a hub that verifies tokens
 * from authorization servers, what it trusts is not the client's business.
 */
function explainJoseFailure(error: unknown, token: string, explain: boolean): HeraldError {
  // A key set that cannot be fetched (503), passed through as it is.
  if (error instanceof HeraldError) return error;
  const invalid = (reason: string) => invalidTokenError(reason, explain);
  // jose checks the signature before the claims, so these describe tokens the key really signed.
  if (error instanceof errors.JWTExpired) return invalid(`the token expired at ${instant(error.payload.exp)}`);
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf' && error.reason === 'check_failed') return invalid(`the token is not valid before ${instant(error.payload.nbf)}`);
    return invalid(`the token's "${error.claim}" claim is invalid`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return invalid('the token signature does not match');
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    if (headerAlgorithm(token) === 'none') return invalid('unsigned tokens (alg "none") are never accepted');
    return invalid('the token is signed with an algorithm this hub does not accept for it');
  }
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return invalid('no single trusted key fits the token (check its "kid" and algorithm)');
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return invalid('the token is malformed (expected a JWT: three base64url parts separated by dots, holding JSON)');
  }
  return invalid('the token cannot be checked');
}
