/**
 * Reading Mercure subscriptions (query) and updates (form), both generations.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isHeraldError } from '../src/index.js';
import { isReserved, parseSubscription, parseUpdate } from '../src/mercure/requests.js';

const HUB = 'https://localhost/.well-known/mercure';

function refusal(run: () => unknown): { code: string; message: string } {
  try {
    run();
  } catch (error) {
    assert.ok(isHeraldError(error), `a HeraldError, got ${String(error)}`);
    return { code: error.code, message: error.message };
  }
  assert.fail('expected a refusal');
}

test('mercure subscription: classic topic= selectors become any, template or exact matchers, in order', () => {
  const query = new URLSearchParams([
    ['topic', 'https://example.com/books/{id}'],
    ['topic', '*'],
    ['topic', 'plain'],
    ['unrelated', 'x'],
  ]);
  const subscription = parseSubscription(query, undefined, 10);
  assert.equal(subscription.generation, 'classic');
  assert.deepEqual(subscription.matchers, [
    { kind: 'uri-template', source: 'https://example.com/books/{id}' },
    { kind: 'any', source: '*' },
    { kind: 'exact', source: 'plain' },
  ]);
  assert.equal(subscription.lastEventId, undefined);
});

test('mercure subscription: draft-08 match, matchExact / match_exact and matchURLPattern / match_urlpattern; a mix is answered as draft-08', () => {
  const subscription = parseSubscription(new URLSearchParams('match=a&match_exact=b&match_urlpattern=https://e.com/:id&match_urlpattern=*'), undefined, 10);
  assert.equal(subscription.generation, 'draft-08');
  assert.deepEqual(subscription.matchers, [
    { kind: 'exact', source: 'a' },
    { kind: 'exact', source: 'b' },
    { kind: 'url-pattern', source: 'https://e.com/:id' },
    { kind: 'any', source: '*' },
  ]);
  // The current text's spellings name the same types.
  const current = parseSubscription(new URLSearchParams('matchExact=b&matchURLPattern=https://e.com/:id'), undefined, 10);
  assert.equal(current.generation, 'draft-08');
  assert.deepEqual(current.matchers, [
    { kind: 'exact', source: 'b' },
    { kind: 'url-pattern', source: 'https://e.com/:id' },
  ]);
  const mixed = parseSubscription(new URLSearchParams('topic=a&match=b'), undefined, 10);
  assert.equal(mixed.generation, 'draft-08');
  assert.deepEqual(mixed.matchers.map((m) => m.source), ['a', 'b']);
});

test('mercure subscription: the match prefix is reserved, and selectors must be present, non-empty, clean and few', () => {
  for (const name of ['matchurlpattern', 'MatchExact', 'Match', 'match_regexp', 'MATCH_EXACT']) {
    const { code, message } = refusal(() => parseSubscription(new URLSearchParams([[name, 'x']]), undefined, 10));
    assert.equal(code, 'HERALD_ERR_INVALID_SELECTOR', name);
    assert.match(message, /unknown matcher parameter/);
  }
  assert.match(refusal(() => parseSubscription(new URLSearchParams('other=1'), undefined, 10)).message, /at least one selector/);
  assert.match(refusal(() => parseSubscription(new URLSearchParams('topic='), undefined, 10)).message, /is empty/);
  assert.match(refusal(() => parseSubscription(new URLSearchParams([['match', 'a\u200Bb']]), undefined, 10)).message, /control or format/);
  assert.match(refusal(() => parseSubscription(new URLSearchParams([['match', 'a\u0085b']]), undefined, 10)).message, /control or format/);
  assert.match(refusal(() => parseSubscription(new URLSearchParams([['match', 'x'.repeat(4097)]]), undefined, 10)).message, /longer than 4096/);
  assert.match(refusal(() => parseSubscription(new URLSearchParams('topic=a&topic=b&topic=c'), undefined, 2)).message, /at most 2 selectors/);
});

test('mercure subscription: Last-Event-ID header first, then last_event_id, then lastEventID', () => {
  const query = new URLSearchParams('topic=a&last_event_id=from-query&lastEventID=classic');
  assert.equal(parseSubscription(query, 'from-header', 10).lastEventId, 'from-header');
  assert.equal(parseSubscription(query, undefined, 10).lastEventId, 'from-query');
  assert.equal(parseSubscription(new URLSearchParams('topic=a&lastEventID=classic'), undefined, 10).lastEventId, 'classic');
  assert.equal(parseSubscription(new URLSearchParams('topic=a&lastEventID='), '', 10).lastEventId, undefined);
});

test('mercure update: topics (first canonical), data kept exactly, id, private by presence, type, retry; unknown fields ignored', () => {
  const data = 'data for\n\n        a row\r\nlast';
  const form = new URLSearchParams([
    ['topic', 'https://example.com/books/1'],
    ['topic', 'https://example.com/users/foo/?topic=x'],
    ['id', 'id-["a/b"]'],
    ['data', data],
    ['private', ''],
    ['type', 'book'],
    ['retry', '3000'],
    ['future_field', 'ignored'],
  ]);
  assert.deepEqual(parseUpdate(form, HUB), {
    topics: ['https://example.com/books/1', 'https://example.com/users/foo/?topic=x'],
    data,
    id: 'id-["a/b"]',
    private: true,
    type: 'book',
    retry: 3000,
  });
  const minimal = parseUpdate(new URLSearchParams('topic=t'), HUB);
  assert.deepEqual(minimal, { topics: ['t'], data: '', id: undefined, private: false, type: undefined, retry: undefined });
});

test('mercure update: a missing or bad field is refused with HERALD_ERR_INVALID_UPDATE and says which', () => {
  const cases: [string, RegExp][] = [
    ['data=x', /needs a topic/],
    ['topic=', /topic field is empty/],
    ['topic=a&id=%23fragment', /begins with "#"/],
    ['topic=a&id=earliest', /reserved/],
    ['topic=a&id=', /id field is empty/],
    ['topic=a&id=a%0Ab', /control or format/],
    ['topic=a&type=a%0Db', /control or format/],
    ['topic=a&type=', /type field is empty/],
    ['topic=a&retry=-1', /not a number/],
    ['topic=a&retry=1e3', /not a number/],
    ['topic=a&retry=', /not a number/],
    ['topic=a%00b', /control or format/],
  ];
  for (const [body, message] of cases) {
    const refused = refusal(() => parseUpdate(new URLSearchParams(body), HUB));
    assert.equal(refused.code, 'HERALD_ERR_INVALID_UPDATE', body);
    assert.match(refused.message, message, body);
  }
});

test('mercure update: topics in the hub namespace are forbidden however they are spelled; others are not', () => {
  for (const topic of [
    '/.well-known/mercure',
    '/.well-known/mercure/subscriptions/a/b',
    'https://elsewhere.example/.well-known/mercure/subscriptions',
    '/.well-known/%6Dercure/x',
    '/a/../.well-known/mercure/x',
    'mercure/subscriptions',
  ]) {
    assert.equal(isReserved(topic, HUB), true, topic);
    assert.equal(refusal(() => parseUpdate(new URLSearchParams([['topic', topic]]), HUB)).code, 'HERALD_ERR_FORBIDDEN', topic);
  }
  for (const topic of ['/.well-known/mercurex', 'https://example.com/books/1', 'plain-name', '/.well-known/other', 'urn:uuid:1234']) {
    assert.equal(isReserved(topic, HUB), false, topic);
  }
});
