/**
 * `npm run bench:stores`: what durability costs. Herald with history in a
 * SQLite file (`--store`) against the in-memory default, same harness, same
 * run: publish-to-delivery latency under fan-out and publish throughput.
 * (Redis joins this table when the Redis event log lands.)
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runScenario, type RunMetrics, type Scenario } from './harness.js';
import type { BenchReport, ScenarioResult } from './report-types.js';
import { machineInfo, markdownTable, pinSelf } from './run.js';

const SCENARIOS: readonly Scenario[] = [
  { id: 'fanout-1k-200', title: '1k subscribers × 200 ev/s', kind: 'fanout', subscribers: 1000, rate: 200 },
  { id: 'fanout-100-1000', title: '100 subscribers × 1000 ev/s', kind: 'fanout', subscribers: 100, rate: 1000 },
  { id: 'publish-single', title: 'publish, single events (100 subscribers)', kind: 'publish', subscribers: 100, batch: 1 },
  { id: 'publish-batch', title: 'publish, batches of 50 (100 subscribers)', kind: 'publish', subscribers: 100, batch: 50 },
];

const COLUMNS = ['sqlite', 'memory'] as const;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5000' },
      json: { type: 'string', default: 'bench/results/stores.json' },
      markdown: { type: 'string', default: 'bench/results/stores.md' },
    },
  });
  const runs = Number(values.runs);
  const durationMs = Number(values.duration);
  const serverCpu = cpus().length >= 2 && pinSelf('1') ? '0' : undefined;
  const scratch = mkdtempSync(join(tmpdir(), 'herald-bench-store-'));
  const results: ScenarioResult[] = [];
  try {
    for (const scenario of SCENARIOS) {
      const result: ScenarioResult = { scenario, runs: {} };
      results.push(result);
      for (let run = 0; run < runs; run++) {
        for (const column of COLUMNS) {
          // A fresh file per run: every run starts from an empty store.
          const heraldArgs = column === 'sqlite' ? ['--store', join(scratch, `run-${scenario.id}-${run}.db`)] : [];
          const metrics: RunMetrics = await runScenario('herald', scenario, { durationMs, serverCpu, heraldArgs });
          (result.runs[column] ??= []).push(metrics);
          process.stderr.write(`${scenario.id} ${column} run ${run + 1}: p99 ${metrics.latencyMs?.p99.toFixed(1) ?? '-'} ms, ` +
            `${metrics.publishedPerSecond?.toFixed(0) ?? '-'} events/s published, lost ${metrics.lost ?? 0}\n`);
        }
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const report: BenchReport = {
    date: new Date().toISOString(),
    command: `npm run bench:stores -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machineInfo(),
    settings: { runs, durationMs, serverCpu },
    servers: COLUMNS,
    results,
  };
  const table = markdownTable(report);
  process.stdout.write(`\n${table}\n`);
  for (const [file, content] of [[values.json, JSON.stringify(report, null, 2)], [values.markdown, `${table}\n`]] as const) {
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, content);
  }
}

await main();
