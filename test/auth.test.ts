/**
 * JWT authentication (src/auth/): verifying tokens with every kind of key,
 * finding them in requests, checking grants against topics, the 401/403
 * answers, and minting.
 *
 * Time is a fixed clock handed to the verifier, so no test depends on how
 * fast it runs.
 */

import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader, exportJWK, SignJWT, UnsecuredJWT, type JWK } from 'jose';
import {
  assertMayPublish,
  cookieValue,
  createGrant,
  createTokenVerifier,
  forbiddenError,
  isKeyFilePath,
  mayPublish,
  mayReceive,
  missingTokenError,
  mintToken,
  parseCookies,
  selectorsOverlap,
  subscriptionScope,
  tokenFromRequest,
  type TokenCarrier,
  unauthorizedError,
  type Grant,
  type TokenVerifier,
  type TokenVerifierSettings,
} from '../src/auth/index.js';
import { HeraldError, type ErrorCode } from '../src/errors.js';
import { parseSelector, selectorMatches } from '../src/hub/topics.js';

const SECRET = 'correct horse battery staple, 32+ bytes long';
const OTHER_SECRET = 'another secret that is long enough to be accepted';
/** 2030-01-01T00:00:00Z: far from the real clock, so a verifier that ignored the fixed clock would fail. */
const NOW_MS = Date.UTC(2030, 0, 1);
const NOW = NOW_MS / 1000;

const dir = mkdtempSync(join(tmpdir(), 'herald-auth-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function writeKey(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const spki = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }) as string;

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaOther = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p256Other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const edOther = generateKeyPairSync('ed25519');
const rsaPem = spki(rsa.publicKey);
const rsaPath = writeKey('rsa.pem', rsaPem);
const p256Path = writeKey('p256.pem', spki(p256.publicKey));
const edPath = writeKey('ed25519.pem', spki(ed.publicKey));

interface SignOptions {
  alg?: string;
  kid?: string;
  iat?: number;
  exp?: number | undefined;
  nbf?: number;
  sub?: string;
}

/** Signs claims at the fixed clock; `exp` defaults to an hour after it. */
async function sign(claims: Record<string, unknown>, key: KeyObject | Uint8Array | string, options: SignOptions = {}): Promise<string> {
  const { alg = 'HS256', kid, iat = NOW, nbf, sub } = options;
  const exp = 'exp' in options ? options.exp : NOW + 3600;
  const jwt = new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT', ...(kid === undefined ? {} : { kid }) }).setIssuedAt(iat);
  if (exp !== undefined) jwt.setExpirationTime(exp);
  if (nbf !== undefined) jwt.setNotBefore(nbf);
  if (sub !== undefined) jwt.setSubject(sub);
  return jwt.sign(typeof key === 'string' ? new TextEncoder().encode(key) : key);
}

const RIGHTS = { herald: { publish: ['orders/*'], subscribe: ['**'] } };

function verifier(settings: TokenVerifierSettings): TokenVerifier {
  return createTokenVerifier({ now: () => NOW_MS, ...settings });
}

/** Asserts the failure is a HeraldError with the expected code, and that its message is one line. */
function assertHeraldError(error: unknown, code: ErrorCode, message?: RegExp): HeraldError {
  assert.ok(error instanceof HeraldError, `expected a HeraldError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  if (message !== undefined) assert.match(error.message, message);
  assert.ok(!/[\r\n]/.test(error.message), `message is one line: ${JSON.stringify(error.message)}`);
  return error;
}

const RFC6750_CHALLENGE = /^Bearer realm="herald", error="invalid_token", error_description="[\x20\x21\x23-\x5b\x5d-\x7e]+"$/;

/**
 * Asserts `verify` refuses the token with a 401 whose message matches, whose
 * challenge follows RFC 6750, and which quotes no part of the token.
 */
async function assertRejected(check: TokenVerifier, token: string, message: RegExp, role: 'publish' | 'subscribe' = 'subscribe'): Promise<void> {
  await assert.rejects(check.verify(token, role), (error: unknown) => {
    const known = assertHeraldError(error, 'HERALD_ERR_UNAUTHORIZED', message);
    assert.equal(known.status, 401);
    const header = known.details.challenge;
    assert.ok(header !== undefined, 'a 401 carries WWW-Authenticate');
    assert.match(header, RFC6750_CHALLENGE);
    // Pieces shorter than this occur in ordinary words; a JWT's parts are far longer.
    for (const part of [token, ...token.split('.')].filter((piece) => piece.length >= 8)) {
      assert.ok(!known.message.includes(part), `the message quotes the token: ${known.message}`);
      assert.ok(!header.includes(part), `the challenge quotes the token: ${header}`);
    }
    return true;
  });
}

function assertInvalidOption(build: () => unknown, message: RegExp, secret?: string): void {
  assert.throws(build, (error: unknown) => {
    const known = assertHeraldError(error, 'HERALD_ERR_INVALID_OPTION', message);
    if (secret !== undefined) assert.ok(!known.message.includes(secret), `the message quotes the secret: ${known.message}`);
    return true;
  });
}

describe('HS256 with a shared secret', () => {
  const check = verifier({ jwtKey: SECRET });

  test('a good token yields its rights, expiry and subject, frozen', async () => {
    const grant = await check.verify(await sign(RIGHTS, SECRET, { sub: 'user-7' }), 'subscribe');
    assert.deepEqual(grant.publish, ['orders/*']);
    assert.deepEqual(grant.subscribe, ['**']);
    assert.equal(grant.expiresAt, (NOW + 3600) * 1000);
    assert.equal(grant.subject, 'user-7');
    assert.ok(Object.isFrozen(grant) && Object.isFrozen(grant.publish) && Object.isFrozen(grant.subscribe));
  });

  test('the same key checks both roles', async () => {
    const token = await sign(RIGHTS, SECRET);
    assert.deepEqual((await check.verify(token, 'publish')).publish, ['orders/*']);
    assert.ok(check.hasKey('publish') && check.hasKey('subscribe'));
    assert.equal(check.describeKey('publish'), 'an HS256 secret');
  });

  test('a token without exp never expires; without sub has no subject', async () => {
    const grant = await check.verify(await sign(RIGHTS, SECRET, { exp: undefined }), 'subscribe');
    assert.equal(grant.expiresAt, undefined);
    assert.ok(!('subject' in grant));
  });

  test('an expired token is refused, naming the expiry', async () => {
    await assertRejected(check, await sign(RIGHTS, SECRET, { iat: NOW - 7200, exp: NOW - 3600 }), /expired at 2029-12-31T23:00:00\.000Z/);
  });

  test('a token not yet valid is refused, naming when it will be', async () => {
    await assertRejected(check, await sign(RIGHTS, SECRET, { nbf: NOW + 3600 }), /not valid before 2030-01-01T01:00:00\.000Z/);
  });

  test('a token signed with another secret is refused', async () => {
    await assertRejected(check, await sign(RIGHTS, OTHER_SECRET), /signature does not match/);
  });

  test('a token whose payload was altered after signing is refused', async () => {
    const [header, , signature] = (await sign(RIGHTS, SECRET)).split('.');
    const forged = Buffer.from(JSON.stringify({ herald: { publish: ['**'] }, exp: NOW + 3600 })).toString('base64url');
    await assertRejected(check, `${header}.${forged}.${signature}`, /signature does not match/);
  });

  test('alg "none" is refused, built by hand or by jose', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ ...RIGHTS, exp: NOW + 3600 })).toString('base64url');
    await assertRejected(check, `${header}.${payload}.`, /unsigned tokens \(alg "none"\) are never accepted/);
    const unsecured = new UnsecuredJWT(RIGHTS).setExpirationTime(NOW + 3600).encode();
    await assertRejected(check, unsecured, /alg "none"/);
    // Case games must not slip through either.
    const shouty = Buffer.from(JSON.stringify({ alg: 'NONE', typ: 'JWT' })).toString('base64url');
    await assertRejected(check, `${shouty}.${payload}.`, /algorithm the configured key does not take \(it takes HS256\)/);
  });

  test('a token signed with RS256 is refused by an HS256 key', async () => {
    await assertRejected(check, await sign(RIGHTS, rsa.privateKey, { alg: 'RS256' }), /algorithm .* takes HS256/);
  });

  test('malformed tokens are refused as malformed', async () => {
    for (const token of ['', 'abc', 'a.b.c', '...', 'a.b.c.d', 'x'.repeat(10_000)]) {
      await assertRejected(check, token, /malformed/);
    }
  });

  test('a correctly signed token whose payload is not a JSON object is malformed', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    for (const text of ['not json', '[1,2]', '"text"']) {
      const payload = Buffer.from(text).toString('base64url');
      const mac = createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url');
      await assertRejected(check, `${header}.${payload}.${mac}`, /malformed/);
    }
  });
});

describe('clock skew', () => {
  test('30 s by default: exp up to 30 s past and nbf up to 30 s ahead still pass', async () => {
    const check = verifier({ jwtKey: SECRET });
    await check.verify(await sign(RIGHTS, SECRET, { exp: NOW - 29 }), 'subscribe');
    await assertRejected(check, await sign(RIGHTS, SECRET, { exp: NOW - 30 }), /expired/);
    await check.verify(await sign(RIGHTS, SECRET, { nbf: NOW + 30 }), 'subscribe');
    await assertRejected(check, await sign(RIGHTS, SECRET, { nbf: NOW + 31 }), /not valid before/);
  });

  test('a configured skew moves the boundary', async () => {
    const check = verifier({ jwtKey: SECRET, clockSkew: 120 });
    await check.verify(await sign(RIGHTS, SECRET, { exp: NOW - 119 }), 'subscribe');
    await assertRejected(check, await sign(RIGHTS, SECRET, { exp: NOW - 120 }), /expired/);
    await check.verify(await sign(RIGHTS, SECRET, { nbf: NOW + 120 }), 'subscribe');
    await assertRejected(check, await sign(RIGHTS, SECRET, { nbf: NOW + 121 }), /not valid before/);
  });

  test('no skew: a token expiring this very second is expired', async () => {
    const check = verifier({ jwtKey: SECRET, clockSkew: 0 });
    await check.verify(await sign(RIGHTS, SECRET, { exp: NOW + 1 }), 'subscribe');
    await assertRejected(check, await sign(RIGHTS, SECRET, { exp: NOW }), /expired/);
  });

  test('a skew outside 0..600 s is refused', () => {
    for (const clockSkew of [-1, 601, Number.NaN, Number.POSITIVE_INFINITY]) {
      assertInvalidOption(() => createTokenVerifier({ jwtKey: SECRET, clockSkew }), /clockSkew/);
    }
  });
});

describe('PEM public keys', () => {
  test('RS256: a good token passes; one signed by another key fails', async () => {
    const check = verifier({ jwtPublicKey: rsaPath });
    assert.equal(check.describeKey('subscribe'), `an RS256 public key from ${rsaPath}`);
    const grant = await check.verify(await sign(RIGHTS, rsa.privateKey, { alg: 'RS256' }), 'publish');
    assert.deepEqual(grant.publish, ['orders/*']);
    await assertRejected(check, await sign(RIGHTS, rsaOther.privateKey, { alg: 'RS256' }), /signature does not match/);
  });

  test('algorithm confusion: HS256 "signed" with the public key text is refused', async () => {
    const check = verifier({ jwtPublicKey: rsaPath });
    // Both the PEM text exactly as on disk and the bytes a naive verifier would use.
    await assertRejected(check, await sign(RIGHTS, rsaPem, { alg: 'HS256' }), /algorithm .* takes RS256/);
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ ...RIGHTS, exp: NOW + 3600 })).toString('base64url');
    const mac = createHmac('sha256', rsaPem).update(`${header}.${payload}`).digest('base64url');
    await assertRejected(check, `${header}.${payload}.${mac}`, /algorithm/);
  });

  test('algorithm confusion through a publisher key given as a path', async () => {
    const check = verifier({ jwtPublisherKey: rsaPath });
    await assertRejected(check, await sign(RIGHTS, rsaPem, { alg: 'HS256' }), /algorithm .* takes RS256/, 'publish');
    await check.verify(await sign(RIGHTS, rsa.privateKey, { alg: 'RS256' }), 'publish');
  });

  test('an RSA key accepts RS256 only, not PS256', async () => {
    const check = verifier({ jwtPublicKey: rsaPath });
    await assertRejected(check, await sign(RIGHTS, rsa.privateKey, { alg: 'PS256' }), /algorithm .* takes RS256/);
  });

  test('ES256 from a P-256 key: a good token passes, another key and another algorithm fail', async () => {
    const check = verifier({ jwtPublicKey: p256Path });
    assert.match(check.describeKey('publish') ?? '', /^an ES256 public key/);
    await check.verify(await sign(RIGHTS, p256.privateKey, { alg: 'ES256' }), 'subscribe');
    await assertRejected(check, await sign(RIGHTS, p256Other.privateKey, { alg: 'ES256' }), /signature does not match/);
    await assertRejected(check, await sign(RIGHTS, rsa.privateKey, { alg: 'RS256' }), /takes ES256/);
  });

  test('EdDSA from an Ed25519 key: "EdDSA" and "Ed25519" pass, another key fails', async () => {
    const check = verifier({ jwtPublicKey: edPath });
    await check.verify(await sign(RIGHTS, ed.privateKey, { alg: 'EdDSA' }), 'subscribe');
    await check.verify(await sign(RIGHTS, ed.privateKey, { alg: 'Ed25519' }), 'subscribe');
    await assertRejected(check, await sign(RIGHTS, edOther.privateKey, { alg: 'EdDSA' }), /signature does not match/);
    await assertRejected(check, await sign(RIGHTS, SECRET, { alg: 'HS256' }), /takes EdDSA or Ed25519/);
  });

  test('a PKCS#1 RSA public key loads too', async () => {
    const pkcs1 = writeKey('rsa-pkcs1.pem', rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }) as string);
    const check = verifier({ jwtPublicKey: pkcs1 });
    await check.verify(await sign(RIGHTS, rsa.privateKey, { alg: 'RS256' }), 'subscribe');
  });

  test('unsuitable key files stop the start with a clear message', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    assertInvalidOption(() => createTokenVerifier({ jwtPublicKey: writeKey('small.pem', spki(small.publicKey)) }), /1024 bits; RS256 needs at least 2048/);
    const secp256k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    assertInvalidOption(() => createTokenVerifier({ jwtPublicKey: writeKey('k1.pem', spki(secp256k1.publicKey)) }), /curve secp256k1/);
    const privatePem = p256.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    assertInvalidOption(() => createTokenVerifier({ jwtPublicKey: writeKey('private.pem', privatePem) }), /holds a private key/);
    assertInvalidOption(() => createTokenVerifier({ jwtPublicKey: writeKey('junk.pem', 'not a key') }), /no PEM public key/);
    assertInvalidOption(() => createTokenVerifier({ jwtPublicKey: join(dir, 'missing.pem') }), /cannot read .*ENOENT/);
  });
});

describe('separate publisher and subscriber keys', () => {
  test('each role is checked by its own key only', async () => {
    const check = verifier({ jwtPublisherKey: SECRET, jwtSubscriberKey: OTHER_SECRET });
    const publisherToken = await sign(RIGHTS, SECRET);
    const subscriberToken = await sign(RIGHTS, OTHER_SECRET);
    await check.verify(publisherToken, 'publish');
    await check.verify(subscriberToken, 'subscribe');
    await assertRejected(check, publisherToken, /signature/, 'subscribe');
    await assertRejected(check, subscriberToken, /signature/, 'publish');
  });

  test('a role without its own key falls back to the shared key', async () => {
    const check = verifier({ jwtKey: SECRET, jwtPublisherKey: OTHER_SECRET });
    await check.verify(await sign(RIGHTS, SECRET), 'subscribe');
    await check.verify(await sign(RIGHTS, OTHER_SECRET), 'publish');
    await assertRejected(check, await sign(RIGHTS, SECRET), /signature/, 'publish');
  });

  test('a PEM publisher key and an HS256 subscriber key mix', async () => {
    const check = verifier({ jwtPublisherKey: p256Path, jwtSubscriberKey: SECRET });
    await check.verify(await sign(RIGHTS, p256.privateKey, { alg: 'ES256' }), 'publish');
    await check.verify(await sign(RIGHTS, SECRET), 'subscribe');
    await assertRejected(check, await sign(RIGHTS, SECRET), /takes ES256/, 'publish');
  });

  test('a role with no key at all is reported by hasKey and refused by verify', async () => {
    const check = verifier({ jwtPublisherKey: SECRET });
    assert.equal(check.hasKey('publish'), true);
    assert.equal(check.hasKey('subscribe'), false);
    assert.equal(check.describeKey('subscribe'), undefined);
    await assertRejected(check, await sign(RIGHTS, SECRET), /no key is configured/, 'subscribe');
    const none = verifier({ jwtKey: '', jwtPublicKey: '' });
    assert.equal(none.hasKey('publish') || none.hasKey('subscribe'), false);
  });

  test('the path rule: /, ./, ../ or .pem is a file, anything else a secret', () => {
    for (const path of ['/etc/herald/pub.pem', './pub.pem', '../keys/pub', 'keys/pub.pem', '/keys/publisher']) {
      assert.equal(isKeyFilePath(path), true, path);
    }
    for (const secret of [SECRET, 'keys/publisher', 'pem', '.pemish-secret-but-long-enough-to-be-a-key']) {
      assert.equal(isKeyFilePath(secret), false, secret);
    }
  });

  test('a path-shaped key whose file is missing is an error, never a secret', () => {
    const missing = join(dir, 'typo-publisher.pem');
    assertInvalidOption(() => createTokenVerifier({ jwtPublisherKey: missing }), /cannot read/);
    assertInvalidOption(() => createTokenVerifier({ jwtSubscriberKey: './no/such/key/long/enough/for/a/secret' }), /cannot read/);
  });
});

describe('key settings', () => {
  test('a short secret is refused without being quoted', () => {
    assertInvalidOption(() => createTokenVerifier({ jwtKey: 'short-secret' }), /at least 32 bytes .* has 12/, 'short-secret');
    assertInvalidOption(() => createTokenVerifier({ jwtSubscriberKey: 'tiny' }), /jwtSubscriberKey/, 'tiny');
  });

  test('PEM text given as a secret is refused: it is the shape of algorithm confusion', () => {
    assertInvalidOption(() => createTokenVerifier({ jwtKey: rsaPem }), /holds PEM text/, rsaPem);
    assertInvalidOption(() => createTokenVerifier({ jwtPublisherKey: rsaPem }), /holds PEM text/, rsaPem);
  });

  test('two shared keys exclude each other, named by the label', () => {
    const label = (setting: string) => `--${setting.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    assertInvalidOption(() => createTokenVerifier({ jwtKey: SECRET, jwtPublicKey: rsaPath }, label), /--jwt-key and --jwt-public-key exclude each other/, SECRET);
    assertInvalidOption(() => createTokenVerifier({ jwtKey: 'short' }, label), /^invalid --jwt-key: /);
  });
});

describe('JWKS', () => {
  async function jwk(key: KeyObject, kid: string | undefined, extra: Partial<JWK> = {}): Promise<JWK> {
    return { ...(await exportJWK(key)), ...(kid === undefined ? {} : { kid }), ...extra };
  }

  test('a file with two kids: each token is checked by the key its kid names', async () => {
    const path = writeKey('two.jwks.json', JSON.stringify({ keys: [await jwk(rsa.publicKey, 'one'), await jwk(p256.publicKey, 'two')] }));
    const check = verifier({ jwtJwks: path });
    assert.match(check.describeKey('publish') ?? '', /\(2 keys\)$/);
    await check.verify(await sign(RIGHTS, rsa.privateKey, { alg: 'RS256', kid: 'one' }), 'subscribe');
    await check.verify(await sign(RIGHTS, p256.privateKey, { alg: 'ES256', kid: 'two' }), 'subscribe');
    // Right kid, wrong signer.
    await assertRejected(check, await sign(RIGHTS, rsaOther.privateKey, { alg: 'RS256', kid: 'one' }), /signature does not match/);
    // A kid naming a key of another type cannot borrow it.
    await assertRejected(check, await sign(RIGHTS, p256.privateKey, { alg: 'ES256', kid: 'one' }), /no key in the key set fits/);
    await assertRejected(check, await sign(RIGHTS, rsa.privateKey, { alg: 'RS256', kid: 'three' }), /no key in the key set fits/);
    // Without a kid, the one key of the token's type is used.
    await check.verify(await sign(RIGHTS, rsa.privateKey, { alg: 'RS256' }), 'subscribe');
  });

  test('a key set never accepts HS256, nor HS256 made from a public key', async () => {
    const path = writeKey('one.jwks.json', JSON.stringify({ keys: [await jwk(rsa.publicKey, 'one')] }));
    const check = verifier({ jwtJwks: path });
    await assertRejected(check, await sign(RIGHTS, rsaPem, { alg: 'HS256', kid: 'one' }), /algorithm/);
    await assertRejected(check, await sign(RIGHTS, SECRET, { alg: 'HS256' }), /algorithm/);
  });

  test('a key that names its alg is used with that alg only', async () => {
    const path = writeKey('alg.jwks.json', JSON.stringify({ keys: [await jwk(ed.publicKey, 'ed', { alg: 'EdDSA' })] }));
    const check = verifier({ jwtJwks: path });
    await check.verify(await sign(RIGHTS, ed.privateKey, { alg: 'EdDSA', kid: 'ed' }), 'subscribe');
    await assertRejected(check, await sign(RIGHTS, ed.privateKey, { alg: 'Ed25519', kid: 'ed' }), /no key in the key set fits/);
  });

  test('without a kid and with two candidate keys, the token is refused', async () => {
    const path = writeKey('twins.jwks.json', JSON.stringify({ keys: [await jwk(rsa.publicKey, 'a'), await jwk(rsaOther.publicKey, 'b')] }));
    const check = verifier({ jwtJwks: path });
    await assertRejected(check, await sign(RIGHTS, rsa.privateKey, { alg: 'RS256' }), /several keys in the key set fit the token/);
    await check.verify(await sign(RIGHTS, rsaOther.privateKey, { alg: 'RS256', kid: 'b' }), 'subscribe');
  });

  test('bad key sets stop the start', async () => {
    const bad = async (name: string, body: unknown, message: RegExp) => {
      const path = writeKey(name, typeof body === 'string' ? body : JSON.stringify(body));
      assertInvalidOption(() => createTokenVerifier({ jwtJwks: path }), message);
    };
    await bad('not-json.json', '{', /not valid JSON/);
    await bad('no-keys.json', { keys: [] }, /holds no key/);
    await bad('not-set.json', [1], /expected a JWK Set/);
    await bad('oct.json', { keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 's' }] }, /kty "oct"/);
    await bad('private.json', { keys: [await exportJWK(p256.privateKey)] }, /private key material \("d"\)/);
    await bad('kid.json', { keys: [{ ...(await exportJWK(p256.publicKey)), kid: 7 }] }, /kid that is not a string/);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    await bad('small.json', { keys: [await exportJWK(small.publicKey)] }, /keys\[0\]: the RSA key has 1024 bits/);
    await bad('broken.json', { keys: [{ kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' }] }, /keys\[0\] is not a valid EC public key/);
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    await bad('k1.json', { keys: [await exportJWK(k1.publicKey)] }, /keys\[0\]/);
    assertInvalidOption(() => createTokenVerifier({ jwtJwks: join(dir, 'absent.json') }), /cannot read/);
  });

  describe('from a URL', () => {
    let server: Server;
    let url = '';
    let status = 200;
    let fetches = 0;

    before(async () => {
      const body = JSON.stringify({ keys: [await jwk(p256.publicKey, 'remote')] });
      server = createServer((_req, res) => {
        fetches++;
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(status === 200 ? body : '{}');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
    });
    after(() => {
      server.closeAllConnections();
      server.close();
    });

    test('keys are fetched on first use and cached', async () => {
      const check = verifier({ jwtJwks: url });
      assert.equal(fetches, 0, 'nothing fetched at construction');
      await check.verify(await sign(RIGHTS, p256.privateKey, { alg: 'ES256', kid: 'remote' }), 'subscribe');
      await check.verify(await sign(RIGHTS, p256.privateKey, { alg: 'ES256', kid: 'remote' }), 'publish');
      assert.equal(fetches, 1);
      await assertRejected(check, await sign(RIGHTS, p256Other.privateKey, { alg: 'ES256', kid: 'remote' }), /signature/);
    });

    test('a key set that cannot be fetched answers 503, not 401', async () => {
      status = 500;
      try {
        const check = verifier({ jwtJwks: url });
        await assert.rejects(check.verify(await sign(RIGHTS, p256.privateKey, { alg: 'ES256', kid: 'remote' }), 'subscribe'), (error: unknown) => {
          const known = assertHeraldError(error, 'HERALD_ERR_AUTH_UNAVAILABLE', /cannot be fetched/);
          assert.equal(known.status, 503);
          assert.equal(known.details.retryAfter, 5);
          return true;
        });
      } finally {
        status = 200;
      }
    });

    test('the description names the URL; a URL with credentials is refused without quoting them', () => {
      const check = createTokenVerifier({ jwtJwks: url });
      assert.match(check.describeKey('subscribe') ?? '', /^the key set at http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json$/);
      assertInvalidOption(() => createTokenVerifier({ jwtJwks: url.replace('http://', 'http://user:hunter2@') }), /credentials/, 'hunter2');
    });
  });
});

describe('the herald claim', () => {
  const check = verifier({ jwtKey: SECRET });

  test('a token without it, or with an empty one, grants nothing', async () => {
    for (const claims of [{}, { herald: {} }]) {
      const grant = await check.verify(await sign(claims, SECRET), 'subscribe');
      assert.deepEqual([grant.publish, grant.subscribe], [[], []]);
    }
    const onlyPublish = await check.verify(await sign({ herald: { publish: ['a'] } }, SECRET), 'publish');
    assert.deepEqual([onlyPublish.publish, onlyPublish.subscribe], [['a'], []]);
  });

  test('an invalid selector makes the whole token invalid', async () => {
    const cases: [unknown, RegExp][] = [
      [{ publish: ['orders/**/items'] }, /herald\.publish\[0\] is not a valid selector: .*"\*\*" only as its last segment/],
      [{ publish: ['ok', 'a*'] }, /herald\.publish\[1\] is not a valid selector/],
      [{ subscribe: [''] }, /herald\.subscribe\[0\] is not a valid selector: .*empty/],
      [{ subscribe: ['a//b'] }, /herald\.subscribe\[0\]/],
      [{ subscribe: [42] }, /herald\.subscribe\[0\] must be a topic selector/],
      [{ subscribe: 'orders/*' }, /herald\.subscribe claim must be a list/],
      ['orders/*', /"herald" claim must be an object/],
      [['orders/*'], /"herald" claim must be an object/],
      [null, /"herald" claim must be an object/],
    ];
    for (const [herald, message] of cases) {
      await assertRejected(check, await sign({ herald }, SECRET), message);
    }
  });
});

describe('WWW-Authenticate and messages', () => {
  test('no token: the bare challenge, no error code (RFC 6750 §3.1)', () => {
    const error = missingTokenError('my_cookie');
    assertHeraldError(error, 'HERALD_ERR_UNAUTHORIZED', /Authorization: Bearer <token>.*my_cookie cookie.*access_token/);
    assert.equal(error.status, 401);
    assert.deepEqual(error.details, { challenge: 'Bearer realm="herald"' });
    assert.deepEqual(error.toJSON(), { error: { code: 'HERALD_ERR_UNAUTHORIZED', message: error.message } });
  });

  test('a bad token: invalid_token, with a description limited to the RFC 6750 character set', () => {
    const error = unauthorizedError('the "exp" claim\\ is wrong — très', true);
    assert.equal(
      error.details.challenge,
      `Bearer realm="herald", error="invalid_token", error_description="the 'exp' claim is wrong  trs"`,
    );
    assert.equal(error.message, 'the "exp" claim\\ is wrong — très', 'the JSON message keeps the full text');
  });

  test('a valid token lacking the topic: 403 with insufficient_scope', () => {
    const error = forbiddenError('the token may not publish to topic "x"');
    assertHeraldError(error, 'HERALD_ERR_FORBIDDEN');
    assert.equal(error.status, 403);
    assert.equal(
      error.details.challenge,
      `Bearer realm="herald", error="insufficient_scope", error_description="the token may not publish to topic 'x'"`,
    );
  });

  test('a token carrying a quote in its claims still yields a well-formed challenge', async () => {
    const check = verifier({ jwtKey: SECRET });
    await assertRejected(check, await sign({ herald: { publish: ['a"b*'] } }, SECRET), /herald\.publish\[0\]/);
  });
});

describe('grants and topics', () => {
  const grant = createGrant({ publish: ['orders/*', 'news'], subscribe: ['orders/**', 'alerts/*'] });

  test('mayPublish follows the publish selectors', () => {
    const cases: [string, boolean][] = [
      ['orders/1', true],
      ['orders/1/items', false],
      ['orders', false],
      ['news', true],
      ['news/today', false],
      ['alerts/fire', false],
    ];
    for (const [topic, expected] of cases) assert.equal(mayPublish(grant, topic), expected, topic);
  });

  test('an event without a topic needs the selector ** itself', () => {
    assert.equal(mayPublish(grant, undefined), false);
    assert.equal(mayPublish(createGrant({ publish: ['orders/**'] }), undefined), false);
    assert.equal(mayPublish(createGrant({ publish: ['**'] }), undefined), true);
    assert.equal(mayReceive(grant, undefined), false);
    assert.equal(mayReceive(createGrant({ subscribe: ['*', '**'] }), undefined), true);
  });

  test('a malformed topic is reported as such, not as forbidden', () => {
    assert.throws(() => mayPublish(grant, 'orders//1'), (error: unknown) => (assertHeraldError(error, 'HERALD_ERR_INVALID_TOPIC'), true));
    assert.throws(() => mayPublish(grant, 'orders/*'), (error: unknown) => (assertHeraldError(error, 'HERALD_ERR_INVALID_TOPIC'), true));
  });

  test('assertMayPublish throws the 403 naming the topic', () => {
    assertMayPublish(grant, 'orders/7');
    assert.throws(() => assertMayPublish(grant, 'users/7'), (error: unknown) => {
      assertHeraldError(error, 'HERALD_ERR_FORBIDDEN', /may not publish to topic "users\/7"/);
      return true;
    });
    assert.throws(() => assertMayPublish(grant, undefined), (error: unknown) => {
      assertHeraldError(error, 'HERALD_ERR_FORBIDDEN', /without a topic .*"\*\*"/);
      return true;
    });
  });

  test('subscriptionScope is the parsed subscribe selectors; mayReceive follows them', () => {
    assert.deepEqual(subscriptionScope(grant).map((selector) => selector.segments), [['orders', '**'], ['alerts', '*']]);
    assert.equal(subscriptionScope(grant), subscriptionScope(grant), 'parsed once');
    assert.equal(mayReceive(grant, 'orders/1/items'), true);
    assert.equal(mayReceive(grant, 'alerts/fire'), true);
    assert.equal(mayReceive(grant, 'alerts/fire/3'), false);
    assert.equal(mayReceive(grant, 'news'), false);
  });

  test('a grant built by hand (not by the verifier) works too', () => {
    const handmade: Grant = { publish: ['a/*'], subscribe: [], expiresAt: undefined };
    assert.equal(mayPublish(handmade, 'a/b'), true);
    assert.deepEqual(subscriptionScope(handmade), []);
  });

  test('createGrant refuses malformed selectors', () => {
    assert.throws(() => createGrant({ subscribe: ['**/x'] }), (error: unknown) => (assertHeraldError(error, 'HERALD_ERR_INVALID_SELECTOR'), true));
  });

  test('selectorsOverlap agrees with matching every short topic', () => {
    // Every selector of up to three segments over {a, b, *}, optionally ending in **.
    const segments = ['a', 'b', '*'];
    const selectors: string[] = [];
    const grow = (prefix: string[]) => {
      if (prefix.length > 0) selectors.push(prefix.join('/'));
      if (prefix.length < 3) {
        selectors.push([...prefix, '**'].join('/'));
        for (const segment of segments) grow([...prefix, segment]);
      }
    };
    grow([]);
    // A witness of an overlap never needs more segments than the longer
    // selector, nor values other than a, b and one neither names.
    const topics: string[][] = [];
    const spell = (prefix: string[]) => {
      if (prefix.length > 0) topics.push(prefix);
      if (prefix.length < 4) for (const value of ['a', 'b', 'z']) spell([...prefix, value]);
    };
    spell([]);
    const parsed = selectors.map(parseSelector);
    let overlapping = 0;
    for (const x of parsed) {
      for (const y of parsed) {
        const witness = topics.some((topic) => selectorMatches(x, topic) && selectorMatches(y, topic));
        assert.equal(selectorsOverlap(x, y), witness, `${x.source} vs ${y.source}`);
        if (witness) overlapping++;
      }
    }
    assert.ok(overlapping > 0 && overlapping < parsed.length ** 2, 'both outcomes occur');
  });
});

describe('finding the token in a request', () => {
  const request = (headers: Record<string, string>): Record<string, string> => headers;
  const url = (query = ''): URL => new URL(`http://hub.test/events${query}`);
  const carrier = (headers: Record<string, string>, at: URL): TokenCarrier => ({ header: (name) => headers[name], url: at });

  test('header wins over cookie, cookie over query', () => {
    const all = request({ authorization: 'Bearer from-header', cookie: 'herald_auth=from-cookie' });
    assert.deepEqual(tokenFromRequest(carrier(all, url('?access_token=from-query')), 'herald_auth'), { token: 'from-header', source: 'header' });
    const noHeader = request({ cookie: 'herald_auth=from-cookie' });
    assert.deepEqual(tokenFromRequest(carrier(noHeader, url('?access_token=from-query')), 'herald_auth'), { token: 'from-cookie', source: 'cookie' });
    assert.deepEqual(tokenFromRequest(carrier(request({}), url('?access_token=from-query')), 'herald_auth'), { token: 'from-query', source: 'query' });
    assert.equal(tokenFromRequest(carrier(request({}), url('?topic=a')), 'herald_auth'), undefined);
  });

  test('the Bearer scheme is case-insensitive; other schemes are ignored', () => {
    for (const header of ['bearer t0k', 'BEARER t0k', '  Bearer   t0k  ', 'Bearer\tt0k']) {
      assert.deepEqual(tokenFromRequest(carrier(request({ authorization: header }), url()), 'herald_auth'), { token: 't0k', source: 'header' }, header);
    }
    for (const header of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer   ', 'Bearert0k']) {
      const found = tokenFromRequest(carrier(request({ authorization: header, cookie: 'herald_auth=c' }), url()), 'herald_auth');
      assert.deepEqual(found, { token: 'c', source: 'cookie' }, header);
    }
  });

  test('a malformed Bearer credential is still the header token, to be refused as malformed', () => {
    const found = tokenFromRequest(carrier(request({ authorization: 'Bearer two words', cookie: 'herald_auth=c' }), url()), 'herald_auth');
    assert.deepEqual(found, { token: 'two words', source: 'header' });
  });

  test('empty values count as absent', () => {
    assert.deepEqual(tokenFromRequest(carrier(request({ cookie: 'herald_auth=' }), url('?access_token=q')), 'herald_auth'), { token: 'q', source: 'query' });
    assert.deepEqual(tokenFromRequest(carrier(request({ cookie: 'herald_auth=""' }), url('?access_token=q')), 'herald_auth'), { token: 'q', source: 'query' });
    assert.equal(tokenFromRequest(carrier(request({}), url('?access_token=')), 'herald_auth'), undefined);
  });

  test('the cookie name is configurable and exact', () => {
    const headers = { cookie: 'herald_auth=default; session=mine; Session=upper' };
    assert.deepEqual(tokenFromRequest(carrier(request(headers), url()), 'session'), { token: 'mine', source: 'cookie' });
    assert.equal(tokenFromRequest(carrier(request(headers), url()), 'SESSION'), undefined);
  });

  test('cookie parsing: several cookies, spaces, quotes, = in values, look-alike names', () => {
    const cases: [string, string | undefined][] = [
      ['herald_auth=abc', 'abc'],
      ['a=1; herald_auth=abc; b=2', 'abc'],
      ['a=1;herald_auth=abc;b=2', 'abc'],
      ['  herald_auth  =  abc  ;  b=2', 'abc'],
      ['herald_auth="abc.def.ghi"', 'abc.def.ghi'],
      ['herald_auth = "abc" ', 'abc'],
      ['herald_auth="', '"'],
      ['herald_auth=abc==', 'abc=='],
      ['herald_auth=first; herald_auth=second', 'first'],
      ['xherald_auth=no; herald_auth_x=no; herald_auth=yes', 'yes'],
      ['flag; herald_auth=abc; =orphan', 'abc'],
      ['HERALD_AUTH=abc', undefined],
      ['', undefined],
      [';;;', undefined],
    ];
    for (const [header, expected] of cases) assert.equal(cookieValue(header, 'herald_auth'), expected, header);
    assert.deepEqual(parseCookies('a=1; b="two"; c; =x; d='), [['a', '1'], ['b', 'two'], ['d', '']]);
  });

  test('on the wire: two Cookie headers are both read, and the header still wins', async () => {
    const server = createServer((req, res) => {
      const found = tokenFromRequest({ header: (name) => { const value = req.headers[name]; return Array.isArray(value) ? value.join('; ') : value; }, url: new URL(req.url ?? '/', 'http://hub.test') }, 'herald_auth');
      const body = JSON.stringify(found ?? null);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Connection: 'close' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const ask = (lines: string[]) =>
      new Promise<unknown>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let text = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (text += chunk));
        socket.on('error', reject);
        socket.on('end', () => resolve(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))));
        socket.end(['GET /events?access_token=q HTTP/1.1', 'Host: hub.test', 'Connection: close', ...lines, '', ''].join('\r\n'));
      });
    try {
      assert.deepEqual(await ask(['Cookie: a=1', 'Cookie: herald_auth=second-header']), { token: 'second-header', source: 'cookie' });
      assert.deepEqual(await ask(['Cookie: herald_auth=c', 'Authorization: Bearer h']), { token: 'h', source: 'header' });
      assert.deepEqual(await ask([]), { token: 'q', source: 'query' });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('mintToken', () => {
  test('mints an HS256 token the verifier accepts, with iat, exp = iat + ttl and sub', async () => {
    const token = await mintToken({ key: SECRET, publish: ['orders/*'], subscribe: ['**'], ttlSeconds: 3600, subject: 'dev' });
    assert.deepEqual(decodeProtectedHeader(token), { alg: 'HS256', typ: 'JWT' });
    const claims = decodeJwt(token);
    assert.deepEqual(claims.herald, { publish: ['orders/*'], subscribe: ['**'] });
    assert.equal(claims.sub, 'dev');
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 3600);
    // Verified at the token's own issue time, so the real clock does not matter.
    const check = createTokenVerifier({ jwtKey: SECRET, now: () => (claims.iat ?? 0) * 1000 });
    const grant = await check.verify(token, 'publish');
    assert.deepEqual([grant.publish, grant.subscribe, grant.subject], [['orders/*'], ['**'], 'dev']);
    assert.equal(grant.expiresAt, (claims.exp ?? 0) * 1000);
    const stranger = createTokenVerifier({ jwtKey: OTHER_SECRET, now: () => (claims.iat ?? 0) * 1000 });
    await assertRejected(stranger, token, /signature/);
  });

  test('lists default to none; no subject means no sub', async () => {
    const claims = decodeJwt(await mintToken({ key: SECRET, ttlSeconds: 60 }));
    assert.deepEqual(claims.herald, { publish: [], subscribe: [] });
    assert.equal('sub' in claims, false);
  });

  test('refuses a weak key, a bad TTL and a malformed selector', async () => {
    await assert.rejects(mintToken({ key: 'short', ttlSeconds: 60 }), (error: unknown) => {
      const known = assertHeraldError(error, 'HERALD_ERR_INVALID_OPTION', /at least 32 bytes/);
      assert.ok(!known.message.includes('short'));
      return true;
    });
    for (const ttlSeconds of [0, -1, 1.5, Number.NaN, 11 * 365 * 86_400]) {
      await assert.rejects(mintToken({ key: SECRET, ttlSeconds }), (error: unknown) => (assertHeraldError(error, 'HERALD_ERR_INVALID_OPTION', /TTL/), true));
    }
    await assert.rejects(mintToken({ key: SECRET, ttlSeconds: 60, subscribe: ['a/**/b'] }), (error: unknown) => (assertHeraldError(error, 'HERALD_ERR_INVALID_SELECTOR'), true));
  });
});
