/**
 * Turning the claims of a token whose signature and times are already
 * checked into topic rights: the classic `mercure` claim (SPEC-CLASSIC) and
 * the draft-08 `authorization_details` claim (SPEC-08 "Authorization
 * Details", digest §6.3).
 *
 * Both parsers are all-or-nothing: one malformed entry makes the whole token
 * invalid, never partly honoured, because dropping the bad entry would
 * silently change what the token allows (SPEC-08 forbids partial acceptance;
 * Herald's own `herald` claim follows the same rule).
 */

import type { MercureSubscribeEntry, TopicMatcher } from './grant.js';

/** Reports why the claims are unacceptable; never returns. */
export type ClaimFailure = (reason: string) => never;

/**
 * Checks that a `urlpattern` matcher compiles and is cheap enough to run
 * (the ReDoS gate of digest §12.2). Relative patterns resolve against `hubUrl`.
 * Returning `false` or throwing makes the token invalid.
 */
export type UrlPatternValidator = (pattern: string, hubUrl: string) => boolean;

/** Bounds on the work one token may cause; over any of them, the token is invalid (SPEC-08 SHOULD; the reference hub's values). */
export interface MercureTokenLimits {
  /** Characters of the compact token. Default 64 KiB. */
  readonly maxTokenBytes: number;
  /** Entries of `authorization_details`, of any type (each one is read). Default 100. */
  readonly maxDetails: number;
  /** Topic matchers in one token, summed over every detail (draft-08) or over `publish` and `subscribe` (classic). Default 100. */
  readonly maxMatchers: number;
  /** UTF-8 bytes of one matcher. Default 4096, the cap on query matchers and topics too. */
  readonly maxMatcherBytes: number;
}

export const DEFAULT_MERCURE_TOKEN_LIMITS: MercureTokenLimits = Object.freeze({
  maxTokenBytes: 64 * 1024,
  maxDetails: 100,
  maxMatchers: 100,
  maxMatcherBytes: 4096,
});

/**
 * The detail types that carry Mercure rights. SPEC-08 names the type
 * `mercure`; the reference hub's conformance token, its documentation and
 * downstream projects use the URL form. Both are honoured (digest, drift warning).
 */
export const MERCURE_DETAIL_TYPES: readonly string[] = Object.freeze(['mercure', 'https://mercure.rocks/authorization-detail']);

/** The namespaced form of the classic claim, which GO-CLASSIC reads when `mercure` is absent. */
export const NAMESPACED_CLASSIC_CLAIM = 'https://mercure.rocks/';

/** The rights of one token, before `exp`, `sub` and `iss` join them. */
export interface MercureRights {
  readonly publish: readonly TopicMatcher[];
  readonly subscribe: readonly TopicMatcher[];
  readonly subscribeEntries: readonly MercureSubscribeEntry[];
}

const NO_RIGHTS: MercureRights = Object.freeze({ publish: Object.freeze([]), subscribe: Object.freeze([]), subscribeEntries: Object.freeze([]) });

/**
 * C0, DEL, C1, format characters (`Cf`: bidi overrides, zero-width joiners)
 * and lone surrogates (text that is not valid UTF-8 once encoded). SPEC-08
 * forbids them in topics and query matchers; a token matcher holding one
 * could never match a valid topic, and `Cf` characters are how look-alike
 * topics are made, so it is refused rather than kept as dead weight.
 */
const FORBIDDEN_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\p{Cf}\p{Cs}]/u;

/**
 * Whether text may be a draft-08 topic matcher as far as its characters go:
 * valid Unicode, no control or format character. The subscription query
 * parser applies the same rule (digest §3.2).
 */
export function isMatcherText(text: string): boolean {
  return !FORBIDDEN_CHARACTERS.test(text);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** SPEC-CLASSIC selectors: `*` is the wildcard, a `{` makes an RFC 6570 template (as GO-CLASSIC decides), anything else is a raw string. */
export function classicMatcher(selector: string): TopicMatcher {
  const kind = selector === '*' ? 'any' : selector.includes('{') ? 'uri-template' : 'exact';
  return Object.freeze({ kind, source: selector });
}

/**
 * The rights of a classic token: `mercure.publish` and `mercure.subscribe`
 * (a missing list grants nothing), and `mercure.payload`. A list holds
 * selector strings (SPEC-CLASSIC) or matcher objects
 * `{"match", "matchType"?, "payload"?}` (the reference hub's newer form), or
 * both. A token with no `mercure` claim at all is valid and grants
 * nothing: its holder subscribes as if anonymous (digest §11).
 *
 * Payloads: each subscribe object with a `payload` of its own is an entry of
 * its own (in list order); the strings, and the objects without one, share
 * one entry with `mercure.payload`, last.
 */
export function classicRights(payload: Readonly<Record<string, unknown>>, context: DetailContext, invalid: ClaimFailure): MercureRights {
  const { limits } = context;
  const name = Object.hasOwn(payload, 'mercure') ? 'mercure' : Object.hasOwn(payload, NAMESPACED_CLASSIC_CLAIM) ? NAMESPACED_CLASSIC_CLAIM : undefined;
  if (name === undefined) return NO_RIGHTS;
  const claim = payload[name];
  if (!isPlainObject(claim)) invalid(`the token's "${name}" claim must be an object: {"publish": [...], "subscribe": [...]}`);
  let count = 0;
  const ownPayloads: MercureSubscribeEntry[] = [];
  const list = (role: 'publish' | 'subscribe'): TopicMatcher[] => {
    const selectors = claim[role];
    if (selectors === undefined) return [];
    if (!Array.isArray(selectors)) invalid(`the token's ${name}.${role} claim must be a list of topic selectors`);
    count += selectors.length;
    if (count > limits.maxMatchers) invalid(`the token holds more than ${limits.maxMatchers} topic selectors`);
    const shared: TopicMatcher[] = [];
    selectors.forEach((selector: unknown, index) => {
      const where = `the token's ${name}.${role}[${index}]`;
      if (typeof selector === 'string') {
        if (byteLength(selector) > limits.maxMatcherBytes) invalid(`${where} is longer than ${limits.maxMatcherBytes} bytes`);
        shared.push(classicMatcher(selector));
        return;
      }
      if (!isPlainObject(selector)) invalid(`${where} must be a topic selector (a string) or a matcher object {"match": "..."}`);
      const matcher = objectMatcher(selector, where, context, invalid);
      if (role === 'subscribe' && selector.payload !== undefined) ownPayloads.push(Object.freeze({ matchers: Object.freeze([matcher]), payload: selector.payload }));
      else shared.push(matcher);
    });
    return shared;
  };
  const publish = Object.freeze(list('publish'));
  const sharedSubscribe = list('subscribe');
  const subscribe = Object.freeze([...ownPayloads.flatMap((entry) => entry.matchers), ...sharedSubscribe]);
  // Without objects of their own payload, one entry: a classic payload is the subscriber's, shown on each of its subscriptions.
  const entry: MercureSubscribeEntry = Object.freeze({ matchers: Object.freeze(sharedSubscribe), payload: claim.payload });
  return Object.freeze({ publish, subscribe, subscribeEntries: Object.freeze([...ownPayloads, entry]) });
}

/** What draft-08 matchers are checked with. */
export interface DetailContext {
  readonly limits: MercureTokenLimits;
  readonly validateUrlPattern: UrlPatternValidator;
  /** The hub's URL, against which relative patterns resolve. */
  readonly hubUrl: string;
}

/** `matchType` values (the current texts' case) and the kind each names. */
const MATCH_TYPES: Readonly<Record<string, 'exact' | 'urlpattern' | 'uritemplate'>> = { Exact: 'exact', URLPattern: 'urlpattern', URITemplate: 'uritemplate' };

/**
 * One topic matcher object, `{"match": "...", "matchType"?: ..., "payload"?: ...}`, of a detail's `topics`
 * (SPEC-08 "Topic Matcher List") or of a classic claim's lists (the reference hub's newer form). The type is
 * spelled two ways, both taken: `matchType` (`Exact` | `URLPattern` | `URITemplate`, the current texts) and
 * `match_type` (`exact` | `urlpattern`, earlier revisions). Each is case-sensitive, default exact; any other
 * value is an error, not a guess, and so are both members naming different types.
 */
export function objectMatcher(value: unknown, where: string, context: DetailContext, invalid: ClaimFailure): TopicMatcher {
  if (!isPlainObject(value)) invalid(`${where} must be an object: {"match": "...", "matchType": "Exact" | "URLPattern"}`);
  const { match } = value;
  if (typeof match !== 'string' || match === '') invalid(`${where}.match must be a non-empty string`);
  const current = value.matchType;
  const earlier = value.match_type;
  if (current !== undefined && (typeof current !== 'string' || !Object.hasOwn(MATCH_TYPES, current))) invalid(`${where}.matchType must be "Exact", "URLPattern" or "URITemplate"`);
  if (earlier !== undefined && earlier !== 'exact' && earlier !== 'urlpattern') invalid(`${where}.match_type must be "exact" or "urlpattern"`);
  const fromCurrent = current === undefined ? undefined : MATCH_TYPES[current as string];
  if (fromCurrent !== undefined && earlier !== undefined && fromCurrent !== earlier) invalid(`${where} names two different matcher types`);
  const matchType = fromCurrent ?? earlier;
  if (byteLength(match) > context.limits.maxMatcherBytes) invalid(`${where}.match is longer than ${context.limits.maxMatcherBytes} bytes`);
  if (!isMatcherText(match)) invalid(`${where}.match holds a control or format character`);
  // SPEC-08 "Matcher Types": `*` is recognised before the type is resolved.
  if (match === '*') return Object.freeze({ kind: 'any', source: match });
  if (matchType === 'uritemplate') return classicMatcher(match);
  if (matchType === 'urlpattern') {
    let valid: boolean;
    try {
      valid = context.validateUrlPattern(match, context.hubUrl);
    } catch {
      valid = false;
    }
    // The compiler's own message can reveal internals (digest §11), so only the place is named.
    if (!valid) invalid(`${where}.match is not a URL pattern this hub accepts`);
    return Object.freeze({ kind: 'url-pattern', source: match });
  }
  return Object.freeze({ kind: 'exact', source: match });
}

/**
 * The rights of a draft-08 token's `authorization_details`.
 *
 * - Entries of other types are skipped: they belong to other resource
 *   servers (RFC 9396 §2). They must still be objects with a string `type`.
 * - A Mercure entry needs a non-empty `actions` list of strings, of which
 *   `publish` and `subscribe` count and others are ignored (SPEC-08), and a
 *   non-empty `topics` list of matcher objects. `payload` is optional.
 * - A missing claim grants nothing; the token is still valid.
 */
export function draft08Rights(details: unknown, context: DetailContext, invalid: ClaimFailure): MercureRights {
  if (details === undefined) return NO_RIGHTS;
  if (!Array.isArray(details)) invalid('the token\'s "authorization_details" claim must be a list');
  const { limits } = context;
  if (details.length > limits.maxDetails) invalid(`the token holds more than ${limits.maxDetails} authorization details`);
  const publish: TopicMatcher[] = [];
  const subscribe: TopicMatcher[] = [];
  const subscribeEntries: MercureSubscribeEntry[] = [];
  let count = 0;
  details.forEach((detail: unknown, index) => {
    const where = `authorization_details[${index}]`;
    if (!isPlainObject(detail) || typeof detail.type !== 'string') invalid(`${where} must be an object with a string "type"`);
    if (!MERCURE_DETAIL_TYPES.includes(detail.type)) return;
    const { actions, topics } = detail;
    if (!Array.isArray(actions) || actions.length === 0) invalid(`${where}.actions must be a non-empty list`);
    if (!actions.every((action) => typeof action === 'string')) invalid(`${where}.actions must hold strings only`);
    if (!Array.isArray(topics) || topics.length === 0) invalid(`${where}.topics must be a non-empty list`);
    count += topics.length;
    // Counted before the matchers are compiled, so an oversized token costs no pattern compilation.
    if (count > limits.maxMatchers) invalid(`the token holds more than ${limits.maxMatchers} topic matchers`);
    const matchers = Object.freeze(topics.map((topic, at) => objectMatcher(topic, `${where}.topics[${at}]`, context, invalid)));
    if (actions.includes('publish')) publish.push(...matchers);
    if (actions.includes('subscribe')) {
      subscribe.push(...matchers);
      subscribeEntries.push(Object.freeze({ matchers, payload: detail.payload }));
    }
  });
  return Object.freeze({ publish: Object.freeze(publish), subscribe: Object.freeze(subscribe), subscribeEntries: Object.freeze(subscribeEntries) });
}
