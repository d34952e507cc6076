/**
 * Mercure from a page: Chromium's own `EventSource` on `/.well-known/mercure`
 * (same origin, anonymous), updates published with `fetch` and a token, in
 * both generations, as Mercure's users' pages do it.
 *
 * Without Chromium these tests are skipped with a printed reason, except when
 * `CI` is set: then they fail, so CI never passes without running them.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import type { BrowserContext, Page } from 'playwright-core';
import { chromiumSkip, closeChromium, launchChromium } from './support/chromium.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startHub, type RunningHub } from './support/helpers.js';

// The callbacks given to page.evaluate() run in the page; this project compiles without the DOM types.
declare const window: any;
declare const EventSource: any;
declare const URLSearchParams: any;

const DEV_KEY = '!ChangeThisMercureHubJWTSecretKey!';
const AUDIENCE = 'https://localhost/.well-known/mercure';
const ISSUER = 'https://localhost';
const secret = new TextEncoder().encode(DEV_KEY);

const skip = chromiumSkip;
if (skip !== false) console.log(`# mercure browser tests skipped: ${skip}`);

let hub: RunningHub;
let context: BrowserContext;
let page: Page;
const tokens: Record<'classic' | 'draft08', string> = { classic: '', draft08: '' };

before(async () => {
  if (skip !== false) return;
  hub = await startHub({ jwtKey: DEV_KEY, mercureAudience: AUDIENCE, mercureIssuer: ISSUER });
  tokens.classic = await new SignJWT({ mercure: { publish: ['*'], subscribe: ['*'] } }).setProtectedHeader({ alg: 'HS256' }).sign(secret);
  tokens.draft08 = await new SignJWT({
    aud: AUDIENCE,
    iss: ISSUER,
    authorization_details: [
      { type: 'https://mercure.rocks/authorization-detail', actions: ['publish'], topics: [{ match: '*' }] },
      { type: 'https://mercure.rocks/authorization-detail', actions: ['subscribe'], topics: [{ match: '*' }] },
    ],
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
    .setExpirationTime('1h')
    .sign(secret);
  context = await (await launchChromium()).newContext();
  page = await context.newPage();
  page.setDefaultTimeout(10_000);
  await page.goto(`${hub.url}/`);
});

after(async () => {
  if (skip !== false) return;
  await context.close();
  await closeChromium();
  await hub.close();
});

interface Row {
  readonly name: string;
  readonly generation: 'classic' | 'draft08';
  /** The update's topics: the first is canonical. */
  readonly topics: readonly string[];
  /** `[parameter, value]` of the subscription's query. */
  readonly selectors: readonly (readonly [string, string])[];
  readonly private?: boolean;
  readonly received: boolean;
}

/**
 * In the page: opens an EventSource, publishes once it is open, and waits for
 * the update (by id and data) or for a public sentinel published after it on
 * the stream's last selector: whichever comes, the answer is in.
 */
async function run(row: Row, sentinelTopic: string): Promise<{ received: boolean; status: number; type: string; body: string; id: string }> {
  return page.evaluate(
    async ({ row, token, sentinelTopic }) => {
      const id = `id-${JSON.stringify(row.topics)}`;
      const data = `data for\n\n        ${row.name}`;
      const url = new URL('/.well-known/mercure', window.location.origin);
      for (const [name, value] of row.selectors) url.searchParams.append(name, value);
      url.searchParams.append(row.generation === 'classic' ? 'topic' : 'match', sentinelTopic);
      const source = new EventSource(url);
      await new Promise((resolve, reject) => {
        source.onopen = resolve;
        source.onerror = () => reject(new Error('the stream did not open'));
      });
      const post = (fields: [string, string][]) =>
        fetch('/.well-known/mercure', { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: new URLSearchParams(fields) });
      const outcome = new Promise<boolean>((resolve) => {
        source.onmessage = (event: any) => {
          if (event.lastEventId === id && event.data === data) resolve(true);
          else if (event.data === 'sentinel') resolve(false);
        };
      });
      const fields: [string, string][] = [...row.topics.map((topic): [string, string] => ['topic', topic]), ['id', id], ['data', data]];
      if (row.private === true) fields.push(['private', 'on']);
      const response = await post(fields);
      const body = await response.text();
      await post([['topic', sentinelTopic], ['data', 'sentinel']]);
      const received = await outcome;
      source.close();
      return { received, status: response.status, type: response.headers.get('content-type') ?? '', body, id };
    },
    { row, token: tokens[row.generation], sentinelTopic },
  );
}

const random = (): string => Math.random().toString(16).slice(2).padEnd(12, '0');

function rows(): Row[] {
  const [r0, r1, r2, r3, r4] = [random(), random(), random(), random(), random()];
  return [
    { name: 'classic raw string', generation: 'classic', topics: [r0], selectors: [['topic', r0]], received: true },
    { name: 'classic multiple topics', generation: 'classic', topics: [random(), r1], selectors: [['topic', r1]], received: true },
    { name: 'classic multiple selectors', generation: 'classic', topics: [r2], selectors: [['topic', 'foo'], ['topic', r2]], received: true },
    { name: 'classic URI', generation: 'classic', topics: [`https://example.net/foo/${r3}`], selectors: [['topic', `https://example.net/foo/${r3}`]], received: true },
    { name: 'classic URI template', generation: 'classic', topics: [`https://example.net/foo/${r4}`], selectors: [['topic', 'https://example.net/foo/{random}']], received: true },
    { name: 'classic non-matching template', generation: 'classic', topics: ['https://example.net/foo/nope'], selectors: [['topic', 'https://example.net/bar/{var}']], received: false },
    { name: 'classic private', generation: 'classic', topics: [r0], selectors: [['topic', r0]], private: true, received: false },
    { name: 'draft-08 raw string', generation: 'draft08', topics: [r1], selectors: [['match', r1]], received: true },
    { name: 'draft-08 URL pattern', generation: 'draft08', topics: [`https://example.net/foo/${r2}`], selectors: [['match_urlpattern', 'https://example.net/foo/:random']], received: true },
    { name: 'draft-08 URL pattern (current spelling)', generation: 'draft08', topics: [`https://example.net/foo/${r4}`], selectors: [['matchURLPattern', 'https://example.net/foo/:random']], received: true },
    { name: 'draft-08 non-matching URL pattern', generation: 'draft08', topics: ['https://example.net/foo/nope'], selectors: [['match_urlpattern', 'https://example.net/bar/:var']], received: false },
    { name: 'draft-08 private URL pattern', generation: 'draft08', topics: [`https://example.net/foo/${r3}`], selectors: [['match_urlpattern', 'https://example.net/foo/:random']], private: true, received: false },
  ];
}

test('mercure in Chromium: EventSource subscribers get exactly the updates their selectors match, never a private one', { skip }, async () => {
  for (const row of rows()) {
    const result = await run(row, `sentinel-${random()}`);
    assert.equal(result.status, 200, `${row.name}: publish answered ${result.status}: ${result.body}`);
    assert.match(result.type, /^text\/plain(;.*)?$/, row.name);
    assert.equal(result.body, result.id, `${row.name}: the publisher's id is the answer`);
    assert.equal(result.received, row.received, `${row.name}: ${row.received ? 'received' : 'not received'}`);
  }
});

/** A page of another origin (another port of 127.0.0.1), as an app that uses the hub would serve it. */
async function appServer(): Promise<{ server: Server; origin: string }> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    response.end('<!doctype html><title>app</title>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('mercure in Chromium, across origins: a listed origin subscribes withCredentials with the mercureAuthorization cookie and gets private updates; its cookie publish is taken, an unlisted page’s refused', { skip }, async () => {
  const app = await appServer();
  const stranger = await appServer();
  const crossHub = await startHub({ jwtKey: DEV_KEY, corsOrigin: app.origin });
  const crossContext = await (await launchChromium()).newContext();
  try {
    const topic = `https://example.net/private/${random()}`;
    const subscriberToken = await new SignJWT({ mercure: { subscribe: [topic], publish: [topic] } }).setProtectedHeader({ alg: 'HS256' }).sign(secret);
    // Cookies belong to the host, not the port: the hub (another port) receives the app's cookie.
    await crossContext.addCookies([{ name: 'mercureAuthorization', value: subscriberToken, domain: '127.0.0.1', path: '/', httpOnly: true, sameSite: 'Lax' }]);
    const appPage = await crossContext.newPage();
    appPage.setDefaultTimeout(10_000);
    await appPage.goto(`${app.origin}/`);
    const result = await appPage.evaluate(
      async ({ hubUrl, topic, token }) => {
        const url = new URL('/.well-known/mercure', hubUrl);
        url.searchParams.append('topic', topic);
        const source = new EventSource(url, { withCredentials: true });
        await new Promise((resolve, reject) => {
          source.onopen = resolve;
          source.onerror = () => reject(new Error('the stream did not open'));
        });
        const received = new Promise<string>((resolve) => {
          source.onmessage = (event: any) => resolve(event.data);
        });
        // A private update, published by a backend (a token in Authorization)...
        const backend = await fetch(new URL('/.well-known/mercure', hubUrl), {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}` },
          body: new URLSearchParams([['topic', topic], ['data', 'private hello'], ['private', 'on']]),
        });
        const data = await received;
        // ...and one from this page with only its cookie: the page's origin is listed, so it is taken.
        const fromPage = await fetch(new URL('/.well-known/mercure', hubUrl), {
          method: 'POST',
          credentials: 'include',
          body: new URLSearchParams([['topic', topic], ['data', 'from the page'], ['private', 'on']]),
        });
        source.close();
        return { backend: backend.status, data, fromPage: fromPage.status };
      },
      { hubUrl: crossHub.url, topic, token: tokens.classic },
    );
    assert.equal(result.backend, 200);
    assert.equal(result.data, 'private hello', 'the cookie opened the private update');
    assert.equal(result.fromPage, 200, 'a cookie publish from a listed origin');

    // A page of an origin the hub does not list: its cookie publish is refused (CSRF), even as a no-cors form post.
    const strangerPage = await crossContext.newPage();
    await strangerPage.goto(`${stranger.origin}/`);
    const refused = await strangerPage.evaluate(
      async ({ hubUrl, topic }) => {
        await fetch(new URL('/.well-known/mercure', hubUrl), {
          method: 'POST',
          mode: 'no-cors',
          credentials: 'include',
          body: new URLSearchParams([['topic', topic], ['data', 'forged']]),
        });
        return true;
      },
      { hubUrl: crossHub.url, topic },
    );
    assert.equal(refused, true);
    // A last update after the stranger's attempt: the replay reads up to it, so a stored forgery would show.
    const last = await fetch(`${crossHub.url}/.well-known/mercure`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${subscriberToken}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams([['topic', topic], ['data', 'the end']]),
    });
    assert.equal(last.status, 200);
    // What the hub stored: the backend's and the listed page's updates, not the stranger's.
    const stored = await fetch(`${crossHub.url}/.well-known/mercure?topic=${encodeURIComponent(topic)}&lastEventID=earliest`, {
      headers: { Authorization: `Bearer ${subscriberToken}` },
    });
    const reader = stored.body!.getReader();
    let text = '';
    while (!text.includes('the end')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    assert.ok(text.includes('private hello') && text.includes('from the page') && text.includes('the end'), text);
    assert.ok(!text.includes('forged'), 'the stranger’s cookie publish was not stored');
  } finally {
    await crossContext.close();
    await crossHub.close();
    app.server.close();
    stranger.server.close();
  }
});
