/**
 * The 401 and 403 answers of authentication, with the `WWW-Authenticate`
 * challenge of RFC 6750 §3 so that clients can tell "send a token" from
 * "this token is bad" from "this token is not enough".
 */

import { HeraldError } from '../errors.js';

export const REALM = 'herald';

/**
 * RFC 6750 §3: `error_description` holds only %x20-21 / %x23-5B / %x5D-7E,
 * i.e. printable ASCII without `"` and `\`. Our messages quote claim names,
 * so quotes become apostrophes and anything else outside the set is dropped.
 */
function challengeText(text: string): string {
  return text.replace(/"/g, "'").replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '');
}

export function challenge(error: 'invalid_token' | 'insufficient_scope' | undefined, description: string): string {
  // RFC 6750 §3.1: a request without any token gets the bare challenge, no error code.
  if (error === undefined) return `Bearer realm="${REALM}"`;
  return `Bearer realm="${REALM}", error="${error}", error_description="${challengeText(description)}"`;
}

/**
 * A `401 HERALD_ERR_UNAUTHORIZED`.
 *
 * @param reason what is wrong, e.g. `the token expired at …`; must never hold the token itself
 * @param tokenPresented whether the request carried a token; adds `error="invalid_token"` to the challenge
 */
export function unauthorizedError(reason: string, tokenPresented: boolean): HeraldError {
  return new HeraldError('HERALD_ERR_UNAUTHORIZED', reason, { challenge: challenge(tokenPresented ? 'invalid_token' : undefined, reason) });
}

/**
 * The 401 for a request that carried no token at all, naming the three ways to send one.
 *
 * @param cookieName the cookie the hub reads, so the message names the one actually configured
 */
export function missingTokenError(cookieName: string): HeraldError {
  return unauthorizedError(
    `a token is required: send "Authorization: Bearer <token>", the ${cookieName} cookie, or the access_token query parameter`,
    false,
  );
}

/**
 * A `403 HERALD_ERR_FORBIDDEN`: the token is fine, the topic is not in it.
 * RFC 6750 §3.1 names this case `insufficient_scope`.
 */
export function forbiddenError(reason: string): HeraldError {
  return new HeraldError('HERALD_ERR_FORBIDDEN', reason, { challenge: challenge('insufficient_scope', reason) });
}
