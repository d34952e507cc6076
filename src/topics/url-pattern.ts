/**
 * WHATWG URL Pattern selectors (Mercure draft-08 `match_urlpattern`).
 *
 * Node 20 has no `URLPattern`, so the polyfill does the parsing and the
 * matching. It compiles each component to an ordinary backtracking RegExp,
 * and Mercure makes ReDoS protection a MUST (SPEC-08 "URL Pattern"): some
 * plain patterns take minutes for one match (`https://example.com/` then five
 * `*` segments then `/x`, against a 533-character URL: 51 s). Node offers no
 * linear-time engine the polyfill could use, so a pattern is admitted only if
 * a static cost rule bounds its matching time, and topics longer than a cap
 * never reach it.
 *
 * The cost rule (`checkPatternCost`), applied to the component patterns the
 * polyfill normalises (its `protocol`, `username`, …, `hash` getters):
 *
 * 1. The pattern string is at most `MAX_SELECTOR_BYTES` (4096) UTF-8 bytes.
 * 2. A *variable part* is a named group (`:id`), a regexp group (`(\d+)`), a
 *    wildcard (`*`), or a `{…}` group of fixed text carrying the `?`
 *    modifier. A component whose whole pattern is `*` (which the polyfill
 *    fills in for an omitted search, hash, username, …) is free: its RegExp
 *    `^(.*)$` is linear.
 * 3. At most 2 variable parts in any one component, at most 8 in the pattern.
 *    One part is linear, two are quadratic in the component's length; a third
 *    makes it cubic, and the exponential cases above are five or more. In the
 *    pathname, a named group without a regexp matches `[^/]+?`: it cannot
 *    cross a `/`, so it only competes with the parts of its own segment and
 *    with parts that can cross (wildcards, regexp groups, optional groups).
 *    There the count is those crossing parts plus the most named groups in
 *    any one segment, so `/subscriptions/:type/:match/:subscriber` (SPEC-08's
 *    own example) costs 1, and `/:a-:b-:c` still 3. Only a `/` that is always
 *    there separates segments (not one in `{…}`, nor the prefix of an
 *    optional part, which may vanish with it), and only for a protocol that
 *    matches a special scheme (elsewhere a named group crosses `/` too).
 * 4. No repeat modifier (`*` or `+` after a part, as in `:path+`): it puts a
 *    quantifier around a quantified group, the textbook exponential case
 *    (`((?:[^/]+?)+)` outside the pathname). `/*` (or `?` for optional)
 *    covers what a repeat would.
 * 5. A regexp group holds a single atom with at most one quantifier: a class
 *    (`[0-9a-f]`, `[^/]`), an escape (`\d \D \w \W \s \S`), `.`, or one
 *    letter, digit, `_` or `-`; then optionally `* + ? {n} {n,} {n,m}`, then
 *    optionally a lazy `?`. So `:id(\d+)` and `([0-9a-f]{40})` pass, and
 *    `((?:a|a)+)` or `(a*a*)` do not.
 *
 * And at match time a topic longer than `MAX_MATCHED_TOPIC_LENGTH` (4096
 * UTF-16 units) does not match. Measured on the polyfill 10.1.0 and Node 20,
 * the slowest admitted shapes tried (two parts in one component, such as
 * `/:a?:b?!`, `/*-*x`, `?*&*=y`) take at most about 30 ms for one failing
 * match of a 4096-character topic; what the rule refuses took 26–217 s.
 * The polyfill is pinned: the rule reads its normalised pattern strings.
 */

import { URLPattern } from 'urlpattern-polyfill/urlpattern';

/** Longest selector source, in UTF-8 bytes (the reference hub's cap). */
export const MAX_SELECTOR_BYTES = 4096;
/** Longest topic a URI template or URL pattern is matched against, in UTF-16 units. Longer topics match only exact, Herald and `*` selectors. */
export const MAX_MATCHED_TOPIC_LENGTH = 4096;
/** Variable parts allowed in one component of a URL pattern. */
export const MAX_PATTERN_PARTS_PER_COMPONENT = 2;
/** Variable parts allowed in a whole URL pattern. */
export const MAX_PATTERN_PARTS = 8;

/** The components a URL pattern matches, in the order the polyfill tests them. */
const COMPONENTS = ['protocol', 'username', 'password', 'hostname', 'port', 'pathname', 'search', 'hash'] as const;

/** The body of a regexp group that cannot backtrack more than linearly on its own. */
const SAFE_REGEXP = /^(?:\[(?:[^\\[\]]|\\.)+\]|\\[dDwWsS]|\.|[A-Za-z0-9_-])(?:[*+?]|\{\d{1,4}(?:,\d{0,4})?\})?\??$/;
/** A character of a group name (what the URL Pattern tokenizer takes after `:`). */
const NAME_CHAR = /[$_\u200C\u200D\p{ID_Continue}]/u;

/** Why a URL pattern was refused: `invalid` (not a pattern) or `too-complex` (the cost rule). */
export class PatternRefused extends Error {
  override readonly name = 'PatternRefused';
  constructor(
    readonly reason: 'invalid' | 'too-complex',
    message: string,
    /**
     * Whether the refusal depends on the moment, not only on the source (a
     * time budget ran out, maybe because the machine was busy): it is then
     * remembered for a while, not for good.
     */
    readonly transient = false,
  ) {
    super(message);
  }
}

interface ComponentScan {
  /** Variable parts, all of them (rule 3's limit on the pattern). */
  readonly parts: number;
  /** What rule 3 limits per component: the parts, or in the pathname the crossing parts plus the fullest segment's. */
  readonly cost: number;
  /** Regexp groups seen (cross-checked with the polyfill's own `hasRegExpGroups`). */
  readonly regexps: number;
}

/**
 * Counts the variable parts of one normalised component pattern, following
 * the URL Pattern tokenizer: `\` escapes, `:name`, `(regexp)`, `*`, `{…}` and
 * a modifier after a part. Throws `PatternRefused` past the rules 4 and 5.
 */
function scanComponent(component: string, pattern: string, segmented = false): ComponentScan {
  if (pattern === '*') return { parts: 0, cost: 0, regexps: 0 };
  let parts = 0;
  let regexps = 0;
  /** Segmented pathname: named groups of the current segment, the most in any segment, and the parts that can cross a `/`. */
  const bySegment = segmented;
  let segmentParts = 0;
  let fullestSegment = 0;
  let crossing = 0;
  let inGroup = false;
  let groupHasPart = false;
  let i = 0;
  const refuse = (why: string): never => {
    throw new PatternRefused('too-complex', `its ${component} ${why}`);
  };
  /** After a part or a group: an optional modifier. */
  const modifier = (): string | undefined => {
    const next = pattern[i];
    if (next === '?' || next === '*' || next === '+') {
      i++;
      if (next !== '?') refuse(`repeats a part with "${next}" (nested quantifiers backtrack exponentially); use "*" for any rest`);
      return next;
    }
    return undefined;
  };
  const part = (boundToSegment = false): void => {
    parts++;
    // A named group inside `{…}` may vanish with its group, joining the segments around it: it counts as crossing.
    if (bySegment && boundToSegment && !inGroup) fullestSegment = Math.max(fullestSegment, ++segmentParts);
    else crossing++;
    if (inGroup) groupHasPart = true;
    // Inside a group the modifier follows the closing brace, not the part.
    if (!inGroup) modifier();
  };
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === '\\') {
      i += 2;
    } else if (c === '{') {
      inGroup = true;
      groupHasPart = false;
      i++;
    } else if (c === '}') {
      i++;
      inGroup = false;
      if (modifier() !== undefined && !groupHasPart) {
        parts++;
        crossing++;
      }
    } else if (c === ':') {
      i++;
      while (i < pattern.length && NAME_CHAR.test(pattern[i]!)) i++;
      let custom = false;
      if (pattern[i] === '(') {
        regexps++;
        custom = true;
        readRegexp();
      }
      part(!custom);
    } else if (c === '/') {
      // Only a `/` that is always there separates segments: not one inside `{…}`, nor the implicit prefix of an
      // optional part (`/:id?` may match nothing at all, `/` included, and join its neighbours into one segment).
      if (!inGroup && !optionalPartAt(i + 1)) segmentParts = 0;
      i++;
    } else if (c === '(') {
      regexps++;
      readRegexp();
      part();
    } else if (c === '*') {
      i++;
      part();
    } else {
      i++;
    }
  }
  return { parts, cost: bySegment ? crossing + fullestSegment : parts, regexps };

  /** Whether a part with the `?` modifier starts at `at` (a named group, a regexp group or a wildcard). */
  function optionalPartAt(at: number): boolean {
    let j = at;
    if (pattern[j] === ':') {
      j++;
      while (j < pattern.length && NAME_CHAR.test(pattern[j]!)) j++;
    } else if (pattern[j] !== '(' && pattern[j] !== '*') {
      return false;
    }
    if (pattern[j] === '*') j++;
    else if (pattern[j] === '(') j = afterRegexp(j);
    return pattern[j] === '?';
  }

  /** The index after the `(…)` group starting at `at`. */
  function afterRegexp(at: number): number {
    let depth = 0;
    let inClass = false;
    let j = at;
    for (; j < pattern.length; j++) {
      const c = pattern[j];
      if (c === '\\') j++;
      else if (inClass) inClass = c !== ']';
      else if (c === '[') inClass = true;
      else if (c === '(') depth++;
      else if (c === ')' && --depth === 0) break;
    }
    return j + 1;
  }

  /** Reads `(…)` from `i` (at the `(`), leaving `i` after the `)`; refuses a body outside rule 5. */
  function readRegexp(): void {
    const start = i + 1;
    i = afterRegexp(i);
    const body = pattern.slice(start, i - 1);
    if (!SAFE_REGEXP.test(body)) {
      refuse(`has the regexp group (${body.length > 40 ? `${body.slice(0, 40)}…` : body}); only one class, escape or character with one quantifier is allowed`);
    }
  }
}

const SPECIAL_SCHEMES = ['http', 'https', 'ws', 'wss', 'ftp', 'file'];

/**
 * Whether the pattern's protocol matches a special scheme: then (URL Pattern
 * standard, "protocol component matches a special scheme") its pathname is
 * compiled with `/` as the delimiter, and a named group is `[^/]+?`.
 */
function protocolMatchesSpecialScheme(pattern: URLPattern): boolean {
  try {
    const protocol = new URLPattern({ protocol: pattern.protocol });
    return SPECIAL_SCHEMES.some((scheme) => protocol.test({ protocol: scheme }));
  } catch {
    return false;
  }
}

/**
 * Applies the cost rule to a compiled pattern; throws `PatternRefused`
 * (`too-complex`) if it breaks it.
 */
export function checkPatternCost(pattern: URLPattern): void {
  let total = 0;
  let regexps = 0;
  // Named groups stop at `/` only in the pathname of a special scheme; elsewhere (`foo:/:a/:b`) they match anything.
  const segmented = protocolMatchesSpecialScheme(pattern);
  for (const component of COMPONENTS) {
    const scan = scanComponent(component, pattern[component], component === 'pathname' && segmented);
    if (scan.cost > MAX_PATTERN_PARTS_PER_COMPONENT) {
      const counted = component === 'pathname' ? ' that can compete (named groups in one segment, plus regexp groups, wildcards and optional groups)' : ' (named groups, regexp groups, wildcards, optional groups)';
      throw new PatternRefused(
        'too-complex',
        `its ${component} has ${scan.cost} variable parts${counted}; at most ${MAX_PATTERN_PARTS_PER_COMPONENT} are allowed in one component`,
      );
    }
    total += scan.parts;
    regexps += scan.regexps;
  }
  if (total > MAX_PATTERN_PARTS) {
    throw new PatternRefused('too-complex', `it has ${total} variable parts; at most ${MAX_PATTERN_PARTS} are allowed`);
  }
  // Belt and braces: if the polyfill saw a regexp group the scan missed, the scan is wrong about this pattern.
  const reported = (pattern as unknown as { hasRegExpGroups?: unknown }).hasRegExpGroups;
  if (reported === true && regexps === 0) throw new PatternRefused('too-complex', 'it has a regexp group in a form Herald cannot check');
}

/**
 * The literal text a component pattern starts with (escapes undone), and
 * whether that is the whole component. A cut drops the last literal
 * character too: it may be the implicit prefix of the part after it (`/` in
 * `/:id?`, `.` in `.:ext?`), which an optional part makes optional.
 */
function literalStart(pattern: string): { text: string; whole: boolean } {
  let text = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      text += pattern[i + 1] ?? '';
      i++;
    } else if (c === '{' || c === ':' || c === '(' || c === '*') {
      return { text: text.slice(0, -1), whole: false };
    } else {
      text += c;
    }
  }
  return { text, whole: true };
}

/**
 * Separates the components of a lookup key. The URL parser never leaves a
 * line feed in a component, so a key prefix cannot run from one component
 * into the next.
 */
const SEPARATOR = '\n';
/** The components a lookup key is made of, in order: enough to bucket patterns by host and path. */
const KEY_COMPONENTS = ['protocol', 'hostname', 'port', 'pathname'] as const;

/**
 * The lookup key of a topic: its protocol, hostname, port and pathname after
 * URL parsing against `base`, the very values the polyfill matches. Bucketing
 * on this key, not on the raw topic, is what keeps relative topics, upper-case
 * hosts, default ports and dot segments findable. `undefined` when the topic
 * is not a URL reference (it then matches no URL pattern).
 */
export function topicKey(topic: string, base: string): string | undefined {
  let url: URL;
  try {
    url = new URL(topic, base);
  } catch {
    return undefined;
  }
  return `${url.protocol.slice(0, -1)}${SEPARATOR}${url.hostname}${SEPARATOR}${url.port}${SEPARATOR}${url.pathname}`;
}

/**
 * The longest key prefix every topic this pattern matches has: whole literal
 * components joined, then the literal start of the first one with a part.
 */
function keyPrefixOf(pattern: URLPattern): string {
  let prefix = '';
  for (const component of KEY_COMPONENTS) {
    const { text, whole } = literalStart(pattern[component]);
    prefix += text;
    if (!whole) return prefix;
    if (component !== 'pathname') prefix += SEPARATOR;
  }
  return prefix;
}

/** A URL pattern compiled and admitted by the cost rule. */
export interface CompiledPattern {
  /** Every topic the pattern matches has a `topicKey` starting with this. */
  readonly keyPrefix: string;
  /** Whether the topic (absolute, or relative to the base) matches; never throws. */
  test(topic: string): boolean;
}

/**
 * Compiles `source` relative to `base` (an absolute URL, checked by the
 * caller) and applies the cost rule.
 * @throws PatternRefused when the polyfill rejects the pattern or the rule does.
 */
export function compilePattern(source: string, base: string): CompiledPattern {
  if (Buffer.byteLength(source, 'utf8') > MAX_SELECTOR_BYTES) {
    throw new PatternRefused('too-complex', `it is longer than ${MAX_SELECTOR_BYTES} bytes`);
  }
  let pattern: URLPattern;
  try {
    // Mercure wants `ignoreCase` off, which is the default (the polyfill has no third argument for a base string).
    pattern = new URLPattern(source, base);
  } catch {
    // The polyfill's message names its internals; the caller says what failed in plain words.
    throw new PatternRefused('invalid', 'it is not a valid URL pattern');
  }
  checkPatternCost(pattern);
  return {
    keyPrefix: keyPrefixOf(pattern),
    test(topic: string): boolean {
      if (topic.length > MAX_MATCHED_TOPIC_LENGTH) return false;
      try {
        return pattern.test(topic, base);
      } catch {
        return false;
      }
    },
  };
}
