/**
 * Who may publish and who may listen, end to end: safe defaults, JWT on
 * both routes, private events live and on resume, token expiry, `herald token`.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { decodeJwt, SignJWT } from 'jose';
import { CLI_PATH, spawnHerald, SseTap, startHub, stopHerald, trigger, withHub } from './support/helpers.js';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256!';
const key = new TextEncoder().encode(SECRET);

async function token(rights: { publish?: string[]; subscribe?: string[] }, lifetimeSeconds = 3600): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ herald: rights }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(now).setExpirationTime(now + lifetimeSeconds).sign(key);
}

async function publishWith(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const response = await fetch(`${url}/trigger`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
}

const bearer = (value: string): Record<string, string> => ({ Authorization: `Bearer ${value}` });

test('without a publisher key, only this machine may publish; a request through a proxy is refused with how to fix it', async () => {
  await withHub({}, async ({ url }) => {
    assert.equal((await trigger(url, { data: 1 })).status, 202, 'loopback publishes');
    const proxied = await publishWith(url, { data: 2 }, { 'X-Forwarded-For': '203.0.113.9' });
    assert.equal(proxied.status, 401);
    assert.equal(proxied.body.error.code, 'HERALD_ERR_UNAUTHORIZED');
    assert.match(proxied.body.error.message, /--jwt-key/);
    assert.match(proxied.headers.get('www-authenticate') ?? '', /^Bearer realm="herald"/);
  });
});

test('binding to every interface without a publisher key warns once, loudly', async () => {
  const node = await spawnHerald(['--host', '0.0.0.0']);
  try {
    const warnings = node.output().match(/WARNING: listening on 0\.0\.0\.0 without a publisher key/g) ?? [];
    assert.equal(warnings.length, 1, node.output());
  } finally {
    await stopHerald(node);
  }
});

test('with --jwt-key, publishing needs a token whose publish selectors cover every event of the request', async () => {
  await withHub({ jwtKey: SECRET }, async ({ url }) => {
    const tap = await SseTap.open(url, '/events');
    const missing = await publishWith(url, { topic: 'orders/1', data: 1 });
    assert.equal(missing.status, 401, 'loopback needs a token too once a key is set');
    assert.match(missing.headers.get('www-authenticate') ?? '', /Bearer realm="herald"/);

    const forged = await publishWith(url, { topic: 'orders/1', data: 1 }, bearer(`${await token({ publish: ['**'] })}x`));
    assert.equal(forged.status, 401);
    assert.match(forged.headers.get('www-authenticate') ?? '', /error="invalid_token"/);

    const orders = await token({ publish: ['orders/*'] });
    assert.equal((await publishWith(url, { topic: 'orders/1', data: 'ok' }, bearer(orders))).status, 202);
    const other = await publishWith(url, { topic: 'users/1', data: 'no' }, bearer(orders));
    assert.equal(other.status, 403);
    assert.equal(other.body.error.code, 'HERALD_ERR_FORBIDDEN');
    const mixed = await publishWith(url, [{ topic: 'orders/2', data: 'half' }, { topic: 'users/2', data: 'no' }], bearer(orders));
    assert.equal(mixed.status, 403, 'one disallowed event refuses the whole batch');
    const untopical = await publishWith(url, { data: 'no topic' }, bearer(orders));
    assert.equal(untopical.status, 403, 'an event without a topic needs the selector **');

    // A sentinel after the refused publishes: had any of them been stored, it would have arrived before it.
    const last = await publishWith(url, { topic: 'orders/3', data: 'last' }, bearer(orders));
    assert.equal(last.status, 202);
    const before = await tap.untilId(last.body.id, 'the last, accepted publish');
    assert.deepEqual(before.map((e) => e.data), ['"ok"'], 'nothing refused was stored or delivered');
    tap.close();
  });
});

test('private events reach only subscribers whose token allows the topic, live and on resume', async () => {
  const hub = await startHub({ jwtKey: SECRET });
  try {
    const publisher = bearer(await token({ publish: ['**'] }));
    const ordersReader = await token({ subscribe: ['orders/**'] });
    const anonymous = await SseTap.open(hub.url, '/events');
    const holder = await SseTap.open(hub.url, '/events', bearer(ordersReader));
    const viaCookie = await SseTap.open(hub.url, '/events?topic=orders/eu', { Cookie: `theme=dark; herald_auth=${ordersReader}` });
    const viaQuery = await SseTap.open(hub.url, `/events?topic=orders/*&access_token=${ordersReader}`);
    for (const tap of [anonymous, holder, viaCookie, viaQuery]) assert.equal(tap.status, 200);

    const first = await publishWith(hub.url, { topic: 'orders/eu', data: 'public order' }, publisher);
    await publishWith(hub.url, { topic: 'orders/eu', data: 'secret order', private: true }, publisher);
    await publishWith(hub.url, { topic: 'users/1', data: 'secret user', private: true }, publisher);
    await publishWith(hub.url, { topic: 'users/1', data: 'public user' }, publisher);
    // A public sentinel every subscriber here may receive: what it must not get would have come before it.
    const sentinel = await publishWith(hub.url, { topic: 'orders/eu', data: 'sentinel' }, publisher);
    assert.equal(sentinel.status, 202);

    const received = async (tap: SseTap): Promise<string[]> => (await tap.untilId(sentinel.body.id, 'the sentinel')).map((e) => e.data);
    assert.deepEqual(await received(anonymous), ['"public order"', '"public user"'], 'no token: public events only');
    assert.deepEqual(await received(holder), ['"public order"', '"secret order"'], 'a token: its topics only, private included');
    assert.deepEqual(await received(viaCookie), ['"public order"', '"secret order"'], 'the cookie carries the token');
    assert.deepEqual(await received(viaQuery), ['"public order"', '"secret order"'], 'so does ?access_token=');

    // A replay is read in order too: the sentinel ends it.
    const resumedAnonymous = await SseTap.open(hub.url, '/events', { 'Last-Event-ID': first.body.id });
    const resumedHolder = await SseTap.open(hub.url, '/events', { 'Last-Event-ID': first.body.id, ...bearer(ordersReader) });
    assert.deepEqual(await received(resumedAnonymous), ['"public user"'], 'a replay never leaks a private event');
    assert.deepEqual(await received(resumedHolder), ['"secret order"']);
    for (const tap of [anonymous, holder, viaCookie, viaQuery, resumedAnonymous, resumedHolder]) tap.close();
  } finally {
    await hub.close();
  }
});

test('subscribing: a bad token is 401, selectors outside the token are 403, a token that expires ends the stream', async () => {
  await withHub({ jwtKey: SECRET, jwtClockSkew: 0 }, async ({ url, watch }) => {
    const bad = await SseTap.open(url, '/events', bearer('not.a.token'));
    assert.equal(bad.status, 401);
    assert.match(String(bad.headers['www-authenticate']), /error="invalid_token"/);

    const ordersOnly = await token({ subscribe: ['orders/*'] });
    const outside = await SseTap.open(url, '/events?topic=users/*', bearer(ordersOnly));
    assert.equal(outside.status, 403);
    assert.match(outside.raw, /HERALD_ERR_FORBIDDEN/);

    const shortLived = await SseTap.open(url, '/events', bearer(await token({ subscribe: ['**'] }, 1)));
    assert.equal(shortLived.status, 200);
    await shortLived.waitForEnd(10_000);
    assert.equal(watch.closedFor('token-expired'), 1, `the hub ended the stream because its token expired; the client reconnects with a fresh one (${watch.describe()})`);
    assert.equal(watch.disconnects.length, 1, 'and no other stream was closed');
  });
});

test('herald token mints a token the hub accepts, and log lines never contain tokens', async () => {
  const minted = spawnSync(process.execPath, [CLI_PATH, 'token', '--publish', 'orders/*', '--subscribe', '**', '--ttl', '10m'], {
    env: { ...process.env, HERALD_JWT_KEY: SECRET },
    encoding: 'utf8',
  });
  assert.equal(minted.status, 0, minted.stderr);
  const value = minted.stdout.trim();
  const claims = decodeJwt(value);
  assert.deepEqual(claims.herald, { publish: ['orders/*'], subscribe: ['**'] });
  assert.ok(claims.exp! - claims.iat! === 600);

  // At debug, every refused request is logged: the lines that could quote a token are there to check.
  const node = await spawnHerald(['--jwt-key', SECRET, '--log-level', 'debug']);
  try {
    assert.equal((await publishWith(node.url, { topic: 'orders/9', data: 1 }, bearer(value))).status, 202);
    assert.equal((await publishWith(node.url, { topic: 'orders/9', data: 1 }, bearer(`${value}tampered`))).status, 401);
    const tap = await SseTap.open(node.url, `/events?access_token=${value}`);
    assert.equal(tap.status, 200, 'the minted token opens a stream from the query too');
    tap.close();
    const refusedQuery = await SseTap.open(node.url, `/events?access_token=${value}tampered`);
    assert.equal(refusedQuery.status, 401);
    refusedQuery.close();
    await node.untilOutput(/HERALD_ERR_UNAUTHORIZED[^]*HERALD_ERR_UNAUTHORIZED/, 'both refusals in the log');
  } finally {
    await stopHerald(node);
  }
  assert.ok(!node.output().includes(value.slice(-20)), 'no token in the output');
  assert.ok(!node.output().includes(SECRET), 'no secret in the output');

  const noKey = spawnSync(process.execPath, [CLI_PATH, 'token', '--publish', 'x'], { env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8' });
  assert.equal(noKey.status, 2);
  assert.match(noKey.stderr, /HERALD_JWT_KEY/);
});

test('an invalid key stops the start with a one-line error that names the option, never the secret', async () => {
  const short = spawnSync(process.execPath, [CLI_PATH, '--jwt-key', 'short-secret'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  assert.equal(short.status, 2);
  assert.match(short.stderr, /--jwt-key/);
  assert.ok(!short.stderr.includes('short-secret'), short.stderr);
});

test("the README's Node example: the eventsource client sends the token in a header and receives private events", async () => {
  const { EventSource } = await import('eventsource');
  await withHub({ jwtKey: SECRET }, async ({ url }) => {
    const reader = await token({ subscribe: ['orders/*'] });
    const source = new EventSource(`${url}/events?topic=orders/*`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${reader}` } }),
    });
    try {
      const received = new Promise<{ id: string; data: string }>((resolve, reject) => {
        source.addEventListener('order.paid', (event) => resolve({ id: event.lastEventId, data: event.data }));
        source.onerror = () => reject(new Error('the stream failed'));
      });
      await new Promise<void>((resolve) => (source.onopen = () => resolve()));
      const published = await publishWith(url, { topic: 'orders/42', event: 'order.paid', data: { total: 99.5 }, private: true }, bearer(await token({ publish: ['orders/*'] })));
      assert.equal(published.status, 202);
      assert.deepEqual(await received, { id: published.body.id, data: '{"total":99.5}' });
    } finally {
      source.close();
    }
  });
});
