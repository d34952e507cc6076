/**
 * Topic selectors of every kind, their index and their source filters
 * (src/topics/*.ts).
 *
 * Randomised tests are seeded: HERALD_TEST_SEED replays a run.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { HeraldError, type ErrorCode } from '../src/errors.js';
import { parseSelector, selectorMatches } from '../src/hub/topics.js';
import { passesFilter } from '../src/log/event-log.js';
import { HeraldTrie } from '../src/topics/herald.js';
import { LruCache } from '../src/topics/lru.js';
import { PrefixTrie } from '../src/topics/prefix-trie.js';
import {
  anySelector,
  compiledCacheStats,
  exactSelector,
  heraldSelector,
  matcherSelector,
  matchesAnyTopic,
  matchesTopic,
  MAX_MATCHED_TOPIC_LENGTH,
  MAX_SELECTOR_BYTES,
  MAX_TEMPLATE_BODY_LENGTH,
  MAX_TEMPLATE_EXPRESSIONS,
  selectorKey,
  sourceFilterOf,
  uriTemplateSelector,
  urlPatternSelector,
  type TopicSelector,
} from '../src/topics/selectors.js';
import { TopicIndex } from '../src/topics/topic-index.js';
import { URLPattern } from 'urlpattern-polyfill/urlpattern';

const SEED = Number(process.env.HERALD_TEST_SEED ?? 20261201);
const BASE = 'https://localhost/.well-known/mercure';

function assertHeraldError(fn: () => unknown, code: ErrorCode, message?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof HeraldError, `expected a HeraldError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.ok(!/[\r\n]/.test(error.message), `message is one line: ${JSON.stringify(error.message)}`);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}

const show = (value: string): string => JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…(${value.length})` : value);

/** A seeded generator of 40-hex-digit strings, like the conformance suite's R0…R5. */
function hexStrings(seed: number): () => string {
  let state = seed >>> 0 || 1;
  return () => {
    let out = '';
    while (out.length < 40) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      out += (state >>> 0).toString(16).padStart(8, '0');
    }
    return out.slice(0, 40);
  };
}

// ---------------------------------------------------------------------------
// Constructors.

describe('constructors', () => {
  test('heraldSelector keeps parseSelector\'s rules and segments', () => {
    const selector = heraldSelector('orders/*/items');
    assert.deepEqual(selector, { kind: 'herald', source: 'orders/*/items', segments: ['orders', '*', 'items'] });
    for (const bad of ['', 'a//b', '/a', 'a/**/b', 'a*', 'a\nb']) {
      assertHeraldError(() => heraldSelector(bad), 'HERALD_ERR_INVALID_SELECTOR');
    }
  });

  test('exactSelector takes any well-formed string, `*` literally', () => {
    for (const source of ['https://example.com/books/1', '*', 'will-not-match}', 'a'.repeat(MAX_SELECTOR_BYTES), 'é'.repeat(MAX_SELECTOR_BYTES / 2)]) {
      assert.deepEqual(exactSelector(source), { kind: 'exact', source });
    }
  });

  const illFormed = ['', 'a\nb', 'a\rb', 'a\0b', 'a\u007Fb', 'a\u0085b', 'a\u200Bb', 'a\u202Eb', '\uFEFFa', 'a\uD800b', 'a\uDC00', 'a'.repeat(MAX_SELECTOR_BYTES + 1), 'é'.repeat(MAX_SELECTOR_BYTES / 2 + 1)];
  for (const source of illFormed) {
    test(`every Mercure kind refuses ${show(source)}`, () => {
      assertHeraldError(() => exactSelector(source), 'HERALD_ERR_INVALID_SELECTOR');
      assertHeraldError(() => uriTemplateSelector(source), 'HERALD_ERR_INVALID_SELECTOR');
      assertHeraldError(() => urlPatternSelector(source, BASE), 'HERALD_ERR_INVALID_SELECTOR');
      assertHeraldError(() => matcherSelector('exact', source, BASE), 'HERALD_ERR_INVALID_SELECTOR');
    });
  }

  test('uriTemplateSelector follows the classic rules: `*`, template, or exact', () => {
    assert.equal(uriTemplateSelector('*'), anySelector());
    assert.deepEqual(uriTemplateSelector('https://example.com/books/1'), { kind: 'exact', source: 'https://example.com/books/1' });
    assert.deepEqual(uriTemplateSelector('https://example.com/books/{id}'), { kind: 'uri-template', source: 'https://example.com/books/{id}' });
    // Not templates the library can match: they stay raw strings.
    for (const source of ['https://example.com/{', 'https://example.com/{a}/{a}', 'a{!x}', 'a b{x}', 'x{}', 'https://example.com/%zz/{x}']) {
      assert.deepEqual(uriTemplateSelector(source), { kind: 'exact', source }, source);
    }
  });

  test('uriTemplateSelector refuses a template with too many expressions', () => {
    const source = Array.from({ length: MAX_TEMPLATE_EXPRESSIONS + 1 }, (_, i) => `/{v${i}}`).join('');
    // The static cap names itself: it refused the template before any compiling (which the budget would have cut).
    assertHeraldError(() => uriTemplateSelector(source), 'HERALD_ERR_INVALID_SELECTOR', /too costly.*expressions/);
    const fine = Array.from({ length: MAX_TEMPLATE_EXPRESSIONS }, (_, i) => `/{v${i}}`).join('');
    assert.equal(uriTemplateSelector(fine).kind, 'uri-template');
  });

  test('a long literal start costs nothing to compile: only the text from the first `{` is compiled', () => {
    // Compiled whole, a 100-character literal start took 2.5 s; 3000 would take hours.
    const source = `https://example.com/${'a'.repeat(3000)}/{id}`;
    // Were the literal start compiled, the compile budget would refuse it (an error, or an exact selector): it is a template.
    const selector = uriTemplateSelector(source);
    assert.equal(selector.kind, 'uri-template');
    assert.equal(matchesTopic(selector, source.replace('{id}', '42')), true);
    assert.equal(matchesTopic(selector, source.replace('{id}', '4/2')), false);
    assert.equal(matchesTopic(selector, source.replace('aaa/{id}', 'aab/42')), false);
    // A literal start the library would refuse still makes the source an exact topic, as the whole template would.
    for (const raw of ['https://example.com/a b/{id}', 'https://example.com/😀/{id}', 'https://example.com/a%zz/{id}', 'https://example.com/}/{id}']) {
      assert.equal(uriTemplateSelector(raw).kind, 'exact', raw);
    }
  });

  test('a template slow to compile is refused within the time budget, and the refusal is cached', () => {
    // Eight `{?v}` took 1.6 s to compile: within the static caps, so only the budget can stop it.
    const source = `https://example.com/${hexStrings(SEED + 4)()}${Array.from({ length: 8 }, (_, i) => `{?v${i}}`).join('')}`;
    assertHeraldError(() => uriTemplateSelector(source), 'HERALD_ERR_INVALID_SELECTOR', /too costly.*longer than 100 ms to compile/);
    const before = compiledCacheStats();
    assertHeraldError(() => uriTemplateSelector(source), 'HERALD_ERR_INVALID_SELECTOR', /too costly/);
    const after = compiledCacheStats();
    assert.equal(after.misses, before.misses, 'the second refusal compiles nothing');
    assert.equal(after.hits, before.hits + 1, 'the second refusal comes from the cache');
    const long = `https://example.com/{id}/${'a'.repeat(MAX_TEMPLATE_BODY_LENGTH)}`;
    assertHeraldError(() => uriTemplateSelector(long), 'HERALD_ERR_INVALID_SELECTOR', /from the first "\{" on/);
  });

  test('urlPatternSelector compiles, and refuses what is not a pattern', () => {
    assert.deepEqual(urlPatternSelector('https://example.net/foo/:random', BASE), { kind: 'url-pattern', source: 'https://example.net/foo/:random', base: BASE });
    for (const source of ['https://example.com/(', 'https://example.com/:', 'https://example.com/{a']) {
      assertHeraldError(() => urlPatternSelector(source, BASE), 'HERALD_ERR_INVALID_SELECTOR', /not a valid URL pattern/);
    }
    // Relative to a base, `*` would be a pattern (`/.well-known/*`): refused, so that it never means less than every topic.
    assertHeraldError(() => urlPatternSelector('*', BASE), 'HERALD_ERR_INVALID_SELECTOR', /anySelector/);
    for (const base of ['', '/relative', 'not a url']) {
      assertHeraldError(() => urlPatternSelector('/x', base), 'HERALD_ERR_INVALID_OPTION');
    }
  });

  test('matcherSelector: `*` is every topic whatever the type, else exact or URL pattern', () => {
    assert.equal(matcherSelector('exact', '*', BASE).kind, 'any');
    assert.equal(matcherSelector('urlpattern', '*', BASE).kind, 'any');
    assert.equal(matcherSelector('exact', 'https://example.com/:id', BASE).kind, 'exact');
    assert.equal(matcherSelector('urlpattern', 'https://example.com/:id', BASE).kind, 'url-pattern');
  });

  test('a hand-made URL pattern selector that no constructor would make matches nothing, and the index refuses it', () => {
    const forged = { kind: 'url-pattern', source: 'https://example.com/*/*/*/*/*/x', base: BASE } as const;
    // Matched without the rule, this takes longer than the test's timeout; the rule refuses it before any matching.
    assert.equal(matchesTopic(forged, `https://example.com/${'a/'.repeat(300)}`), false);
    assertHeraldError(() => new TopicIndex<number>().add(forged, 1), 'HERALD_ERR_INVALID_SELECTOR', /too costly/);
  });

  test('selectors are frozen plain data; a clone (IPC, JSON) matches as the original does', () => {
    const selectors: TopicSelector[] = [
      heraldSelector('a/*'),
      exactSelector('a/b'),
      uriTemplateSelector('https://example.com/{id}'),
      urlPatternSelector('/books/:id', BASE),
      anySelector(),
    ];
    const topics = ['a/b', 'https://example.com/7', 'https://localhost/books/1', '/books/2', 'nothing'];
    for (const selector of selectors) {
      assert.ok(Object.isFrozen(selector));
      for (const copy of [structuredClone(selector), JSON.parse(JSON.stringify(selector)) as TopicSelector]) {
        assert.equal(selectorKey(copy), selectorKey(selector));
        for (const topic of topics) assert.equal(matchesTopic(copy, topic), matchesTopic(selector, topic), `${selector.source} ${topic}`);
      }
    }
  });
});

// ---------------------------------------------------------------------------
// Matching tables.

type Row = [source: string, topic: string, matches: boolean];

function table(name: string, make: (source: string) => TopicSelector, rows: readonly Row[]): void {
  describe(name, () => {
    for (const [source, topic, matches] of rows) {
      test(`${show(source)} ${matches ? 'matches' : 'does not match'} ${show(topic)}`, () => {
        const selector = make(source);
        assert.equal(matchesTopic(selector, topic), matches);
        // The index must agree with the single test.
        const index = new TopicIndex<string>();
        index.add(selector, 'm');
        const seen: string[] = [];
        index.forEachMatch(topic, (member) => seen.push(member));
        assert.deepEqual(seen, matches ? ['m'] : []);
      });
    }
  });
}

table('herald selectors over opaque topics', heraldSelector, [
  ['orders/*', 'orders/1', true],
  ['orders/*', 'orders/1/items', false],
  ['orders/*', 'orders', false],
  ['orders/**', 'orders/1/items', true],
  ['orders/**', 'orders', false],
  ['orders/1', 'orders/1', true],
  ['orders/1', 'orders/2', false],
  ['*/items', 'orders/items', true],
  ['**', 'https://example.com/books/1', true],
]);

table('herald selectors: what opaque topics change', heraldSelector, [
  // `*` is one segment, and an empty segment is one.
  ['orders/*', 'orders/', true],
  ['https:/**', 'https://example.com/books/1', true], // `https:`, ``, `example.com`, …
  ['https:/*/example.com/books', 'https://example.com/books', true],
  ['https:/*/example.com/books', 'https:/x/example.com/books', true],
  ['https:/*/example.com/books', 'https:///example.com/books', false],
  ['*/*/example.com/**', 'https://example.com/books/1', true],
  // A topic segment that is literally `*` matches once, not once per trie branch.
  ['a/*', 'a/*', true],
  ['a/b', 'a/*', false],
]);

table('exact selectors', exactSelector, [
  ['https://example.com/books/1', 'https://example.com/books/1', true],
  ['https://example.com/books/1', 'https://EXAMPLE.com/books/1', false],
  ['https://example.com/books/1', 'https://example.com/books/1/', false],
  ['*', '*', true],
  ['*', 'anything', false],
  ['café', 'cafe\u0301', false], // no Unicode normalisation
  ['a%2Fb', 'a%2fb', false],
]);

table('URI templates (RFC 6570, Mercure classic)', uriTemplateSelector, [
  // Level 1: simple strings take unreserved characters and escapes only.
  ['https://example.com/books/{id}', 'https://example.com/books/1', true],
  ['https://example.com/books/{id}', 'https://example.com/books/', true],
  ['https://example.com/books/{id}', 'https://example.com/books/a%20b', true],
  ['https://example.com/books/{id}', 'https://example.com/books/a%2fb', true], // lower-case escapes are escapes (RFC 3986 §6.2.2.1)
  ['https://example.com/books/{id}', 'https://example.com/books/1/chapters', false],
  ['https://example.com/books/{id}', 'https://example.com/books/a b', false],
  ['https://example.com/books/{id}', 'https://example.com/books/1?x=1', false],
  ['https://example.com/books/{id}', 'https://example.org/books/1', false],
  ['https://example.com/books/{id}', 'https://example.com/books/{id}', true], // equality first
  ['{a}{b}', 'xy', true],
  // Level 2: reserved expansion and fragments.
  ['https://example.com{+path}', 'https://example.com/a/b?c=d#e', true],
  ['https://example.com{+path}', 'https://example.com/a b', false],
  ['https://example.com/page{#frag}', 'https://example.com/page#a/b', true],
  ['https://example.com/page{#frag}', 'https://example.com/page', true],
  ['https://example.com/page{#frag}', 'https://example.com/pages', false],
  // Level 3: several variables, label, path, parameter and query operators.
  ['https://example.com/blog{/y,m}', 'https://example.com/blog/2020/01', true],
  // The library matches a variable list whole or not at all; RFC 6570 would also expand `{/y,m}` with `m` undefined to `/2020`.
  ['https://example.com/blog{/y,m}', 'https://example.com/blog/2020', false],
  ['https://example.com/blog{/y,m}', 'https://example.com/blog/2020/01/02', false],
  ['https://example.com/file{.ext}', 'https://example.com/file.json', true],
  ['https://example.com/m{;p}', 'https://example.com/m;p=1', true],
  ['https://example.com/m{;p}', 'https://example.com/m;q=1', false],
  ['https://example.com/search{?q}', 'https://example.com/search', true],
  ['https://example.com/search{?q}', 'https://example.com/search?q=x', true],
  ['https://example.com/search{?q}', 'https://example.com/search?q=', true],
  ['https://example.com/search{?q}', 'https://example.com/search?z=x', false],
  ['https://example.com/search{?q}', 'https://example.com/search?q=a/b', false],
  ['https://example.com/search?a=1{&x}', 'https://example.com/search?a=1&x=2', true],
  ['https://example.com/search?a=1{&x}', 'https://example.com/search?a=1', true],
  // Level 4: explode.
  ['https://example.com{/s*}', 'https://example.com/a/b/c', true],
  ['https://example.com{/s*}', 'https://example.com', true],
  ['https://example.com{/s*}', 'https://example.com/a/b%2Fc', true],
  ['https://example.com{/s*}', 'https://example.comx', false],
  ['https://example.com{/s*}', 'https://example.com/a b', false],
  ['https://example.com/q{?list*}', 'https://example.com/q?list=a&list=b', true],
  // Escapes in the literal text compare whatever the case of their hex digits.
  ['https://example.com/a%2Fb/{id}', 'https://example.com/a%2fb/1', true],
  ['https://example.com/a%2Fb/{id}', 'https://example.com/a/b/1', false],
  // The spec's own example (SPEC-CLASSIC): a token selector that holds a topic in its query.
  ['https://example.com/users/foo/{?topic}', 'https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1', true],
  // Not templates: raw strings.
  ['https://example.com/{', 'https://example.com/{', true],
  ['https://example.com/{', 'https://example.com/x', false],
  ['*', 'https://example.com/anything', true],
]);

table('URL patterns (WHATWG, Mercure draft-08), relative to the hub', (source) => urlPatternSelector(source, BASE), [
  ['https://example.net/foo/:random', 'https://example.net/foo/0123456789abcdef', true],
  ['https://example.net/foo/:random', 'https://example.net/foo/a/b', false],
  ['https://example.net/foo/:random', 'https://EXAMPLE.net/foo/x', true], // hosts are case-insensitive
  ['https://example.net/foo/:random', 'https://example.net/FOO/x', false], // paths are not
  ['https://example.net/foo/:random', 'https://example.net:443/foo/x', true],
  ['https://example.net/foo/:random', 'https://example.net/bar/../foo/x', true],
  ['https://example.net/foo/:random', 'https://example.net/foo/x?y=1#z', true], // omitted search and hash are wildcards
  ['https://example.net/foo/:random', 'http://example.net/foo/x', false],
  ['https://example.net/foo/:random', 'https://exa mple.net/foo/x', false], // not a URL: no match
  ['https://example.net/foo/:random', 'http://[::1', false],
  ['/.well-known/mercure/subscriptions/:topic/:subscriber', '/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fa/urn%3Auuid%3A1', true],
  ['/.well-known/mercure/subscriptions/:topic/:subscriber', 'https://localhost/.well-known/mercure/subscriptions/t/s', true],
  ['/.well-known/mercure/subscriptions/:topic/:subscriber', 'https://elsewhere/.well-known/mercure/subscriptions/t/s', false],
  ['/.well-known/mercure/subscriptions/:topic/:subscriber', '/.well-known/mercure/subscriptions/t', false],
  ['books/:id', 'https://localhost/.well-known/books/1', true], // relative to the hub URL's directory
  ['books/:id', 'books/1', true],
  ['https://example.com/books/:id?', 'https://example.com/books', true],
  ['https://example.com/books?id=:id', 'https://example.com/books?id=1', true],
  ['https://example.com/books?id=:id', 'https://example.com/books?other=1', false],
  ['https://example.com/*', 'https://example.com/', true],
  ['https://example.com/*', `https://example.com/${'a'.repeat(MAX_MATCHED_TOPIC_LENGTH)}`, false], // over the topic cap
  ['https://*.example.com/x', 'https://a.example.com/x', true],
  ['https://example.com/:id(\\d+)', 'https://example.com/42', true],
  ['https://example.com/:id(\\d+)', 'https://example.com/x', false],
]);

// ---------------------------------------------------------------------------
// The conformance suites' rows (digest §10.4).

describe('Mercure conformance rows', () => {
  const hex = hexStrings(SEED);
  const [R0, R1, R2, R3, R4] = [hex(), hex(), hex(), hex(), hex()];
  const rnd = hex();

  /** Whether an update on `topics` reaches a subscriber with these selectors, through the index as the hub will ask it. */
  function received(selectors: readonly TopicSelector[], topics: readonly string[]): boolean {
    const index = new TopicIndex<string>();
    for (const selector of selectors) index.add(selector, 'subscriber');
    let hit = false;
    for (const topic of topics) index.forEachMatch(topic, () => (hit = true));
    assert.equal(hit, topics.some((topic) => matchesAnyTopic(selectors, topic)), 'index and matchesAnyTopic agree');
    return hit;
  }

  const classic: [name: string, topics: string[], selectors: string[], expect: boolean][] = [
    ['raw string', [R0], [R0], true],
    ['multiple topics', [rnd, R1], [R1], true],
    ['multiple topic selectors', [R2], ['foo', R2], true],
    ['URI', [`https://example.net/foo/${R3}`], [`https://example.net/foo/${R3}`], true],
    ['URI template', [`https://example.net/foo/${R4}`], ['https://example.net/foo/{random}'], true],
    ['nonmatching raw string', ['will-not-match}'], ['another-name'], false],
    ['nonmatching URI', ['https://example.net/foo/will-not-match}'], ['https://example.net/foo/another-name'], false],
    ['nonmatching URI template', ['https://example.net/foo/will-not-match}'], ['https://example.net/bar/{var}'], false],
  ];
  for (const [name, topics, sources, expect] of classic) {
    test(`classic: ${name}`, () => {
      assert.equal(received(sources.map(uriTemplateSelector), topics), expect);
    });
  }

  const draft: [name: string, topic: string, matchers: [type: 'exact' | 'urlpattern', value: string][], expect: boolean][] = [
    ['raw string', R0, [['exact', R0]], true],
    ['multiple topic selectors', R2, [['exact', 'foo'], ['exact', R2]], true],
    ['URI', `https://example.net/foo/${R3}`, [['exact', `https://example.net/foo/${R3}`]], true],
    ['URL pattern', `https://example.net/foo/${R4}`, [['urlpattern', 'https://example.net/foo/:random']], true],
    ['nonmatching raw string', 'will-not-match', [['exact', 'another-name']], false],
    ['nonmatching URI', 'https://example.net/foo/will-not-match', [['exact', 'https://example.net/foo/another-name']], false],
    ['nonmatching URL pattern', 'https://example.net/foo/will-not-match', [['urlpattern', 'https://example.net/bar/:var']], false],
  ];
  for (const [name, topic, matchers, expect] of draft) {
    test(`draft-08: ${name}`, () => {
      assert.equal(received(matchers.map(([type, value]) => matcherSelector(type, value, BASE)), [topic]), expect);
    });
  }
});

// ---------------------------------------------------------------------------
// The ReDoS gate.

describe('URL pattern cost rule', () => {
  const hostile: [pattern: string, why: RegExp][] = [
    ['https://example.com/*/*/*/*/*/x', /pathname has 5 variable parts/], // 51 s for one match unguarded
    ['https://*.*.*.*.example.com/x', /hostname has 4 variable parts/], // 217 s
    ['/:a-:b-:c-:d-:e-:f-:g/x', /pathname has 7 variable parts/], // 188 s
    ['https://example.com/((?:a|a)+)b', /regexp group/], // 26 s at 32 characters
    ['https://example.com/(a*a*)b', /regexp group/],
    ['https://example.com/(\\w+)+', /repeats a part/],
    ['https://example.com/x:rest+', /repeats a part/],
    ['https://example.com/:rest*', /repeats a part/],
    ['https://example.com/{a:x}+', /repeats a part/],
    ['https://example.com/:a-:b-:c', /pathname has 3 variable parts/],
    ['https://example.com/:a-:b/*', /pathname has 3 variable parts that can compete/],
    ['https://example.com/:a(\\d+)/:b(\\d+)/:c(\\d+)', /pathname has 3 variable parts/], // regexp groups may cross a "/"
    ['https://example.com/:a/:b/:c/:d/:e/:f/:g/:h/:i', /9 variable parts; at most 8/],
    // An optional part's "/" may vanish with it: these are five groups in one segment (review: seconds per match).
    ['/.well-known/mercure/subscriptions/Exact/:a:e/:z?:b/:y?:c/:w?:d!', /pathname has \d variable parts/],
    ['https://example.com/:a/{:b}?:c-:d/x', /pathname has 3 variable parts/],
    // A scheme that is not special: named groups cross "/" (review: 223 s for a 166-character topic).
    ['foo:/:a/:b/:c/:d/:e/:f/:g/:h!', /pathname has 8 variable parts/],
    ['https://example.com/{x}?{y}?{z}?', /pathname has 3 variable parts/],
    ['https://:u@:a.:b.example.com/:c/:d/x?:e=:f#:g:h', /9 variable parts; at most 8/],
    [`https://example.com/${'a'.repeat(MAX_SELECTOR_BYTES)}`, /longer than 4096 bytes/],
  ];
  for (const [pattern, why] of hostile) {
    test(`refuses ${show(pattern)} at once`, () => {
      assertHeraldError(() => urlPatternSelector(pattern, BASE), 'HERALD_ERR_INVALID_SELECTOR', why);
    });
  }

  const admitted = [
    'https://example.net/foo/:random',
    '/.well-known/mercure/subscriptions/:topic/:subscriber',
    '/.well-known/mercure/subscriptions/:type/:match/:subscriber', // SPEC-08's own: named groups in segments of their own
    'https://example.com/:a/:b/:c',
    'https://example.com/books/:id?',
    'https://example.com/:id(\\d+)',
    'https://example.com/:hash([0-9a-f]{40})',
    'https://example.com/:seg([^/]+)',
    'https://*.example.com/*',
    'https://example.com/*',
    'https://:sub.example.com/:a/:b/x?q=:q#:h',
    'https://:a.:b.example.com/:c/:d/x?:e=:f#:g:h', // 8 in all
  ];
  for (const pattern of admitted) {
    test(`admits ${show(pattern)}`, () => {
      assert.equal(urlPatternSelector(pattern, BASE).kind, 'url-pattern');
    });
  }

  // The rule bounds cost: the worst admitted shapes (two parts in one component) against the longest topic that is matched.
  const worst = ['https://example.com/*-*x', 'https://example.com/:a-:b/x', 'https://example.com/:a-:b/:c-:d/:e-:f/x', 'https://example.com/(\\w*)(\\w*)!', 'https://example.com/{x}?*a'];
  for (const pattern of worst) {
    test(`an admitted ${show(pattern)} fails a ${MAX_MATCHED_TOPIC_LENGTH}-character topic quickly`, () => {
      const selector = urlPatternSelector(pattern, BASE);
      const prefix = 'https://example.com/';
      for (const filler of ['a', 'a-', 'x-']) {
        const topic = prefix + filler.repeat(Math.floor((MAX_MATCHED_TOPIC_LENGTH - prefix.length) / filler.length));
        // No clock here (this machine is shared): the answer must be the engine's own, and it must come
        // before the test's timeout, which a catastrophic pattern (seconds to hours) would not.
        assert.equal(matchesTopic(selector, topic), new URLPattern(pattern, BASE).test(topic), `${pattern} against ${filler}…`);
      }
    });
  }
});

// ---------------------------------------------------------------------------
// The compiled-matcher cache.

describe('compiled matchers', () => {
  test('LruCache evicts the least recently used entry', () => {
    const cache = new LruCache<string, number>(3);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    assert.equal(cache.get('a'), 1); // a is now the most recent
    cache.set('d', 4);
    assert.equal(cache.has('b'), false);
    assert.deepEqual(['a', 'c', 'd'].map((key) => cache.get(key)), [1, 3, 4]);
    cache.set('c', 30); // an update is a use
    cache.set('e', 5);
    assert.equal(cache.has('a'), false);
    assert.equal(cache.get('c'), 30);
    assert.equal(cache.size, 3);
    assert.equal(cache.getOrSet('f', () => 6), 6);
    assert.equal(cache.getOrSet('f', () => 7), 6);
    assert.throws(() => new LruCache(0), RangeError);
  });

  test('an equal selector reuses the compiled matcher instead of compiling again', () => {
    const source = `https://example.com/cache-${hexStrings(SEED + 1)()}/{id}`;
    const before = compiledCacheStats();
    const first = uriTemplateSelector(source);
    const afterFirst = compiledCacheStats();
    assert.equal(afterFirst.misses, before.misses + 1);
    for (let i = 0; i < 200; i++) assert.equal(uriTemplateSelector(source).kind, 'uri-template');
    const afterMore = compiledCacheStats();
    assert.equal(afterMore.misses, afterFirst.misses, 'no further compile');
    assert.equal(afterMore.hits, afterFirst.hits + 200);
    assert.equal(matchesTopic(first, source.replace('{id}', '9')), true);
    assert.equal(afterMore.capacity, 4096);
  });

  test('refusals are cached too, and URL patterns are keyed by their base', () => {
    const hostile = `https://example.com/${hexStrings(SEED + 2)()}/*/*/*/x`;
    assertHeraldError(() => urlPatternSelector(hostile, BASE), 'HERALD_ERR_INVALID_SELECTOR');
    const before = compiledCacheStats();
    assertHeraldError(() => urlPatternSelector(hostile, BASE), 'HERALD_ERR_INVALID_SELECTOR');
    assert.equal(compiledCacheStats().misses, before.misses);
    const relative = `/r-${hexStrings(SEED + 3)()}/:id`;
    const a = urlPatternSelector(relative, 'https://a.example/');
    const b = urlPatternSelector(relative, 'https://b.example/');
    assert.equal(compiledCacheStats().misses, before.misses + 2);
    const topic = `${relative.replace(':id', '1')}`;
    assert.equal(matchesTopic(a, `https://a.example${topic}`), true);
    assert.equal(matchesTopic(b, `https://a.example${topic}`), false);
    assert.equal(matchesTopic(b, topic), true);
  });
});

// ---------------------------------------------------------------------------
// The tries.

describe('PrefixTrie', () => {
  test('finds exactly the held keys that prefix a text, and prunes back to the root', () => {
    const keyArb = fc.string({ unit: fc.constantFrom('a', 'b', 'c', '/', 'é', '😀'), maxLength: 6 });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), keyArb), { maxLength: 60 }), fc.array(keyArb, { maxLength: 10 }), (ops, texts) => {
        const trie = new PrefixTrie<string>();
        const model = new Set<string>();
        for (const [add, key] of ops) {
          if (add) {
            trie.set(key, key);
            model.add(key);
          } else {
            assert.equal(trie.delete(key), model.delete(key));
          }
          assert.equal(trie.size, model.size);
        }
        for (const key of model) assert.equal(trie.get(key), key);
        for (const text of [...texts, ...model]) {
          const seen: string[] = [];
          trie.forEachPrefixOf(text, (value) => seen.push(value));
          const want = [...model].filter((key) => text.startsWith(key)).sort((x, y) => x.length - y.length);
          assert.deepEqual(seen, want, `prefixes of ${JSON.stringify(text)}`);
          if (!model.has(text)) assert.equal(trie.get(text), undefined);
        }
        // At most two nodes per key, the root besides.
        assert.ok(trie.nodeCount() <= 2 * model.size + 1, `${trie.nodeCount()} nodes for ${model.size} keys`);
        for (const key of model) trie.delete(key);
        assert.equal(trie.size, 0);
        assert.equal(trie.nodeCount(), 1);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

describe('HeraldTrie', () => {
  test('agrees with selectorMatches on split opaque topics', () => {
    const segment = fc.constantFrom('a', 'b', '', '*');
    const source = fc
      .tuple(fc.array(fc.constantFrom('a', 'b', '*'), { maxLength: 4 }), fc.boolean())
      .filter(([segments, tail]) => segments.length > 0 || tail)
      .map(([segments, tail]) => (tail ? [...segments, '**'] : segments).join('/'));
    fc.assert(
      fc.property(fc.array(source, { maxLength: 20 }), fc.array(fc.array(segment, { minLength: 1, maxLength: 5 }), { maxLength: 10 }), (sources, topics) => {
        const trie = new HeraldTrie<number>();
        sources.forEach((s, member) => trie.add(parseSelector(s).segments, member));
        for (const parts of topics) {
          const topic = parts.join('/');
          const seen: number[] = [];
          trie.forEachMatch(topic.split('/'), (member) => seen.push(member));
          const want = sources.flatMap((s, member) => (selectorMatches(parseSelector(s), topic.split('/')) ? [member] : []));
          assert.deepEqual(seen.sort((x, y) => x - y), want, topic);
        }
        sources.forEach((s, member) => trie.delete(parseSelector(s).segments, member));
        assert.equal(trie.size, 0);
        assert.equal(trie.nodeCount(), 1);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------
// The index against brute force, and the source filters.

/** Selector sources of every kind over one small vocabulary, so that they often overlap. */
const POOL: readonly (() => TopicSelector)[] = [
  () => anySelector(),
  ...['a', 'a/b', 'https://example.com/books/1', '/books/1', '*', 'https://example.com/books/{id}', 'books/1'].map((s) => () => exactSelector(s)),
  ...['a/*', 'a/**', '*', '**', 'a/b', '*/b', 'https:/**', '*/*/example.com/**'].map((s) => () => heraldSelector(s)),
  ...[
    'https://example.com/books/{id}',
    'https://example.com/books{/path*}',
    'https://example.com{+rest}',
    'https://example.com/books/{id}{?q}',
    'https://example.com/a%2Fb/{id}',
    '{scheme}://example.com/books/1',
    'a/{x}',
    'https://example.org/{id}',
    'https://example.com/books/1',
  ].map((s) => () => uriTemplateSelector(s)),
  ...[
    'https://example.com/books/:id',
    'https://example.com/books/*',
    'https://example.com/*',
    'https://*.com/books/:id?',
    '/books/:id',
    'books/*',
    'https://example.com/books/:id(\\d+)',
    'http{s}?://example.com/*',
    ':proto://example.com/books/1',
    'https://localhost/:x',
  ].map((s) => () => urlPatternSelector(s, BASE)),
];

const PIECES = [
  'https://', 'HTTPS://', 'http://', 'example.com', 'EXAMPLE.com', 'example.org', ':443', '/books', '/BOOKS', '/1', '/22', '/x', '/..', '/.',
  '?q=1', '#f', '%2F', '%2f', 'a', '/', 'b', '{id}', '*', ' ', 'books', 'localhost', '//', '\\',
];
const topicArb = fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 6 }).map((parts) => parts.join(''));

/** Known topics that exercise each kind, added to the random ones. */
const FIXED_TOPICS = [
  'https://example.com/books/1', 'https://EXAMPLE.com/books/1', 'https://example.com:443/books/1', '/books/1', 'books/1', 'a', 'a/b',
  'https://example.com/books/{id}', 'https://example.com/a%2fb/1', 'https://example.com/books/7?q=x', 'https://localhost/.well-known/books/1',
];

describe('TopicIndex', () => {
  type Op = { add: boolean; selector: number; member: number };
  const opArb: fc.Arbitrary<Op> = fc.record({ add: fc.boolean(), selector: fc.nat({ max: POOL.length - 1 }), member: fc.nat({ max: 4 }) });
  const selectors = POOL.map((make) => make());

  test('visits exactly what brute force finds, once per matching (selector, member) pair', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), fc.array(topicArb, { maxLength: 15 }), (ops, topics) => {
        const index = new TopicIndex<number>();
        const model = new Map<string, { selector: TopicSelector; member: number }>();
        for (const { add, selector: i, member } of ops) {
          // A fresh object each time: the index goes by what a selector is, not by its identity.
          const selector = i % 2 === 0 ? selectors[i]! : POOL[i]!();
          const key = `${member}\n${selectorKey(selector)}`;
          if (add) {
            index.add(selector, member);
            model.set(key, { selector, member });
          } else {
            index.delete(selector, member);
            model.delete(key);
          }
        }
        assert.equal(index.size, model.size);
        for (const topic of [...topics, ...FIXED_TOPICS]) {
          const seen: number[] = [];
          index.forEachMatch(topic, (member) => seen.push(member));
          const want = [...model.values()].filter(({ selector }) => matchesTopic(selector, topic)).map(({ member }) => member);
          assert.deepEqual(seen.sort((x, y) => x - y), want.sort((x, y) => x - y), `topic ${JSON.stringify(topic)}`);
        }
      }),
      { seed: SEED, numRuns: 250 },
    );
  });

  test('the brute force is not vacuous: every kind matches some topic of the vocabulary', () => {
    const kinds = new Set<string>();
    fc.assert(
      fc.property(topicArb, (topic) => {
        for (const selector of selectors) if (selector.kind !== 'any' && matchesTopic(selector, topic)) kinds.add(selector.kind);
      }),
      { seed: SEED, numRuns: 2000 },
    );
    for (const topic of FIXED_TOPICS) for (const selector of selectors) if (selector.kind !== 'any' && matchesTopic(selector, topic)) kinds.add(selector.kind);
    assert.deepEqual([...kinds].sort(), ['exact', 'herald', 'uri-template', 'url-pattern'].sort());
  });

  test('deleting every pair prunes every structure', () => {
    const index = new TopicIndex<number>();
    const empty = index.footprint();
    for (let member = 0; member < 5; member++) for (const make of POOL) index.add(make(), member);
    // Adding a pair again holds it once (and `uriTemplateSelector('https://example.com/books/1')` is the exact selector of the same topic).
    index.add(selectors[1]!, 0);
    assert.equal(index.size, new Set(selectors.map(selectorKey)).size * 5);
    const full = index.footprint();
    assert.ok(full.exactTopics > 0 && full.heraldNodes > 1 && full.templatePrefixes > 0 && full.patternBases === 1 && full.patternNodes > 1 && full.any === 5);
    for (let member = 0; member < 5; member++) for (const make of POOL) index.delete(make(), member);
    assert.equal(index.size, 0);
    assert.deepEqual(index.footprint(), empty);
    // Deleting what is not there is a no-op.
    index.delete(exactSelector('nothing'), 1);
    index.delete(urlPatternSelector('/nothing/:x', 'https://other.example/'), 1);
    assert.deepEqual(index.footprint(), empty);
  });

  test('a visit may delete members without cutting the walk short', () => {
    const index = new TopicIndex<string>();
    const held = new Map<string, TopicSelector>();
    ['https://example.com/{a}', 'https://example.com/b{a}', 'https://example.com/bo{a}', 'https://example.com/boo{a}'].forEach((s, i) => held.set(`t${i}`, uriTemplateSelector(s)));
    ['https://example.com/*', 'https://example.com/b*', 'https://example.com/bo*'].forEach((s, i) => held.set(`p${i}`, urlPatternSelector(s, BASE)));
    for (const [member, selector] of held) index.add(selector, member);
    const seen: string[] = [];
    index.forEachMatch('https://example.com/book', (member) => {
      seen.push(member);
      // A dropped subscriber leaves mid-dispatch: deleting the shortest prefix first folds trie nodes on the path being walked.
      index.delete(held.get(member)!, member);
    });
    assert.deepEqual(seen.sort(), [...held.keys()].sort());
    assert.equal(index.size, 0);
  });

  test('a publish tests only the patterns whose literal prefix starts the topic', () => {
    const index = new TopicIndex<number>();
    // 2000 exact topics and patterns on other hosts must cost nothing for a topic on this one.
    for (let i = 0; i < 2000; i++) {
      index.add(exactSelector(`https://host${i}.example/x`), i);
      index.add(urlPatternSelector(`https://host${i}.example/books/:id`, BASE), i);
    }
    index.add(uriTemplateSelector('https://example.com/books/{id}'), -1);
    index.add(urlPatternSelector('https://example.com/books/:id', BASE), -2);
    const seen: number[] = [];
    index.forEachMatch('https://example.com/books/1', (member) => seen.push(member));
    assert.deepEqual(seen.sort((x, y) => x - y), [-2, -1]);
    // How much the prefix saves, printed rather than asserted: timings on this shared machine are not a test.
    const started = performance.now();
    for (let i = 0; i < 2000; i++) index.forEachMatch('https://example.com/books/1', () => {});
    const perLookup = (performance.now() - started) / 2000;
    const brute = performance.now();
    for (let i = 0; i < 20; i++) for (let j = 0; j < 2000; j++) matchesTopic(urlPatternSelector(`https://host${j}.example/books/:id`, BASE), 'https://example.com/books/1');
    const perBrute = (performance.now() - brute) / 20;
    console.log(`# topic index: ${perLookup.toFixed(3)} ms per lookup among 4000 selectors of other hosts, ${perBrute.toFixed(3)} ms to test them all`);
  });
});

describe('sourceFilterOf', () => {
  test('per kind', () => {
    assert.equal(sourceFilterOf([]), undefined);
    assert.deepEqual(sourceFilterOf([exactSelector('https://example.com/1'), heraldSelector('orders/*/items'), heraldSelector('users/1')]), {
      exact: ['https://example.com/1', 'users/1'],
      prefixes: ['orders/'],
    });
    assert.deepEqual(sourceFilterOf([uriTemplateSelector('https://example.com/books/{id}')]), { exact: [], prefixes: ['https://example.com/books/'] });
    // An escape in the literal prefix may appear in either case in a matching topic: the filter stops before it.
    assert.deepEqual(sourceFilterOf([uriTemplateSelector('https://example.com/a%2Fb/{id}')]), { exact: [], prefixes: ['https://example.com/a'] });
    assert.equal(sourceFilterOf([exactSelector('x'), uriTemplateSelector('{scheme}://example.com/')]), undefined);
    assert.equal(sourceFilterOf([exactSelector('x'), anySelector()]), undefined);
    assert.equal(sourceFilterOf([exactSelector('x'), heraldSelector('*/x')]), undefined);
    // A URL pattern matches parsed URLs, which need not start with any of its text.
    const pattern = urlPatternSelector('https://example.com/books/:id', BASE);
    for (const topic of ['HTTPS://EXAMPLE.COM/books/1', 'https://example.com:443/books/1', 'https://example.com/x/../books/1', ' https://example.com/books/1']) {
      assert.equal(matchesTopic(pattern, topic), true, topic);
      assert.equal(topic.startsWith('https://example.com/books/'), false);
    }
    assert.equal(sourceFilterOf([exactSelector('x'), pattern]), undefined);
  });

  test('never passes less than the selectors match', () => {
    const selectors = POOL.map((make) => make());
    fc.assert(
      fc.property(fc.subarray(selectors, { minLength: 1 }), fc.array(topicArb, { maxLength: 10 }), (chosen, topics) => {
        const filter = sourceFilterOf(chosen);
        for (const topic of [...topics, ...FIXED_TOPICS]) {
          if (!matchesAnyTopic(chosen, topic)) continue;
          assert.ok(passesFilter(filter, { topic }), `${JSON.stringify(topic)} matches but the filter ${JSON.stringify(filter)} drops it`);
          // As an alternate topic of an event (Mercure), beside a canonical one the filter may drop.
          assert.ok(passesFilter(filter, { topic: 'x-canonical', alsoTopics: [topic] }), `${JSON.stringify(topic)} matches as an alternate but the filter ${JSON.stringify(filter)} drops it`);
        }
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  test('still filters: a topic no selector could match is dropped', () => {
    const filter = sourceFilterOf([uriTemplateSelector('https://example.com/books/{id}'), heraldSelector('orders/*'), exactSelector('x')]);
    assert.equal(passesFilter(filter, { topic: 'https://example.com/users/1' }), false);
    assert.equal(passesFilter(filter, { topic: 'invoices/1' }), false);
    assert.equal(passesFilter(filter, { topic: 'https://example.com/books/1' }), true);
    assert.equal(passesFilter(filter, { topic: 'invoices/1', alsoTopics: ['https://example.com/users/1', 'https://example.com/books/1'] }), true, 'an alternate suffices');
  });
});
