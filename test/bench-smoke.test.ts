/**
 * A tiny run of the benchmark harness (bench/): the same load generator,
 * publisher and accounting as `npm run bench`, at a size fit for CI.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runScenario, type Scenario } from '../bench/harness.js';
import { latencyPlotSvg } from '../bench/plot.js';
import type { BenchReport } from '../bench/report-types.js';
import { markdownTable } from '../bench/run.js';

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
