/**
 * JWT authentication, as the HTTP layer sees it: find the token, verify it
 * into a grant, check the grant against topics, answer 401 or 403.
 */

export {
  createTokenVerifier,
  DEFAULT_CLOCK_SKEW_SECONDS,
  MAX_CLOCK_SKEW_SECONDS,
  type Role,
  type TokenVerifier,
  type TokenVerifierSettings,
} from './verifier.js';
export { isKeyFilePath, MIN_SECRET_BYTES } from './keys.js';
export {
  assertMayPublish,
  createGrant,
  mayPublish,
  mayReceive,
  selectorsOverlap,
  subscriptionScope,
  type Grant,
} from './grant.js';
export {
  cookieValue,
  DEFAULT_COOKIE_NAME,
  parseCookies,
  QUERY_PARAMETER,
  tokenFromRequest,
  type FoundToken,
  type TokenCarrier,
  type TokenSource,
} from './transport.js';
export { forbiddenError, missingTokenError, REALM, unauthorizedError } from './challenge.js';
export { MAX_TOKEN_TTL_SECONDS, mintToken, type MintOptions } from './mint.js';
