/**
 * `npm run bench`: Herald against nchan and a naive Node server, in one run,
 * on one machine. Prints a Markdown table of medians (min–max) and the ratio
 * Herald/peer, saves the figures as JSON and plots latency against load.
 *
 *   npm run bench                          every scenario, 3 runs each
 *   npm run bench -- --quick               1 run, short windows
 *   npm run bench -- --scenarios fanout-1k --servers herald,nchan
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { runScenario, type RunMetrics, type Scenario } from './harness.js';
import { latencyPlotSvg } from './plot.js';
import type { BenchReport, MachineInfo, ScenarioResult } from './report-types.js';
import { nchanMissing, SERVER_NAMES, type ServerName } from './servers.js';

export const SCENARIOS: readonly Scenario[] = [
  { id: 'idle-1k', title: 'idle, 1k connections', kind: 'idle', subscribers: 1000 },
  { id: 'idle-10k', title: 'idle, 10k connections', kind: 'idle', subscribers: 10_000 },
  { id: 'idle-19k', title: 'idle, 19k connections', kind: 'idle', subscribers: 19_000 },
  { id: 'fanout-1k-50', title: '1k subscribers × 50 ev/s', kind: 'fanout', subscribers: 1000, rate: 50 },
  { id: 'fanout-1k-200', title: '1k subscribers × 200 ev/s', kind: 'fanout', subscribers: 1000, rate: 200 },
  { id: 'fanout-1k-1000', title: '1k subscribers × 1000 ev/s', kind: 'fanout', subscribers: 1000, rate: 1000 },
  { id: 'fanout-10k-5', title: '10k subscribers × 5 ev/s', kind: 'fanout', subscribers: 10_000, rate: 5 },
  { id: 'fanout-10k-10', title: '10k subscribers × 10 ev/s', kind: 'fanout', subscribers: 10_000, rate: 10 },
  { id: 'fanout-10k-50', title: '10k subscribers × 50 ev/s', kind: 'fanout', subscribers: 10_000, rate: 50 },
  { id: 'storm-10k', title: 'connect storm, 10k subscribers', kind: 'storm', subscribers: 10_000 },
  { id: 'publish-single', title: 'publish, single events (100 subscribers)', kind: 'publish', subscribers: 100, batch: 1 },
  { id: 'publish-batch', title: 'publish, batches of 50 (100 subscribers)', kind: 'publish', subscribers: 100, batch: 50 },
];

/** One row of the table: a figure read from each run. */
export interface Metric {
  readonly label: string;
  readonly read: (run: RunMetrics) => number | undefined;
  readonly digits: number;
  /** Ratios make no sense for counts that should be zero. */
  readonly ratio: boolean;
}

const METRICS: Record<Scenario['kind'], readonly Metric[]> = {
  idle: [{ label: 'RSS per connection (KiB)', read: (r) => r.rssPerConnectionKiB, digits: 1, ratio: true }],
  storm: [{ label: 'time to connect all (s)', read: (r) => r.connectSeconds, digits: 2, ratio: true }],
  fanout: [
    { label: 'server CPU s per million deliveries', read: (r) => r.cpuPerMillionDeliveries, digits: 2, ratio: true },
    { label: 'latency p50 (ms)', read: (r) => r.latencyMs?.p50, digits: 1, ratio: true },
    { label: 'latency p99 (ms)', read: (r) => r.latencyMs?.p99, digits: 1, ratio: true },
    { label: 'deliveries/s', read: (r) => r.deliveriesPerSecond, digits: 0, ratio: true },
    { label: 'lost deliveries', read: (r) => r.lost, digits: 0, ratio: false },
    { label: 'load generator CPU (cores)', read: (r) => r.clientCpuLoad, digits: 2, ratio: false },
  ],
  publish: [
    { label: 'events/s acknowledged', read: (r) => r.publishedPerSecond, digits: 0, ratio: true },
    { label: 'server CPU s per million published', read: (r) => r.cpuPerMillionPublished, digits: 2, ratio: true },
    { label: 'deliveries/s', read: (r) => r.deliveriesPerSecond, digits: 0, ratio: true },
    { label: 'lost deliveries', read: (r) => r.lost, digits: 0, ratio: false },
  ],
};

export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function format(value: number, digits: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function cell(values: readonly number[], digits: number): string {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return 'n/a';
  const shown = format(median(finite), digits);
  if (finite.length === 1) return shown;
  return `${shown} (${format(Math.min(...finite), digits)}–${format(Math.max(...finite), digits)})`;
}

/** The Markdown table: one row per scenario and metric, medians (min–max) and the first column's ratio to each other one. */
/**
 * The report as a Markdown table: each figure as median (min–max), then ratios.
 * Ratios compare the first column with each other one (Herald/peer), or, with
 * `baseline`, every other column with that one (e.g. sqlite/memory).
 * `metrics` replaces the rows each kind of scenario has by default.
 */
export function markdownTable(report: BenchReport, baseline?: string, metrics?: readonly Metric[]): string {
  const pairs: [string, string][] =
    baseline === undefined
      ? report.servers.slice(1).map((peer) => [report.servers[0]!, peer])
      : report.servers.filter((column) => column !== baseline).map((column) => [column, baseline]);
  const header = ['scenario', 'metric', ...report.servers, ...pairs.map(([a, b]) => `${a}/${b}`)];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`];
  for (const { scenario, runs } of report.results) {
    for (const metric of metrics ?? METRICS[scenario.kind]) {
      const values = (column: string): number[] => (runs[column] ?? []).map((run) => metric.read(run) ?? Number.NaN);
      const cells = report.servers.map((server) => cell(values(server), metric.digits));
      const ratios = pairs.map(([a, b]) => {
        if (!metric.ratio) return '';
        const ratio = median(values(a)) / median(values(b));
        return Number.isFinite(ratio) ? `${format(ratio, 2)}x` : 'n/a';
      });
      lines.push(`| ${scenario.title} | ${metric.label} | ${[...cells, ...ratios].join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

export function machineInfo(): MachineInfo {
  const nginx = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    kernel: release(),
    nginx: nginx.error === undefined ? (nginx.stderr || nginx.stdout).trim().replace(/^nginx version: /, '') : undefined,
  };
}

/** Pins this process (and the workers it forks) to `cpu`, leaving the other core to the server. */
export function pinSelf(cpu: string): boolean {
  try {
    execFileSync('taskset', ['-pc', cpu, String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5000' },
      servers: { type: 'string', default: SERVER_NAMES.join(',') },
      scenarios: { type: 'string', default: '' },
      quick: { type: 'boolean', default: false },
      json: { type: 'string', default: 'bench/results/latest.json' },
      plot: { type: 'string', default: 'bench/results/latency.svg' },
      markdown: { type: 'string', default: 'bench/results/latest.md' },
      'herald-args': { type: 'string', default: '' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`Usage: npm run bench -- [--runs 3] [--duration 5000] [--quick] [--servers herald,nchan,naive]
  [--scenarios id,prefix,...] [--json FILE] [--plot FILE] [--markdown FILE] [--herald-args "--flag value"]
Scenarios: ${SCENARIOS.map((s) => s.id).join(', ')}\n`);
    return;
  }
  const runs = values.quick ? 1 : Number(values.runs);
  const durationMs = values.quick ? 2000 : Number(values.duration);
  const wanted = values.scenarios.split(',').filter(Boolean);
  const scenarios = SCENARIOS.filter((s) => wanted.length === 0 || wanted.some((w) => s.id === w || s.id.startsWith(`${w}-`) || s.id.startsWith(w)));
  let servers = values.servers.split(',').filter((s): s is ServerName => (SERVER_NAMES as string[]).includes(s));
  const missing = nchanMissing();
  if (servers.includes('nchan') && missing !== undefined) {
    process.stderr.write(`bench: skipping nchan: ${missing}\n`);
    servers = servers.filter((s) => s !== 'nchan');
  }
  const twoCores = cpus().length >= 2 && pinSelf('1');
  const serverCpu = twoCores ? '0' : undefined;
  if (!twoCores) process.stderr.write('bench: cannot pin to separate cores (needs 2 cores and taskset); figures will be noisier\n');
  const heraldArgs = values['herald-args'].split(' ').filter(Boolean);

  const results: ScenarioResult[] = [];
  const total = scenarios.length * runs * servers.length;
  let done = 0;
  const started = Date.now();
  for (const scenario of scenarios) {
    const result: ScenarioResult = { scenario, runs: {} };
    results.push(result);
    for (let run = 0; run < runs; run++) {
      // Servers take turns within each round, so drift on the machine hits all of them alike.
      for (const server of servers) {
        const metrics = await runScenario(server, scenario, { durationMs, serverCpu, heraldArgs });
        (result.runs[server] ??= []).push(metrics);
        done++;
        const eta = ((Date.now() - started) / done) * (total - done);
        process.stderr.write(`[${done}/${total}] ${scenario.id} ${server} run ${run + 1}: ${summary(scenario, metrics)} (about ${Math.ceil(eta / 60_000)} min left)\n`);
      }
    }
  }

  const report: BenchReport = {
    date: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machineInfo(),
    settings: { runs, durationMs, serverCpu },
    servers,
    results,
  };
  const table = markdownTable(report);
  process.stdout.write(`\n${table}\n`);
  for (const [file, content] of [
    [values.json, JSON.stringify(report, null, 2)],
    [values.markdown, `${table}\n`],
    [values.plot, latencyPlotSvg(report)],
  ] as const) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
  process.stderr.write(`\nsaved ${values.json}, ${values.markdown} and ${values.plot}\n`);
}

function summary(scenario: Scenario, m: RunMetrics): string {
  switch (scenario.kind) {
    case 'idle':
      return `${m.connected} connected, ${format(m.rssPerConnectionKiB ?? Number.NaN, 1)} KiB each`;
    case 'storm':
      return `${m.connected} connected in ${format(m.connectSeconds, 2)} s`;
    case 'fanout':
      return `${format(m.deliveriesPerSecond ?? Number.NaN, 0)} deliveries/s, lost ${m.lost}, ${format(m.cpuPerMillionDeliveries ?? Number.NaN, 2)} CPU s/M, p99 ${format(m.latencyMs?.p99 ?? Number.NaN, 1)} ms`;
    case 'publish':
      return `${format(m.publishedPerSecond ?? Number.NaN, 0)} events/s`;
  }
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
