/**
 * Minting tokens for development, behind `herald token`. Production tokens
 * come from the application's own auth server; this exists so that trying
 * Herald with `--jwt-key` takes one command, not a JWT library.
 */

import { SignJWT } from 'jose';
import { HeraldError } from '../errors.js';
import { parseSelector } from '../hub/topics.js';
import { secretKey, settingFailure } from './keys.js';

/** Ten years: longer is a token that should not exist. */
export const MAX_TOKEN_TTL_SECONDS = 10 * 365 * 86_400;

export interface MintOptions {
  /** The HS256 secret, the same text as `--jwt-key` (or an HS256 `--jwt-publisher-key` / `--jwt-subscriber-key`). */
  key: string;
  /** Selectors of the topics the token may publish to. Default none. */
  publish?: readonly string[];
  /** Selectors of the topics the token may receive. Default none. */
  subscribe?: readonly string[];
  /** Lifetime in seconds, from now. */
  ttlSeconds: number;
  /** The `sub` claim, shown in logs. */
  subject?: string;
}

/**
 * Signs an HS256 token carrying a `herald` claim, with `iat` and `exp`.
 *
 * @throws HeraldError `HERALD_ERR_INVALID_OPTION` for a short or PEM-looking key or a bad TTL
 * @throws HeraldError `HERALD_ERR_INVALID_SELECTOR` for a malformed selector
 * @example
 * const token = await mintToken({ key: secret, publish: ['orders/*'], subscribe: ['**'], ttlSeconds: 3600 });
 */
export async function mintToken(options: MintOptions): Promise<string> {
  const { key } = secretKey(options.key, settingFailure('token key'));
  const { ttlSeconds } = options;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
    throw new HeraldError(
      'HERALD_ERR_INVALID_OPTION',
      `invalid token TTL ${String(ttlSeconds)}: expected whole seconds between 1 and ${MAX_TOKEN_TTL_SECONDS}`,
    );
  }
  const publish = [...(options.publish ?? [])];
  const subscribe = [...(options.subscribe ?? [])];
  // A token the verifier would refuse is better refused while minting.
  for (const selector of [...publish, ...subscribe]) parseSelector(selector);

  const issuedAt = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ herald: { publish, subscribe } })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + ttlSeconds);
  if (options.subject !== undefined) jwt.setSubject(options.subject);
  return jwt.sign(key as Uint8Array);
}
