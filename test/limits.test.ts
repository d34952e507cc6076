/**
 * Browsers from other origins (CORS) and the limits per client: streams per
 * address, publish rate, topics per subscription.
 */

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { rawRequest, SseTap, trigger, withHub } from './support/helpers.js';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request on its own connection; streams are cut after their head. */
function send(url: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers, agent: false }, (res) => {
      if (String(res.headers['content-type']).startsWith('text/event-stream')) {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
        res.destroy();
        return;
      }
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const APP = 'https://app.example.com';
const preflight = (origin: string, method = 'POST'): Record<string, string> => ({
  Origin: origin,
  'Access-Control-Request-Method': method,
  'Access-Control-Request-Headers': 'authorization, content-type',
});

test('without --cors-origin, other origins get no CORS headers, and a preflight says which option to set', async () => {
  await withHub({}, async ({ url }) => {
    const stream = await send(url, 'GET', '/events', { Origin: APP });
    assert.equal(stream.status, 200);
    assert.equal(stream.headers['access-control-allow-origin'], undefined, 'the browser keeps the stream from the page');
    const refused = await send(url, 'OPTIONS', '/trigger', preflight(APP));
    assert.equal(refused.status, 403);
    assert.equal(JSON.parse(refused.body).error.code, 'HERALD_ERR_FORBIDDEN');
    assert.match(JSON.parse(refused.body).error.message, /--cors-origin/);
  });
});

test('a listed origin gets its own origin back with credentials; * serves others without credentials; nothing is reflected', async () => {
  await withHub({ corsOrigin: `${APP}, *` }, async ({ url }) => {
    const allowed = await send(url, 'OPTIONS', '/trigger', preflight(APP));
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers['access-control-allow-origin'], APP);
    assert.equal(allowed.headers['access-control-allow-credentials'], 'true');
    assert.equal(allowed.headers['access-control-allow-methods'], 'POST');
    assert.match(String(allowed.headers['access-control-allow-headers']), /Authorization/);
    assert.match(String(allowed.headers.vary), /Origin/);

    const other = await send(url, 'OPTIONS', '/events', preflight('https://evil.example', 'GET'));
    assert.equal(other.status, 204);
    assert.equal(other.headers['access-control-allow-origin'], '*', 'public access, never the caller\'s origin');
    assert.equal(other.headers['access-control-allow-credentials'], undefined, 'never credentials for an unlisted origin');

    const stream = await send(url, 'GET', '/events', { Origin: APP });
    assert.equal(stream.status, 200);
    assert.equal(stream.headers['access-control-allow-origin'], APP, 'the stream itself carries the headers');
    assert.equal(stream.headers['access-control-allow-credentials'], 'true');

    const error = await send(url, 'POST', '/trigger', { Origin: APP, 'Content-Type': 'application/json' }, '{oops');
    assert.equal(error.status, 400);
    assert.equal(error.headers['access-control-allow-origin'], APP, 'errors are readable by the page too');
    assert.match(String(error.headers['access-control-expose-headers']), /Retry-After/);
  });
});

test('only listed origins are served when * is not listed', async () => {
  await withHub({ corsOrigin: APP }, async ({ url }) => {
    const stream = await send(url, 'GET', '/events', { Origin: 'https://evil.example' });
    assert.equal(stream.headers['access-control-allow-origin'], undefined);
    assert.equal((await send(url, 'OPTIONS', '/trigger', preflight('https://evil.example'))).status, 403);
    assert.equal((await send(url, 'OPTIONS', '/trigger', preflight(APP))).status, 204);
  });
});

test('--max-connections-per-ip: one address holds at most that many streams, on both paths; closing one frees a place', async () => {
  await withHub({ maxConnectionsPerIp: 2 }, async ({ url, port, herald, watch }) => {
    const fast = await SseTap.open(url, '/events');
    const slow = await SseTap.open(url, '/events', { Cookie: 'prefs=1' }); // a cookie takes the node:http path
    assert.equal(fast.status, 200);
    assert.equal(slow.status, 200);
    const third = await rawRequest(port, 'GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(third, /^HTTP\/1\.1 429 /);
    assert.match(third, /Retry-After: \d+/);
    assert.match(third, /HERALD_ERR_RATE_LIMITED/);
    const thirdSlow = await send(url, 'GET', '/events', { Cookie: 'prefs=1' });
    assert.equal(thirdSlow.status, 429);
    fast.close();
    // The hub reports the close after the address's count let go of it.
    await watch.until(() => watch.closedFor('client-closed') === 1, 'the closed stream to be counted out');
    assert.equal(herald.counters().connections, 1, 'the closed stream is counted out');
    const again = await SseTap.open(url, '/events');
    assert.equal(again.status, 200, 'a place freed up');
    again.close();
    slow.close();
  });
});

test('--publish-rate: a client past its rate gets 429 with Retry-After; a batch larger than the burst is refused whole', async () => {
  await withHub({ publishRate: 1, publishBurst: 3 }, async ({ url }) => {
    const started = Date.now();
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 10; i++) {
      const result = await trigger(url, { data: i });
      statuses.push(result.status);
      if (result.status === 429) {
        retryAfter = result.headers.get('retry-after');
        assert.equal(result.body.error.code, 'HERALD_ERR_RATE_LIMITED');
      }
    }
    const elapsedSeconds = (Date.now() - started) / 1000;
    const accepted = statuses.filter((status) => status === 202).length;
    assert.ok(accepted >= 3, 'the burst passes');
    assert.ok(accepted <= 3 + Math.ceil(elapsedSeconds) + 1, `no more than the burst plus the refill: ${statuses.join(' ')}`);
    assert.ok(statuses.includes(429));
    assert.match(retryAfter ?? '', /^\d+$/);

    // Out of tokens: refused from the head, before the body is read.
    const refused = await trigger(url, [{ data: 1 }, { data: 2 }, { data: 3 }, { data: 4 }]);
    assert.equal(refused.status, 429);
  });
  // A fresh client with a full bucket: a batch larger than the burst can never pass, and is told why.
  await withHub({ publishRate: 1, publishBurst: 3 }, async ({ url }) => {
    const tooBig = await trigger(url, [{ data: 1 }, { data: 2 }, { data: 3 }, { data: 4 }]);
    assert.equal(tooBig.status, 429);
    assert.match(tooBig.body.error.message, /--publish-burst/);
    assert.equal((await trigger(url, [{ data: 1 }, { data: 2 }, { data: 3 }])).status, 202, 'the whole burst still passes after it');
  });
});

test('--max-topics: a subscription naming more topic selectors is refused with 400', async () => {
  await withHub({ maxTopics: 2 }, async ({ url }) => {
    assert.equal((await send(url, 'GET', '/events?topic=a&topic=b', {})).status, 200);
    const tooMany = await send(url, 'GET', '/events?topic=a&topic=b&topic=c', {});
    assert.equal(tooMany.status, 400);
    assert.equal(JSON.parse(tooMany.body).error.code, 'HERALD_ERR_INVALID_SELECTOR');
    assert.match(JSON.parse(tooMany.body).error.message, /--max-topics/);
  });
});
