/**
 * Metrics (`GET /metrics`, `--metrics-port`) and logs (pino JSON lines),
 * checked after known traffic.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import { CLI_PATH, freePort, pollUntil, RawSocket, spawnHerald, SseTap, stopHerald, trigger, Waiters, withHub } from './support/helpers.js';

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** Parses Prometheus' text exposition format (what the tests need of it). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match !== null, `a well-formed sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found.reduce((sum, s) => sum + s.value, 0);
}

async function scrape(url: string): Promise<Sample[]> {
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseMetrics(await response.text());
}

test('GET /metrics counts streams, publishes and deliveries by topic bucket, bytes, latencies and refusals after known traffic', async () => {
  await withHub({ maxBuffer: 1024 }, async ({ url, port, watch }) => {
    const everything = await SseTap.open(url, '/events');
    const orders = await SseTap.open(url, '/events?topic=orders/*');
    assert.equal((await SseTap.open(url, '/events?topic=bad/**/x')).status, 400);
    for (const topic of ['orders/1', 'orders/2', 'users/1']) assert.equal((await trigger(url, { topic, data: topic })).status, 202);
    await everything.waitForEvents(3);
    await orders.waitForEvents(2);

    let samples = await scrape(url);
    assert.equal(valueOf(samples, 'herald_streams_open'), 2);
    assert.equal(valueOf(samples, 'herald_stream_connects_total'), 2);
    assert.equal(valueOf(samples, 'herald_stream_refusals_total', { reason: 'invalid' }), 1);
    assert.equal(valueOf(samples, 'herald_events_published_total', { topic: 'orders' }), 2);
    assert.equal(valueOf(samples, 'herald_events_published_total', { topic: 'users' }), 1);
    assert.equal(valueOf(samples, 'herald_events_delivered_total', { topic: 'orders' }), 4, 'two events to two streams');
    assert.equal(valueOf(samples, 'herald_events_delivered_total', { topic: 'users' }), 1);
    assert.equal(valueOf(samples, 'herald_publish_duration_seconds_count'), 3);
    assert.equal(valueOf(samples, 'herald_delivery_lag_seconds_count'), 3);
    assert.equal(valueOf(samples, 'herald_history_events'), 3);
    assert.equal(valueOf(samples, 'herald_event_log_up'), 1);
    assert.ok(valueOf(samples, 'herald_bytes_written_total') > 0);
    assert.ok(valueOf(samples, 'process_resident_memory_bytes') > 0, 'process metrics too');
    assert.ok(samples.filter((s) => s.name === 'herald_streams_open').every((s) => s.labels.node !== undefined), 'every series names its node');

    // A subscriber that never reads is dropped past --max-buffer: counted with its reason.
    const stuck = await RawSocket.send(port, 'GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
    stuck.socket.pause();
    await watch.untilConnections(3);
    const big = 'x'.repeat(64 * 1024);
    // The kernel's buffers fill first, then the hub's queue; the hub reports the drop the moment it happens.
    for (let i = 0; i < 200 && watch.closedFor('slow-consumer') === 0; i++) await trigger(url, { topic: 'bulk/1', data: big });
    assert.equal(watch.closedFor('slow-consumer'), 1, `the stuck subscriber was dropped (${watch.describe()})`);
    samples = await scrape(url);
    assert.equal(valueOf(samples, 'herald_stream_disconnects_total', { reason: 'slow-consumer' }), 1);
    assert.equal(valueOf(samples, 'herald_streams_open'), 2, 'the two readers are still open');
    stuck.close();
    everything.close();
    orders.close();
  });
});

test('topic labels stay bounded however many topics publishers invent', async () => {
  await withHub({}, async ({ url }) => {
    for (let i = 0; i < 60; i++) await trigger(url, { topic: `t${i}/x`, data: i });
    const samples = (await scrape(url)).filter((s) => s.name === 'herald_events_published_total');
    assert.equal(samples.length, 51, '50 buckets and "other"');
    assert.equal(valueOf(samples, 'herald_events_published_total', { topic: 'other' }), 10);
  });
});

test('herald_event_loop_delay_seconds: a histogram of event-loop delay that catches a stall and survives any number of scrapes', async () => {
  await withHub({}, async ({ url }) => {
    const count = (samples: Awaited<ReturnType<typeof scrape>>): number => valueOf(samples, 'herald_event_loop_delay_seconds_count');
    const over50 = (samples: Awaited<ReturnType<typeof scrape>>): number => count(samples) - valueOf(samples, 'herald_event_loop_delay_seconds_bucket', { le: '0.05' });
    const before = await pollUntil(() => scrape(url), (samples) => count(samples) >= 2, 'the first samples', { show: (samples) => String(count(samples)) });
    // Hold this process's event loop (the hub runs in it) for 150 ms.
    const until = Date.now() + 150;
    while (Date.now() < until);
    // A second scraper resets nothing: the stall shows in whichever scrape comes after it.
    await scrape(url);
    const after = await pollUntil(() => scrape(url), (samples) => over50(samples) > over50(before), 'the stall to be sampled', { show: (samples) => String(over50(samples)) });
    assert.ok(count(after) > count(before), 'the histogram only grows');
    assert.ok(valueOf(after, 'herald_event_loop_delay_seconds_sum') >= 0.1, 'its length is in the sum');
  });
});

test('--metrics-port serves metrics on their own port, and the main port no longer does', async () => {
  const metricsPort = await freePort();
  await withHub({ metricsPort }, async ({ url, herald }) => {
    assert.equal((await fetch(`${url}/metrics`)).status, 404);
    const address = herald.metricsAddress!;
    assert.equal(address.port, metricsPort);
    const samples = await scrape(`http://127.0.0.1:${metricsPort}`);
    assert.equal(valueOf(samples, 'herald_streams_open'), 0);
  });
});

test('logs are JSON lines: start with the URL, a dropped subscriber with its request id, stop; --log-level filters', async () => {
  const node = await spawnHerald(['--max-buffer', '1kb']);
  const stuck = await RawSocket.send(node.port, 'GET /events HTTP/1.1\r\nHost: x\r\nX-Request-Id: stuck-client-1\r\n\r\n');
  // A stream once greeted; then it stops reading.
  await stuck.untilIncludes(': connected\n\n');
  stuck.socket.pause();
  const big = 'y'.repeat(64 * 1024);
  for (let i = 0; i < 200 && !node.output().includes('subscriber dropped'); i++) await trigger(node.url, { data: big });
  await node.untilOutput('subscriber dropped');
  assert.equal(await stopHerald(node), 0, node.output());
  stuck.close();

  const lines = node.output().trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);
  const start = lines.find((line) => /listening on/.test(line.msg));
  assert.ok(start !== undefined && start.level === 30 && start.url === node.url && start.store === 'memory', JSON.stringify(lines[0]));
  const dropped = lines.find((line) => /subscriber dropped/.test(line.msg));
  assert.ok(dropped !== undefined, node.output());
  assert.equal(dropped.level, 40, 'a warning');
  assert.equal(dropped.requestId, 'stuck-client-1', 'the request id names the subscriber');
  assert.equal(dropped.client, '127.0.0.1');
  assert.ok(lines.some((line) => line.msg === 'Herald stopped'));
  for (const line of lines) assert.equal(typeof line.time, 'number');

  // At warn, not even the start line shows: wait for the port instead (bounded: 10 s).
  const port = await freePort();
  const quiet = spawn(process.execPath, [CLI_PATH, '--log-level', 'warn', '--host', '0.0.0.0', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let quietOutput = '';
  quiet.stdout!.on('data', (chunk: Buffer) => (quietOutput += chunk.toString()));
  const quietExit = new Promise((resolve) => quiet.once('exit', resolve));
  await pollUntil(
    () => fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false),
    (ok) => ok,
    `herald --log-level warn to answer /health on port ${port} (its output: ${quietOutput})`,
    { everyMs: 100 },
  );
  quiet.kill('SIGTERM');
  assert.equal(await quietExit, 0);
  const quietLines = quietOutput.trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>);
  assert.ok(quietLines.every((line) => line.level >= 40), 'no info lines at --log-level warn');
  assert.ok(quietLines.some((line) => /WARNING: listening on 0\.0\.0\.0/.test(line.msg)), 'warnings still show');
});

test('--workers 2 --metrics-port: the primary gathers both workers\' metrics, one node label each', async () => {
  const metricsPort = await freePort();
  const node = await spawnHerald(['--workers', '2', '--metrics-port', String(metricsPort)]);
  try {
    const taps = await Promise.all(Array.from({ length: 4 }, () => SseTap.open(node.url, '/events')));
    for (const tap of taps) assert.equal(tap.status, 200);
    // A worker counts a stream before it sends the head, and the primary asks the workers at each scrape: no wait.
    const samples = await scrape(`http://127.0.0.1:${metricsPort}`);
    const open = samples.filter((s) => s.name === 'herald_streams_open');
    assert.equal(new Set(open.map((s) => s.labels.node)).size, 2, 'one series per worker');
    assert.equal(valueOf(samples, 'herald_streams_open'), 4);
    for (const tap of taps) tap.close();
  } finally {
    await stopHerald(node);
  }
});

test('on a terminal, log lines are human-readable, not JSON', async () => {
  const { createLogger } = await import('../src/observe/logger.js');
  const { PassThrough } = await import('node:stream');
  const sink = new PassThrough();
  let text = '';
  const written = new Waiters();
  sink.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    written.notify();
  });
  const logger = await createLogger({ level: 'info', pretty: true, destination: sink });
  logger.info({ url: 'http://127.0.0.1:3004' }, 'Herald listening');
  logger.debug('not at info');
  // Lines are written in order: once the last one is in, a debug line would have come before it.
  logger.info('the last line');
  await written.until(() => text.includes('the last line'), 'the last line', 10_000, () => JSON.stringify(text));
  assert.match(text, /\x1B\[\d+m/, 'coloured');
  const plain = text.replace(/\x1B\[[0-9;]*m/g, '');
  assert.match(plain, /INFO: Herald listening/);
  assert.match(plain, /url: "http:\/\/127\.0\.0\.1:3004"/);
  assert.doesNotMatch(plain, /^\{/m, 'no JSON lines');
  assert.doesNotMatch(plain, /not at info/);
});

test('the new endpoints refuse wrong methods and unknown paths with JSON errors', async () => {
  const metricsPort = await freePort();
  await withHub({}, async ({ url }) => {
    for (const path of ['/metrics', '/dashboard/stream']) {
      const response = await fetch(`${url}${path}`, { method: 'POST', body: 'x' });
      assert.equal(response.status, 405, path);
      assert.ok(response.headers.get('allow')?.includes('GET'), path);
      assert.equal(((await response.json()) as any).error.code, 'HERALD_ERR_METHOD_NOT_ALLOWED');
    }
  });
  await withHub({ metricsPort }, async () => {
    const response = await fetch(`http://127.0.0.1:${metricsPort}/anything?x=1`);
    assert.equal(response.status, 404);
    assert.equal(((await response.json()) as any).error.code, 'HERALD_ERR_NOT_FOUND');
  });
});
