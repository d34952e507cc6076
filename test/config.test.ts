/**
 * Units, options, the command line and the `herald` binary.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { describe, test } from 'node:test';
import { parseCommandLine } from '../src/cli/args.js';
import { cliDefaults, formatDefault, OPTION_SPECS, resolveOptions, type HeraldOptions } from '../src/config/options.js';
import { formatDuration, formatSize, parseDuration, parseSize } from '../src/config/units.js';
import { HeraldError } from '../src/errors.js';
import { CLI_PATH, freePort, spawnHerald } from './support/helpers.js';

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function assertInvalidOption(fn: () => unknown, ...mustName: string[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof HeraldError, `expected a HeraldError, got ${String(error)}`);
    assert.equal(error.code, 'HERALD_ERR_INVALID_OPTION');
    assert.ok(!/[\r\n]/.test(error.message), `one line: ${JSON.stringify(error.message)}`);
    for (const name of mustName) assert.ok(error.message.includes(name), `${JSON.stringify(error.message)} names ${name}`);
    return true;
  });
}

describe('parseDuration', () => {
  const good: [string, number][] = [
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1500', 1500],
    ['0', 0],
    ['0s', 0],
    ['1.5s', 1500],
    [' 30s ', 30_000],
  ];
  for (const [text, ms] of good) {
    test(`${JSON.stringify(text)} → ${ms}`, () => assert.equal(parseDuration(text), ms));
  }
  for (const text of ['abc', '-1s', '-5', '', ' ', '5 parsecs', '1d', 's', 'ms', '1e3', '0x10', 'Infinity', 'NaN', '1s2', '.5s', '1,5s']) {
    test(`${JSON.stringify(text)} → undefined`, () => assert.equal(parseDuration(text), undefined));
  }
  test('formatDuration output parses back to the same number', () => {
    for (const ms of [0, 1, 250, 1000, 1500, 30_000, 60_000, 300_000, 3_600_000, 2 ** 31 - 1]) {
      assert.equal(parseDuration(formatDuration(ms)), ms, formatDuration(ms));
    }
  });
});

describe('parseSize', () => {
  const good: [string, number][] = [
    ['512kb', 524_288],
    ['1mb', 1_048_576],
    ['1gb', 1024 ** 3],
    ['100', 100],
    ['100b', 100],
    ['0', 0],
    ['4mb', 4 * 1024 ** 2],
    [' 1mb ', 1_048_576],
  ];
  for (const [text, bytes] of good) {
    test(`${JSON.stringify(text)} → ${bytes}`, () => assert.equal(parseSize(text), bytes));
  }
  for (const text of ['lots', '-1kb', '-1', '', 'kb', '1tb', '1 megabyte', '1e6', '0x10', 'NaN', '1kb2']) {
    test(`${JSON.stringify(text)} → undefined`, () => assert.equal(parseSize(text), undefined));
  }
  test('formatSize output parses back to the same number', () => {
    for (const bytes of [0, 1, 1000, 1024, 524_288, 1024 ** 2, 4 * 1024 ** 2, 1024 ** 3]) {
      assert.equal(parseSize(formatSize(bytes)), bytes, formatSize(bytes));
    }
  });
});

describe('resolveOptions', () => {
  test('defaults', () => {
    assert.deepEqual(
      { ...resolveOptions() },
      {
        port: 3004,
        host: '127.0.0.1',
        tlsCert: undefined,
        tlsKey: undefined,
        heartbeat: 30_000,
        retry: 3000,
        history: 10_000,
        maxConnections: 10_000,
        maxBody: 1024 ** 2,
        maxBuffer: 4 * 1024 ** 2,
        shutdownTimeout: 4000,
        basePath: undefined,
        routes: [],
        historyTtl: 0,
        store: undefined,
        redis: undefined,
        redisPrefix: 'herald',
        presenceLease: 15_000,
        workers: 1,
        jwtKey: undefined,
        jwtPublicKey: undefined,
        jwtPublisherKey: undefined,
        jwtSubscriberKey: undefined,
        jwtJwks: undefined,
        jwtClockSkew: 30_000,
        mercureAudience: undefined,
        mercureSubscriptions: false,
        mercureIssuer: undefined,
        authCookie: 'herald_auth',
        headTimeout: 30_000,
        corsOrigin: undefined,
        maxConnectionsPerIp: 0,
        publishRate: 0,
        publishBurst: 0,
        maxTopics: 64,
        metricsPort: undefined,
        logLevel: 'info',
      },
    );
    assert.deepEqual({ ...resolveOptions({}) }, { ...resolveOptions() });
  });

  test('the result is frozen', () => {
    const options = resolveOptions({ port: 0 });
    assert.ok(Object.isFrozen(options));
    assert.throws(() => {
      (options as { port: number }).port = 1;
    }, TypeError);
    assert.equal(options.port, 0);
  });

  test('text values become numbers; numbers pass through', () => {
    const options = resolveOptions({
      port: '8080',
      host: ' ::1 ',
      heartbeat: '15s',
      retry: 500,
      history: ' 5 ',
      maxConnections: '20',
      maxBody: '512kb',
      maxBuffer: 2048,
      shutdownTimeout: '1m',
      basePath: '/herald',
      historyTtl: '24h',
      store: 'herald.db',
      workers: ' 2 ',
    });
    assert.deepEqual(
      { ...options },
      {
        port: 8080, host: '::1', tlsCert: undefined, tlsKey: undefined, heartbeat: 15_000, retry: 500, history: 5, maxConnections: 20, maxBody: 524_288, maxBuffer: 2048,
        shutdownTimeout: 60_000, basePath: '/herald', routes: [], historyTtl: 86_400_000, store: 'herald.db', redis: undefined, redisPrefix: 'herald', presenceLease: 15_000, workers: 2,
        jwtKey: undefined, jwtPublicKey: undefined, jwtPublisherKey: undefined, jwtSubscriberKey: undefined, jwtJwks: undefined, jwtClockSkew: 30_000, mercureAudience: undefined, mercureIssuer: undefined, mercureSubscriptions: false, authCookie: 'herald_auth', headTimeout: 30_000,
        corsOrigin: undefined, maxConnectionsPerIp: 0, publishRate: 0, publishBurst: 0, maxTopics: 64, metricsPort: undefined, logLevel: 'info',
      },
    );
  });

  test('the bounds themselves are accepted', () => {
    const options = resolveOptions({ port: 0, heartbeat: 0, history: 0, maxConnections: 1, maxBody: 1, maxBuffer: 1024, retry: 2 ** 31 - 1 });
    assert.equal(options.port, 0);
    assert.equal(options.heartbeat, 0);
    assert.equal(options.maxBuffer, 1024);
    assert.equal(resolveOptions({ port: 65535 }).port, 65535);
  });

  const invalid: [HeraldOptions, string][] = [
    [{ port: 70_000 }, 'port'],
    [{ port: 65_536 }, 'port'],
    [{ port: -1 }, 'port'],
    [{ port: 1.5 }, 'port'],
    [{ port: 'abc' }, 'port'],
    [{ port: '80 80' }, 'port'],
    [{ port: Number.NaN }, 'port'],
    [{ host: '' }, 'host'],
    [{ host: '   ' }, 'host'],
    [{ heartbeat: 'abc' }, 'heartbeat'],
    [{ heartbeat: -5 }, 'heartbeat'],
    [{ heartbeat: '-1s' }, 'heartbeat'],
    [{ heartbeat: 1.5 }, 'heartbeat'],
    [{ heartbeat: Number.POSITIVE_INFINITY }, 'heartbeat'],
    [{ heartbeat: 2 ** 31 }, 'heartbeat'],
    [{ heartbeat: '1000h' }, 'heartbeat'],
    [{ retry: 'soon' }, 'retry'],
    [{ history: 'many' }, 'history'],
    [{ history: -1 }, 'history'],
    [{ maxConnections: 0 }, 'maxConnections'],
    [{ maxBody: 0 }, 'maxBody'],
    [{ maxBody: 'lots' }, 'maxBody'],
    [{ maxBody: '2gb' }, 'maxBody'],
    [{ maxBuffer: 100 }, 'maxBuffer'],
    [{ shutdownTimeout: 'never' }, 'shutdownTimeout'],
    [{ basePath: 'herald' }, 'basePath'],
    [{ basePath: '/herald/' }, 'basePath'],
    [{ basePath: '/' }, 'basePath'],
    [{ basePath: '/a b' }, 'basePath'],
    [{ historyTtl: 'a day' }, 'historyTtl'],
    [{ routes: 'everything' }, 'routes'],
    [{ routes: 'health,admin' }, 'routes'],
    [{ routes: ['page', 'nope'] as never }, 'routes'],
  ];

  test('switches: on/off, true/false, yes/no, 1/0, or a boolean; anything else is refused', () => {
    for (const on of ['on', 'ON', 'true', 'yes', '1', ' on ', true]) assert.equal(resolveOptions({ mercureSubscriptions: on }).mercureSubscriptions, true, String(on));
    for (const off of ['off', 'false', 'no', '0', false]) assert.equal(resolveOptions({ mercureSubscriptions: off }).mercureSubscriptions, false, String(off));
    assert.throws(() => resolveOptions({ mercureSubscriptions: 'maybe' }), /mercureSubscriptions.*on or off/);
  });

  test('routes: a list, or text naming them, all or none', () => {
    assert.deepEqual(resolveOptions({ routes: 'health, metrics' }).routes, ['health', 'metrics']);
    assert.deepEqual(resolveOptions({ routes: ['page', 'page'] }).routes, ['page']);
    assert.deepEqual(resolveOptions({ routes: 'all' }).routes, ['page', 'dashboard', 'health', 'metrics', 'presence']);
    assert.deepEqual(resolveOptions({ routes: 'none' }).routes, []);
  });
  for (const [input, key] of invalid) {
    test(`rejects ${JSON.stringify(input, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))} naming "${key}"`, () => {
      assertInvalidOption(() => resolveOptions(input), key);
    });
  }

  test('the label names the option the way the user gave it', () => {
    assertInvalidOption(() => resolveOptions({ heartbeat: 'abc' }, (spec) => `--${spec.flag}`), '--heartbeat', 'abc');
    assertInvalidOption(() => resolveOptions({ maxBody: 'lots' }, () => 'HERALD_MAX_BODY'), 'HERALD_MAX_BODY', 'lots');
  });
});

describe('parseCommandLine', () => {
  test('nothing given → no options', () => {
    const command = parseCommandLine([], {});
    assert.deepEqual(command.options, {});
    assert.equal(command.help, false);
    assert.equal(command.version, false);
  });

  test('every flag is read', () => {
    const argv = OPTION_SPECS.flatMap((spec) => [`--${spec.flag}`, `flag-${spec.key}`]);
    const command = parseCommandLine(argv, {});
    for (const spec of OPTION_SPECS) {
      assert.equal((command.options as Record<string, unknown>)[spec.key], `flag-${spec.key}`);
      assert.equal(command.sources.get(spec.key), `--${spec.flag}`);
    }
  });

  test('--flag=value works too', () => {
    assert.equal(parseCommandLine(['--max-body=2mb'], {}).options.maxBody, '2mb');
  });

  test('every env var is read', () => {
    for (const spec of OPTION_SPECS) {
      for (const name of spec.env) {
        const command = parseCommandLine([], { [name]: 'from-env' });
        assert.equal((command.options as Record<string, unknown>)[spec.key], 'from-env', name);
        assert.equal(command.sources.get(spec.key), name);
      }
    }
  });

  test('a flag wins over the env', () => {
    const command = parseCommandLine(['--port', '8080', '--heartbeat', '5s'], { HERALD_PORT: '9000', PORT: '7000', HERALD_HEARTBEAT: '1s' });
    assert.equal(command.options.port, '8080');
    assert.equal(command.options.heartbeat, '5s');
    assert.equal(command.sources.get('port'), '--port');
  });

  test('PORT and HOST are honoured; HERALD_PORT and HERALD_HOST win over them', () => {
    let command = parseCommandLine([], { PORT: '5000', HOST: '0.0.0.0' });
    assert.equal(command.options.port, '5000');
    assert.equal(command.options.host, '0.0.0.0');
    command = parseCommandLine([], { PORT: '5000', HERALD_PORT: '6000', HOST: '0.0.0.0', HERALD_HOST: '::1' });
    assert.equal(command.options.port, '6000');
    assert.equal(command.sources.get('port'), 'HERALD_PORT');
    assert.equal(command.options.host, '::1');
  });

  test('an empty env var counts as unset', () => {
    const command = parseCommandLine([], { HERALD_PORT: '', PORT: '7000', HERALD_HEARTBEAT: '' });
    assert.equal(command.options.port, '7000');
    assert.equal(command.options.heartbeat, undefined);
  });

  test('unrelated env vars are ignored', () => {
    assert.deepEqual(parseCommandLine([], { HERALD_NOPE: '1', PATH: '/bin', HEARTBEAT: '1s' }).options, {});
  });

  test('--help, -h, --version, -v', () => {
    assert.equal(parseCommandLine(['--help'], {}).help, true);
    assert.equal(parseCommandLine(['-h'], {}).help, true);
    assert.equal(parseCommandLine(['--version'], {}).version, true);
    assert.equal(parseCommandLine(['-v'], {}).version, true);
  });

  test('an unknown flag is a HeraldError naming it', () => {
    assertInvalidOption(() => parseCommandLine(['--nope'], {}), '--nope');
    assertInvalidOption(() => parseCommandLine(['--port', '1', '--heartbeet', '5s'], {}), '--heartbeet');
  });

  test('a positional argument or a flag without its value is a HeraldError', () => {
    assertInvalidOption(() => parseCommandLine(['serve'], {}), 'serve');
    assertInvalidOption(() => parseCommandLine(['--port'], {}), '--port');
  });

  test('errors from env values name the env var once resolved with the sources as labels', () => {
    const command = parseCommandLine([], { HERALD_MAX_BODY: 'lots' });
    assertInvalidOption(() => resolveOptions(command.options, (spec) => command.sources.get(spec.key) ?? spec.key), 'HERALD_MAX_BODY');
  });
});

// ---------------------------------------------------------------------------
// The binary.

interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment without any variable the CLI reads, so the host's settings do not leak in. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const read = new Set(OPTION_SPECS.flatMap((spec) => spec.env));
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !read.has(name)));
  return { ...env, ...extra };
}

/** Runs the CLI to completion; kills it (and fails) if it has not exited after 10 s. */
function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`herald ${args.join(' ')} did not exit; stdout ${JSON.stringify(stdout)} stderr ${JSON.stringify(stderr)}`));
    }, 10_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function stderrLines(run: CliRun): string[] {
  return run.stderr.split('\n').filter((line) => line !== '');
}

describe('the herald binary', () => {
  test('--help exits 0 and lists every flag with its env vars and default', async () => {
    const run = await runCli(['--help']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    const lines = run.stdout.split('\n');
    for (const spec of OPTION_SPECS) {
      const line = lines.find((l) => l.trimStart().startsWith(`--${spec.flag} `));
      assert.ok(line !== undefined, `--${spec.flag} is listed in:\n${run.stdout}`);
      for (const name of spec.env) assert.ok(line.includes(name), `${name} on the line of --${spec.flag}: ${line}`);
      assert.ok(line.includes(`(default: ${formatDefault(spec, 'cli')})`), `default of --${spec.flag} shown: ${line}`);
    }
    assert.ok(lines.some((l) => l.trimStart().startsWith('--help')));
    assert.ok(lines.some((l) => l.trimStart().startsWith('--version')));
  });

  test('the defaults shown in --help are the ones that apply', () => {
    // The command's defaults: the library's, but for the few it sets itself (it serves every route).
    const defaults = resolveOptions(cliDefaults()) as unknown as Record<string, unknown>;
    for (const spec of OPTION_SPECS) {
      const shown = formatDefault(spec, 'cli');
      const applied = defaults[spec.key];
      if (spec.kind === 'duration') assert.equal(parseDuration(shown), applied, spec.flag);
      else if (spec.kind === 'size') assert.equal(parseSize(shown), applied, spec.flag);
      else if (spec.kind === 'routes') assert.deepEqual(resolveOptions({ routes: shown }).routes, applied, spec.flag);
      else if (spec.kind === 'switch') assert.equal((resolveOptions({ [spec.key]: shown }) as unknown as Record<string, unknown>)[spec.key], applied, spec.flag);
      else if (applied === undefined) assert.equal(shown, '(none)', spec.flag);
      else assert.equal(shown, String(applied), spec.flag);
    }
    assert.deepEqual(resolveOptions().routes, [], 'the library serves no optional route unless asked');
    assert.deepEqual(defaults.routes, ['page', 'dashboard', 'health', 'metrics', 'presence'], 'the command serves them all');
  });

  test('--version prints the package.json version', async () => {
    const run = await runCli(['--version']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${PACKAGE_VERSION}\n`);
    assert.equal(run.stderr, '');
  });

  test('--heartbeat abc exits 2 with one line on stderr naming --heartbeat', async () => {
    const run = await runCli(['--heartbeat', 'abc', '--port', '0']);
    assert.equal(run.code, 2);
    const lines = stderrLines(run);
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /--heartbeat/);
    assert.match(lines[0]!, /abc/);
    assert.doesNotMatch(run.stdout, /listening/);
  });

  test('HERALD_MAX_BODY=lots exits 2 with one line on stderr naming HERALD_MAX_BODY', async () => {
    const run = await runCli(['--port', '0'], { HERALD_MAX_BODY: 'lots' });
    assert.equal(run.code, 2);
    const lines = stderrLines(run);
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /HERALD_MAX_BODY/);
    assert.match(lines[0]!, /lots/);
    assert.doesNotMatch(run.stdout, /listening/);
  });

  test('an unknown flag exits 2 with one line naming it', async () => {
    const run = await runCli(['--bogus']);
    assert.equal(run.code, 2);
    const lines = stderrLines(run);
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /--bogus/);
  });

  test('a port already in use exits 1 with a one-line message', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve, reject) => {
      blocker.once('error', reject);
      blocker.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = blocker.address() as { port: number };
    try {
      const run = await runCli(['--port', String(port), '--host', '127.0.0.1']);
      assert.equal(run.code, 1);
      const lines = stderrLines(run);
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, new RegExp(`\\b${port}\\b`));
      assert.match(lines[0]!, /in use/);
      assert.doesNotMatch(run.stdout, /listening/);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  test('spawnHerald starts it; the log line has the URL; it serves and stops on SIGTERM', async () => {
    const herald = await spawnHerald();
    try {
      assert.match(herald.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(herald.port > 0);
      const line = herald.output().split('\n').find((l) => l.includes('listening on'));
      assert.ok(line?.includes(herald.url), herald.output());
      assert.ok(line?.includes(PACKAGE_VERSION), line);
      const response = await fetch(`${herald.url}/health`);
      assert.equal(response.status, 200);
      await response.arrayBuffer();
    } finally {
      herald.child.kill('SIGTERM');
    }
    assert.equal(await herald.exited, 0, herald.output());
  });

  test('flags reach the running binary (--port picks the port)', async () => {
    const port = await freePort();
    const herald = await spawnHerald(['--port', String(port)]);
    try {
      assert.equal(herald.port, port, 'the --port flag wins over HERALD_PORT=0 from spawnHerald');
      // Served before it is stopped, so this test does not depend on the signal race tested below.
      const response = await fetch(`${herald.url}/health`);
      assert.equal(response.status, 200);
      await response.arrayBuffer();
    } finally {
      herald.child.kill('SIGTERM');
    }
    assert.equal(await herald.exited, 0, herald.output());
  });

  test('SIGTERM sent as soon as the ready line appears still shuts down cleanly (exit 0)', async () => {
    // Whoever waits for "listening on" (a supervisor, a test) may stop the hub at once;
    // the handlers must be in place by then, or the default action kills the process.
    // A race, so it is tried ten times, five processes at a time.
    const once = async (): Promise<number | string> => {
      const herald = await spawnHerald();
      herald.child.kill('SIGTERM');
      return herald.exited;
    };
    const outcomes: (number | string)[] = [];
    for (let batch = 0; batch < 2; batch++) outcomes.push(...(await Promise.all(Array.from({ length: 5 }, once))));
    assert.deepEqual(
      outcomes.filter((outcome) => outcome !== 0),
      [],
      `exit outcomes of ${outcomes.length} runs: ${outcomes.join(', ')}`,
    );
  });
});

describe('scale-out options', () => {
  test('--redis takes redis:// and rediss:// URLs and names the option when it is anything else', () => {
    assert.equal(resolveOptions({ redis: 'redis://127.0.0.1:6379/2' }).redis, 'redis://127.0.0.1:6379/2');
    assert.equal(resolveOptions({ redis: 'rediss://user:secret@cache.example:6380' }).redis, 'rediss://user:secret@cache.example:6380');
    assert.equal(resolveOptions({}).redis, undefined);
    assert.equal(resolveOptions({ redis: '' }).redis, undefined, 'empty text is unset');
    for (const bad of ['localhost:6379', 'http://127.0.0.1:6379', 'redis//x']) assertInvalidOption(() => resolveOptions({ redis: bad }), 'redis');
  });

  test('--redis-prefix is a plain key name', () => {
    assert.equal(resolveOptions({}).redisPrefix, 'herald');
    assert.equal(resolveOptions({ redisPrefix: 'prod:eu-1' }).redisPrefix, 'prod:eu-1');
    for (const bad of ['', 'has space', '{tag}', 'x'.repeat(65)]) assertInvalidOption(() => resolveOptions({ redisPrefix: bad }), 'redisPrefix');
  });

  test('--workers takes a count or auto (one per core)', async () => {
    const { availableParallelism } = await import('node:os');
    assert.equal(resolveOptions({}).workers, 1);
    assert.equal(resolveOptions({ workers: '3' }).workers, 3);
    assert.equal(resolveOptions({ workers: 'auto' }).workers, availableParallelism());
    for (const bad of ['0', 'many', '-1', '1.5']) assertInvalidOption(() => resolveOptions({ workers: bad }), 'workers');
  });

  test('--store and --redis exclude each other, with both named', () => {
    const command = parseCommandLine(['--store', 'x.db'], { HERALD_REDIS_URL: 'redis://127.0.0.1:1' });
    assertInvalidOption(() => resolveOptions(command.options, (spec) => command.sources.get(spec.key) ?? spec.key), '--store', 'HERALD_REDIS_URL');
  });
});

describe('browser and limit options', () => {
  test('--cors-origin takes exact origins or *, and refuses anything with a path, a query or another scheme', () => {
    assert.equal(resolveOptions({ corsOrigin: 'https://app.example.com, http://localhost:5173,*' }).corsOrigin, 'https://app.example.com, http://localhost:5173,*');
    for (const bad of ['app.example.com', 'https://app.example.com/path', 'ftp://x.example', 'https://a.example?x=1', 'https://user@a.example']) {
      assertInvalidOption(() => resolveOptions({ corsOrigin: bad }), 'corsOrigin');
    }
  });
});
