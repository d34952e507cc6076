/**
 * Mercure tokens (src/mercure/): where a request carries its token, both
 * generations verified with real jose signatures (the two conformance tokens
 * of the reference suite re-created with its dev key, then every check
 * broken one at a time), the matcher descriptors and payloads of a grant,
 * and the 401/403 answers.
 *
 * Time is a fixed clock handed to the settings, so no test depends on how
 * fast it runs. No URL Pattern engine is a dependency here: the validator and
 * the matcher are small fakes, which is the point of injecting them.
 */

import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportJWK, SignJWT, UnsecuredJWT, type JWTHeaderParameters } from 'jose';
import { createTokenVerifier } from '../src/auth/index.js';
import { resolveVerification } from '../src/auth/verifier.js';
import { HeraldError, type ErrorCode } from '../src/errors.js';
import {
  ACCESS_TOKEN_QUERY_PARAMETER,
  anyMatcherMatches,
  DEFAULT_MERCURE_CARRIERS,
  GENERIC_INVALID_TOKEN,
  hasMercureKey,
  insufficientScopeError,
  matcherMatches,
  mercureHubUrl,
  mercureTokenRequiredError,
  readMercureToken,
  resolveMercureTokenSettings,
  subscriptionPayload,
  tokenGeneration,
  verifyMercureToken,
  withResourceMetadata,
  type MatcherEngines,
  type MercureGrant,
  type MercureTokenOptions,
  type MercureTokenSettings,
  type UrlPatternValidator,
} from '../src/mercure/tokens.js';

/** The reference hub's development key, which both conformance tokens are signed with. */
const DEV_KEY = '!ChangeThisMercureHubJWTSecretKey!';
const DEV_KEY_BYTES = new TextEncoder().encode(DEV_KEY);
const OTHER_KEY = 'another secret that is long enough to be accepted';
const HUB = 'https://localhost/.well-known/mercure';
/** 2030-01-01T00:00:00Z: far from the real clock, so settings that ignored the fixed clock would fail. */
const NOW_MS = Date.UTC(2030, 0, 1);
const NOW = NOW_MS / 1000;
const DETAIL = 'https://mercure.rocks/authorization-detail';

const dir = mkdtempSync(join(tmpdir(), 'herald-mercure-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function writeFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const spki = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }) as string;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p256Other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsaPem = spki(rsa.publicKey);
const rsaPath = writeFile('rsa.pem', rsaPem);

/** A stand-in for the URL Pattern gate: refuses regexp groups, as the real one will. Records what it was asked. */
function recordingValidator(): UrlPatternValidator & { calls: Array<[string, string]> } {
  const calls: Array<[string, string]> = [];
  const validate = (pattern: string, hubUrl: string): boolean => {
    calls.push([pattern, hubUrl]);
    return !pattern.includes('(');
  };
  return Object.assign(validate, { calls });
}

/** A stand-in URL Pattern matcher: `:name` takes one path segment; everything else is literal. Enough to tell entries apart. */
const engines: MatcherEngines = {
  urlPattern(pattern, topic) {
    const source = pattern
      .split(/(:[A-Za-z_]\w*)/)
      .map((part, index) => (index % 2 === 1 ? '[^/?#]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('');
    return new RegExp(`^${source}$`).test(topic);
  },
  uriTemplate(template, topic) {
    const source = template
      .split(/(\{[^}]*\})/)
      .map((part, index) => (index % 2 === 1 ? '[A-Za-z0-9._~%-]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('');
    return new RegExp(`^${source}$`).test(topic);
  },
};

function settingsFor(options: Partial<MercureTokenOptions> = {}): MercureTokenSettings {
  return resolveMercureTokenSettings({ jwtKey: DEV_KEY, now: () => NOW_MS, validateUrlPattern: recordingValidator(), ...options });
}

async function signWith(header: JWTHeaderParameters, claims: Record<string, unknown>, key: KeyObject | Uint8Array | string = DEV_KEY): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header).sign(typeof key === 'string' ? new TextEncoder().encode(key) : key);
}

/** A draft-08 detail granting `actions` on `topics` (each a `match` string, or a whole matcher object). */
function detail(actions: unknown, topics: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: DETAIL, actions, topics: topics.map((topic) => (typeof topic === 'string' ? { match: topic } : topic)), ...extra };
}

/** A draft-08 token valid at the fixed clock for {@link HUB}, with `overrides` replacing (or, when `undefined`, removing) claims. */
async function accessToken(
  overrides: Record<string, unknown> = {},
  options: { typ?: string | undefined; alg?: string; key?: KeyObject | Uint8Array | string; kid?: string } = {},
): Promise<string> {
  const claims: Record<string, unknown> = {
    aud: HUB,
    iss: 'https://localhost',
    authorization_details: [detail(['publish', 'subscribe'], ['*'])],
    exp: NOW + 3600,
    ...overrides,
  };
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
  const typ = 'typ' in options ? options.typ : 'at+jwt';
  const header: JWTHeaderParameters = { alg: options.alg ?? 'HS256', ...(typ === undefined ? {} : { typ }), ...(options.kid === undefined ? {} : { kid: options.kid }) };
  return signWith(header, claims, options.key);
}

/** A classic token: the `mercure` claim, no typ, no exp unless given. */
async function classicToken(claims: Record<string, unknown>, options: { alg?: string; key?: KeyObject | Uint8Array | string; kid?: string } = {}): Promise<string> {
  return signWith({ alg: options.alg ?? 'HS256', ...(options.kid === undefined ? {} : { kid: options.kid }) }, claims, options.key);
}

function assertHeraldError(error: unknown, code: ErrorCode, message?: RegExp): HeraldError {
  assert.ok(error instanceof HeraldError, `expected a HeraldError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  if (message !== undefined) assert.match(error.message, message);
  assert.ok(!/[\r\n]/.test(error.message), `message is one line: ${JSON.stringify(error.message)}`);
  return error;
}

const INVALID_TOKEN_CHALLENGE = /^Bearer realm="herald", error="invalid_token", error_description="[\x20\x21\x23-\x5b\x5d-\x7e]+"$/;

/**
 * Asserts the token is refused with a 401 `invalid_token` whose message
 * matches and which quotes neither the token nor what the hub trusts.
 */
async function assertRejected(
  token: string,
  message: RegExp,
  settings: MercureTokenSettings = settingsFor(),
  role: 'publish' | 'subscribe' = 'publish',
  hubUrl: string = HUB,
): Promise<HeraldError> {
  let caught: unknown;
  try {
    await verifyMercureToken(token, role, settings, hubUrl);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, `the token was accepted; expected ${String(message)}`);
  const known = assertHeraldError(caught, 'HERALD_ERR_UNAUTHORIZED', message);
  assert.equal(known.status, 401);
  const header = known.details.challenge ?? '';
  assert.match(header, INVALID_TOKEN_CHALLENGE);
  for (const part of [token, ...token.split('.')].filter((piece) => piece.length >= 8)) {
    assert.ok(!known.message.includes(part) && !header.includes(part), `the error quotes the token: ${known.message}`);
  }
  for (const secret of [DEV_KEY, OTHER_KEY, rsaPath, 'HS256', 'RS256', 'ES256', ...(settings.issuers ?? []), settings.audience ?? HUB]) {
    assert.ok(!known.message.includes(secret), `the error names what the hub trusts (${secret}): ${known.message}`);
  }
  return known;
}

async function verified(token: string, settings: MercureTokenSettings = settingsFor(), role: 'publish' | 'subscribe' = 'publish', hubUrl = HUB): Promise<MercureGrant> {
  return verifyMercureToken(token, role, settings, hubUrl);
}

function request(headers: Record<string, string>, target = '/.well-known/mercure') {
  const lower = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
  return { url: new URL(target, 'http://herald.invalid'), header: (name: string) => lower[name] };
}

describe('readMercureToken: header > query > cookie', () => {
  const all = { authorization: 'Bearer from-header', cookie: '__Secure-mercure_access_token=from-cookie' };

  test('the Authorization header wins over the query and the cookie', () => {
    assert.deepEqual(readMercureToken(request(all, '/.well-known/mercure?authorization=from-query')), { token: 'from-header', source: 'header', name: 'authorization' });
  });

  test('the query parameter wins over the cookie', () => {
    const found = readMercureToken(request({ cookie: all.cookie }, '/.well-known/mercure?topic=x&authorization=from-query'));
    assert.deepEqual(found, { token: 'from-query', source: 'query', name: 'authorization' });
  });

  test('cookies: __Secure-mercure_access_token, then mercure_access_token, then mercureAuthorization', () => {
    const cookie = 'mercureAuthorization=classic; mercure_access_token=plain; __Secure-mercure_access_token=secure';
    assert.deepEqual(readMercureToken(request({ cookie })), { token: 'secure', source: 'cookie', name: '__Secure-mercure_access_token' });
    assert.deepEqual(readMercureToken(request({ cookie: 'mercureAuthorization=classic; mercure_access_token=plain' })), {
      token: 'plain',
      source: 'cookie',
      name: 'mercure_access_token',
    });
    assert.deepEqual(readMercureToken(request({ cookie: 'other=1; mercureAuthorization="classic"' })), { token: 'classic', source: 'cookie', name: 'mercureAuthorization' });
  });

  test('an empty header credential, parameter or cookie counts as absent', () => {
    const found = readMercureToken(request({ authorization: 'Bearer ', cookie: '__Secure-mercure_access_token=; mercureAuthorization=classic' }, '/.well-known/mercure?authorization='));
    assert.deepEqual(found, { token: 'classic', source: 'cookie', name: 'mercureAuthorization' });
    assert.equal(readMercureToken(request({ cookie: 'mercureAuthorization=' })), undefined);
    assert.equal(readMercureToken(request({})), undefined);
  });

  test('another scheme in Authorization is not a token and hides nothing; "bearer" is case-insensitive', () => {
    assert.deepEqual(readMercureToken(request({ authorization: 'Basic dXNlcjpwYXNz' }, '/?authorization=q')), { token: 'q', source: 'query', name: 'authorization' });
    assert.equal(readMercureToken(request({ authorization: 'BEARER abc' }))?.token, 'abc');
  });

  test('access_token is not read unless configured; then the list order decides', () => {
    assert.equal(readMercureToken(request({}, '/?access_token=t')), undefined);
    const carriers = { ...DEFAULT_MERCURE_CARRIERS, queryParameters: [ACCESS_TOKEN_QUERY_PARAMETER, 'authorization'] };
    assert.deepEqual(readMercureToken(request({}, '/?authorization=a&access_token=t'), carriers), { token: 't', source: 'query', name: 'access_token' });
    assert.deepEqual(readMercureToken(request({}, '/?authorization=a'), carriers), { token: 'a', source: 'query', name: 'authorization' });
  });

  test('a repeated parameter gives its first value, never a list', () => {
    assert.equal(readMercureToken(request({}, '/?authorization=one&authorization=two'))?.token, 'one');
  });

  test('a carrier list without cookies ignores them', () => {
    const carriers = { queryParameters: [], cookies: [] };
    assert.equal(readMercureToken(request({ cookie: 'mercureAuthorization=c' }, '/?authorization=q'), carriers), undefined);
  });
});

describe('settings', () => {
  test("the reference hub's dev key (34 bytes) is admitted as an HS256 secret", () => {
    assert.equal(DEV_KEY_BYTES.length, 34);
    const settings = settingsFor();
    assert.deepEqual(settings.keys.publish?.algorithms, ['HS256']);
    assert.ok(hasMercureKey(settings, 'publish') && hasMercureKey(settings, 'subscribe'));
  });

  test('a short key is refused by name, never quoted', () => {
    assert.throws(
      () => resolveMercureTokenSettings({ jwtKey: 'short but secret', validateUrlPattern: () => true }, (setting) => `--${setting}`),
      (error: unknown) => {
        const known = assertHeraldError(error, 'HERALD_ERR_INVALID_OPTION', /--jwtKey.*at least 32 bytes/);
        assert.ok(!known.message.includes('short but secret'));
        return true;
      },
    );
  });

  test('issuers: comma-separated text or a list, trimmed, empty ones dropped; none at all means unset', () => {
    assert.deepEqual(settingsFor({ mercureIssuer: ' https://a.example , https://b.example,,https://a.example' }).issuers, ['https://a.example', 'https://b.example']);
    assert.deepEqual(settingsFor({ mercureIssuer: ['https://a.example'] }).issuers, ['https://a.example']);
    assert.equal(settingsFor({ mercureIssuer: ' , ' }).issuers, undefined);
    assert.equal(settingsFor().issuers, undefined);
  });

  test('an audience or issuer with spaces, a bad limit, a missing validator are refused', () => {
    const label = (setting: string) => `--${setting}`;
    const build = (options: Partial<MercureTokenOptions>) => () =>
      resolveMercureTokenSettings({ jwtKey: DEV_KEY, validateUrlPattern: () => true, ...options } as MercureTokenOptions, label);
    assert.throws(build({ mercureAudience: 'https://hub example' }), (error) => !!assertHeraldError(error, 'HERALD_ERR_INVALID_OPTION', /--mercureAudience/));
    assert.throws(build({ mercureIssuer: 'https://a.example, https://b example' }), (error) => !!assertHeraldError(error, 'HERALD_ERR_INVALID_OPTION', /--mercureIssuer/));
    assert.throws(build({ limits: { maxDetails: 0 } }), (error) => !!assertHeraldError(error, 'HERALD_ERR_INVALID_OPTION', /maxDetails/));
    assert.throws(build({ limits: { maxTokens: 3 } as never }), (error) => !!assertHeraldError(error, 'HERALD_ERR_INVALID_OPTION', /unknown limit/));
    assert.throws(build({ validateUrlPattern: undefined as never }), (error) => !!assertHeraldError(error, 'HERALD_ERR_INVALID_OPTION', /validateUrlPattern/));
  });

  test("Herald's key rules apply as they are: two shared keys exclude each other", () => {
    assert.throws(
      () => resolveMercureTokenSettings({ jwtKey: DEV_KEY, jwtPublicKey: rsaPath, validateUrlPattern: () => true }),
      (error) => !!assertHeraldError(error, 'HERALD_ERR_INVALID_OPTION', /exclude each other/),
    );
  });

  test('the settings are frozen', () => {
    const settings = settingsFor({ mercureIssuer: 'https://a.example' });
    assert.ok(Object.isFrozen(settings) && Object.isFrozen(settings.limits) && Object.isFrozen(settings.issuers) && Object.isFrozen(settings.keys));
  });
});

describe('the conformance tokens, re-signed with the dev key', () => {
  // Digest §10.2: the exact headers and payloads, in their key order, so the bytes are the suite's.
  const classicClaims = { mercure: { publish: ['*'], subscribe: ['*'] } };
  const draftClaims = {
    aud: 'https://localhost/.well-known/mercure',
    iss: 'https://localhost',
    authorization_details: [
      { type: DETAIL, actions: ['publish'], topics: [{ match: '*' }] },
      { type: DETAIL, actions: ['subscribe'], topics: [{ match: '*' }] },
    ],
    exp: 4102444800,
  };
  const part = (token: string, index: number) => Buffer.from(token.split('.')[index]!, 'base64url').toString('utf8');

  test('classic: {alg: HS256} with only the mercure claim; no exp, typ, aud or iss needed', async () => {
    const token = await signWith({ alg: 'HS256' }, classicClaims);
    assert.equal(part(token, 0), '{"alg":"HS256"}');
    assert.equal(part(token, 1), '{"mercure":{"publish":["*"],"subscribe":["*"]}}');
    for (const role of ['publish', 'subscribe'] as const) {
      const grant = await verified(token, settingsFor(), role);
      assert.equal(grant.generation, 'classic');
      assert.deepEqual(grant.publish, [{ kind: 'any', source: '*' }]);
      assert.deepEqual(grant.subscribe, [{ kind: 'any', source: '*' }]);
      assert.equal(grant.expiresAt, undefined);
      assert.ok(!('subject' in grant) && !('issuer' in grant));
    }
  });

  test('draft-08: accepted with the derived audience of https://localhost and with the issuer configured', async () => {
    const token = await signWith({ alg: 'HS256', typ: 'at+jwt' }, draftClaims);
    assert.equal(part(token, 0), '{"alg":"HS256","typ":"at+jwt"}');
    assert.equal(
      part(token, 1),
      '{"aud":"https://localhost/.well-known/mercure","iss":"https://localhost","authorization_details":[' +
        '{"type":"https://mercure.rocks/authorization-detail","actions":["publish"],"topics":[{"match":"*"}]},' +
        '{"type":"https://mercure.rocks/authorization-detail","actions":["subscribe"],"topics":[{"match":"*"}]}],"exp":4102444800}',
    );
    for (const settings of [settingsFor(), settingsFor({ mercureIssuer: 'https://localhost', mercureAudience: HUB })]) {
      const grant = await verified(token, settings, 'publish', HUB);
      assert.equal(grant.generation, 'draft-08');
      assert.deepEqual(grant.publish, [{ kind: 'any', source: '*' }]);
      assert.deepEqual(grant.subscribe, [{ kind: 'any', source: '*' }]);
      assert.deepEqual(grant.subscribeEntries, [{ matchers: [{ kind: 'any', source: '*' }], payload: undefined }]);
      assert.equal(grant.expiresAt, 4102444800_000);
      assert.equal(grant.issuer, 'https://localhost');
      assert.ok(Object.isFrozen(grant) && Object.isFrozen(grant.publish) && Object.isFrozen(grant.subscribeEntries));
    }
  });

  test('draft-08 on another address: refused with the derived audience, accepted with the audience configured', async () => {
    const token = await signWith({ alg: 'HS256', typ: 'at+jwt' }, draftClaims);
    const local = 'http://127.0.0.1:3000/.well-known/mercure';
    await assertRejected(token, /"aud" claim does not name this hub/, settingsFor(), 'subscribe', local);
    assert.equal((await verified(token, settingsFor({ mercureAudience: HUB }), 'subscribe', local)).generation, 'draft-08');
  });
});

describe('draft-08 token validation', () => {
  test('typ must be at+jwt once authorization_details is there; application/ and any case are fine', async () => {
    await assertRejected(await accessToken({}, { typ: 'JWT' }), /"typ" header must be "at\+jwt"/);
    await assertRejected(await accessToken({}, { typ: undefined }), /"typ" header/);
    for (const typ of ['application/at+jwt', 'AT+JWT', 'Application/At+Jwt']) {
      assert.equal((await verified(await accessToken({}, { typ }))).generation, 'draft-08', typ);
    }
  });

  test('typ at+jwt alone makes a draft-08 token: no authorization_details grants nothing, yet aud is still checked', async () => {
    const grant = await verified(await accessToken({ authorization_details: undefined }));
    assert.equal(grant.generation, 'draft-08');
    assert.deepEqual([grant.publish, grant.subscribe, grant.subscribeEntries], [[], [], []]);
    await assertRejected(await accessToken({ authorization_details: undefined, aud: undefined }), /"aud"/);
  });

  test('a legacy mercure claim in an access token is ignored, not honoured', async () => {
    const grant = await verified(await accessToken({ authorization_details: undefined, mercure: { publish: ['*'] } }));
    assert.deepEqual(grant.publish, []);
  });

  test('exp is required, and enforced with the clock skew', async () => {
    await assertRejected(await accessToken({ exp: undefined }), /no "exp" claim/);
    await assertRejected(await accessToken({ exp: NOW - 60 }), /expired at 2029-12-31T23:59:00\.000Z/);
    assert.ok(await verified(await accessToken({ exp: NOW - 10 })), 'within the 30 s skew');
    await assertRejected(await accessToken({ exp: 'tomorrow' }), /"exp" claim is invalid/);
  });

  test('nbf is enforced when present', async () => {
    await assertRejected(await accessToken({ nbf: NOW + 3600 }), /not valid before 2030-01-01T01:00:00\.000Z/);
    assert.ok(await verified(await accessToken({ nbf: NOW - 3600 })));
  });

  test('aud: a string or a list holding the audience; anything else is refused', async () => {
    assert.ok(await verified(await accessToken({ aud: ['https://other.example', HUB] })));
    for (const aud of [undefined, 'https://other.example/.well-known/mercure', [], ['https://other.example'], `${HUB}/`, 'https://LOCALHOST/.well-known/mercure', 42]) {
      await assertRejected(await accessToken({ aud }), /"aud" claim does not name this hub/);
    }
  });

  test('aud is compared with the configured audience, not with the request, when one is configured', async () => {
    const settings = settingsFor({ mercureAudience: 'urn:example:hub' });
    assert.ok(await verified(await accessToken({ aud: 'urn:example:hub' }), settings));
    await assertRejected(await accessToken({ aud: HUB }), /"aud"/, settings);
  });

  test('iss: unchecked without issuers; with them it must be one', async () => {
    assert.ok(await verified(await accessToken({ iss: undefined })));
    assert.ok(await verified(await accessToken({ iss: 'https://anyone.example' })));
    const settings = settingsFor({ mercureIssuer: 'https://auth.example,https://localhost' });
    assert.equal((await verified(await accessToken({ iss: 'https://auth.example' }), settings)).issuer, 'https://auth.example');
    for (const iss of [undefined, 'https://evil.example', 'https://auth.example/', 7]) {
      await assertRejected(await accessToken({ iss }), /"iss" claim is not a trusted issuer/, settings);
    }
  });

  test('sub becomes the subject; sub, client_id, iat and jti are not required', async () => {
    assert.equal((await verified(await accessToken({ sub: 'user-7' }))).subject, 'user-7');
    assert.ok(!('subject' in (await verified(await accessToken()))));
  });

  test('the signature: another key, an altered payload, another algorithm, alg none', async () => {
    await assertRejected(await accessToken({}, { key: OTHER_KEY }), /signature does not match/);
    const [header, , signature] = (await accessToken()).split('.');
    const forged = Buffer.from(JSON.stringify({ aud: HUB, exp: NOW + 3600, authorization_details: [detail(['publish'], ['*'])], sub: 'x' })).toString('base64url');
    await assertRejected(`${header}.${forged}.${signature}`, /signature does not match/);
    await assertRejected(await accessToken({}, { alg: 'HS512', key: 'a'.repeat(64) }), /algorithm this hub does not accept/);
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
    const claims = Buffer.from(JSON.stringify({ aud: HUB, exp: NOW + 3600, authorization_details: [detail(['publish'], ['*'])] })).toString('base64url');
    await assertRejected(`${none}.${claims}.`, /unsigned tokens \(alg "none"\) are never accepted/);
  });

  test('malformed tokens', async () => {
    for (const token of ['', 'abc', 'a.b.c', '...', 'a.b.c.d']) await assertRejected(token, /malformed/);
  });

  test('a token over the size cap is refused before it is decoded', async () => {
    await assertRejected('x'.repeat(64 * 1024 + 1), /longer than 65536 bytes/);
    const token = await accessToken();
    assert.ok(await verified(token), 'the default cap takes an ordinary token');
    await assertRejected(token, /longer than 100 bytes/, settingsFor({ limits: { maxTokenBytes: 100 } }));
  });
});

describe('authorization_details', () => {
  test('both type strings carry rights; other types are skipped, whatever they hold', async () => {
    const grant = await verified(
      await accessToken({
        authorization_details: [
          { type: 'payment_initiation', actions: 'not a list', topics: 7 },
          { type: 'mercure', actions: ['publish'], topics: [{ match: 'a' }] },
          { type: DETAIL, actions: ['publish'], topics: [{ match: 'b' }] },
          { type: 'https://mercure.rocks/', actions: ['publish'], topics: [{ match: 'c' }] },
        ],
      }),
    );
    assert.deepEqual(grant.publish.map((matcher) => matcher.source), ['a', 'b']);
  });

  test('actions: publish and subscribe count, unknown ones are ignored', async () => {
    const grant = await verified(
      await accessToken({ authorization_details: [detail(['publish', 'admin'], ['p']), detail(['subscribe'], ['s']), detail(['delete'], ['x'])] }),
    );
    assert.deepEqual(grant.publish, [{ kind: 'exact', source: 'p' }]);
    assert.deepEqual(grant.subscribe, [{ kind: 'exact', source: 's' }]);
    assert.equal(grant.subscribeEntries.length, 1);
  });

  test('matcher kinds: * is any whatever the type; exact by default; urlpattern (matchType URLPattern) checked by the validator with the hub URL', async () => {
    const validate = recordingValidator();
    const settings = settingsFor({ validateUrlPattern: validate });
    const grant = await verified(
      await accessToken({
        authorization_details: [
          detail(['subscribe'], [
            '*',
            { match: '*', match_type: 'urlpattern' },
            { match: 'https://example.com/a' },
            { match: 'https://example.com/b', match_type: 'exact' },
            { match: 'https://example.com/books/:id', match_type: 'urlpattern' },
            { match: '/.well-known/mercure/subscriptions/:type/:match/:subscriber', match_type: 'urlpattern' },
            { match: 'https://example.com/c', matchType: 'Exact' },
            { match: 'https://example.com/authors/:id', matchType: 'URLPattern' },
          ]),
        ],
      }),
      settings,
      'subscribe',
    );
    assert.deepEqual(grant.subscribe.map((matcher) => matcher.kind), ['any', 'any', 'exact', 'exact', 'url-pattern', 'url-pattern', 'exact', 'url-pattern']);
    assert.deepEqual(validate.calls, [
      ['https://example.com/books/:id', HUB],
      ['/.well-known/mercure/subscriptions/:type/:match/:subscriber', HUB],
      ['https://example.com/authors/:id', HUB],
    ]);
  });

  test('a pattern the validator refuses, or that makes it throw, invalidates the token', async () => {
    await assertRejected(await accessToken({ authorization_details: [detail(['publish'], [{ match: 'https://e.example/((a|a)+)b', match_type: 'urlpattern' }])] }), /not a URL pattern this hub accepts/);
    const throwing = settingsFor({
      validateUrlPattern: () => {
        throw new TypeError('compiler internals: offset 17');
      },
    });
    const error = await assertRejected(await accessToken({ authorization_details: [detail(['publish'], [{ match: '/x/:y', match_type: 'urlpattern' }])] }), /URL pattern/, throwing);
    assert.ok(!error.message.includes('offset 17'), 'the compiler message stays inside');
  });

  test('no partial acceptance: one malformed Mercure entry beside a good one invalidates the token', async () => {
    const good = detail(['publish', 'subscribe'], ['*']);
    const bad: Array<[unknown, RegExp]> = [
      ['not an object', /authorization_details\[1\] must be an object with a string "type"/],
      [{ actions: ['publish'], topics: [{ match: 'a' }] }, /\[1\] must be an object with a string "type"/],
      [{ type: DETAIL, topics: [{ match: 'a' }] }, /\[1\]\.actions must be a non-empty list/],
      [detail([], ['a']), /\.actions must be a non-empty list/],
      [detail('publish', ['a']), /\.actions must be a non-empty list/],
      [detail(['publish', 1], ['a']), /\.actions must hold strings only/],
      [{ type: DETAIL, actions: ['publish'] }, /\.topics must be a non-empty list/],
      [detail(['publish'], []), /\.topics must be a non-empty list/],
      [{ type: DETAIL, actions: ['publish'], topics: ['a'] }, /\.topics\[0\] must be an object/],
      [{ type: DETAIL, actions: ['publish'], topics: [null] }, /\.topics\[0\] must be an object/],
      [detail(['publish'], [{}]), /\.match must be a non-empty string/],
      [detail(['publish'], [{ match: '' }]), /\.match must be a non-empty string/],
      [detail(['publish'], [{ match: 5 }]), /\.match must be a non-empty string/],
      [detail(['publish'], [{ match: 'a', match_type: 'URLPattern' }]), /match_type must be "exact" or "urlpattern"/],
      [detail(['publish'], [{ match: 'a', match_type: null }]), /match_type must be/],
      [detail(['publish'], [{ match: 'a', matchType: 'urlpattern' }]), /matchType must be "Exact", "URLPattern" or "URITemplate"/],
      [detail(['publish'], [{ match: 'a', matchType: 'URLPattern', match_type: 'exact' }]), /two different matcher types/],
      [detail(['publish'], [{ match: 'bell\u0007' }]), /control or format character/],
      [detail(['publish'], [{ match: 'c1\u0085' }]), /control or format character/],
      [detail(['publish'], [{ match: 'zero\u200bwidth' }]), /control or format character/],
      [detail(['publish'], [{ match: 'lone\ud800' }]), /control or format character/],
    ];
    for (const [entry, message] of bad) {
      await assertRejected(await accessToken({ authorization_details: [good, entry] }), message);
    }
  });

  test('the claim itself must be a list', async () => {
    for (const value of [{}, 'mercure', null, 3]) {
      await assertRejected(await accessToken({ authorization_details: value }), /"authorization_details" claim must be a list/);
    }
  });

  test('caps: 100 details, 100 matchers summed over the token, 4096-byte matchers', async () => {
    const other = { type: 'other' };
    assert.ok(await verified(await accessToken({ authorization_details: [detail(['publish'], ['*']), ...Array(99).fill(other)] })));
    await assertRejected(await accessToken({ authorization_details: [detail(['publish'], ['*']), ...Array(100).fill(other)] }), /more than 100 authorization details/);

    const fifty = Array.from({ length: 50 }, (_, index) => `topic-${index}`);
    assert.equal((await verified(await accessToken({ authorization_details: [detail(['publish'], fifty), detail(['subscribe'], fifty)] }))).publish.length, 50);
    await assertRejected(
      await accessToken({ authorization_details: [detail(['publish'], fifty), detail(['subscribe'], [...fifty, 'one more'])] }),
      /more than 100 topic matchers/,
    );

    assert.ok(await verified(await accessToken({ authorization_details: [detail(['publish'], ['é'.repeat(2048)])] })));
    await assertRejected(await accessToken({ authorization_details: [detail(['publish'], [`${'é'.repeat(2048)}x`])] }), /longer than 4096 bytes/);
  });

  test('the caps follow the settings', async () => {
    const settings = settingsFor({ limits: { maxDetails: 1, maxMatchers: 2 } });
    await assertRejected(await accessToken({ authorization_details: [detail(['publish'], ['a']), detail(['publish'], ['b'])] }), /more than 1 authorization details/, settings);
    await assertRejected(await accessToken({ authorization_details: [detail(['publish'], ['a', 'b', 'c'])] }), /more than 2 topic matchers/, settings);
  });
});

describe('payloads', () => {
  // The example of SPEC-08 "Payloads": a specific topic, a URL pattern, and a * default.
  const claims = {
    authorization_details: [
      detail(['subscribe'], ['https://example.com/foo'], { payload: { custom1: 'data only available for this topic' } }),
      detail(['subscribe'], [{ match: 'https://example.com/bar/:id', match_type: 'urlpattern' }], { payload: { custom2: 'matching subscriptions' } }),
      detail(['subscribe'], ['*'], { payload: { custom3: 'default' } }),
    ],
  };

  test('the first subscribe detail matching the subscription matcher, taken as a topic, gives the payload', async () => {
    const grant = await verified(await accessToken(claims), settingsFor(), 'subscribe');
    assert.deepEqual(subscriptionPayload(grant, 'https://example.com/foo', engines), { custom1: 'data only available for this topic' });
    assert.deepEqual(subscriptionPayload(grant, 'https://example.com/bar/:id', engines), { custom2: 'matching subscriptions' });
    assert.deepEqual(subscriptionPayload(grant, 'https://example.com/bar/7', engines), { custom2: 'matching subscriptions' });
    assert.deepEqual(subscriptionPayload(grant, 'https://example.com/other', engines), { custom3: 'default' });
    // Without a URL Pattern engine, the pattern matches nothing (fail closed), so the default applies.
    assert.deepEqual(subscriptionPayload(grant, 'https://example.com/bar/7', {}), { custom3: 'default' });
  });

  test('the first matching detail wins even without a payload; null is a payload; publish details never give one', async () => {
    const grant = await verified(
      await accessToken({
        authorization_details: [
          detail(['publish'], ['*'], { payload: 'publisher' }),
          detail(['subscribe'], ['quiet']),
          detail(['subscribe'], ['nothing'], { payload: null }),
          detail(['subscribe'], ['*'], { payload: 'default' }),
        ],
      }),
    );
    assert.equal(subscriptionPayload(grant, 'quiet', engines), undefined);
    assert.equal(subscriptionPayload(grant, 'nothing', engines), null);
    assert.equal(subscriptionPayload(grant, 'else', engines), 'default');
  });

  test('no subscribe detail matching: no payload', async () => {
    const grant = await verified(await accessToken({ authorization_details: [detail(['subscribe'], ['a'], { payload: 1 })] }));
    assert.equal(subscriptionPayload(grant, 'b', engines), undefined);
  });

  test('classic: mercure.payload, whatever the subscription', async () => {
    const grant = await verified(await classicToken({ mercure: { subscribe: ['a'], payload: { user: 'x' } } }));
    assert.deepEqual(subscriptionPayload(grant, 'a', engines), { user: 'x' });
    assert.deepEqual(subscriptionPayload(grant, 'unrelated', engines), { user: 'x' });
    assert.equal(subscriptionPayload(await verified(await classicToken({ mercure: { subscribe: ['a'] } })), 'a', engines), undefined);
  });
});

describe('classic tokens', () => {
  test('selectors: * is any, a { makes a URI template, anything else is exact', async () => {
    const grant = await verified(await classicToken({ mercure: { publish: ['*', 'https://example.net/foo/{random}', 'R0', ''], subscribe: ['https://example.net/foo/R3'] } }));
    assert.deepEqual(grant.publish, [
      { kind: 'any', source: '*' },
      { kind: 'uri-template', source: 'https://example.net/foo/{random}' },
      { kind: 'exact', source: 'R0' },
      { kind: 'exact', source: '' },
    ]);
    assert.deepEqual(grant.subscribe, [{ kind: 'exact', source: 'https://example.net/foo/R3' }]);
  });

  test('exp is enforced when present, and then closes the stream', async () => {
    await assertRejected(await classicToken({ mercure: { publish: ['*'] }, exp: NOW - 3600 }), /expired at/);
    assert.equal((await verified(await classicToken({ mercure: { publish: ['*'] }, exp: NOW + 60 }))).expiresAt, (NOW + 60) * 1000);
  });

  test('a missing list grants nothing; a token without any Mercure claim is valid and grants nothing', async () => {
    const grant = await verified(await classicToken({ mercure: { subscribe: ['a'] } }));
    assert.deepEqual(grant.publish, []);
    const bare = await verified(await classicToken({ sub: 'someone' }));
    assert.equal(bare.generation, 'classic');
    assert.deepEqual([bare.publish, bare.subscribe, bare.subscribeEntries], [[], [], []]);
    assert.equal(bare.subject, 'someone');
  });

  test('the namespaced claim is read when mercure is absent', async () => {
    const grant = await verified(await classicToken({ 'https://mercure.rocks/': { publish: ['x'] } }));
    assert.deepEqual(grant.publish, [{ kind: 'exact', source: 'x' }]);
    const both = await verified(await classicToken({ mercure: { publish: ['first'] }, 'https://mercure.rocks/': { publish: ['second'] } }));
    assert.deepEqual(both.publish, [{ kind: 'exact', source: 'first' }]);
  });

  test('a malformed claim invalidates the token as a whole', async () => {
    await assertRejected(await classicToken({ mercure: ['*'] }), /"mercure" claim must be an object/);
    await assertRejected(await classicToken({ mercure: null }), /"mercure" claim must be an object/);
    await assertRejected(await classicToken({ mercure: { publish: '*' } }), /mercure\.publish claim must be a list/);
    await assertRejected(await classicToken({ mercure: { publish: ['ok'], subscribe: ['ok', 3] } }), /mercure\.subscribe\[1\] must be a topic selector/);
  });

  test('aud and iss need not be there, but when present they meet what is configured', async () => {
    const settings = settingsFor({ mercureAudience: HUB, mercureIssuer: 'https://localhost' });
    assert.ok(await verified(await classicToken({ mercure: { publish: ['*'] } }), settings));
    assert.ok(await verified(await classicToken({ mercure: { publish: ['*'] }, aud: HUB, iss: 'https://localhost' }), settings));
    await assertRejected(await classicToken({ mercure: { publish: ['*'] }, aud: 'https://elsewhere.example' }), /"aud"/, settings);
    await assertRejected(await classicToken({ mercure: { publish: ['*'] }, iss: 'https://evil.example' }), /"iss"/, settings);
    // Nothing configured: a classic token's aud is not compared with the derived hub URL.
    assert.ok(await verified(await classicToken({ mercure: { publish: ['*'] }, aud: 'https://elsewhere.example' })));
  });

  test('the selector caps apply', async () => {
    const many = Array.from({ length: 51 }, (_, index) => `t${index}`);
    await assertRejected(await classicToken({ mercure: { publish: many, subscribe: many } }), /more than 100 topic selectors/);
    await assertRejected(await classicToken({ mercure: { publish: ['x'.repeat(4097)] } }), /longer than 4096 bytes/);
  });

  test('tokenGeneration: typ or authorization_details decide, nothing else', () => {
    assert.equal(tokenGeneration({ alg: 'HS256' }, { mercure: {} }), 'classic');
    assert.equal(tokenGeneration({ alg: 'HS256', typ: 'JWT' }, { authorization_details: [] }), 'draft-08');
    assert.equal(tokenGeneration({ alg: 'HS256', typ: 'at+JWT' }, {}), 'draft-08');
    assert.equal(tokenGeneration({ alg: 'HS256', typ: 'jwt' }, { mercure: {}, authorization: [] }), 'classic');
  });
});

describe('keys', () => {
  test('per-role keys: a token signed with the publisher key publishes, and does not subscribe', async () => {
    const settings = settingsFor({ jwtKey: undefined, jwtPublisherKey: DEV_KEY, jwtSubscriberKey: OTHER_KEY });
    const token = await accessToken();
    assert.ok(await verified(token, settings, 'publish'));
    await assertRejected(token, /signature does not match/, settings, 'subscribe');
    assert.ok(await verified(await accessToken({}, { key: OTHER_KEY }), settings, 'subscribe'));
  });

  test("Herald's own verifier and the Mercure settings share one key resolution (resolveVerification)", async () => {
    const options = { jwtPublisherKey: DEV_KEY, jwtSubscriberKey: rsaPath, clockSkew: 5, now: () => NOW_MS };
    const setup = resolveVerification(options);
    assert.deepEqual(setup.keys.publish?.algorithms, ['HS256']);
    assert.deepEqual(setup.keys.subscribe?.algorithms, ['RS256']);
    assert.equal(setup.clockSkew, 5);
    const herald = createTokenVerifier(options);
    assert.equal(herald.describeKey('subscribe'), setup.keys.subscribe?.description);
    const token = await new SignJWT({ herald: { publish: ['orders/*'] } }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(NOW + 60).sign(DEV_KEY_BYTES);
    assert.deepEqual((await herald.verify(token, 'publish')).publish, ['orders/*']);
    await assert.rejects(herald.verify(token, 'subscribe'), (error) => !!assertHeraldError(error, 'HERALD_ERR_UNAUTHORIZED'));
    const mercure = resolveMercureTokenSettings({ ...options, validateUrlPattern: () => true });
    assert.equal(mercure.keys.subscribe?.description, setup.keys.subscribe?.description);
    assert.equal(mercure.clockSkew, 5);
    assert.throws(() => resolveVerification({ jwtKey: DEV_KEY, clockSkew: 601 }), (error) => !!assertHeraldError(error, 'HERALD_ERR_INVALID_OPTION', /clockSkew/));
  });

  test('a role without a key fails closed', async () => {
    const settings = settingsFor({ jwtKey: undefined, jwtPublisherKey: DEV_KEY });
    assert.equal(hasMercureKey(settings, 'subscribe'), false);
    await assertRejected(await accessToken(), /no key is configured to check tokens that subscribe/, settings, 'subscribe');
  });

  test('RS256 through a PEM public key, for both generations; an HS256 token keyed with the PEM text is refused', async () => {
    const settings = settingsFor({ jwtKey: undefined, jwtPublicKey: rsaPath });
    assert.equal((await verified(await accessToken({}, { alg: 'RS256', key: rsa.privateKey }), settings)).generation, 'draft-08');
    assert.equal((await verified(await classicToken({ mercure: { publish: ['*'] } }, { alg: 'RS256', key: rsa.privateKey }), settings)).generation, 'classic');
    // Algorithm confusion: the public key's text used as an HMAC secret.
    await assertRejected(await accessToken({}, { key: new TextEncoder().encode(rsaPem) }), /algorithm this hub does not accept/, settings);
    await assertRejected(await accessToken({}, { alg: 'ES256', key: p256.privateKey }), /algorithm this hub does not accept/, settings);
  });

  describe('ES256 through a JWK Set', () => {
    let jwksPath: string;
    before(async () => {
      jwksPath = writeFile('mercure.jwks.json', JSON.stringify({ keys: [{ ...(await exportJWK(p256.publicKey)), kid: 'hub-1' }] }));
    });

    test('from a file: the kid picks the key; an unknown kid or another key is refused', async () => {
      const settings = settingsFor({ jwtKey: undefined, jwtJwks: jwksPath });
      const grant = await verified(await accessToken({}, { alg: 'ES256', key: p256.privateKey, kid: 'hub-1' }), settings);
      assert.equal(grant.generation, 'draft-08');
      await assertRejected(await accessToken({}, { alg: 'ES256', key: p256.privateKey, kid: 'hub-2' }), /no single trusted key fits the token/, settings);
      await assertRejected(await accessToken({}, { alg: 'ES256', key: p256Other.privateKey, kid: 'hub-1' }), /signature does not match/, settings);
      await assertRejected(await accessToken({}, { kid: 'hub-1' }), /algorithm this hub does not accept/, settings);
    });

    describe('from a URL', () => {
      let server: Server;
      let url: string;
      before(async () => {
        const body = JSON.stringify({ keys: [{ ...(await exportJWK(p256.publicKey)), kid: 'hub-1' }] });
        server = createServer((_, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(body));
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
      });
      after(() => new Promise<void>((resolve) => server.close(() => resolve())));

      test('fetched on first use, then verifies', async () => {
        const settings = settingsFor({ jwtKey: undefined, jwtJwks: url });
        assert.equal((await verified(await accessToken({}, { alg: 'ES256', key: p256.privateKey, kid: 'hub-1' }), settings)).generation, 'draft-08');
      });

      test('an unreachable key set is a 503, not a 401: the token may be fine', async () => {
        const closed = createServer();
        await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
        const gone = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/jwks.json`;
        await new Promise<void>((resolve) => closed.close(() => resolve()));
        const settings = settingsFor({ jwtKey: undefined, jwtJwks: gone });
        await assert.rejects(verified(await accessToken({}, { alg: 'ES256', key: p256.privateKey, kid: 'hub-1' }), settings), (error: unknown) => {
          assertHeraldError(error, 'HERALD_ERR_AUTH_UNAVAILABLE');
          return true;
        });
      });
    });
  });
});

describe('errors', () => {
  test('explainFailures: false gives every invalid token one message; the reason stays in the cause', async () => {
    const settings = settingsFor({ explainFailures: false });
    for (const [token, reason] of [
      [await accessToken({ aud: 'https://other.example' }), /"aud"/],
      [await accessToken({}, { key: OTHER_KEY }), /signature/],
      [await accessToken({ authorization_details: [detail([], ['a'])] }), /actions/],
      ['x'.repeat(70_000), /longer/],
    ] as const) {
      const error = await assertRejected(token, new RegExp(`^${GENERIC_INVALID_TOKEN}$`), settings);
      assert.equal(error.details.challenge, `Bearer realm="herald", error="invalid_token", error_description="${GENERIC_INVALID_TOKEN}"`);
      assert.ok(error.cause instanceof Error);
      assert.match(error.cause.message, reason);
    }
  });

  test('a missing token: 401 with the bare challenge, naming the carriers configured', () => {
    const error = assertHeraldError(mercureTokenRequiredError(), 'HERALD_ERR_UNAUTHORIZED', /Authorization: Bearer.*__Secure-mercure_access_token or mercure_access_token or mercureAuthorization cookie.*authorization query parameter/);
    assert.equal(error.status, 401);
    assert.equal(error.details.challenge, 'Bearer realm="herald"');
    const headerOnly = mercureTokenRequiredError({ queryParameters: [], cookies: [] });
    assert.equal(headerOnly.message, 'a token is required: send "Authorization: Bearer <token>"');
  });

  test('insufficient scope: 403 with error="insufficient_scope", quoting the topic', () => {
    const error = assertHeraldError(insufficientScopeError('publish', 'https://example.com/books/1'), 'HERALD_ERR_FORBIDDEN', /may not publish to topic "https:\/\/example\.com\/books\/1"/);
    assert.equal(error.status, 403);
    assert.match(error.details.challenge ?? '', /^Bearer realm="herald", error="insufficient_scope", error_description="the token may not publish to topic 'https:\/\/example\.com\/books\/1'"$/);
    assert.match(insufficientScopeError('subscribe', '/x').message, /may not subscribe to topic "\/x"/);
  });

  test('withResourceMetadata adds resource_metadata to the challenge and keeps the rest', () => {
    const prm = 'https://localhost/.well-known/oauth-protected-resource/.well-known/mercure';
    const missing = withResourceMetadata(mercureTokenRequiredError(), prm);
    assert.equal(missing.details.challenge, `Bearer realm="herald", resource_metadata="${prm}"`);
    assert.equal(missing.code, 'HERALD_ERR_UNAUTHORIZED');
    const scoped = withResourceMetadata(insufficientScopeError('publish', 't'), `${prm}"x\\`);
    assert.match(scoped.details.challenge ?? '', /error="insufficient_scope", .*, resource_metadata="[^"\\]+%22x%5C"$/);
    const plain = new HeraldError('HERALD_ERR_INTERNAL', 'x');
    assert.equal(withResourceMetadata(plain, prm), plain);
  });
});

describe('mercureHubUrl', () => {
  test('scheme from the connection, host from Host (else :authority), then the base path and the hub path', () => {
    assert.equal(mercureHubUrl(request({ host: 'localhost' }), { secure: true }), HUB);
    assert.equal(mercureHubUrl(request({ host: 'Example.COM:8080' }), { secure: false, basePath: '/herald' }), 'http://example.com:8080/herald/.well-known/mercure');
    assert.equal(mercureHubUrl(request({ host: 'example.com:443' }), { secure: true }), 'https://example.com/.well-known/mercure');
    assert.equal(mercureHubUrl(request({ ':authority': '[::1]:3000' }), { secure: true }), 'https://[::1]:3000/.well-known/mercure');
  });

  test('no host, or one holding more than a host, gives no URL', () => {
    for (const host of ['', 'a/b', 'user@a', 'a?b', 'a#b', 'exa mple.com']) {
      assert.equal(mercureHubUrl(request({ host }), { secure: true }), undefined, host);
    }
    assert.equal(mercureHubUrl(request({}), { secure: true }), undefined);
  });
});

describe('matcher descriptors', () => {
  test('any matches all; exact byte for byte; a template also matches itself; missing or throwing engines never match', () => {
    assert.ok(matcherMatches({ kind: 'any', source: '*' }, 'whatever', {}));
    assert.ok(matcherMatches({ kind: 'exact', source: 'a/b' }, 'a/b', {}));
    assert.ok(!matcherMatches({ kind: 'exact', source: 'a/b' }, 'A/b', engines));
    const template = { kind: 'uri-template', source: 'https://example.net/foo/{random}' } as const;
    assert.ok(matcherMatches(template, 'https://example.net/foo/{random}', {}));
    assert.ok(!matcherMatches(template, 'https://example.net/foo/R4', {}));
    assert.ok(matcherMatches(template, 'https://example.net/foo/R4', engines));
    assert.ok(!matcherMatches({ kind: 'uri-template', source: 'https://example.net/bar/{var}' }, 'https://example.net/foo/will-not-match}', engines));
    const pattern = { kind: 'url-pattern', source: 'https://example.net/foo/:random' } as const;
    assert.ok(!matcherMatches(pattern, 'https://example.net/foo/R4', {}));
    assert.ok(matcherMatches(pattern, 'https://example.net/foo/R4', engines));
    const throwing: MatcherEngines = {
      urlPattern: () => {
        throw new Error('timeout');
      },
    };
    assert.ok(!matcherMatches(pattern, 'https://example.net/foo/R4', throwing));
    assert.ok(anyMatcherMatches([{ kind: 'exact', source: 'x' }, pattern], 'https://example.net/foo/1', engines));
    assert.ok(!anyMatcherMatches([], 'x', engines));
  });
});

describe('the unsigned classic token', () => {
  test('alg none is refused for classic tokens too', async () => {
    await assertRejected(new UnsecuredJWT({ mercure: { publish: ['*'] } }).encode(), /unsigned tokens/);
  });
});
