/**
 * Herald as a Mercure hub: `GET` and `POST /.well-known/mercure` against a
 * real hub, with raw SSE reads (exact bytes), both token generations, the
 * reference hub's development key, private updates and resumption.
 *
 * "Not received" is shown with a sentinel: a public update published after
 * the one under test, on a topic the subscriber has; once it arrives,
 * anything due before it has arrived (a stream is delivered in order).
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HeraldOptions } from '../src/index.js';
import { SseTap, startHub, type RunningHub } from './support/helpers.js';
import { redisSkip, startRedis } from './support/redis-server.js';

const DEV_KEY = '!ChangeThisMercureHubJWTSecretKey!';
const AUDIENCE = 'https://localhost/.well-known/mercure';
const ISSUER = 'https://localhost';
const DETAIL = 'https://mercure.rocks/authorization-detail';
const secret = new TextEncoder().encode(DEV_KEY);

let hub: RunningHub;
let classicToken: string;
let draft08Token: string;

/** A classic token (the `mercure` claim), HS256, no exp/aud/iss: as the public conformance tests mint it. */
function classic(claim: { publish?: string[]; subscribe?: string[]; payload?: unknown }): Promise<string> {
  return new SignJWT({ mercure: claim }).setProtectedHeader({ alg: 'HS256' }).sign(secret);
}

/** A draft-08 access token (RFC 9068, `authorization_details`). */
function draft08(details: { actions: string[]; topics: { match: string; match_type?: string }[] }[], claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ aud: AUDIENCE, iss: ISSUER, authorization_details: details.map((detail) => ({ type: DETAIL, ...detail })), ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
    .setExpirationTime('1h')
    .sign(secret);
}

before(async () => {
  hub = await startHub({ jwtKey: DEV_KEY, mercureAudience: AUDIENCE, mercureIssuer: ISSUER });
  classicToken = await classic({ publish: ['*'], subscribe: ['*'] });
  draft08Token = await draft08([
    { actions: ['publish'], topics: [{ match: '*' }] },
    { actions: ['subscribe'], topics: [{ match: '*' }] },
  ]);
});
after(() => hub.close());

let counter = 0;
/** A topic no other test uses. */
function fresh(prefix = 'topic'): string {
  return `${prefix}-${process.pid}-${++counter}`;
}

interface Answer {
  readonly status: number;
  readonly type: string | null;
  readonly text: string;
  readonly headers: Headers;
}

async function publish(fields: [string, string][], token: string | null = classicToken, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`${hub.url}/.well-known/mercure`, {
    method: 'POST',
    headers: { ...(token === null ? {} : { Authorization: `Bearer ${token}` }), 'Content-Type': 'application/x-www-form-urlencoded;charset=UTF-8', ...headers },
    body: new URLSearchParams(fields),
  });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text(), headers: response.headers };
}

function subscribe(query: string, headers: Record<string, string> = {}): Promise<SseTap> {
  return SseTap.open(hub.url, `/.well-known/mercure?${query}`, headers);
}

async function opened(tap: SseTap): Promise<SseTap> {
  assert.equal(tap.status, 200, tap.raw);
  assert.match(String(tap.headers['content-type']), /^text\/event-stream/);
  return tap;
}

test('mercure: an anonymous classic subscriber gets an update published with a classic token, id and data kept exactly', async () => {
  const topic = fresh();
  const tap = await opened(await subscribe(`topic=${encodeURIComponent(topic)}`));
  const id = `id-["${topic}"]`;
  const data = `data for\n\n        raw string`;
  const answer = await publish([['topic', topic], ['id', id], ['data', data]]);
  assert.equal(answer.status, 200, answer.text);
  assert.match(answer.type ?? '', /^text\/plain(;.*)?$/);
  assert.equal(answer.text, id);
  const before = await tap.untilId(id);
  assert.deepEqual(before, []);
  const event = tap.events.at(-1)!;
  assert.equal(event.data, data);
  assert.equal(event.event, undefined, 'no event: line without a type');
  // Every line of the data on its own `data: ` line, the empty one and the leading spaces kept.
  assert.ok(tap.raw.includes(`id: ${id}\ndata: data for\ndata: \ndata:         raw string\n\n`), JSON.stringify(tap.raw));
  tap.close();
});

test('mercure: draft-08 selectors (match, match_urlpattern) and token; a hub-made id is a urn:uuid', async () => {
  const suffix = fresh('r');
  const exact = await opened(await subscribe(`match=${encodeURIComponent(`https://example.net/foo/${suffix}`)}`));
  const pattern = await opened(await subscribe(`match_urlpattern=${encodeURIComponent('https://example.net/foo/:random')}&match=other`));
  const elsewhere = await opened(await subscribe(`match_urlpattern=${encodeURIComponent('https://example.net/bar/:var')}&match=${suffix}-sentinel`));
  const answer = await publish([['topic', `https://example.net/foo/${suffix}`], ['data', 'hello']], draft08Token);
  assert.equal(answer.status, 200, answer.text);
  assert.match(answer.text, /^urn:uuid:[0-9a-f-]{36}$/);
  await exact.untilId(answer.text);
  await pattern.untilId(answer.text);
  const sentinel = await publish([['topic', `${suffix}-sentinel`], ['data', 'sentinel']], draft08Token);
  assert.deepEqual(await elsewhere.untilId(sentinel.text), [], 'a non-matching URL pattern gets nothing');
  for (const tap of [exact, pattern, elsewhere]) tap.close();
});

test('mercure: a URI template selector, several selectors per stream, and alternate topics route the update', async () => {
  const suffix = fresh('t');
  const templated = await opened(await subscribe(`topic=${encodeURIComponent('https://example.net/foo/{random}')}`));
  const alternate = await opened(await subscribe(`topic=foo&topic=${encodeURIComponent(`alt-${suffix}`)}`));
  const answer = await publish([['topic', `https://example.net/foo/${suffix}`], ['topic', `alt-${suffix}`], ['data', 'both']]);
  assert.equal(answer.status, 200, answer.text);
  await templated.untilId(answer.text);
  const events = await alternate.untilId(answer.text);
  assert.deepEqual(events, []);
  templated.close();
  alternate.close();
});

test('mercure: a private update never reaches an anonymous subscriber, live or on resume; a token that allows the topic gets it', async () => {
  const topic = fresh('p');
  const anonymous = await opened(await subscribe(`topic=${encodeURIComponent(topic)}`));
  const reader = await classic({ subscribe: [topic] });
  const allowed = await opened(await subscribe(`topic=${encodeURIComponent(topic)}`, { Authorization: `Bearer ${reader}` }));
  const otherReader = await classic({ subscribe: ['something-else'] });
  const notAllowed = await opened(await subscribe(`topic=${encodeURIComponent(topic)}`, { Authorization: `Bearer ${otherReader}` }));
  const secretUpdate = await publish([['topic', topic], ['data', 'secret'], ['private', 'on']]);
  assert.equal(secretUpdate.status, 200, secretUpdate.text);
  const sentinel = await publish([['topic', topic], ['data', 'public']]);
  assert.deepEqual(await anonymous.untilId(sentinel.text), [], 'anonymous: nothing before the public sentinel');
  assert.deepEqual(await notAllowed.untilId(sentinel.text), [], 'a token for other topics: nothing private');
  assert.deepEqual((await allowed.untilId(sentinel.text)).map((event) => event.data), ['secret']);

  const resumed = await opened(await subscribe(`topic=${encodeURIComponent(topic)}`, { 'Last-Event-ID': secretUpdate.text }));
  const anonymousResume = await opened(await subscribe(`topic=${encodeURIComponent(topic)}&lastEventID=${encodeURIComponent('earliest-not-an-id')}`));
  const last = await publish([['topic', topic], ['data', 'after']]);
  assert.deepEqual((await resumed.untilId(last.text)).map((event) => event.data), ['public'], 'the resume replays the public update only');
  assert.deepEqual(await anonymousResume.untilId(last.text), []);
  for (const tap of [anonymous, allowed, notAllowed, resumed, anonymousResume]) tap.close();
});

test('mercure: reconnection by a retained id replays what came after it and names it; an unknown id gets earliest and no history', async () => {
  const topic = fresh('resume');
  const first = await publish([['topic', topic], ['id', `${topic}-1`], ['data', 'one']]);
  const second = await publish([['topic', topic], ['id', `${topic}-2`], ['data', 'two']]);
  assert.equal(second.status, 200);

  const classicResume = await opened(await subscribe(`topic=${encodeURIComponent(topic)}`, { 'Last-Event-ID': first.text }));
  assert.equal(classicResume.headers['last-event-id'], first.text);
  const draftResume = await opened(await subscribe(`match=${encodeURIComponent(topic)}&last_event_id=${encodeURIComponent(first.text)}`));
  assert.equal(draftResume.headers['mercure-last-event-id'], first.text);
  const unknown = await opened(await subscribe(`match=${encodeURIComponent(topic)}&last_event_id=never-published`));
  assert.equal(unknown.headers['mercure-last-event-id'], 'earliest');
  const fresh1 = await opened(await subscribe(`match=${encodeURIComponent(topic)}`));
  assert.equal(fresh1.headers['mercure-last-event-id'], undefined, 'no header without a Last-Event-ID');

  const third = await publish([['topic', topic], ['id', `${topic}-3`], ['data', 'three']]);
  assert.deepEqual((await classicResume.untilId(third.text)).map((event) => event.id), [second.text]);
  assert.deepEqual((await draftResume.untilId(third.text)).map((event) => event.id), [second.text]);
  assert.deepEqual(await unknown.untilId(third.text), []);
  assert.ok(!unknown.raw.includes('herald-resync'), 'Mercure clients are not sent Herald notices');
  for (const tap of [classicResume, draftResume, unknown, fresh1]) tap.close();
});

test('mercure: type and retry go on the wire; a duplicate id is accepted', async () => {
  const topic = fresh('typed');
  const tap = await opened(await subscribe(`topic=${encodeURIComponent(topic)}`));
  const one = await publish([['topic', topic], ['id', 'same'], ['type', 'book'], ['retry', '2500'], ['data', 'x']]);
  const two = await publish([['topic', topic], ['id', 'same'], ['data', 'y']]);
  assert.equal(one.status, 200);
  assert.equal(two.status, 200);
  await tap.until(() => tap.events.length >= 2, 'both updates');
  assert.ok(tap.raw.includes('id: same\nevent: book\nretry: 2500\ndata: x\n\n'), JSON.stringify(tap.raw));
  assert.deepEqual(tap.events.map((event) => [event.id, event.event, event.data]), [['same', 'book', 'x'], ['same', undefined, 'y']]);
  tap.close();
});

test('mercure: publishers are refused clearly, and nothing refused is stored', async () => {
  const topic = fresh('refused');
  const tap = await opened(await subscribe(`topic=${encodeURIComponent(topic)}`));
  const noToken = await publish([['topic', topic], ['data', 'x']], null);
  assert.equal(noToken.status, 401);
  assert.match(noToken.headers.get('www-authenticate') ?? '', /^Bearer/);
  const badToken = await publish([['topic', topic], ['data', 'x']], `${classicToken.slice(0, -4)}AAAA`);
  assert.equal(badToken.status, 401);
  assert.match(badToken.headers.get('www-authenticate') ?? '', /invalid_token/);
  const narrow = await classic({ publish: ['only-this'] });
  const forbidden = await publish([['topic', topic], ['data', 'x']], narrow);
  assert.equal(forbidden.status, 403);
  assert.equal(JSON.parse(forbidden.text).error.code, 'HERALD_ERR_FORBIDDEN');
  const oneOfTwo = await publish([['topic', 'only-this'], ['topic', topic], ['data', 'x']], narrow);
  assert.equal(oneOfTwo.status, 403, 'every topic of the update must be allowed');
  const noTopic = await publish([['data', 'x']]);
  assert.equal(noTopic.status, 400);
  assert.equal(JSON.parse(noTopic.text).error.code, 'HERALD_ERR_INVALID_UPDATE');
  const reserved = await publish([['topic', '/.well-known/mercure/subscriptions/x/y'], ['data', 'forged']]);
  assert.equal(reserved.status, 403);
  const json = await fetch(`${hub.url}/.well-known/mercure`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${classicToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ topic, data: 'x' }),
  });
  assert.equal(json.status, 415);
  const wrongAudience = await draft08([{ actions: ['publish'], topics: [{ match: '*' }] }], { aud: 'https://elsewhere.example/.well-known/mercure' });
  assert.equal((await publish([['topic', topic], ['data', 'x']], wrongAudience)).status, 401);
  const sentinel = await publish([['topic', topic], ['data', 'sentinel']]);
  assert.deepEqual(await tap.untilId(sentinel.text), [], 'no refused update was delivered');
  tap.close();
});

test('mercure: bad subscriptions are refused with 400 before a stream opens; other methods get 405', async () => {
  for (const query of ['', 'matchRegexp=x', 'topic=', `match_urlpattern=${encodeURIComponent('https://e.com/*/*/*/*/*/x')}`]) {
    const response = await fetch(`${hub.url}/.well-known/mercure?${query}`);
    assert.equal(response.status, 400, query);
    assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'HERALD_ERR_INVALID_SELECTOR', query);
  }
  const put = await fetch(`${hub.url}/.well-known/mercure`, { method: 'PUT' });
  assert.equal(put.status, 405);
  assert.equal(put.headers.get('allow'), 'GET, POST');
  const badToken = await fetch(`${hub.url}/.well-known/mercure?topic=x`, { headers: { Authorization: 'Bearer not.a.token' } });
  assert.equal(badToken.status, 401);
});

test('mercure: last_event_id=earliest replays every retained update of the selectors, in order, private ones only to who may see them', async () => {
  const topic = fresh('earliest');
  const ids: string[] = [];
  for (const [data, isPrivate] of [['one', false], ['hidden', true], ['two', false]] as const) {
    const fields: [string, string][] = [['topic', topic], ['data', data]];
    if (isPrivate) fields.push(['private', 'on']);
    const answer = await publish(fields);
    assert.equal(answer.status, 200, answer.text);
    ids.push(answer.text);
  }
  const anonymous = await opened(await subscribe(`match=${encodeURIComponent(topic)}&last_event_id=earliest`));
  assert.equal(anonymous.headers['mercure-last-event-id'], 'earliest');
  const reader = await classic({ subscribe: [topic] });
  const allowed = await opened(await subscribe(`topic=${encodeURIComponent(topic)}&lastEventID=earliest`, { Authorization: `Bearer ${reader}` }));
  assert.equal(allowed.headers['last-event-id'], 'earliest');
  const last = await publish([['topic', topic], ['data', 'live']]);
  assert.deepEqual((await anonymous.untilId(last.text)).map((event) => event.data), ['one', 'two']);
  assert.deepEqual((await allowed.untilId(last.text)).map((event) => event.data), ['one', 'hidden', 'two']);
  assert.deepEqual((await allowed.untilId(last.text)).map((event) => event.id), ids);
  for (const tap of [anonymous, allowed]) {
    assert.ok(!tap.raw.includes('herald-resync'), 'no Herald notice on a Mercure stream');
    tap.close();
  }
});

/** Publishes through `on`, then resumes by the publisher's id on a hub started afresh over the same engine. */
async function resumeAcrossRestart(options: HeraldOptions): Promise<void> {
  const topic = fresh('durable');
  const post = async (target: RunningHub, id: string): Promise<number> =>
    (
      await fetch(`${target.url}/.well-known/mercure`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${classicToken}`, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams([['topic', topic], ['id', id], ['data', id]]),
      })
    ).status;
  const first = await startHub({ jwtKey: DEV_KEY, ...options });
  try {
    for (const id of ['urn:x:1', 'urn:x:2', 'urn:x:3']) assert.equal(await post(first, id), 200);
  } finally {
    await first.close();
  }
  const second = await startHub({ jwtKey: DEV_KEY, ...options });
  try {
    const tap = await SseTap.open(second.url, `/.well-known/mercure?topic=${encodeURIComponent(topic)}`, { 'Last-Event-ID': 'urn:x:1' });
    assert.equal(tap.headers['last-event-id'], 'urn:x:1', 'the id is still placed after the restart');
    assert.equal(await post(second, 'urn:x:4'), 200);
    assert.deepEqual((await tap.untilId('urn:x:4')).map((event) => event.id), ['urn:x:2', 'urn:x:3']);
    tap.close();
  } finally {
    await second.close();
  }
}

test('mercure on --store: updates resume by their publisher ids after a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-mercure-'));
  try {
    await resumeAcrossRestart({ store: join(dir, 'events.db') });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mercure on --redis: updates resume by their publisher ids on a node started afresh', { skip: redisSkip }, async () => {
  const redis = await startRedis();
  try {
    await resumeAcrossRestart({ redis: redis.url, redisPrefix: `mercure-${process.pid}` });
  } finally {
    await redis.stop();
  }
});

test('mercure: a publish authorized by a cookie must come from the hub own origin or a listed one (cross-site request forgery)', async () => {
  const topic = fresh('cookie');
  const tap = await opened(await subscribe(`topic=${encodeURIComponent(topic)}`));
  const viaCookie = (headers: Record<string, string>): Promise<Answer> =>
    publish([['topic', topic], ['data', 'by cookie']], null, { Cookie: `mercureAuthorization=${classicToken}`, ...headers });
  const noOrigin = await viaCookie({});
  assert.equal(noOrigin.status, 403);
  assert.match(JSON.parse(noOrigin.text).error.message, /Origin or Referer/);
  const foreign = await viaCookie({ Origin: 'https://evil.example' });
  assert.equal(foreign.status, 403);
  assert.match(JSON.parse(foreign.text).error.message, /evil\.example/);
  const foreignReferer = await viaCookie({ Referer: 'https://evil.example/page' });
  assert.equal(foreignReferer.status, 403);
  const own = await viaCookie({ Origin: new URL(hub.url).origin });
  assert.equal(own.status, 200, own.text);
  const ownReferer = await viaCookie({ Referer: `${hub.url}/some/page` });
  assert.equal(ownReferer.status, 200, ownReferer.text);
  // The Authorization header is not sent by a browser on its own: no origin needed.
  const header = await publish([['topic', topic], ['data', 'by header']], classicToken, { Origin: 'https://evil.example' });
  assert.equal(header.status, 200);
  const events = await tap.untilId(header.text);
  assert.deepEqual(events.map((event) => event.id), [own.text, ownReferer.text], 'only the two allowed cookie publishes arrived');
  tap.close();
});
