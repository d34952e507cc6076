/**
 * Turning key settings into keys jose can verify with, each pinned to the
 * algorithms its type allows.
 *
 * Pinning is what defeats algorithm confusion: a verifier that let the token
 * pick its algorithm could be handed an HS256 token "signed" with the text of
 * the public key. Here a key decides its algorithm, never the token:
 * - an HS256 secret accepts HS256 only;
 * - an RSA public key accepts RS256 only (at least 2048 bits, RFC 7518 §3.3);
 * - an EC public key accepts the one ES algorithm of its curve (P-256: ES256,
 *   P-384: ES384, P-521: ES512);
 * - an Ed25519 public key accepts EdDSA (and its newer name, Ed25519);
 * - a key set (JWKS) accepts only the asymmetric algorithms above, each key
 *   being usable only with the algorithm of its type and curve (jose checks
 *   `kty`, `crv` and, when the key names one, `alg`).
 * `none` is never in any list.
 */

import { createPublicKey, X509Certificate, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { HeraldError } from '../errors.js';

/** A key ready for `jwtVerify`, with the only algorithms it may be used with. */
export interface VerificationKey {
  readonly key: Uint8Array | KeyObject | JWTVerifyGetKey;
  readonly algorithms: readonly string[];
  /** For start-up logs; never holds secret material. */
  readonly description: string;
}

/** RFC 7518 §3.2: an HS256 key MUST be at least as long as the hash, 256 bits. */
export const MIN_SECRET_BYTES = 32;

/** Asymmetric algorithms a key set may use; which one applies to a key still depends on its type. */
const KEY_SET_ALGORITHMS = ['RS256', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

const CURVE_ALGORITHMS: Readonly<Record<string, string>> = {
  prime256v1: 'ES256',
  secp384r1: 'ES384',
  secp521r1: 'ES512',
};

/** Reports a bad setting by name only: the value may be a secret, so it never enters the message. */
export type SettingFailure = (why: string) => never;

export function settingFailure(name: string): SettingFailure {
  return (why) => {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `invalid ${name}: ${why}`);
  };
}

/**
 * How a publisher or subscriber key setting is read: a value that starts with
 * `/`, `./` or `../`, or ends with `.pem`, is the path of a PEM file; anything
 * else is an HS256 secret. The rule looks at the text only, not at the disk:
 * if "does the file exist" decided, a mistyped path would silently become a
 * guessable HS256 secret. A path-shaped value whose file is missing is an error.
 */
export function isKeyFilePath(value: string): boolean {
  return value.startsWith('/') || value.startsWith('./') || value.startsWith('../') || value.endsWith('.pem');
}

/** An HS256 secret, taken as the UTF-8 bytes of the text. */
export function secretKey(secret: string, fail: SettingFailure): VerificationKey {
  // A PEM text used as an HMAC secret is the very shape of algorithm confusion.
  if (secret.trimStart().startsWith('-----BEGIN')) {
    fail('holds PEM text; give the path of the PEM file instead (e.g. --jwt-public-key ./public.pem)');
  }
  const bytes = new TextEncoder().encode(secret);
  if (bytes.length < MIN_SECRET_BYTES) {
    fail(`an HS256 secret needs at least ${MIN_SECRET_BYTES} bytes (RFC 7518 §3.2); this one has ${bytes.length}. Try: openssl rand -base64 32`);
  }
  return { key: bytes, algorithms: ['HS256'], description: 'an HS256 secret' };
}

function readText(path: string, fail: SettingFailure): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    return fail(`cannot read ${JSON.stringify(path)} (${code})`);
  }
}

/** The algorithms a public key may verify, decided by its type and size or curve. */
function algorithmsOf(key: KeyObject, fail: SettingFailure): string[] {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) fail(`the RSA key has ${bits} bits; RS256 needs at least 2048 (RFC 7518 §3.3)`);
    return ['RS256'];
  }
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? 'unknown';
    const algorithm = CURVE_ALGORITHMS[curve];
    if (algorithm === undefined) fail(`the EC key uses the curve ${curve}; Herald takes P-256, P-384 or P-521`);
    return [algorithm!];
  }
  if (type === 'ed25519') return ['EdDSA', 'Ed25519'];
  return fail(`holds a ${type ?? 'unknown'} key; Herald takes RSA (RS256), EC P-256/P-384/P-521 (ES256/ES384/ES512) or Ed25519 (EdDSA)`);
}

/** A PEM public key (SPKI, PKCS#1 RSA, or an X.509 certificate) from a file. */
export function publicKeyFile(path: string, fail: SettingFailure): VerificationKey {
  const text = readText(path, fail);
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)) {
    // Deriving the public half would work, but a private key has no business on the hub's disk.
    fail(`${JSON.stringify(path)} holds a private key; give its public key (openssl pkey -in private.pem -pubout -out public.pem)`);
  }
  let key: KeyObject;
  try {
    key = text.includes('-----BEGIN CERTIFICATE-----') ? new X509Certificate(text).publicKey : createPublicKey({ key: text, format: 'pem' });
  } catch {
    return fail(`${JSON.stringify(path)} holds no PEM public key Herald can read`);
  }
  const algorithms = algorithmsOf(key, fail);
  return { key, algorithms, description: `an ${algorithms[0]} public key from ${path}` };
}

/** A publisher or subscriber key: a PEM file or a secret, by {@link isKeyFilePath}. */
export function secretOrPublicKeyFile(value: string, fail: SettingFailure): VerificationKey {
  return isKeyFilePath(value) ? publicKeyFile(value, fail) : secretKey(value, fail);
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'] as const;

function checkKeySet(value: unknown, fail: SettingFailure): JSONWebKeySet {
  if (typeof value !== 'object' || value === null || !Array.isArray((value as { keys?: unknown }).keys)) {
    return fail('expected a JWK Set: {"keys": [...]}');
  }
  const keys = (value as { keys: unknown[] }).keys;
  if (keys.length === 0) fail('the key set holds no key');
  keys.forEach((jwk, index) => {
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) fail(`keys[${index}] is not an object`);
    const { kty, kid } = jwk as Record<string, unknown>;
    if (kty !== 'RSA' && kty !== 'EC' && kty !== 'OKP') {
      fail(`keys[${index}] has kty ${JSON.stringify(kty)}; a key set holds public keys (RSA, EC or OKP); an HS256 secret goes in --jwt-key`);
    }
    if (kid !== undefined && typeof kid !== 'string') fail(`keys[${index}] has a kid that is not a string`);
    const secret = PRIVATE_MEMBERS.find((member) => member in (jwk as object));
    if (secret !== undefined) fail(`keys[${index}] holds private key material ("${secret}"); publish only public keys`);
    // Checked now, like a PEM key, so that a short RSA key or an odd curve stops the start, not a request.
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch {
      return fail(`keys[${index}] is not a valid ${String(kty)} public key`);
    }
    algorithmsOf(key, (why) => fail(`keys[${index}]: ${why}`));
  });
  return value as JSONWebKeySet;
}

/** The 503 for a key set that cannot be fetched: the token may be fine, so a 401 would mislead the client. */
function keySetUnavailable(cause: unknown): HeraldError {
  const error = new HeraldError('HERALD_ERR_AUTH_UNAVAILABLE', 'the key set for checking tokens cannot be fetched now; retry later', { retryAfter: 5 });
  error.cause = cause;
  return error;
}

/**
 * A JWK Set from a file (read once, now) or an http(s) URL (fetched on first
 * use, cached, refetched when a token names an unknown `kid`: jose's
 * createRemoteJWKSet, at most once per 30 s). Keys are chosen by `kid`; a
 * token without `kid` is accepted only when exactly one key fits its algorithm.
 */
export function keySet(location: string, fail: SettingFailure): VerificationKey {
  if (/^https?:\/\//i.test(location)) {
    let url: URL;
    try {
      url = new URL(location);
    } catch {
      return fail('expected a file path or an http(s) URL');
    }
    // fetch() refuses URLs with credentials; better to say so at start than at the first token.
    if (url.username !== '' || url.password !== '') fail('the key set URL must not hold credentials (user:password@)');
    const remote = createRemoteJWKSet(url);
    const getKey: JWTVerifyGetKey = async (header, token) => {
      try {
        return await remote(header, token);
      } catch (error) {
        // These concern the token, not the fetch.
        if (
          error instanceof errors.JWKSNoMatchingKey ||
          error instanceof errors.JWKSMultipleMatchingKeys ||
          error instanceof errors.JOSENotSupported
        ) {
          throw error;
        }
        throw keySetUnavailable(error);
      }
    };
    return { key: getKey, algorithms: KEY_SET_ALGORITHMS, description: `the key set at ${url.origin}${url.pathname}` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readText(location, fail));
  } catch (error) {
    if (error instanceof HeraldError) throw error;
    return fail(`${JSON.stringify(location)} is not valid JSON`);
  }
  const set = checkKeySet(parsed, fail);
  let getKey: JWTVerifyGetKey;
  try {
    getKey = createLocalJWKSet(set);
  } catch {
    return fail(`${JSON.stringify(location)} is not a valid JWK Set`);
  }
  return { key: getKey, algorithms: KEY_SET_ALGORITHMS, description: `the key set in ${location} (${set.keys.length} keys)` };
}
