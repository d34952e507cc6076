/**
 * Topics, selectors and the selector index (src/hub/topics.ts).
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { HeraldError, type ErrorCode } from '../src/errors.js';
import {
  checkEventType,
  MAX_EVENT_TYPE_LENGTH,
  MAX_TOPIC_LENGTH,
  parseSelector,
  parseTopic,
  selectorMatches,
  type Selector,
} from '../src/hub/topics.js';
import { heraldSelector } from '../src/topics/selectors.js';
import { TopicIndex } from '../src/topics/topic-index.js';

function assertHeraldError(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof HeraldError, `expected a HeraldError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.equal(error.status, 400);
    assert.ok(error.message.length > 0);
    assert.ok(!/[\r\n]/.test(error.message), `message is one line: ${JSON.stringify(error.message)}`);
    return true;
  });
}

const show = (value: string): string => JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…(${value.length})` : value);

describe('parseTopic', () => {
  const valid: [string, string[]][] = [
    ['orders', ['orders']],
    ['orders/42/items', ['orders', '42', 'items']],
    ['café/😀', ['café', '😀']],
    ['with space/x', ['with space', 'x']],
    ['a'.repeat(MAX_TOPIC_LENGTH), ['a'.repeat(MAX_TOPIC_LENGTH)]],
  ];
  for (const [topic, segments] of valid) {
    test(`accepts ${show(topic)}`, () => {
      assert.deepEqual(parseTopic(topic), segments);
    });
  }

  const invalid = [
    '',
    '/',
    '/orders',
    'orders/',
    'orders//1',
    'a\nb',
    'a\rb',
    'a\0b',
    '\r\n',
    '*',
    '**',
    'orders/*',
    'orders/**',
    '*/items',
    'a'.repeat(MAX_TOPIC_LENGTH + 1),
  ];
  for (const topic of invalid) {
    test(`rejects ${show(topic)} with HERALD_ERR_INVALID_TOPIC`, () => {
      assertHeraldError(() => parseTopic(topic), 'HERALD_ERR_INVALID_TOPIC');
    });
  }
});

describe('parseSelector', () => {
  const valid: [string, string[]][] = [
    ['orders', ['orders']],
    ['orders/42', ['orders', '42']],
    ['orders/*', ['orders', '*']],
    ['orders/**', ['orders', '**']],
    ['*', ['*']],
    ['**', ['**']],
    ['*/items', ['*', 'items']],
    ['*/*/**', ['*', '*', '**']],
    ['a'.repeat(MAX_TOPIC_LENGTH), ['a'.repeat(MAX_TOPIC_LENGTH)]],
  ];
  for (const [source, segments] of valid) {
    test(`accepts ${show(source)}`, () => {
      assert.deepEqual(parseSelector(source), { source, segments });
    });
  }

  const invalid = [
    '',
    '/',
    '/orders',
    'orders/',
    'orders//1',
    '**/orders',
    'orders/**/items',
    '**/**',
    'ord*',
    'orders/ord*',
    '*orders',
    'or*ders',
    '***',
    'orders/***',
    'a\nb',
    'a\rb',
    'a\0b',
    'orders/*\n',
    'a'.repeat(MAX_TOPIC_LENGTH + 1),
  ];
  for (const source of invalid) {
    test(`rejects ${show(source)} with HERALD_ERR_INVALID_SELECTOR`, () => {
      assertHeraldError(() => parseSelector(source), 'HERALD_ERR_INVALID_SELECTOR');
    });
  }
});

describe('checkEventType', () => {
  for (const type of ['message', 'greeting', 'order.created', 'with space', 'ünï 😀', 'a'.repeat(MAX_EVENT_TYPE_LENGTH)]) {
    test(`accepts ${show(type)}`, () => {
      assert.doesNotThrow(() => checkEventType(type));
    });
  }
  for (const type of ['', 'a\nb', 'a\rb', 'a\0b', '\n', 'x\r\nevent: y', 'a'.repeat(MAX_EVENT_TYPE_LENGTH + 1)]) {
    test(`rejects ${show(type)} with HERALD_ERR_INVALID_EVENT_TYPE`, () => {
      assertHeraldError(() => checkEventType(type), 'HERALD_ERR_INVALID_EVENT_TYPE');
    });
  }
});

describe('selectorMatches', () => {
  const cases: [selector: string, topic: string, matches: boolean][] = [
    ['orders/*', 'orders/1', true],
    ['orders/*', 'orders/1/items', false],
    ['orders/*', 'orders', false],
    ['orders/*', 'invoices/1', false],
    ['orders/**', 'orders/1', true],
    ['orders/**', 'orders/1/items', true],
    ['orders/**', 'orders', false],
    ['orders/**', 'invoices/1', false],
    ['orders/1', 'orders/1', true],
    ['orders/1', 'orders/2', false],
    ['orders/1', 'orders', false],
    ['orders/1', 'orders/1/items', false],
    ['orders', 'orders/1', false],
    ['*', 'orders', true],
    ['*', 'orders/1', false],
    ['**', 'orders', true],
    ['**', 'orders/1/items', true],
    ['*/items', 'orders/items', true],
    ['*/items', 'orders/1/items', false],
    ['orders/*/items', 'orders/1/items', true],
    ['orders/*/items', 'orders/1/lines', false],
    ['*/**', 'orders', false],
    ['*/**', 'orders/1', true],
    ['Orders', 'orders', false],
  ];
  for (const [selector, topic, matches] of cases) {
    test(`${selector} ${matches ? 'matches' : 'does not match'} ${topic}`, () => {
      assert.equal(selectorMatches(parseSelector(selector), parseTopic(topic)), matches);
    });
  }
});

// ---------------------------------------------------------------------------
// The index, against a model: a set of (selector, member) pairs.

const SEGMENTS = ['a', 'b', 'c'] as const;

/** Selectors over a small alphabet so that they often overlap: segments, `*`, and maybe a trailing `**`. */
const selectorSource = fc
  .tuple(fc.array(fc.constantFrom(...SEGMENTS, '*'), { minLength: 0, maxLength: 4 }), fc.boolean())
  .filter(([segments, doubleStar]) => segments.length > 0 || doubleStar)
  .map(([segments, doubleStar]) => (doubleStar ? [...segments, '**'] : segments).join('/'));

const topicSegments = fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 5 });

/** An independent statement of the matching rules, to cross-check selectorMatches. */
function referenceMatch(pattern: readonly string[], topic: readonly string[]): boolean {
  if (pattern.length === 0) return topic.length === 0;
  const [head, ...rest] = pattern;
  if (head === '**') return topic.length >= 1;
  if (topic.length === 0) return false;
  return (head === '*' || head === topic[0]) && referenceMatch(rest, topic.slice(1));
}

type Op = { kind: 'add' | 'delete'; source: string; member: number };
const op: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom<'add' | 'delete'>('add', 'add', 'delete'),
  source: selectorSource,
  member: fc.nat({ max: 5 }),
});

class Model {
  readonly pairs = new Map<string, { selector: Selector; member: number }>();
  private key(source: string, member: number): string {
    return `${member}\0${source}`;
  }
  apply({ kind, source, member }: Op): void {
    if (kind === 'add') this.pairs.set(this.key(source, member), { selector: parseSelector(source), member });
    else this.pairs.delete(this.key(source, member));
  }
  /** The members the index must visit for a topic: once per matching (selector, member) pair. */
  matches(topic: readonly string[]): number[] {
    return [...this.pairs.values()].filter(({ selector }) => selectorMatches(selector, topic)).map(({ member }) => member).sort((x, y) => x - y);
  }
}

/** Herald selectors in the hub's one index (`TopicIndex`), visited with a topic given as its segments. */
class HeraldIndex<T> {
  readonly inner = new TopicIndex<T>();

  add(selector: Selector, member: T): void {
    this.inner.add(heraldSelector(selector.source), member);
  }

  delete(selector: Selector, member: T): void {
    this.inner.delete(heraldSelector(selector.source), member);
  }

  forEachMatch(topic: readonly string[], visit: (member: T) => void): void {
    this.inner.forEachMatch(topic.join('/'), visit);
  }
}

function visited(index: HeraldIndex<number>, topic: readonly string[]): number[] {
  const seen: number[] = [];
  index.forEachMatch(topic, (member) => seen.push(member));
  return seen.sort((x, y) => x - y);
}

describe('TopicIndex with Herald selectors', () => {
  test('selectorMatches agrees with an independent statement of the rules', () => {
    fc.assert(
      fc.property(selectorSource, topicSegments, (source, topic) => {
        const selector = parseSelector(source);
        assert.equal(selectorMatches(selector, topic), referenceMatch(selector.segments, topic));
      }),
      { numRuns: 1000 },
    );
  });

  test('forEachMatch visits exactly the members whose selectors match', () => {
    fc.assert(
      fc.property(fc.array(selectorSource, { maxLength: 25 }), fc.array(topicSegments, { minLength: 1, maxLength: 10 }), (sources, topics) => {
        const index = new HeraldIndex<number>();
        const selectors = sources.map(parseSelector);
        selectors.forEach((selector, member) => index.add(selector, member));
        for (const topic of topics) {
          const want = selectors.flatMap((selector, member) => (selectorMatches(selector, topic) ? [member] : []));
          assert.deepEqual(visited(index, topic), want, `topic ${topic.join('/')}`);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('after deletes, deleted members are never visited and the others still are', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(selectorSource, fc.boolean()), { minLength: 1, maxLength: 25 }),
        fc.array(topicSegments, { minLength: 1, maxLength: 10 }),
        (entries, topics) => {
          const index = new HeraldIndex<number>();
          const selectors = entries.map(([source]) => parseSelector(source));
          selectors.forEach((selector, member) => index.add(selector, member));
          const deleted = new Set<number>();
          entries.forEach(([, remove], member) => {
            if (!remove) return;
            index.delete(selectors[member]!, member);
            deleted.add(member);
          });
          for (const topic of topics) {
            const seen = visited(index, topic);
            for (const member of seen) assert.ok(!deleted.has(member), `deleted member ${member} visited for ${topic.join('/')}`);
            const want = selectors.flatMap((selector, member) => (!deleted.has(member) && selectorMatches(selector, topic) ? [member] : []));
            assert.deepEqual(seen, want, `topic ${topic.join('/')}`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('any sequence of adds and deletes (shared members, repeated pairs) matches the model, and emptying it prunes every node', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), fc.array(topicSegments, { minLength: 1, maxLength: 8 }), (ops, topics) => {
        const index = new HeraldIndex<number>();
        const model = new Model();
        for (const step of ops) {
          model.apply(step);
          if (step.kind === 'add') index.add(parseSelector(step.source), step.member);
          else index.delete(parseSelector(step.source), step.member);
        }
        for (const topic of topics) assert.deepEqual(visited(index, topic), model.matches(topic), `topic ${topic.join('/')}`);

        // Delete what remains, one pair at a time, checking the rest after each delete.
        for (const [key, { selector, member }] of [...model.pairs]) {
          index.delete(selector, member);
          model.pairs.delete(key);
          for (const topic of topics) assert.deepEqual(visited(index, topic), model.matches(topic), `topic ${topic.join('/')}`);
        }
        assert.equal(index.inner.size, 0);
        assert.deepEqual(index.inner.footprint(), new TopicIndex<number>().footprint(), 'no branch is left behind once every member is gone');
      }),
      { numRuns: 300 },
    );
  });

  test('deleting a pair that was never added changes nothing', () => {
    const index = new HeraldIndex<string>();
    index.add(parseSelector('orders/*'), 'x');
    index.add(parseSelector('orders/**'), 'y');
    index.delete(parseSelector('orders/*'), 'y');
    index.delete(parseSelector('orders/**'), 'x');
    index.delete(parseSelector('orders/1/items'), 'x');
    index.delete(parseSelector('invoices'), 'x');
    const seen: string[] = [];
    index.forEachMatch(['orders', '1'], (member) => seen.push(member));
    assert.deepEqual(seen.sort(), ['x', 'y']);
  });

  test('a member under two matching selectors is visited once per selector', () => {
    const index = new HeraldIndex<string>();
    index.add(parseSelector('orders/*'), 'x');
    index.add(parseSelector('orders/1'), 'x');
    index.add(parseSelector('orders/**'), 'x');
    const seen: string[] = [];
    index.forEachMatch(['orders', '1'], (member) => seen.push(member));
    assert.deepEqual(seen, ['x', 'x', 'x']);
  });
});
