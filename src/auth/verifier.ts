/**
 * Checks bearer tokens (JWT, via `jose`) and turns them into grants.
 *
 * Which key checks a token depends on what it is for: a publisher key, when
 * set, checks every token used to publish; a subscriber key, when set, every
 * token used to subscribe; otherwise the shared key (exactly one of `jwtKey`,
 * `jwtPublicKey`, `jwtJwks`) does. A role with no key at all is not
 * protected by a token; {@link TokenVerifier.hasKey} tells the HTTP layer so.
 */

import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { HeraldError } from '../errors.js';
import { parseSelector } from '../hub/topics.js';
import { unauthorizedError } from './challenge.js';
import { createGrant, type Grant } from './grant.js';
import { keySet, publicKeyFile, secretKey, secretOrPublicKeyFile, settingFailure, type VerificationKey } from './keys.js';

export type Role = 'publish' | 'subscribe';

export const DEFAULT_CLOCK_SKEW_SECONDS = 30;
/** Beyond this, `exp` stops meaning much; a clock that far off needs fixing, not tolerating. */
export const MAX_CLOCK_SKEW_SECONDS = 600;

/** Key settings; an empty string counts as not set, as in the option defaults. */
export interface TokenVerifierSettings {
  /** A shared HS256 secret (its UTF-8 bytes, at least 32). */
  jwtKey?: string;
  /** Path of a PEM public key or certificate: RSA (RS256), EC (ES256/ES384/ES512) or Ed25519 (EdDSA). */
  jwtPublicKey?: string;
  /** Key for tokens that publish: a PEM file path (starts with `/`, `./`, `../` or ends with `.pem`) or else an HS256 secret. */
  jwtPublisherKey?: string;
  /** Key for tokens that subscribe, read like {@link jwtPublisherKey}. */
  jwtSubscriberKey?: string;
  /** A JWK Set: a file path or an http(s) URL; keys are chosen by `kid`. */
  jwtJwks?: string;
  /** Seconds of tolerance on `exp` and `nbf` for clocks that disagree. Default 30, at most 600. */
  clockSkew?: number;
  /** The current time in ms since the epoch; tests pass a fixed clock. Default `Date.now`. */
  now?: () => number;
}

export type KeySetting = 'jwtKey' | 'jwtPublicKey' | 'jwtPublisherKey' | 'jwtSubscriberKey' | 'jwtJwks' | 'clockSkew';

export interface TokenVerifier {
  /** Whether tokens for `role` can be checked; without a key, the role is not protected by tokens. */
  hasKey(role: Role): boolean;
  /** What checks tokens for `role`, e.g. `an RS256 public key from ./public.pem`, for start-up logs. Never secret. */
  describeKey(role: Role): string | undefined;
  /**
   * Checks a token's signature, `exp` and `nbf` (with the clock skew) and its
   * `herald` claim.
   *
   * @returns the token's rights, frozen
   * @throws HeraldError `HERALD_ERR_UNAUTHORIZED` (401, with `WWW-Authenticate`) saying what is wrong, never quoting the token
   * @throws HeraldError `HERALD_ERR_AUTH_UNAVAILABLE` (503) when a remote key set cannot be fetched
   * @example
   * const grant = await verifier.verify(found.token, 'publish');
   * assertMayPublish(grant, event.topic);
   */
  verify(token: string, role: Role): Promise<Grant>;
}

/**
 * The key of each role and the time rules, as every token format Herald reads
 * (its own `herald` claim, Mercure's claims) checks them: one place decides
 * which key checks which role, so the formats cannot drift apart.
 */
export interface VerificationSetup {
  /** The key checking tokens that publish, and tokens that subscribe; `undefined`: the role is not protected by tokens. */
  readonly keys: Readonly<Record<Role, VerificationKey | undefined>>;
  /** Seconds of tolerance on `exp` and `nbf`. */
  readonly clockSkew: number;
  /** The current time in ms since the epoch. */
  readonly now: () => number;
}

/**
 * Reads key settings into keys, reading key files now so that a bad key
 * stops the start rather than the first request.
 *
 * @param label how to name a setting in an error, e.g. `--jwt-key`; values are never quoted, being secrets
 * @throws HeraldError `HERALD_ERR_INVALID_OPTION` for a missing, unreadable or unsuitable key, or conflicting settings
 */
export function resolveVerification(
  settings: TokenVerifierSettings,
  label: (setting: KeySetting) => string = (setting) => `option "${setting}"`,
): VerificationSetup {
  const given = (value: string | undefined): value is string => value !== undefined && value !== '';
  const fail = (setting: KeySetting) => settingFailure(label(setting));

  const sharedSettings = (['jwtKey', 'jwtPublicKey', 'jwtJwks'] as const).filter((setting) => given(settings[setting]));
  if (sharedSettings.length > 1) {
    throw new HeraldError(
      'HERALD_ERR_INVALID_OPTION',
      `${sharedSettings.map(label).join(' and ')} exclude each other: give one shared key (use ${label('jwtPublisherKey')} and ${label('jwtSubscriberKey')} for different keys per role)`,
    );
  }
  let shared: VerificationKey | undefined;
  if (given(settings.jwtKey)) shared = secretKey(settings.jwtKey, fail('jwtKey'));
  else if (given(settings.jwtPublicKey)) shared = publicKeyFile(settings.jwtPublicKey, fail('jwtPublicKey'));
  else if (given(settings.jwtJwks)) shared = keySet(settings.jwtJwks, fail('jwtJwks'));

  const keys: Readonly<Record<Role, VerificationKey | undefined>> = Object.freeze({
    publish: given(settings.jwtPublisherKey) ? secretOrPublicKeyFile(settings.jwtPublisherKey, fail('jwtPublisherKey')) : shared,
    subscribe: given(settings.jwtSubscriberKey) ? secretOrPublicKeyFile(settings.jwtSubscriberKey, fail('jwtSubscriberKey')) : shared,
  });

  const clockSkew = settings.clockSkew ?? DEFAULT_CLOCK_SKEW_SECONDS;
  if (!Number.isFinite(clockSkew) || clockSkew < 0 || clockSkew > MAX_CLOCK_SKEW_SECONDS) {
    fail('clockSkew')(`expected a number of seconds between 0 and ${MAX_CLOCK_SKEW_SECONDS}, got ${String(clockSkew)}`);
  }
  return Object.freeze({ keys, clockSkew, now: settings.now ?? Date.now });
}

/**
 * Builds a verifier from key settings, reading key files now so that a bad
 * key stops the start rather than the first request.
 *
 * @param label how to name a setting in an error, e.g. `--jwt-key`; values are never quoted, being secrets
 * @throws HeraldError `HERALD_ERR_INVALID_OPTION` for a missing, unreadable or unsuitable key, or conflicting settings
 * @example
 * const verifier = createTokenVerifier({ jwtKey: process.env.HERALD_JWT_KEY });
 */
export function createTokenVerifier(
  settings: TokenVerifierSettings,
  label: (setting: KeySetting) => string = (setting) => `option "${setting}"`,
): TokenVerifier {
  const { keys, clockSkew, now } = resolveVerification(settings, label);

  return Object.freeze({
    hasKey: (role: Role) => keys[role] !== undefined,
    describeKey: (role: Role) => keys[role]?.description,
    async verify(token: string, role: Role): Promise<Grant> {
      const key = keys[role];
      if (key === undefined) {
        // The HTTP layer asks hasKey() first; reaching here is a wiring slip, so fail closed.
        throw unauthorizedError(`no key is configured to check tokens that ${role}`, true);
      }
      const options: JWTVerifyOptions = {
        algorithms: [...key.algorithms],
        clockTolerance: clockSkew,
        currentDate: new Date(now()),
      };
      let payload: JWTPayload;
      try {
        // Two calls because jose's overloads tell a key from a key lookup by type.
        payload = typeof key.key === 'function'
          ? (await jwtVerify(token, key.key, options)).payload
          : (await jwtVerify(token, key.key, options)).payload;
      } catch (error) {
        throw explain(error, token, key);
      }
      return grantFromClaims(payload);
    },
  });
}

function instant(seconds: unknown): string {
  return typeof seconds === 'number' && Number.isFinite(seconds) && Math.abs(seconds) < 8.64e12
    ? new Date(seconds * 1000).toISOString()
    : 'an invalid time';
}

/**
 * Turns a jose failure into the 401 to answer with. Each message names the
 * cause and nothing the client sent: the token may be logged by whoever
 * reads the error, and it may still be valid elsewhere.
 */
function explain(error: unknown, token: string, key: VerificationKey): HeraldError {
  if (error instanceof HeraldError) return error;
  const invalid = (reason: string) => unauthorizedError(reason, true);
  // jose checks the signature before the claims, so the claim-based messages
  // below only ever describe tokens that the key really signed.
  if (error instanceof errors.JWTExpired) return invalid(`the token expired at ${instant(error.payload.exp)}`);
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf' && error.reason === 'check_failed') {
      return invalid(`the token is not valid before ${instant(error.payload.nbf)}`);
    }
    return invalid(`the token's "${error.claim}" claim is invalid`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return invalid('the token signature does not match the configured key');
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    if (headerAlgorithm(token) === 'none') return invalid('unsigned tokens (alg "none") are never accepted');
    return invalid(`the token is signed with an algorithm the configured key does not take (it takes ${key.algorithms.join(' or ')})`);
  }
  if (error instanceof errors.JWKSNoMatchingKey) return invalid('no key in the key set fits the token (check its "kid" and algorithm)');
  if (error instanceof errors.JWKSMultipleMatchingKeys) {
    return invalid('several keys in the key set fit the token; it needs a "kid" naming one (and the set distinct kids)');
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return invalid('the token is malformed (expected a JWT: three base64url parts separated by dots, holding JSON)');
  }
  return invalid('the token cannot be checked with the configured key');
}

function headerAlgorithm(token: string): unknown {
  try {
    return decodeProtectedHeader(token).alg;
  } catch {
    return undefined;
  }
}

function selectorList(claim: Record<string, unknown>, role: 'publish' | 'subscribe'): string[] {
  const list = claim[role];
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw unauthorizedError(`the token's herald.${role} claim must be a list of topic selectors`, true);
  return list.map((selector: unknown, index) => {
    if (typeof selector !== 'string') {
      throw unauthorizedError(`the token's herald.${role}[${index}] must be a topic selector (a string)`, true);
    }
    try {
      parseSelector(selector);
    } catch (error) {
      const why = error instanceof HeraldError ? error.message : 'is malformed';
      throw unauthorizedError(`the token's herald.${role}[${index}] is not a valid selector: ${why}`, true);
    }
    return selector;
  });
}

/** The `herald` claim as a grant; a token whose claim is malformed is invalid as a whole, not partly honoured. */
function grantFromClaims(payload: JWTPayload): Grant {
  const claim = payload.herald;
  let rights: Record<string, unknown> = {};
  if (claim !== undefined) {
    if (typeof claim !== 'object' || claim === null || Array.isArray(claim)) {
      throw unauthorizedError('the token\'s "herald" claim must be an object: {"publish": [...], "subscribe": [...]}', true);
    }
    rights = claim as Record<string, unknown>;
  }
  return createGrant({
    publish: selectorList(rights, 'publish'),
    subscribe: selectorList(rights, 'subscribe'),
    expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
    subject: typeof payload.sub === 'string' ? payload.sub : undefined,
  });
}
