/**
 * The 401 and 403 answers of the Mercure endpoint (SPEC-08 "Error
 * Responses", digest §6.5), built on Herald's own (src/auth/challenge.ts), so
 * they carry the same codes, realm and RFC 6750 challenge:
 *
 * | case | status | code | challenge |
 * |---|---|---|---|
 * | a token is needed, none was sent | 401 | `HERALD_ERR_UNAUTHORIZED` | `Bearer realm="herald"`, no error |
 * | a token was sent and is not valid | 401 | `HERALD_ERR_UNAUTHORIZED` | `error="invalid_token"` |
 * | a valid token lacks the right | 403 | `HERALD_ERR_FORBIDDEN` | `error="insufficient_scope"` |
 *
 * SPEC-08 also asks for `resource_metadata="<URL>"` (RFC 9728 §5.1) in each
 * challenge; the URL depends on the request's host, so it is added by the
 * caller with {@link withResourceMetadata}.
 */

import { forbiddenError, unauthorizedError } from '../auth/challenge.js';
import { HeraldError } from '../errors.js';
import { describeCarriers, DEFAULT_MERCURE_CARRIERS, type MercureTokenCarriers } from './carriers.js';

/**
 * The 401 for a request that needs a token and sent none: publishing, or
 * subscribing when anonymous subscribers are not allowed.
 *
 * @param carriers the carriers the hub reads, named in the message
 */
export function mercureTokenRequiredError(carriers: MercureTokenCarriers = DEFAULT_MERCURE_CARRIERS): HeraldError {
  return unauthorizedError(`a token is required: send ${describeCarriers(carriers)}`, false);
}

/**
 * The 403 for a valid token without the right: publishing to a topic it does
 * not grant (SPEC-08 "Publishers"; SPEC-CLASSIC says 403 too, where the
 * classic reference hub answered 401), or reading a subscription API URL.
 *
 * @param action what was refused
 * @param topic the topic or URL path refused; the client sent it, so quoting it reveals nothing
 * @example
 * if (!anyMatcherMatches(grant.publish, topic, engines)) throw insufficientScopeError('publish', topic);
 */
export function insufficientScopeError(action: 'publish' | 'subscribe', topic: string): HeraldError {
  const verb = action === 'publish' ? 'publish to' : 'subscribe to';
  return forbiddenError(`the token may not ${verb} topic ${JSON.stringify(topic)}`);
}

/**
 * The same error with `resource_metadata="<url>"` added to its challenge, so
 * a client can discover the hub's protected resource metadata (RFC 9728).
 * Errors without a challenge are returned as they are.
 *
 * @param url the absolute URL of the metadata, e.g. `https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure`
 */
export function withResourceMetadata(error: HeraldError, url: string): HeraldError {
  const { challenge } = error.details;
  if (challenge === undefined) return error;
  // RFC 9110 §5.6.4: a quoted-string may not hold a bare `"` or `\`; a URL never needs them.
  const quoted = url.replace(/["\\]/g, (character) => encodeURIComponent(character)).replace(/[^\x20-\x7e]/g, '');
  // Herald's challenges always hold realm="herald", so the parameter follows a comma.
  const extended = new HeraldError(error.code, error.message, { ...error.details, challenge: `${challenge}, resource_metadata="${quoted}"` });
  if (error.cause !== undefined) extended.cause = error.cause;
  return extended;
}
