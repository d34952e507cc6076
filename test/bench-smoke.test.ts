/**
 * A tiny run of the benchmark harness (bench/): the same load generator,
 * publisher and accounting as `npm run bench`, at a size fit for CI.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runScenario, type Scenario } from '../bench/harness.js';
import { problemOf } from '../bench/mercure.js';
import { latencyPlotSvg } from '../bench/plot.js';
import type { BenchReport } from '../bench/report-types.js';
import type { ResumeStormReport } from '../bench/resume-storm.js';
import { markdownTable } from '../bench/run.js';
import { redisSkip } from './support/redis-server.js';

const fanout: Scenario = { id: 'smoke', title: '300 subscribers × 100 ev/s', kind: 'fanout', subscribers: 300, rate: 100 };

test('bench smoke: 300 raw-TCP subscribers from 2 processes, 100 events/s, every delivery arrives', async () => {
  const herald = await runScenario('herald', fanout, { durationMs: 2000, serverCpu: undefined, perWorker: 150 });
  assert.equal(herald.connected, 300);
  assert.equal(herald.failedConnections, 0);
  assert.ok((herald.published ?? 0) > 0, 'events were published');
  assert.equal(herald.lost, 0, 'no delivery lost');
  assert.equal(herald.deliveries, herald.published! * 300, 'each subscriber got each event exactly once');
  const latency = herald.latencyMs;
  assert.ok(latency !== undefined, 'latency was sampled');
  assert.ok(latency.p50 > 0 && latency.p50 <= latency.p99 && latency.p99 <= latency.max && Number.isFinite(latency.max), `latencies are measured times: ${JSON.stringify(latency)}`);

  const naive = await runScenario('naive', fanout, { durationMs: 1000, serverCpu: undefined });
  assert.equal(naive.lost, 0, 'the naive peer runs under the same harness');

  const idle = await runScenario('herald', { id: 'idle', title: 'idle', kind: 'idle', subscribers: 200 }, { durationMs: 0, serverCpu: undefined });
  assert.equal(idle.connected, 200);
  assert.ok(Number.isFinite(idle.rssPerConnectionKiB), 'RSS per connection is measured');

  const report: BenchReport = {
    date: new Date().toISOString(),
    command: 'smoke',
    machine: { cpu: 'test', cores: 2, memoryGiB: 1, node: process.version, kernel: 'test', nginx: undefined },
    settings: { runs: 1, durationMs: 2000, serverCpu: undefined },
    servers: ['herald', 'naive'],
    results: [{ scenario: fanout, runs: { herald: [herald], naive: [naive] } }],
  };
  const table = markdownTable(report);
  assert.match(table, /\| 300 subscribers × 100 ev\/s \| lost deliveries \| 0 \| 0 \|/);
  assert.match(table, /herald\/naive/);
  assert.match(latencyPlotSvg(report), /^<svg[^]*<\/svg>\s*$/);
});

test('bench:resume smoke: a tiny storm (2,000 events, 3 resumers) against a baseline, SQLite and Redis, every resumer gets exactly its events', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-resume-smoke-'));
  try {
    const engines = redisSkip === false ? 'sqlite,redis' : 'sqlite';
    const json = join(dir, 'report.json');
    const run = spawnSync(
      process.execPath,
      [fileURLToPath(new URL('../bench/resume-storm.js', import.meta.url)), '--events', '2000', '--resumers', '3', '--runs', '1', '--window', '1000', '--warmup', '500',
        '--engines', engines, '--data-dir', dir, '--json', json, '--markdown', join(dir, 'report.md')],
      { encoding: 'utf8', timeout: 170_000 },
    );
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(readFileSync(json, 'utf8')) as ResumeStormReport;
    assert.equal(report.runs.length, engines.split(',').length * 2, 'a baseline and a storm run per engine');
    for (const figures of report.runs) {
      assert.equal(figures.failure, undefined, `${figures.engine} ${figures.kind}: ${figures.failure}`);
      assert.ok(figures.liveMs !== undefined && figures.liveMs.count > 0, 'live latency was measured');
      assert.equal(figures.liveLost, 0);
      assert.ok(figures.rss.peakBytes > 0, 'RSS was polled');
      assert.ok(figures.loop.maxSeconds !== undefined && figures.loop.over50ms !== undefined, 'event-loop delay was scraped');
      if (figures.kind === 'storm') {
        assert.deepEqual(figures.resumers?.errors, []);
        assert.equal(figures.resumers?.exact, 3, 'each resumer got exactly the 2 events of its topic');
        assert.equal(figures.resumers?.expectedEach, 2);
      }
    }
    assert.match(run.stdout, /\| sqlite \| live latency p99 \(ms\) \| [\d.]+ \| [\d.,]+ \| ≤ [\d.,]+ \(2 × baseline or 50 ms\) \|/);
    // Reusing the prepared history, and merging two reports into one table.
    const again = spawnSync(process.execPath, [fileURLToPath(new URL('../bench/resume-storm.js', import.meta.url)), '--merge', `${json},${json}`], { encoding: 'utf8' });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /current: no resumers \| current: storm \| current: no resumers/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench:mercure smoke: URI-template subscribers on /.well-known/mercure beside /events, every delivery arrives, non-matching subscribers get nothing', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-mercure-smoke-'));
  try {
    const json = join(dir, 'report.json');
    const run = spawnSync(
      process.execPath,
      [fileURLToPath(new URL('../bench/mercure.js', import.meta.url)), '--runs', '1', '--subscribers', '300', '--bystanders', '20', '--rate', '20', '--duration', '1000',
        '--per-worker', '150', '--json', json, '--markdown', join(dir, 'report.md')],
      { encoding: 'utf8', timeout: 110_000 },
    );
    assert.equal(run.status, 0, `${run.stderr}\n${run.stdout}`);
    const report = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
    assert.deepEqual(report.servers, ['mercure', 'events *', 'events all']);
    for (const column of report.servers) {
      const figures = report.results[0]?.runs[column];
      assert.equal(figures?.length, 1, `${column}: one run`);
      const [only] = figures;
      assert.equal(problemOf(only!, 300, 20), undefined, `${column}: each of 300 subscribers got each event once, the 20 others none`);
      assert.equal(only!.bystanders, 20);
      assert.ok(only!.latencyMs !== undefined && Number.isFinite(only!.cpuPerMillionDeliveries), `${column}: latency and CPU were measured`);
    }
    assert.match(run.stdout, /\| 300 subscribers × 20 ev\/s \| events to non-matching subscribers \| 0 \| 0 \| 0 \|/);
    assert.match(run.stdout, /\| 300 subscribers × 20 ev\/s \| latency max \(ms\) \| [\d.,]+ \| [\d.,]+ \| [\d.,]+ \| [\d.]+x \| [\d.]+x \|/);
    assert.match(run.stdout, /- latency p99: mercure\/events \* = [\d.]+x \(target ≤ 1\.5x\): \*\*(met|missed)\*\*/);
    // A saved report prints the same table again.
    const again = spawnSync(process.execPath, [fileURLToPath(new URL('../bench/mercure.js', import.meta.url)), '--table', json], { encoding: 'utf8' });
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout, readFileSync(join(dir, 'report.md'), 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
