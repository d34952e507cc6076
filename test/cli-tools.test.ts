/**
 * `herald publish` and `herald tail`: thin clients of the HTTP API, run
 * in-process against real hubs (and, once main.ts dispatches them, as the binary).
 */

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { mintToken } from '../src/auth/index.js';
import type { CommandIO, CommandOutput } from '../src/cli/client.js';
import { PUBLISH_HELP, publishCommand } from '../src/cli/publish.js';
import { reconnectDelay, TAIL_HELP, tailCommand } from '../src/cli/tail.js';
import { CLI_PATH, freePort, spawnHerald, SseTap, startHub, trigger, Waiters, withHub, type HeraldProcess } from './support/helpers.js';

const SECRET = 'cli-tools-test-secret-of-at-least-32-bytes';
const ID = /^\d+-\d+$/;
const TIMEOUT = 15_000;

/** stdout or stderr of a command run in-process. */
class Capture implements CommandOutput {
  text = '';
  private readonly waiters = new Waiters();
  constructor(readonly isTTY = false) {}

  write(text: string): boolean {
    this.text += text;
    this.waiters.notify();
    return true;
  }

  get lines(): string[] {
    return this.text.split('\n').filter((line) => line !== '');
  }

  until(condition: () => boolean, what: string): Promise<void> {
    return this.waiters.until(condition, what, TIMEOUT, () => `output so far: ${JSON.stringify(this.text.slice(-600))}`);
  }

  untilIncludes(text: string): Promise<void> {
    return this.until(() => this.text.includes(text), JSON.stringify(text));
  }

  untilLines(count: number): Promise<void> {
    return this.until(() => this.lines.length >= count, `${count} lines`);
  }
}

interface TestIO extends CommandIO {
  readonly stdout: Capture;
  readonly stderr: Capture;
}

function io({ stdin = '', stdinTTY = false, stdoutTTY = false, signal }: { stdin?: string; stdinTTY?: boolean; stdoutTTY?: boolean; signal?: AbortSignal } = {}): TestIO {
  const input = Object.assign(Readable.from(stdin === '' ? [] : [Buffer.from(stdin)]), { isTTY: stdinTTY });
  return { stdin: input, stdout: new Capture(stdoutTTY), stderr: new Capture(false), signal };
}

/** An environment naming only the hub, so the developer's HERALD_* settings play no part. */
const envFor = (url: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ HERALD_URL: url, ...extra });

async function publish(argv: string[], env: NodeJS.ProcessEnv, options: Parameters<typeof io>[0] = {}): Promise<{ status: number; out: string; err: string }> {
  const streams = io(options);
  const status = await publishCommand(argv, env, streams);
  return { status, out: streams.stdout.text, err: streams.stderr.text };
}

/** Starts `herald tail` in-process; `ready()` resolves once it follows the stream. */
function tail(argv: string[], env: NodeJS.ProcessEnv, options: { stdoutTTY?: boolean } = {}) {
  const stop = new AbortController();
  const streams = io({ ...options, signal: stop.signal });
  const done = tailCommand(argv, env, streams);
  const ready = (): Promise<void> =>
    Promise.race([
      streams.stderr.untilIncludes('herald tail: following'),
      done.then((status) => assert.fail(`tail exited (${status}) before following: ${streams.stderr.text}`)),
    ]);
  return { ...streams, done, ready, stop: () => stop.abort() };
}

const jsonLines = (text: string): Array<{ id: string; event: string; data: unknown; received: string }> =>
  text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line));

describe('herald publish', () => {
  test('publishes JSON data from the argument and prints the id', async () => {
    await withHub({}, async (hub) => {
      const tap = await SseTap.open(hub.url, '/events?topic=orders/*');
      const { status, out, err } = await publish(['orders/42', '{"status": "paid"}', '--event', 'order.paid'], envFor(hub.url));
      assert.equal(status, 0, err);
      assert.equal(err, '');
      const id = out.trim();
      assert.match(id, ID);
      assert.equal(out, `${id}\n`, 'only the id, on one line');
      await tap.waitForEvents(1);
      assert.deepEqual(tap.events[0], { id, event: 'order.paid', data: '{"status":"paid"}' });
      tap.close();
    });
  });

  test('reads the data from stdin when it is absent or -', async () => {
    await withHub({}, async (hub) => {
      const tap = await SseTap.open(hub.url, '/events?topic=sensors/**');
      const first = await publish(['sensors/1'], envFor(hub.url), { stdin: '{"celsius": 21.5}\n' });
      const second = await publish(['sensors/2', '-', '--url', hub.url], {}, { stdin: '[1, 2,\n 3]' });
      assert.deepEqual([first.status, second.status], [0, 0], first.err + second.err);
      await tap.waitForEvents(2);
      assert.deepEqual(
        tap.events.map((e) => [e.id, e.event, e.data]),
        [[first.out.trim(), undefined, '{"celsius":21.5}'], [second.out.trim(), undefined, '[1,2,3]']],
      );
      tap.close();
    });
  });

  test('--batch publishes an array of full events from stdin and prints every id in order', async () => {
    await withHub({}, async (hub) => {
      const tap = await SseTap.open(hub.url);
      const events = [
        { topic: 'orders/1', event: 'order', data: { n: 1 } },
        { data: 'no topic' },
        { topic: 'news', data: [2] },
      ];
      const { status, out, err } = await publish(['--batch'], envFor(hub.url), { stdin: JSON.stringify(events) });
      assert.equal(status, 0, err);
      const ids = out.split('\n').filter(Boolean);
      assert.equal(ids.length, 3);
      assert.equal(out, `${ids.join('\n')}\n`);
      await tap.waitForEvents(3);
      assert.deepEqual(
        tap.events.map((e) => [e.id, e.event, e.data]),
        [[ids[0], 'order', '{"n":1}'], [ids[1], undefined, '"no topic"'], [ids[2], undefined, '[2]']],
      );
      tap.close();
    });
  });

  test('--text sends the data verbatim as text/plain; from stdin one trailing line break is dropped', async () => {
    await withHub({}, async (hub) => {
      const tap = await SseTap.open(hub.url, '/events?topic=build/*');
      const fromArg = await publish(['build/7', 'line one\nline two', '--text', '--event', 'log'], envFor(hub.url));
      const fromStdin = await publish(['build/8', '--text'], envFor(hub.url), { stdin: 'not {json}\n' });
      assert.deepEqual([fromArg.status, fromStdin.status], [0, 0], fromArg.err + fromStdin.err);
      await tap.waitForEvents(2);
      assert.deepEqual(
        tap.events.map((e) => [e.id, e.event, e.data]),
        [[fromArg.out.trim(), 'log', 'line one\nline two'], [fromStdin.out.trim(), undefined, 'not {json}']],
      );
      tap.close();
    });
  });

  test('--private with a token: only subscribers whose token allows the topic receive it; the token is never printed', async () => {
    await withHub({ jwtKey: SECRET }, async (hub) => {
      const publisher = await mintToken({ key: SECRET, publish: ['orders/*'], ttlSeconds: 600 });
      const subscriber = await mintToken({ key: SECRET, subscribe: ['**'], ttlSeconds: 600 });
      const publicTap = await SseTap.open(hub.url, '/events?topic=orders/*');
      const privateTap = await SseTap.open(hub.url, '/events?topic=orders/*', { Authorization: `Bearer ${subscriber}` });

      const secret = await publish(['orders/1', '{"card": "4242"}', '--private', '--token', publisher], envFor(hub.url));
      const text = await publish(['orders/2', 'secret text', '--private', '--text'], envFor(hub.url, { HERALD_TOKEN: publisher }));
      const marker = await publish(['orders/3', '"public"'], envFor(hub.url, { HERALD_TOKEN: publisher }));
      for (const run of [secret, text, marker]) {
        assert.equal(run.status, 0, run.err);
        assert.ok(!(run.out + run.err).includes(publisher), 'the token is not printed');
      }

      await privateTap.waitForEvents(3);
      assert.deepEqual(privateTap.events.map((e) => e.id), [secret.out.trim(), text.out.trim(), marker.out.trim()]);
      // Events arrive in order, so once the public marker is there, the private ones were skipped.
      await publicTap.waitForEvents(1);
      assert.deepEqual(publicTap.events.map((e) => [e.id, e.data]), [[marker.out.trim(), '"public"']]);
      publicTap.close();
      privateTap.close();
    });
  });

  test('an error answer prints "herald publish: <code>: <message>" and exits 1', async () => {
    await withHub({}, async (hub) => {
      const badJson = await publish(['--batch'], envFor(hub.url), { stdin: '[{"data": 1},' });
      assert.equal(badJson.status, 1);
      assert.match(badJson.err, /^herald publish: HERALD_ERR_INVALID_JSON: the body is not valid JSON: .+\n$/);
      assert.equal(badJson.out, '');

      const badTopic = await publish(['orders/*', '1'], envFor(hub.url));
      assert.equal(badTopic.status, 1);
      assert.match(badTopic.err, /^herald publish: HERALD_ERR_INVALID_TOPIC: .*wildcard.*\n$/);

      const notFound = await publish(['orders/1', '1', '--url', `${hub.url}/no-such-base`], {});
      assert.equal(notFound.status, 1);
      assert.match(notFound.err, /^herald publish: HERALD_ERR_NOT_FOUND: /);
    });
  });

  test('401 without a token, 403 with one that does not allow the topic; the token is not printed', async () => {
    await withHub({ jwtKey: SECRET }, async (hub) => {
      const none = await publish(['orders/1', '1'], envFor(hub.url));
      assert.equal(none.status, 1);
      assert.match(none.err, /^herald publish: HERALD_ERR_UNAUTHORIZED: .+\n$/);

      const other = await mintToken({ key: SECRET, publish: ['news'], ttlSeconds: 600 });
      const forbidden = await publish(['orders/1', '1', '--token', other], envFor(hub.url));
      assert.equal(forbidden.status, 1);
      assert.match(forbidden.err, /^herald publish: HERALD_ERR_FORBIDDEN: .+\n$/);
      assert.ok(!forbidden.err.includes(other));

      const wrong = await publish(['orders/1', '1', '--token', 'not.a.jwt'], envFor(hub.url));
      assert.equal(wrong.status, 1);
      assert.match(wrong.err, /^herald publish: HERALD_ERR_UNAUTHORIZED: /);
      assert.ok(!wrong.err.includes('not.a.jwt'));
    });
  });

  test('a hub that cannot be reached is one clear line and exit 1', async () => {
    const port = await freePort();
    const { status, out, err } = await publish(['orders/1', '1'], envFor(`http://127.0.0.1:${port}`));
    assert.equal(status, 1);
    assert.equal(out, '');
    assert.equal(err, `herald publish: cannot reach http://127.0.0.1:${port}: connection refused (is Herald running there?) (ECONNREFUSED)\n`);
  });

  test('bad usage is one line and exit 2, before anything is sent', async () => {
    const port = await freePort(); // nobody there: a request would fail with exit 1, not 2
    const env = envFor(`http://127.0.0.1:${port}`);
    const cases: Array<[string[], RegExp, Parameters<typeof io>[0]?]> = [
      [[], /missing <topic>/],
      [['orders/1', '1', '2'], /too many arguments/],
      [['orders/1', '{nope'], /the data is not valid JSON .*pass --text/],
      [['orders/1', '1', '--colour'], /Unknown option '--colour'/],
      [['orders/1', '1', '--url', 'ftp://example.com'], /invalid --url .*http/],
      [['--batch', '--event', 'x'], /--event does not apply to --batch/],
      [['--batch', 'orders/1'], /--batch reads a JSON array of events from stdin/],
      [['orders/1'], /no data: give it as an argument, or pipe it on stdin/, { stdinTTY: true }],
      [['orders/1'], /no data: stdin was empty/, { stdin: ' \n' }],
    ];
    for (const [argv, message, options] of cases) {
      const { status, out, err } = await publish(argv, env, options);
      assert.equal(status, 2, `${argv.join(' ')}: ${err}`);
      assert.equal(out, '');
      assert.match(err, message);
      assert.match(err, /^herald publish: [^\n]+ \(see herald publish --help\)\n$/, 'one line');
    }
    const badEnv = await publish(['orders/1', '1'], { HERALD_URL: 'not a url' });
    assert.equal(badEnv.status, 2);
    assert.match(badEnv.err, /invalid HERALD_URL "not a url"/);
  });

  test('--help prints the help and exits 0', async () => {
    const { status, out, err } = await publish(['--help'], {});
    assert.equal(status, 0);
    assert.equal(out, PUBLISH_HELP);
    assert.equal(err, '');
    assert.match(out, /^Usage: herald publish <topic> \[data\]/);
  });
});

describe('herald tail', () => {
  test('prints events for people: time, id, type, JSON data pretty-printed, no colour off a terminal', async () => {
    await withHub({}, async (hub) => {
      const run = tail(['orders/*', '--count', '3'], envFor(hub.url));
      await run.ready();
      const paid = await trigger(hub.url, { event: 'order.paid', topic: 'orders/1', data: { status: 'paid', items: [1] } });
      const plain = await trigger(hub.url, 'two\nlines', { contentType: 'text/plain', query: '?topic=orders/2' });
      const number = await trigger(hub.url, { topic: 'orders/3', data: 42 });
      assert.equal(await run.done, 0, run.stderr.text);
      const time = String.raw`\d\d:\d\d:\d\d\.\d{3}`;
      const expected = [
        `${time}  ${paid.body.id}  order\\.paid`,
        '  \\{',
        '    "status": "paid",',
        '    "items": \\[',
        '      1',
        '    \\]',
        '  \\}',
        `${time}  ${plain.body.id}  message`,
        '  two',
        '  lines',
        `${time}  ${number.body.id}  message  42`,
      ];
      assert.match(run.stdout.text, new RegExp(`^${expected.join('\n')}\n$`));
      assert.ok(!run.stdout.text.includes('\x1b'), 'no escape codes when stdout is not a terminal');
    });
  });

  test('colours on a terminal, none with NO_COLOR; control characters from publishers are shown escaped', async () => {
    await withHub({}, async (hub) => {
      const coloured = tail(['--count', '1'], envFor(hub.url), { stdoutTTY: true });
      const plain = tail(['--count', '1'], envFor(hub.url, { NO_COLOR: '1' }), { stdoutTTY: true });
      await Promise.all([coloured.ready(), plain.ready()]);
      await trigger(hub.url, 'red \x1b[31malert', { contentType: 'text/plain', query: '?event=x' });
      assert.deepEqual(await Promise.all([coloured.done, plain.done]), [0, 0]);
      assert.match(coloured.stdout.text, /\x1b\[1;36mx\x1b\[0m/, 'the type is coloured');
      assert.match(plain.stdout.text, /  x  red \\u001b\[31malert\n$/);
      assert.ok(!plain.stdout.text.includes('\x1b'), 'NO_COLOR: no escape codes at all');
      assert.ok(!coloured.stdout.text.includes('\x1b[31m'), "the publisher's escape code is not passed to the terminal");
    });
  });

  test('--json prints one object per line, only for the selected topics, and --count stops it', async () => {
    await withHub({}, async (hub) => {
      const run = tail(['orders/*', 'news', '--json', '--count', '3'], envFor(hub.url));
      await run.ready();
      // One batch, so the events arrive together and --count must stop in the middle of them.
      const published = await trigger(hub.url, [
        { topic: 'orders/1/items', data: 'not selected' },
        { topic: 'orders/1', event: 'order', data: { total: 12.5 } },
        { data: 'no topic: not selected' },
        { topic: 'weather', data: 'not selected' },
        { topic: 'news', data: 'plain text' },
        { topic: 'orders/2', data: [1, 2] },
        { topic: 'orders/3', data: 'after --count' },
      ]);
      assert.equal(published.status, 202);
      const ids = published.body.map((entry: { id: string }) => entry.id);
      assert.equal(await run.done, 0, run.stderr.text);
      const lines = jsonLines(run.stdout.text);
      assert.deepEqual(
        lines.map(({ id, event, data }) => ({ id, event, data })),
        [
          { id: ids[1], event: 'order', data: { total: 12.5 } },
          { id: ids[4], event: 'message', data: 'plain text' },
          { id: ids[5], event: 'message', data: [1, 2] },
        ],
      );
      for (const line of lines) assert.ok(!Number.isNaN(Date.parse(line.received)), 'received is a time');
    });
  });

  test('--last-event-id replays what came after it; an unknown id is reported in words on stderr', async () => {
    await withHub({}, async (hub) => {
      const published = await trigger(hub.url, [{ data: 1 }, { data: 2 }, { data: 3 }]);
      const ids = published.body.map((entry: { id: string }) => entry.id);
      const replay = tail(['--json', '--count', '2', '--last-event-id', ids[0]], envFor(hub.url));
      assert.equal(await replay.done, 0, replay.stderr.text);
      assert.deepEqual(jsonLines(replay.stdout.text).map((line) => [line.id, line.data]), [[ids[1], 2], [ids[2], 3]]);

      const unknown = tail(['--json', '--count', '1', '--last-event-id', 'no-such-id'], envFor(hub.url));
      await unknown.ready();
      await unknown.stderr.untilIncludes('does not know the event id no-such-id');
      const live = await trigger(hub.url, { data: 'live' });
      assert.equal(await unknown.done, 0);
      assert.deepEqual(jsonLines(unknown.stdout.text).map((line) => line.id), [live.body.id], 'the resync notice is not an event on stdout');
    });
  });

  test('a token in --token or HERALD_TOKEN lets it receive private events; a refused stream exits 1', async () => {
    await withHub({ jwtKey: SECRET }, async (hub) => {
      const publisher = await mintToken({ key: SECRET, publish: ['**'], ttlSeconds: 600 });
      const subscriber = await mintToken({ key: SECRET, subscribe: ['orders/**'], ttlSeconds: 600 });
      const withFlag = tail(['orders/*', '--json', '--count', '1', '--token', subscriber], envFor(hub.url));
      const withEnv = tail(['orders/*', '--json', '--count', '1'], envFor(hub.url, { HERALD_TOKEN: subscriber }));
      await Promise.all([withFlag.ready(), withEnv.ready()]);
      const sent = await publish(['orders/9', '{"private": "yes"}', '--private', '--token', publisher], envFor(hub.url));
      assert.equal(sent.status, 0, sent.err);
      assert.deepEqual(await Promise.all([withFlag.done, withEnv.done]), [0, 0]);
      for (const run of [withFlag, withEnv]) {
        assert.deepEqual(jsonLines(run.stdout.text).map((line) => [line.id, line.data]), [[sent.out.trim(), { private: 'yes' }]]);
        assert.ok(!run.stderr.text.includes(subscriber));
      }

      const outside = tail(['news', '--token', subscriber], envFor(hub.url));
      assert.equal(await outside.done, 1);
      assert.match(outside.stderr.text, /^herald tail: HERALD_ERR_FORBIDDEN: .+\n$/);
      assert.ok(!outside.stderr.text.includes(subscriber));
    });
  });

  test('fails at once on a bad selector or an unreachable hub (exit 1), and on bad usage (exit 2)', async () => {
    await withHub({}, async (hub) => {
      const badSelector = tail(['orders/**/x'], envFor(hub.url));
      assert.equal(await badSelector.done, 1);
      assert.match(badSelector.stderr.text, /^herald tail: HERALD_ERR_INVALID_SELECTOR: .+\n$/);
    });
    const port = await freePort();
    const unreachable = tail([], envFor(`http://127.0.0.1:${port}`));
    assert.equal(await unreachable.done, 1);
    assert.equal(unreachable.stderr.text, `herald tail: cannot reach http://127.0.0.1:${port}: connection refused (is Herald running there?) (ECONNREFUSED)\n`);

    for (const [argv, message] of [
      [['--count', '0'], /invalid --count "0"/],
      [['--count', 'many'], /invalid --count "many"/],
      [['--follow'], /Unknown option '--follow'/],
      [['--url', 'localhost:3004'], /invalid --url/],
    ] as const) {
      const run = tail([...argv], envFor(`http://127.0.0.1:${port}`));
      assert.equal(await run.done, 2, run.stderr.text);
      assert.match(run.stderr.text, message);
      assert.match(run.stderr.text, /^herald tail: [^\n]+ \(see herald tail --help\)\n$/);
    }
    const help = tail(['--help'], {});
    assert.equal(await help.done, 0);
    assert.equal(help.stdout.text, TAIL_HELP);
  });

  test('stops with exit 0 when its signal aborts (what Ctrl-C does)', async () => {
    await withHub({}, async (hub) => {
      const run = tail(['--json'], envFor(hub.url));
      await run.ready();
      await trigger(hub.url, { data: 1 });
      await run.stdout.untilLines(1);
      run.stop();
      assert.equal(await run.done, 0);
      assert.equal(jsonLines(run.stdout.text).length, 1);
    });
  });

  test('the reconnection delay doubles from 250 ms to 5 s and never undercuts the hub\'s retry:', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 50].map((attempt) => reconnectDelay(attempt, undefined)), [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
    assert.deepEqual([0, 1, 2, 3, 4].map((attempt) => reconnectDelay(attempt, 800)), [800, 800, 1000, 2000, 4000]);
    assert.equal(reconnectDelay(0, 0), 250, 'retry: 0 does not make it spin');
    assert.equal(reconnectDelay(9, 12_000), 12_000, 'a longer retry: wins over the cap');
  });

  describe('resuming after the hub goes away', () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-cli-tools-'));
    const hubs: HeraldProcess[] = [];
    after(() => {
      for (const hub of hubs) hub.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    test('prints every event exactly once, in order, across a clean shutdown and a crash', async () => {
      const store = join(dir, 'history.db');
      const start = async (port?: number): Promise<HeraldProcess> => {
        const hub = await spawnHerald(['--store', store, '--retry', '100ms', ...(port === undefined ? [] : ['--port', String(port)])]);
        hubs.push(hub);
        return hub;
      };
      const publishThree = async (url: string, round: number): Promise<string[]> => {
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          const answer = await trigger(url, { topic: `round/${round}`, data: { round, i } });
          assert.equal(answer.status, 202);
          ids.push(answer.body.id);
        }
        return ids;
      };

      const first = await start();
      const run = tail(['round/*', '--json', '--count', '9'], envFor(first.url));
      await run.ready();
      const ids = await publishThree(first.url, 1);
      await run.stdout.untilLines(3);

      // A clean shutdown: the hub ends the stream.
      first.child.kill('SIGTERM');
      assert.equal(await first.exited, 0);
      const second = await start(first.port);
      ids.push(...(await publishThree(second.url, 2))); // likely before tail is back: replayed from the store
      await run.stdout.untilLines(6);

      // A crash: the connection just breaks.
      second.child.kill('SIGKILL');
      await second.exited;
      const third = await start(first.port);
      ids.push(...(await publishThree(third.url, 3)));

      assert.equal(await run.done, 0, run.stderr.text);
      const lines = jsonLines(run.stdout.text);
      assert.deepEqual(lines.map((line) => line.id), ids, 'every event once, in order');
      assert.deepEqual(lines.map((line) => line.data), [1, 2, 3].flatMap((round) => [0, 1, 2].map((i) => ({ round, i }))));
      // A killed process's socket closes like any other (FIN), so both drops look alike to the client.
      assert.equal(run.stderr.text.match(/(the stream ended|the connection was lost)[^\n]*; reconnecting in [\d.]+ s after \d+-\d+\n/g)?.length, 2, run.stderr.text);
      assert.equal(run.stderr.text.match(/reconnected to /g)?.length, 2, run.stderr.text);
      assert.ok(!run.stderr.text.includes('may be missing'), 'no resync: history covered the gap');
      third.child.kill('SIGTERM');
      await third.exited;
    });
  });
});

/** Whether main.ts dispatches `herald <command>` yet: its help is the command's, not the server's. */
function dispatches(command: string, help: string): boolean {
  const result = spawnSync(process.execPath, [CLI_PATH, command, '--help'], { encoding: 'utf8', timeout: 10_000 });
  return result.status === 0 && result.stdout === help;
}

/** The binary, with none of the developer's HERALD_* settings. */
function runBinary(args: string[], input?: string) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HERALD_') && name !== 'NO_COLOR'));
  const child = spawn(process.execPath, [CLI_PATH, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const stdout = new Capture();
  const stderr = new Capture();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => stdout.write(chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.write(chunk));
  child.stdin.end(input);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, stdout, stderr, exited };
}

describe('the herald binary', () => {
  const publishDispatched = dispatches('publish', PUBLISH_HELP);
  const tailDispatched = dispatches('tail', TAIL_HELP);

  test('herald publish publishes from an argument and from stdin', { skip: publishDispatched ? false : 'needs main.ts dispatch' }, async () => {
    await withHub({}, async (hub) => {
      const tap = await SseTap.open(hub.url, '/events?topic=cli/*');
      const fromArg = runBinary(['publish', 'cli/1', '{"via": "argument"}', '--url', hub.url, '--event', 'cli']);
      const fromStdin = runBinary(['publish', 'cli/2', '--url', hub.url], '{"via": "stdin"}');
      assert.deepEqual(await Promise.all([fromArg.exited, fromStdin.exited]), [0, 0], fromArg.stderr.text + fromStdin.stderr.text);
      await tap.waitForEvents(2);
      const byData = new Map(tap.events.map((e) => [e.data, e]));
      assert.equal(byData.get('{"via":"argument"}')?.id, fromArg.stdout.text.trim());
      assert.equal(byData.get('{"via":"argument"}')?.event, 'cli');
      assert.equal(byData.get('{"via":"stdin"}')?.id, fromStdin.stdout.text.trim());
      tap.close();

      const refused = runBinary(['publish', 'cli/1', '1', '--url', `http://127.0.0.1:${await freePort()}`]);
      assert.equal(await refused.exited, 1);
      assert.match(refused.stderr.text, /^herald publish: cannot reach .*connection refused/);
      const usage = runBinary(['publish']);
      assert.equal(await usage.exited, 2);
      assert.match(usage.stderr.text, /^herald publish: missing <topic>/);
    });
  });

  test('herald tail follows, stops after --count, and exits 0 on SIGINT', { skip: tailDispatched ? false : 'needs main.ts dispatch' }, async () => {
    const hub = await startHub();
    try {
      const counted = runBinary(['tail', '--url', hub.url, '--json', '--count', '1']);
      const following = runBinary(['tail', '--url', hub.url]);
      await Promise.all([counted.stderr.untilIncludes('following'), following.stderr.untilIncludes('following')]);
      const sent = await trigger(hub.url, { event: 'ping', data: { n: 1 } });
      assert.equal(await counted.exited, 0, counted.stderr.text);
      assert.equal(jsonLines(counted.stdout.text)[0]?.id, sent.body.id);
      await following.stdout.untilIncludes(sent.body.id);
      assert.match(following.stdout.text, /  ping\n  \{\n    "n": 1\n  \}\n$/);
      following.child.kill('SIGINT');
      assert.equal(await following.exited, 0, following.stderr.text);
    } finally {
      await hub.close();
    }
  });
});
