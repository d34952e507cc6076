/**
 * What a verified Mercure token allows, in one shape for both generations.
 *
 * Topic matchers are descriptors, not compiled matchers: URI templates
 * (classic) and URL patterns (draft-08) need engines that live elsewhere,
 * and compiling is slow enough (digest §12) that the caller caches it. The
 * helpers here only say what a descriptor means, so every caller applies
 * the same rules (`*` first, byte equality, then the engine).
 */

/** `classic`: the `mercure` claim (SPEC-CLASSIC). `draft-08`: an RFC 9068 access token with `authorization_details`. */
export type MercureGeneration = 'classic' | 'draft-08';

/**
 * - `any`: the wildcard `*`, matching every topic (both generations; SPEC-08
 *   checks it before the matcher type, so `{"match": "*", "match_type": "urlpattern"}` is `any` too);
 * - `exact`: byte-for-byte equality;
 * - `uri-template`: a classic selector holding `{`, an RFC 6570 template; it
 *   also matches a topic equal to it, and it is compared as a raw string when
 *   it does not parse as a template (SPEC-CLASSIC §3.1 order, GO-CLASSIC);
 * - `url-pattern`: a draft-08 WHATWG URL Pattern, already checked by the
 *   validator the settings gave; relative patterns resolve against the hub URL.
 */
export type MatcherKind = 'any' | 'exact' | 'uri-template' | 'url-pattern';

export interface TopicMatcher {
  readonly kind: MatcherKind;
  /** The matcher as the token holds it. */
  readonly source: string;
}

/** One group of subscribe rights, with the payload the token attaches to it. */
export interface MercureSubscribeEntry {
  readonly matchers: readonly TopicMatcher[];
  /** Any JSON value; `undefined` when the token gives none (`null` is a payload). */
  readonly payload: unknown;
}

/** The rights of a verified Mercure token. Frozen. */
export interface MercureGrant {
  readonly generation: MercureGeneration;
  /** Topics the holder may publish to (classic `mercure.publish`; draft-08 the topics of every `publish` detail). */
  readonly publish: readonly TopicMatcher[];
  /** Topics the holder may receive private updates on: the matchers of every subscribe entry, in order. */
  readonly subscribe: readonly TopicMatcher[];
  /**
   * The subscribe rights as the token groups them, in token order: draft-08,
   * one entry per `subscribe` detail with that detail's payload; classic, a
   * single entry holding `mercure.subscribe` and `mercure.payload` (classic
   * payloads belong to the subscriber, not to a topic).
   */
  readonly subscribeEntries: readonly MercureSubscribeEntry[];
  /**
   * The token's `exp` in ms since the epoch: a stream opened with this token
   * must be closed by then (both specs). `undefined`: a classic token without `exp`.
   */
  readonly expiresAt: number | undefined;
  /** The token's `sub`, when it is a string. */
  readonly subject?: string;
  /** The token's `iss`, when it is a string (checked against the trusted issuers when some are configured). */
  readonly issuer?: string;
}

/**
 * The engines for the matcher kinds that need one. A missing engine means
 * "never matches" (fail closed): a hub without a URL Pattern engine must not
 * treat patterns as wildcards.
 */
export interface MatcherEngines {
  /** Whether `topic` matches the RFC 6570 template; throwing counts as "does not parse", i.e. no match beyond equality. */
  uriTemplate?(template: string, topic: string): boolean;
  /** Whether `topic` matches the URL pattern (relative ones resolved against the hub URL); a cost-limit abort is `false`. */
  urlPattern?(pattern: string, topic: string): boolean;
}

/**
 * Whether one matcher matches a topic.
 *
 * @example
 * matcherMatches({ kind: 'uri-template', source: 'https://example.net/foo/{id}' }, 'https://example.net/foo/1', engines);
 */
export function matcherMatches(matcher: TopicMatcher, topic: string, engines: MatcherEngines): boolean {
  switch (matcher.kind) {
    case 'any':
      return true;
    case 'exact':
      return matcher.source === topic;
    case 'uri-template':
      // SPEC-CLASSIC: equality first, so a template also matches itself even if it fails to parse.
      if (matcher.source === topic) return true;
      try {
        return engines.uriTemplate?.(matcher.source, topic) ?? false;
      } catch {
        return false;
      }
    case 'url-pattern':
      try {
        return engines.urlPattern?.(matcher.source, topic) ?? false;
      } catch {
        return false;
      }
  }
}

/** Whether some matcher of the list matches the topic. */
export function anyMatcherMatches(matchers: readonly TopicMatcher[], topic: string, engines: MatcherEngines): boolean {
  return matchers.some((matcher) => matcherMatches(matcher, topic, engines));
}

/**
 * The payload to show for one subscription, in the subscription API and in
 * subscription events (digest §6.3 and §8).
 *
 * Draft-08 (SPEC-08 "Payloads"): the payload of the **first** subscribe
 * detail one of whose matchers matches the subscription's own matcher
 * string, taken as if it were a topic; a `*` matcher matches every
 * subscription and so serves as a default. The first matching detail wins
 * even when it carries no payload: that is what "first" says, and it lets an
 * issuer give a specific topic no payload in front of a `*` default.
 *
 * Classic: `mercure.payload`, whatever the subscription.
 *
 * @param subscriptionMatch the subscription's `match`/`match_urlpattern` (or classic `topic`) value
 * @returns the payload, or `undefined` when there is none
 * @example
 * subscriptionPayload(grant, 'https://example.com/bar/:id', engines); // { custom2: ... }
 */
export function subscriptionPayload(grant: MercureGrant, subscriptionMatch: string, engines: MatcherEngines): unknown {
  // Classic: the entries of matcher objects with payloads of their own come first; the last entry holds the
  // claim's `mercure.payload`, the subscriber's whatever it subscribes to, for every other subscription.
  if (grant.generation === 'classic') {
    const own = grant.subscribeEntries.slice(0, -1).find((candidate) => anyMatcherMatches(candidate.matchers, subscriptionMatch, engines));
    return own !== undefined ? own.payload : grant.subscribeEntries.at(-1)?.payload;
  }
  const entry = grant.subscribeEntries.find((candidate) => anyMatcherMatches(candidate.matchers, subscriptionMatch, engines));
  return entry?.payload;
}
