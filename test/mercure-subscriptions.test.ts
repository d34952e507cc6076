/**
 * Mercure's active subscriptions on one hub, with real streams: the
 * `active: true` / `false` events (private, JSON-LD, on the reserved
 * topics, in the generation of the stream they describe), the
 * subscriptions API and its authorization, Herald's `GET /presence`, and
 * the protected resource metadata. Across workers and Redis nodes:
 * mercure-cluster.test.ts.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { encodeVariable, subscriptionsOf } from '../src/mercure/subscriptions.js';
import { anySelector, exactSelector } from '../src/topics/selectors.js';
import { mintToken } from '../src/index.js';
import { SseTap, startHub, type RunningHub } from './support/helpers.js';

const DEV_KEY = '!ChangeThisMercureHubJWTSecretKey!';
const AUDIENCE = 'https://localhost/.well-known/mercure';
const secret = new TextEncoder().encode(DEV_KEY);
const SUBSCRIPTIONS = '/.well-known/mercure/subscriptions';

function classic(claim: { publish?: string[]; subscribe?: string[]; payload?: unknown }, sub?: string): Promise<string> {
  const jwt = new SignJWT({ mercure: claim }).setProtectedHeader({ alg: 'HS256' });
  if (sub !== undefined) jwt.setSubject(sub);
  return jwt.sign(secret);
}

function draft08(details: { actions: string[]; topics: { match: string; matchType?: string }[]; payload?: unknown }[]): Promise<string> {
  return new SignJWT({ aud: AUDIENCE, authorization_details: details.map((detail) => ({ type: 'mercure', ...detail })) })
    .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
    .setExpirationTime('1h')
    .sign(secret);
}

let counter = 0;
function fresh(prefix = 'https://example.com/books'): string {
  return `${prefix}/${process.pid}-${++counter}`;
}

interface Document {
  readonly [key: string]: any;
}

async function getJson(hub: RunningHub, path: string, token: string | null): Promise<{ status: number; type: string | null; body: Document; headers: Headers }> {
  const response = await fetch(`${hub.url}${path}`, { headers: token === null ? {} : { Authorization: `Bearer ${token}` } });
  const text = await response.text();
  return { status: response.status, type: response.headers.get('content-type'), body: text === '' ? {} : JSON.parse(text), headers: response.headers };
}

/** The `active` events a tap received for `match`, parsed, in order. */
function eventsFor(tap: SseTap, match: string): Document[] {
  return tap.events.map((event) => JSON.parse(event.data) as Document).filter((document) => document.topic === match || document.match === match);
}

describe('mercure active subscriptions', () => {
  let hub: RunningHub;
  let watcherToken: string;

  before(async () => {
    hub = await startHub({ jwtKey: DEV_KEY, mercureAudience: AUDIENCE, mercureSubscriptions: true });
    watcherToken = await classic({ subscribe: ['/.well-known/mercure/subscriptions{/topic}{/subscriber}'] });
  });
  after(() => hub.close());

  test('classic: a subscription starting and ending is published as private JSON-LD on its reserved topic, and the API lists it meanwhile', async () => {
    const watcher = await SseTap.open(hub.url, `/.well-known/mercure?topic=${encodeURIComponent('/.well-known/mercure/subscriptions{/topic}{/subscriber}')}`, {
      Authorization: `Bearer ${watcherToken}`,
    });
    // Anonymous: it may not see subscription events (they are private). Its second selector takes a public sentinel.
    const sentinelTopic = fresh('https://example.com/sentinels');
    const anonymous = await SseTap.open(
      hub.url,
      `/.well-known/mercure?topic=${encodeURIComponent('/.well-known/mercure/subscriptions{/topic}{/subscriber}')}&topic=${encodeURIComponent(sentinelTopic)}`,
    );
    const topic = fresh();
    const payload = { tenant: 'acme' };
    const subscriberToken = await classic({ subscribe: [topic], payload }, 'alice');
    const client = await SseTap.open(hub.url, `/.well-known/mercure?topic=${encodeURIComponent(topic)}`, { Authorization: `Bearer ${subscriberToken}` });
    assert.equal(client.status, 200);

    await watcher.until(() => eventsFor(watcher, topic).length === 1, 'the active: true event');
    const [started] = eventsFor(watcher, topic);
    const event = watcher.events.find((candidate) => JSON.parse(candidate.data).topic === topic)!;
    assert.match(started!.subscriber, /^urn:uuid:[0-9a-f-]{36}$/, 'the hub makes the subscriber id');
    const id = `${SUBSCRIPTIONS}/${encodeVariable(topic)}/${encodeVariable(started!.subscriber)}`;
    assert.deepEqual(started, { '@context': 'https://mercure.rocks/', id, type: 'Subscription', topic, subscriber: started!.subscriber, active: true, payload });
    assert.equal(event.event, undefined, 'a message, no type');
    assert.match(event.id ?? '', /^urn:uuid:/);
    assert.ok(!id.slice(SUBSCRIPTIONS.length + 1).split('/').some((segment) => segment.includes(':')), 'each variable encoded as one segment');

    // The API: the collection, the selector's collection, the one subscription.
    const all = await getJson(hub, SUBSCRIPTIONS, watcherToken);
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.match(all.type ?? '', /^application\/ld\+json/);
    assert.match(all.headers.get('link') ?? '', /<http:\/\/127\.0\.0\.1:\d+\/\.well-known\/mercure>; rel="mercure"/);
    assert.equal(all.body['@context'], 'https://mercure.rocks/');
    assert.equal(all.body.type, 'Subscriptions');
    assert.equal(all.body.id, SUBSCRIPTIONS);
    assert.equal(typeof all.body.lastEventID, 'string');
    const listed = (all.body.subscriptions as Document[]).find((document) => document.topic === topic);
    assert.deepEqual(listed, { id, type: 'Subscription', topic, subscriber: started!.subscriber, active: true, payload });
    const bySelector = await getJson(hub, `${SUBSCRIPTIONS}/${encodeVariable(topic)}`, watcherToken);
    assert.equal(bySelector.status, 200);
    assert.deepEqual(bySelector.body.subscriptions, [listed]);
    const one = await getJson(hub, id, watcherToken);
    assert.equal(one.status, 200);
    assert.deepEqual({ ...one.body, lastEventID: undefined }, { '@context': 'https://mercure.rocks/', ...listed, lastEventID: undefined });

    client.close();
    await watcher.until(() => eventsFor(watcher, topic).length === 2, 'the active: false event');
    assert.deepEqual(eventsFor(watcher, topic)[1], { ...started, active: false });
    // Once ended, the subscription is gone from the API (SPEC: 404 or active: false; Herald answers 404).
    const gone = await getJson(hub, id, watcherToken);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'HERALD_ERR_NOT_FOUND');
    const none = await getJson(hub, `${SUBSCRIPTIONS}/${encodeVariable(topic)}`, watcherToken);
    assert.deepEqual(none.body.subscriptions, []);

    // The anonymous watcher saw nothing of it: everything due before the sentinel has arrived when the sentinel has.
    const sentinel = await fetch(`${hub.url}/.well-known/mercure`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${await classic({ publish: ['*'] })}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams([['topic', sentinelTopic], ['data', 'sentinel']]),
    });
    assert.equal(sentinel.status, 200);
    assert.deepEqual(await anonymous.untilId(await sentinel.text()), [], 'no private subscription event reached an anonymous subscriber');
    watcher.close();
    anonymous.close();
  });

  test('draft-08: matchType and match, the token payload of the first detail that matches, one event per selector', async () => {
    const pattern = 'https://example.com/authors/:id';
    const exact = fresh();
    const watcher = await SseTap.open(
      hub.url,
      `/.well-known/mercure?matchURLPattern=${encodeURIComponent('/.well-known/mercure/subscriptions/:type/:match/:subscriber')}`,
      { Authorization: `Bearer ${await draft08([{ actions: ['subscribe'], topics: [{ match: '/.well-known/mercure/subscriptions/:type/:match/:subscriber', matchType: 'URLPattern' }] }])}` },
    );
    const token = await draft08([
      { actions: ['subscribe'], topics: [{ match: exact }], payload: { for: 'exact' } },
      { actions: ['subscribe'], topics: [{ match: '*' }], payload: { for: 'default' } },
    ]);
    const client = await SseTap.open(hub.url, `/.well-known/mercure?matchURLPattern=${encodeURIComponent(pattern)}&match=${encodeURIComponent(exact)}`, {
      Authorization: `Bearer ${token}`,
    });
    assert.equal(client.status, 200);
    await watcher.until(() => eventsFor(watcher, pattern).length === 1 && eventsFor(watcher, exact).length === 1, 'one event per selector');
    const [byPattern] = eventsFor(watcher, pattern);
    const [byExact] = eventsFor(watcher, exact);
    assert.equal(byPattern!.subscriber, byExact!.subscriber, 'one subscriber for the stream');
    assert.deepEqual(byPattern, {
      '@context': 'https://mercure.rocks/',
      id: `${SUBSCRIPTIONS}/URLPattern/${encodeVariable(pattern)}/${encodeVariable(byPattern!.subscriber)}`,
      type: 'Subscription',
      matchType: 'URLPattern',
      match: pattern,
      subscriber: byPattern!.subscriber,
      active: true,
      payload: { for: 'default' },
    });
    assert.equal(byExact!.matchType, 'Exact');
    assert.deepEqual(byExact!.payload, { for: 'exact' });
    const one = await getJson(hub, byExact!.id, await draft08([{ actions: ['subscribe'], topics: [{ match: `${SUBSCRIPTIONS}/Exact/:match/:subscriber`, matchType: 'URLPattern' }] }]));
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.equal(one.body.match, exact);
    client.close();
    await watcher.until(() => eventsFor(watcher, pattern).length === 2 && eventsFor(watcher, exact).length === 2, 'both subscriptions ended');
    assert.equal(eventsFor(watcher, pattern)[1]!.active, false);
    watcher.close();
  });

  test('the API is authorized on its own path: 401 with a resource_metadata challenge without a token, 403 for a token elsewhere, 404 for an unknown one', async () => {
    const bare = await getJson(hub, SUBSCRIPTIONS, null);
    assert.equal(bare.status, 401);
    const challenge = bare.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer realm="herald"/);
    assert.match(challenge, /resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/\.well-known\/mercure"/);
    assert.doesNotMatch(challenge, /error=/, 'no error code when no token was sent');
    const elsewhere = await getJson(hub, SUBSCRIPTIONS, await classic({ subscribe: ['https://example.com/books/{id}'] }));
    assert.equal(elsewhere.status, 403);
    assert.match(elsewhere.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    // A token for one selector's collection reads it, and not the whole collection.
    const topic = fresh();
    const narrow = await classic({ subscribe: [`${SUBSCRIPTIONS}/${encodeVariable(topic)}`] });
    assert.equal((await getJson(hub, `${SUBSCRIPTIONS}/${encodeVariable(topic)}`, narrow)).status, 200);
    assert.equal((await getJson(hub, SUBSCRIPTIONS, narrow)).status, 403);
    const unknown = await getJson(hub, `${SUBSCRIPTIONS}/${encodeVariable(topic)}/${encodeVariable('urn:uuid:00000000-0000-0000-0000-000000000000')}`, watcherToken);
    assert.equal(unknown.status, 404);
    const deep = await getJson(hub, `${SUBSCRIPTIONS}/a/b/c/d`, watcherToken);
    assert.equal(deep.status, 404);
    // The collection has one URL: `…/subscriptions/` would be authorized as another topic (an empty {/topic}).
    assert.equal((await getJson(hub, `${SUBSCRIPTIONS}/`, await classic({ subscribe: [`${SUBSCRIPTIONS}/{topic}`] }))).status, 404);
    const all = await getJson(hub, SUBSCRIPTIONS, watcherToken);
    assert.match(all.headers.get('cache-control') ?? '', /private/);
    assert.match(all.headers.get('vary') ?? '', /Authorization/);
    const badEncoding = await getJson(hub, `${SUBSCRIPTIONS}/%E0%A4%A`, await classic({ subscribe: ['*'] }));
    assert.equal(badEncoding.status, 400);
    const post = await fetch(`${hub.url}${SUBSCRIPTIONS}`, { method: 'POST', headers: { Authorization: `Bearer ${watcherToken}` } });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  test('a stream opened with a token ends at the token’s exp, and its subscription is reported ended', async () => {
    const topic = fresh();
    const watcher = await SseTap.open(hub.url, `/.well-known/mercure?topic=${encodeURIComponent('/.well-known/mercure/subscriptions{/topic}{/subscriber}')}`, {
      Authorization: `Bearer ${watcherToken}`,
    });
    const exp = Math.floor(Date.now() / 1000) + 2;
    const shortLived = await new SignJWT({ aud: AUDIENCE, authorization_details: [{ type: 'mercure', actions: ['subscribe'], topics: [{ match: topic }] }] })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .setExpirationTime(exp)
      .sign(secret);
    // A classic stream, so the watcher's classic selector covers its subscription events.
    const client = await SseTap.open(hub.url, `/.well-known/mercure?topic=${encodeURIComponent(topic)}`, { Authorization: `Bearer ${shortLived}` });
    assert.equal(client.status, 200);
    await client.waitForEnd(20_000);
    // The hub ended it, and not before the token's exp (timers never fire early by more than their clock's grain).
    assert.ok(Date.now() >= exp * 1000 - 50, `ended ${exp * 1000 - Date.now()} ms before exp`);
    await watcher.until(() => eventsFor(watcher, topic).length === 2, 'the subscription reported started and ended');
    assert.deepEqual(eventsFor(watcher, topic).map((document) => document.active), [true, false]);
    watcher.close();
  });

  test('publishers cannot forge subscription events: the reserved namespace is refused (403)', async () => {
    const response = await fetch(`${hub.url}/.well-known/mercure`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${await classic({ publish: ['*'] })}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams([['topic', `${SUBSCRIPTIONS}/x/urn%3Auuid%3A1`], ['data', '{"active":false}']]),
    });
    assert.equal(response.status, 403);
    // Nor through Herald's own publish: a relative topic that URL patterns read as under the hub URL (review).
    const admin = await mintToken({ publish: ['**'], key: DEV_KEY, ttlSeconds: 3600 });
    for (const topic of ['mercure/subscriptions/Exact/x/urn%3Auuid%3Aforged', 'a/../mercure/subscriptions']) {
      const trigger = await fetch(`${hub.url}/trigger`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ topic, data: { type: 'Subscription', active: true } }),
      });
      assert.equal(trigger.status, 403, topic);
      assert.equal(((await trigger.json()) as Document).error.code, 'HERALD_ERR_FORBIDDEN');
    }
  });

  test('the protected resource metadata names the resource, the bearer methods, the cookie and the revision', async () => {
    const response = await fetch(`${hub.url}/.well-known/oauth-protected-resource/.well-known/mercure`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await response.json(), { resource: AUDIENCE, bearer_methods_supported: ['header'], mercure_cookie: true, mercure_version: 8 });
  });

  test('GET /presence: every stream of both APIs with its selectors and subject; ?topic= those it would reach; operators only', async () => {
    const admin = await mintToken({ subscribe: ['**'], key: DEV_KEY, ttlSeconds: 3600 });
    const topic = `orders/${process.pid}-${++counter}`;
    const heraldToken = await mintToken({ subscribe: ['orders/**'], subject: 'bob', key: DEV_KEY, ttlSeconds: 3600 });
    const herald = await SseTap.open(hub.url, `/events?topic=${encodeURIComponent('orders/*')}`, { Authorization: `Bearer ${heraldToken}` });
    const everything = await SseTap.open(hub.url, '/events');
    const mercureTopic = fresh();
    const mercure = await SseTap.open(hub.url, `/.well-known/mercure?topic=${encodeURIComponent(mercureTopic)}`);
    for (const tap of [herald, everything, mercure]) assert.equal(tap.status, 200);

    const answer = await getJson(hub, `/presence?topic=${encodeURIComponent(topic)}`, admin);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.topic, topic);
    const streams = answer.body.streams as Document[];
    const mine = streams.find((stream) => stream.subject === 'bob');
    assert.ok(mine, JSON.stringify(streams));
    assert.deepEqual(Object.keys(mine).sort(), ['node', 'protocol', 'selectors', 'since', 'subject', 'subscriber']);
    assert.equal(mine.protocol, 'herald');
    assert.deepEqual(mine.selectors, ['orders/*']);
    assert.match(mine.node, /:\d+-[0-9a-f]{6}$/);
    assert.ok(!Number.isNaN(Date.parse(mine.since)));
    assert.ok(streams.some((stream) => stream.selectors.length === 0), 'a stream without selectors reaches every topic');
    assert.ok(!streams.some((stream) => stream.selectors.includes(mercureTopic)), 'a Mercure stream on another topic is not listed for this one');
    assert.equal(answer.body.count, streams.length);
    assert.equal(Object.values(answer.body.nodes as Record<string, number>).reduce((a, b) => a + b, 0), streams.length);

    const all = await getJson(hub, '/presence', admin);
    const protocols = new Set((all.body.streams as Document[]).map((stream) => stream.protocol));
    assert.ok(protocols.has('herald') && protocols.has('mercure-classic'), [...protocols].join());

    assert.equal((await getJson(hub, '/presence', null)).status, 401);
    assert.equal((await getJson(hub, '/presence', heraldToken)).status, 403);
    assert.equal((await getJson(hub, '/presence?topic=a&topic=b', admin)).status, 400);
    const empty = await getJson(hub, '/presence?topic=', admin);
    assert.equal(empty.status, 400);
    assert.equal(empty.body.error.code, 'HERALD_ERR_BAD_REQUEST');

    herald.close();
    // A stream that closes leaves the listing.
    const closedId = mine.subscriber;
    for (let attempt = 0; attempt < 200; attempt++) {
      const again = await getJson(hub, '/presence', admin);
      if (!(again.body.streams as Document[]).some((stream) => stream.subscriber === closedId)) break;
      assert.ok(attempt < 199, 'the closed stream left /presence');
      await new Promise((resolve) => setImmediate(resolve));
    }
    everything.close();
    mercure.close();
  });
});

test('subscription documents: the matcher type asked for, one subscription per distinct selector', () => {
  const record = {
    subscriber: 'urn:uuid:1',
    protocol: 'mercure' as const,
    selectors: [anySelector(), exactSelector('a'), exactSelector('a')],
    matchTypes: ['URLPattern', 'Exact', 'Exact'],
    since: 0,
    node: 'n',
  };
  const documents = subscriptionsOf(record);
  assert.deepEqual(documents.map((document) => [document.matchType, document.match]), [['URLPattern', '*'], ['Exact', 'a']]);
  assert.equal(documents[0]!.id, `${SUBSCRIPTIONS}/URLPattern/%2A/urn%3Auuid%3A1`, 'RFC 6570: * and : encoded too');
});

describe('by default: no subscription events, no key', () => {
  test('the subscriptions API and /presence answer this machine; nothing is written to the history', async () => {
    const hub = await startHub({});
    try {
      const topic = fresh();
      const tap = await SseTap.open(hub.url, `/.well-known/mercure?topic=${encodeURIComponent(topic)}`);
      const listing = await getJson(hub, SUBSCRIPTIONS, null);
      assert.equal(listing.status, 200);
      assert.ok((listing.body.subscriptions as Document[]).some((document) => document.topic === topic));
      assert.equal(listing.body.lastEventID, 'earliest', 'no event at all: not even the subscription’s');
      tap.close();
      // The stream's end is handled (its presence record goes) without an update either.
      for (let attempt = 0; attempt < 200; attempt++) {
        const again = await getJson(hub, SUBSCRIPTIONS, null);
        if ((again.body.subscriptions as Document[]).length === 0) break;
        assert.ok(attempt < 199, 'the closed stream left the listing');
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal((await getJson(hub, '/health', null)).body.published, 0);
      const second = await SseTap.open(hub.url, `/.well-known/mercure?topic=${encodeURIComponent(topic)}`);
      assert.equal((await getJson(hub, '/presence', null)).status, 200);
      second.close();
    } finally {
      await hub.close();
    }
  });
});
