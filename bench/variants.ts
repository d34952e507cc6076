/**
 * Herald against Herald, one setting changed, same harness, same run.
 *
 * - `npm run bench:stores`: what durability and sharing cost. History in a
 *   SQLite file (`--store`) and in Redis (`--redis`, a private redis-server
 *   with `appendfsync everysec`, pinned to the server's core, its CPU counted
 *   as the server's) against the in-memory default: publish-to-delivery
 *   latency under fan-out and publish throughput.
 * - `npm run bench:workers`: `--workers 2` (both cores) against one process
 *   pinned to one core: deliveries/s when publishers saturate the hub.
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runScenario, type RunMetrics, type RunSettings, type Scenario } from './harness.js';
import type { BenchReport, ScenarioResult } from './report-types.js';
import { machineInfo, markdownTable, pinSelf } from './run.js';
// The tests' private redis-server, reused so the bench never touches a shared one.
import { startRedis, type TestRedis } from '../test/support/redis-server.js';

/** One column of the table: how Herald is started for it. */
interface Variant {
  readonly name: string;
  /** Flags for this run; `run` numbers runs so each can start from an empty store. */
  args(context: { readonly scratch: string; readonly redis: TestRedis | undefined; readonly run: string }): string[];
  /** Pin the server to the bench's server core (else it may use every core). */
  readonly pinned: boolean;
  readonly needsRedis?: boolean;
}

interface Suite {
  readonly scenarios: readonly Scenario[];
  readonly variants: readonly Variant[];
  /** Ratios are each column over this one; none: the first column over each other. */
  readonly baseline?: string;
}

const SUITES: Record<string, Suite> = {
  stores: {
    scenarios: [
      { id: 'fanout-1k-200', title: '1k subscribers × 200 ev/s', kind: 'fanout', subscribers: 1000, rate: 200 },
      { id: 'fanout-100-1000', title: '100 subscribers × 1000 ev/s', kind: 'fanout', subscribers: 100, rate: 1000 },
      { id: 'publish-single', title: 'publish, single events (100 subscribers)', kind: 'publish', subscribers: 100, batch: 1 },
      { id: 'publish-batch', title: 'publish, batches of 50 (100 subscribers)', kind: 'publish', subscribers: 100, batch: 50 },
    ],
    variants: [
      { name: 'sqlite', pinned: true, args: ({ scratch, run }) => ['--store', join(scratch, `${run}.db`)] },
      { name: 'redis', pinned: true, needsRedis: true, args: ({ redis, run }) => ['--redis', redis!.url, '--redis-prefix', run] },
      { name: 'memory', pinned: true, args: () => [] },
    ],
    baseline: 'memory',
  },
  workers: {
    scenarios: [
      { id: 'publish-single-1k', title: 'publish, single events (1k subscribers)', kind: 'publish', subscribers: 1000, batch: 1 },
      { id: 'publish-batch-1k', title: 'publish, batches of 10 (1k subscribers)', kind: 'publish', subscribers: 1000, batch: 10 },
      { id: 'fanout-2k-500', title: '2k subscribers × 500 ev/s', kind: 'fanout', subscribers: 2000, rate: 500 },
    ],
    variants: [
      { name: 'workers-2', pinned: false, args: () => ['--workers', '2'] },
      { name: 'single', pinned: true, args: () => [] },
    ],
  },
};

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5000' },
      json: { type: 'string' },
      only: { type: 'string' },
      markdown: { type: 'string' },
    },
  });
  const suiteName = positionals[0] ?? 'stores';
  const suite = SUITES[suiteName];
  if (suite === undefined) throw new Error(`unknown suite ${suiteName}; choose ${Object.keys(SUITES).join(' or ')}`);
  const runs = Number(values.runs);
  const durationMs = Number(values.duration);
  const serverCpu = cpus().length >= 2 && pinSelf('1') ? '0' : undefined;
  const scratch = mkdtempSync(join(tmpdir(), 'herald-bench-variants-'));
  const results: ScenarioResult[] = [];
  const redis = suite.variants.some((v) => v.needsRedis) ? await startRedis({ fsync: 'everysec', ...(serverCpu === undefined ? {} : { cpu: serverCpu }) }) : undefined;
  const redisPids = (): number[] => {
    const pid = redis?.pid();
    return pid === undefined ? [] : [pid];
  };
  try {
    const scenarios = suite.scenarios.filter((candidate) => values.only === undefined || candidate.id === values.only);
    const total = scenarios.length * runs * suite.variants.length;
    const started = Date.now();
    let done = 0;
    for (const scenario of scenarios) {
      const result: ScenarioResult = { scenario, runs: {} };
      results.push(result);
      for (let run = 0; run < runs; run++) {
        for (const variant of suite.variants) {
          const settings: RunSettings = {
            durationMs,
            serverCpu: variant.pinned ? serverCpu : undefined,
            heraldArgs: variant.args({ scratch, redis, run: `${scenario.id}-${variant.name}-${run}` }),
            ...(variant.needsRedis ? { companionPids: redisPids } : {}),
          };
          const metrics: RunMetrics = await runScenario('herald', scenario, settings);
          (result.runs[variant.name] ??= []).push(metrics);
          done++;
          const left = Math.ceil((((Date.now() - started) / done) * (total - done)) / 60_000);
          process.stderr.write(`[${done}/${total}] ${scenario.id} ${variant.name} run ${run + 1}: p99 ${metrics.latencyMs?.p99.toFixed(1) ?? '-'} ms, ` +
            `${metrics.publishedPerSecond?.toFixed(0) ?? '-'} events/s published, ${metrics.deliveriesPerSecond?.toFixed(0) ?? '-'} deliveries/s, ` +
            `server CPU ${metrics.serverCpuLoad?.toFixed(2) ?? '-'} cores, lost ${metrics.lost ?? 0} (about ${left} min left)\n`);
        }
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await redis?.stop();
  }
  const report: BenchReport = {
    date: new Date().toISOString(),
    command: `npm run bench:${suiteName} -- ${process.argv.slice(3).join(' ')}`.trim(),
    machine: machineInfo(),
    settings: { runs, durationMs, serverCpu },
    servers: suite.variants.map((variant) => variant.name),
    results,
  };
  const table = markdownTable(report, suite.baseline);
  process.stdout.write(`\n${table}\n`);
  const json = values.json ?? `bench/results/${suiteName}.json`;
  const markdown = values.markdown ?? `bench/results/${suiteName}.md`;
  for (const [file, content] of [[json, JSON.stringify(report, null, 2)], [markdown, `${table}\n`]] as const) {
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, content);
  }
}

await main();
