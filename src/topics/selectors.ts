/**
 * Topic selectors: every way a subscription (or a token) names topics.
 *
 * The hub treats a topic as an opaque string. Herald's own topic syntax
 * (`/`-separated segments, checked by `parseTopic`) is the business of
 * Herald's API at its edge; Mercure topics are URLs such as
 * `https://example.com/books/1`, which that syntax forbids. A selector is
 * one of five kinds, each with its own matching rule:
 *
 * | kind           | source                           | matches                                                  |
 * |----------------|----------------------------------|----------------------------------------------------------|
 * | `herald`       | `orders/*`, `orders/**`          | the topic split on `/`: `*` one segment, final `**` one or more |
 * | `exact`        | any string                       | the same string, byte for byte (SPEC-08 `match`)         |
 * | `uri-template` | `https://example.com/books/{id}` | the source itself, or an RFC 6570 match (classic `topic=`) |
 * | `url-pattern`  | `https://example.com/books/:id`  | a WHATWG URL Pattern match, relative to a base (SPEC-08 `match_urlpattern`) |
 * | `any`          | `*`                              | every topic                                              |
 *
 * Selectors are plain frozen data (they survive `structuredClone` and JSON);
 * what the libraries compile is kept beside them, and in an LRU cache shared
 * by equal selectors, since compiling a URI template takes milliseconds.
 *
 * @example
 * const wanted = [uriTemplateSelector('https://example.com/books/{id}'), heraldSelector('orders/**')];
 * matchesTopic(wanted[0], 'https://example.com/books/1'); // true
 * sourceFilterOf(wanted); // { exact: [], prefixes: ['https://example.com/books/', 'orders/'] }
 */

import { HeraldError, type ErrorCode } from '../errors.js';
import { parseSelector } from '../hub/topics.js';
import type { TopicFilter } from '../log/event-log.js';
import { segmentsMatch } from './herald.js';
import { LruCache } from './lru.js';
import { compileTemplate, normalizeEscapes, templatePrefix, type CompiledTemplate } from './uri-template.js';
import { compilePattern, MAX_MATCHED_TOPIC_LENGTH, MAX_SELECTOR_BYTES, PatternRefused, type CompiledPattern } from './url-pattern.js';

export { MAX_MATCHED_TOPIC_LENGTH, MAX_PATTERN_PARTS, MAX_PATTERN_PARTS_PER_COMPONENT, MAX_SELECTOR_BYTES } from './url-pattern.js';
export { MAX_TEMPLATE_BODY_LENGTH, MAX_TEMPLATE_EXPRESSIONS, TEMPLATE_COMPILE_BUDGET_MS } from './uri-template.js';

/** Herald's `/`-path selector; `segments` as `parseSelector` returns them. */
export interface HeraldTopicSelector {
  readonly kind: 'herald';
  readonly source: string;
  readonly segments: readonly string[];
}

/** A topic matched byte for byte: no resolution, no Unicode or IRI normalisation (SPEC-08 "exact"). */
export interface ExactTopicSelector {
  readonly kind: 'exact';
  readonly source: string;
}

/** An RFC 6570 template that compiled (a source that did not is an `exact` selector). */
export interface UriTemplateSelector {
  readonly kind: 'uri-template';
  readonly source: string;
}

/** A WHATWG URL Pattern; relative patterns and relative topics resolve against `base`. */
export interface UrlPatternSelector {
  readonly kind: 'url-pattern';
  readonly source: string;
  /** An absolute URL, typically the hub's (`https://example.com/.well-known/mercure`). */
  readonly base: string;
}

/** Mercure's `*`: every topic. */
export interface AnyTopicSelector {
  readonly kind: 'any';
  readonly source: '*';
}

export type TopicSelector = HeraldTopicSelector | ExactTopicSelector | UriTemplateSelector | UrlPatternSelector | AnyTopicSelector;
export type TopicSelectorKind = TopicSelector['kind'];

/**
 * The codes selector failures carry. Both are `HERALD_ERR_INVALID_SELECTOR`
 * today; a pattern refused by a cost rule (ReDoS gate, expression count)
 * deserves a code of its own, `HERALD_ERR_SELECTOR_TOO_COMPLEX` (400), once
 * the catalogue has it: change it here only.
 */
export const SELECTOR_ERROR_CODES = {
  invalid: 'HERALD_ERR_INVALID_SELECTOR',
  tooComplex: 'HERALD_ERR_INVALID_SELECTOR',
} as const satisfies Record<string, ErrorCode>;

/** Entries of the compiled-matcher cache: a few thousand distinct selectors in use stay compiled. */
export const COMPILED_CACHE_SIZE = 4096;

/** C0 and C1 controls, DEL, and format characters (`Cf`: zero-width and bidi controls), which SPEC-08 forbids in matchers. */
const FORBIDDEN_IN_SOURCE = /[\u0000-\u001F\u007F-\u009F\p{Cf}]/u;
/** Half of a UTF-16 pair without its other half: not a character, and UTF-8 cannot carry it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function describe(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

function fail(code: ErrorCode, source: string, why: string): never {
  throw new HeraldError(code, `topic selector ${describe(source)} ${why}`);
}

/** The checks every non-Herald source passes (SPEC-08 "Topic Matchers", and the reference hub's 4096-byte cap). */
function checkSource(source: string): void {
  if (typeof source !== 'string') fail(SELECTOR_ERROR_CODES.invalid, String(source), 'is not a string');
  if (source.length === 0) fail(SELECTOR_ERROR_CODES.invalid, source, 'is empty');
  if (Buffer.byteLength(source, 'utf8') > MAX_SELECTOR_BYTES) fail(SELECTOR_ERROR_CODES.tooComplex, source, `is longer than ${MAX_SELECTOR_BYTES} bytes`);
  if (LONE_SURROGATE.test(source)) fail(SELECTOR_ERROR_CODES.invalid, source, 'is not well-formed Unicode (a lone surrogate)');
  if (FORBIDDEN_IN_SOURCE.test(source)) fail(SELECTOR_ERROR_CODES.invalid, source, 'holds a control or format character');
}

// ---------------------------------------------------------------------------
// Compiled matchers: beside each selector object, and in a shared LRU cache.

/** What compiling a source gave; `null`: not a template (an exact topic). */
type Compiled = CompiledTemplate | CompiledPattern | null | PatternRefused;

const cache = new LruCache<string, Compiled>(COMPILED_CACHE_SIZE);
let cacheHits = 0;
let cacheMisses = 0;
/** The matcher each selector object was built with, so an evicted cache entry never means a recompile in the publish path. */
const attached = new WeakMap<object, CompiledTemplate | CompiledPattern>();

/** Identifies a selector by what decides its matching: kind, base and source. Equal keys match the same topics. */
export function selectorKey(selector: TopicSelector): string {
  return selector.kind === 'url-pattern' ? `url-pattern\n${selector.base}\n${selector.source}` : `${selector.kind}\n${selector.source}`;
}

/** How long a refusal that depends on the moment (a compile past its time budget) is remembered. */
const TRANSIENT_REFUSAL_MS = 30_000;
const transientUntil = new WeakMap<PatternRefused, number>();

function compiled(key: string, make: () => Compiled): Compiled {
  const hit = cache.get(key);
  // A busy machine can push a good template past the compile budget: that refusal is tried again after a while.
  const stale = hit instanceof PatternRefused && (transientUntil.get(hit) ?? Infinity) < Date.now();
  if (hit !== undefined && !stale) {
    cacheHits++;
    return hit;
  }
  cacheMisses++;
  let value: Compiled;
  try {
    value = make();
  } catch (error) {
    // Refusals are cached too, so a client repeating a hostile pattern costs one compile.
    if (!(error instanceof PatternRefused)) throw error;
    value = error;
    if (error.transient) transientUntil.set(error, Date.now() + TRANSIENT_REFUSAL_MS);
  }
  cache.set(key, value);
  return value;
}

function templateFor(source: string): CompiledTemplate | null | PatternRefused {
  return compiled(`uri-template\n${source}`, () => compileTemplate(source) ?? null) as CompiledTemplate | null | PatternRefused;
}

function patternFor(source: string, base: string): CompiledPattern | PatternRefused {
  return compiled(`url-pattern\n${base}\n${source}`, () => compilePattern(source, base)) as CompiledPattern | PatternRefused;
}

/** How the compiled-matcher cache has served (for tests and metrics). */
export function compiledCacheStats(): { readonly size: number; readonly capacity: number; readonly hits: number; readonly misses: number } {
  return { size: cache.size, capacity: cache.capacity, hits: cacheHits, misses: cacheMisses };
}

/** The compiled template of a selector; `undefined` if its source does not compile (it then matches only itself). */
export function templateMatcherOf(selector: UriTemplateSelector): CompiledTemplate | undefined {
  const own = attached.get(selector) as CompiledTemplate | undefined;
  if (own !== undefined) return own;
  // A copy (IPC, JSON) has nothing attached: the cache, or one compile, serves it.
  const result = templateFor(selector.source);
  return result === null || result instanceof PatternRefused ? undefined : result;
}

/**
 * The compiled pattern of a selector.
 * @throws HeraldError if its source is not an admissible pattern (only a hand-made selector can be).
 */
export function patternMatcherOf(selector: UrlPatternSelector): CompiledPattern {
  const own = attached.get(selector) as CompiledPattern | undefined;
  if (own !== undefined) return own;
  const result = patternFor(selector.source, selector.base);
  if (result instanceof PatternRefused) throw refusal(selector.source, result);
  return result;
}

function refusal(source: string, refused: PatternRefused): HeraldError {
  return refused.reason === 'invalid'
    ? new HeraldError(SELECTOR_ERROR_CODES.invalid, `topic selector ${describe(source)} ${refused.message}`)
    : new HeraldError(SELECTOR_ERROR_CODES.tooComplex, `topic selector ${describe(source)} is refused as too costly to match: ${refused.message}`);
}

// ---------------------------------------------------------------------------
// Constructors.

/**
 * Herald's `/`-path selector, checked as Herald's API always has (`parseSelector`).
 * @example heraldSelector('orders/*'); // matches 'orders/1', not 'orders/1/items'
 * @throws HeraldError `HERALD_ERR_INVALID_SELECTOR`
 */
export function heraldSelector(source: string): HeraldTopicSelector {
  const { segments } = parseSelector(source);
  return Object.freeze({ kind: 'herald', source, segments: Object.freeze([...segments]) });
}

/**
 * A topic matched byte for byte. `*` is taken literally here; Mercure's rule
 * that `*` means every topic is `matcherSelector`'s and `uriTemplateSelector`'s.
 * @throws HeraldError `HERALD_ERR_INVALID_SELECTOR` for an empty, over-long or ill-formed source.
 */
export function exactSelector(source: string): ExactTopicSelector {
  checkSource(source);
  return Object.freeze({ kind: 'exact', source });
}

/** Every topic (Mercure's `*`). */
export function anySelector(): AnyTopicSelector {
  return ANY;
}
const ANY: AnyTopicSelector = Object.freeze({ kind: 'any', source: '*' });

/**
 * A Mercure classic selector (`topic=`, and the selectors of a classic
 * token), by the reference hub's rules: `*` is every topic; a source without
 * `{`, or one that is not a template uri-template-router can match, is an
 * exact topic; anything else is a URI template, which also matches its own
 * source byte for byte.
 * @example
 * uriTemplateSelector('https://example.com/books/{id}').kind; // 'uri-template'
 * uriTemplateSelector('https://example.com/{').kind;          // 'exact'
 * @throws HeraldError `HERALD_ERR_INVALID_SELECTOR` for an ill-formed source, or a template past the compile limits of `./uri-template.ts` (`MAX_TEMPLATE_EXPRESSIONS`, `MAX_TEMPLATE_BODY_LENGTH`, `TEMPLATE_COMPILE_BUDGET_MS`).
 */
export function uriTemplateSelector(source: string): AnyTopicSelector | ExactTopicSelector | UriTemplateSelector {
  if (source === '*') return ANY;
  checkSource(source);
  const result = templateFor(source);
  if (result instanceof PatternRefused) throw refusal(source, result);
  if (result === null) return Object.freeze({ kind: 'exact', source });
  const selector: UriTemplateSelector = Object.freeze({ kind: 'uri-template', source });
  attached.set(selector, result);
  return selector;
}

/**
 * A URL Pattern, compiled once, relative to `base`, with `ignoreCase` off,
 * and admitted only if the cost rule of `./url-pattern.ts` bounds its
 * matching time. `*` is not a URL pattern: use `anySelector` (or `matcherSelector`).
 * @example urlPatternSelector('/.well-known/mercure/subscriptions/:topic/:subscriber', 'https://localhost/.well-known/mercure');
 * @throws HeraldError `HERALD_ERR_INVALID_SELECTOR` for a source that is not a pattern or breaks the cost rule; `HERALD_ERR_INVALID_OPTION` for a base that is not an absolute URL.
 */
export function urlPatternSelector(source: string, base: string): UrlPatternSelector {
  checkBase(base);
  checkSource(source);
  // Relative to a base, `*` is a pattern (`/.well-known/*`); taken as such it would mean far less than Mercure's `*`.
  if (source === '*') fail(SELECTOR_ERROR_CODES.invalid, source, 'is Mercure\'s every-topic wildcard, not a URL pattern; use anySelector() or matcherSelector()');
  const result = patternFor(source, base);
  if (result instanceof PatternRefused) throw refusal(source, result);
  const selector: UrlPatternSelector = Object.freeze({ kind: 'url-pattern', source, base });
  attached.set(selector, result);
  return selector;
}

function checkBase(base: string): void {
  if (typeof base !== 'string' || !URL.canParse(base)) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `the base URL of URL patterns ${describe(String(base))} is not an absolute URL`);
  }
}

/** The matcher types of Mercure draft-08 (`match`/`match_exact` is `exact`, `match_urlpattern` is `urlpattern`). */
export type MatchType = 'exact' | 'urlpattern';

/**
 * A Mercure draft-08 matcher: `*` is every topic whatever the type (checked
 * before the type, as SPEC-08 says), else an exact or a URL Pattern selector.
 * @example matcherSelector('urlpattern', 'https://example.net/foo/:random', 'https://localhost/.well-known/mercure');
 * @throws HeraldError as `exactSelector` and `urlPatternSelector` do.
 */
export function matcherSelector(type: MatchType, source: string, base: string): AnyTopicSelector | ExactTopicSelector | UrlPatternSelector {
  if (source === '*') return ANY;
  return type === 'exact' ? exactSelector(source) : urlPatternSelector(source, base);
}

// ---------------------------------------------------------------------------
// Matching and filters.

/**
 * Whether the selector matches the topic. For many selectors and topics,
 * `TopicIndex` answers without testing them all.
 */
export function matchesTopic(selector: TopicSelector, topic: string): boolean {
  switch (selector.kind) {
    case 'any':
      return true;
    case 'exact':
      return topic === selector.source;
    case 'herald':
      return segmentsMatch(selector.segments, topic.split('/'));
    case 'uri-template':
      if (topic === selector.source) return true;
      if (topic.length > MAX_MATCHED_TOPIC_LENGTH) return false;
      return templateMatcherOf(selector)?.testNormalized(normalizeEscapes(topic)) ?? false;
    case 'url-pattern': {
      // Only a hand-made selector can fail here; in the publish path that must mean "no match", not a throw.
      const result = attached.get(selector) ?? patternFor(selector.source, selector.base);
      return !(result instanceof PatternRefused) && (result as CompiledPattern).test(topic);
    }
  }
}

/** Whether any of the selectors matches the topic. */
export function matchesAnyTopic(selectors: readonly TopicSelector[], topic: string): boolean {
  return selectors.some((selector) => matchesTopic(selector, topic));
}

/**
 * The raw text every topic a URI template matches starts with: the literal
 * text before the first `{`, cut before its first `%` (matching upper-cases
 * escapes, so `%2f` in the topic may stand for `%2F` in the template).
 */
export function templateSourcePrefix(source: string): string {
  const prefix = templatePrefix(source);
  const escape = prefix.indexOf('%');
  return escape === -1 ? prefix : prefix.slice(0, escape);
}

/**
 * What a log may filter on for these selectors (see `TopicFilter`): exact
 * topics, and prefixes every matching topic starts with. It may pass more
 * than the selectors match, never less; the hub checks every event again.
 * `undefined` (read everything) for no selectors, or as soon as one selector
 * has no usable prefix:
 * - `any`, and a Herald selector starting with a wildcard;
 * - a URI template starting with `{`;
 * - every URL pattern: it matches the *parsed* URL, so a matching topic need
 *   not start with any text of the pattern (`/books/1` relative to the base,
 *   `HTTPS://EXAMPLE.COM/books/1`, `https://example.com:443/books/1`,
 *   `https://example.com/x/../books/1` all match `https://example.com/books/:id`).
 */
export function sourceFilterOf(selectors: readonly TopicSelector[]): TopicFilter | undefined {
  if (selectors.length === 0) return undefined;
  const exact: string[] = [];
  const prefixes: string[] = [];
  for (const selector of selectors) {
    switch (selector.kind) {
      case 'any':
      case 'url-pattern':
        return undefined;
      case 'exact':
        exact.push(selector.source);
        break;
      case 'herald': {
        const { segments } = selector;
        const wildcard = segments.findIndex((segment) => segment === '*' || segment === '**');
        if (wildcard === -1) exact.push(selector.source);
        else if (wildcard === 0) return undefined;
        else prefixes.push(`${segments.slice(0, wildcard).join('/')}/`);
        break;
      }
      case 'uri-template': {
        const prefix = templateSourcePrefix(selector.source);
        if (prefix === '') return undefined;
        prefixes.push(prefix);
        break;
      }
    }
  }
  return { exact, prefixes };
}
