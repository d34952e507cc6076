/**
 * `npm run bench:mercure`: Mercure's endpoint against Herald's own
 * `/events`, on the same Herald build, in the same run (issue #11).
 *
 * Three columns, each a fresh Herald pinned to core 0 (the load on core 1),
 * taking turns within each round:
 *
 * - `mercure`: subscribers on `GET /.well-known/mercure?topic=https://example.com/books/{id}`
 *   (a classic RFC 6570 template), updates published with
 *   `POST /.well-known/mercure` (a form, from loopback, no token) to
 *   `https://example.com/books/1`;
 * - `events *`: subscribers on `GET /events?topic=*`, events published with
 *   `POST /trigger` to the topic `bench` (`*` is one segment);
 * - `events all`: subscribers on `GET /events` with no selector (every
 *   event), the same publisher.
 *
 * Beside the measured subscribers, each run holds `--bystanders` more whose
 * selectors match nothing published, so the index has work and a wrong match
 * shows. On Mercure they are distinct templates, half beginning with the
 * topic's own prefix `https://example.com/books/` (the index tests each of
 * those on every publish), half elsewhere; on `/events`, Herald selectors
 * beside `bench` (`bench/8`, `other/7/*`). Each must receive nothing.
 *
 * The target: Mercure within 1.5x of `/events?topic=*` on server CPU per
 * delivery and on latency p99.
 *
 *   npm run bench:mercure                        3 runs: 10k subscribers, 10 ev/s, 5 s windows
 *   npm run bench:mercure -- --runs 1 --subscribers 1000 --bystanders 100
 *   npm run bench:mercure -- --cpu-prof /tmp/profiles        one .cpuprofile of Herald per run
 *   npm run bench:mercure -- --table bench/results/mercure.json
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runScenario, type Endpoint, type RunMetrics, type RunSettings, type Scenario } from './harness.js';
import type { BenchReport, ScenarioResult } from './report-types.js';
import { machineInfo, markdownTable, median, pinSelf, type Metric } from './run.js';
import { jsonPublish, sseGet, type ServerUnderTest } from './servers.js';

const MERCURE_PATH = '/.well-known/mercure';
export const MERCURE_TOPIC = 'https://example.com/books/1';
export const MERCURE_TEMPLATE = 'https://example.com/books/{id}';
const HERALD_TOPIC = 'bench';
/** The column the others are compared with, and the target's factor. */
export const BASELINE = 'events *';
export const TARGET = 1.5;

function mercureGet(server: ServerUnderTest, topics: readonly string[]): string {
  const query = new URLSearchParams(topics.map((topic): [string, string] => ['topic', topic]));
  return sseGet(`${MERCURE_PATH}?${query}`, server.port);
}

function eventsGet(server: ServerUnderTest, topic: string | undefined): string {
  return sseGet(topic === undefined ? '/events' : `/events?${new URLSearchParams({ topic })}`, server.port);
}

/** Mercure's publish: one update per request, a form. */
function mercurePublish(topic: string, dataTexts: readonly string[]): { path: string; contentType: string; body: string } | undefined {
  if (dataTexts.length !== 1) return undefined;
  return { path: MERCURE_PATH, contentType: 'application/x-www-form-urlencoded', body: new URLSearchParams({ topic, data: dataTexts[0]! }).toString() };
}

/**
 * `count` distinct templates that do not match {@link MERCURE_TOPIC}: even
 * ones share its prefix (so the index tests each on every publish), odd ones
 * do not. Each compiles in under a millisecond (literal text after the first
 * `{` is what makes a compile slow, see `src/topics/uri-template.ts`).
 */
export function mercureBystanders(count: number): string[] {
  return Array.from({ length: count }, (_, i) => (i % 2 === 0 ? `https://example.com/books/{id}/reviews/{r${i}}` : `https://example.com/authors/${i}/{id}`));
}

/** `count` Herald selectors that do not match the topic `bench`. */
export function heraldBystanders(count: number): string[] {
  return Array.from({ length: count }, (_, i) => (i % 2 === 0 ? `bench/${i}` : `other/${i}/*`));
}

export interface MercureReport extends BenchReport {
  /** The CLI measured: `this checkout` or a path given with `--herald`. */
  readonly herald: string;
  /** 1, 5 and 15 min load averages before and after the runs. */
  readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
}

export interface Column {
  readonly name: string;
  endpoint(bystanders: number): Endpoint;
}

export const COLUMNS: readonly Column[] = [
  {
    name: 'mercure',
    endpoint: (bystanders) => ({
      topic: MERCURE_TOPIC,
      subscribeRequest: (server) => mercureGet(server, [MERCURE_TEMPLATE]),
      publishRequest: mercurePublish,
      bystanders: (server) => mercureBystanders(bystanders).map((template) => mercureGet(server, [template])),
    }),
  },
  {
    name: BASELINE,
    endpoint: (bystanders) => ({
      topic: HERALD_TOPIC,
      subscribeRequest: (server) => eventsGet(server, '*'),
      publishRequest: jsonPublish,
      bystanders: (server) => heraldBystanders(bystanders).map((selector) => eventsGet(server, selector)),
    }),
  },
  {
    name: 'events all',
    endpoint: (bystanders) => ({
      topic: HERALD_TOPIC,
      subscribeRequest: (server) => eventsGet(server, undefined),
      publishRequest: jsonPublish,
      bystanders: (server) => heraldBystanders(bystanders).map((selector) => eventsGet(server, selector)),
    }),
  },
];

export const MERCURE_METRICS: readonly Metric[] = [
  { label: 'server CPU s per million deliveries', read: (r) => r.cpuPerMillionDeliveries, digits: 2, ratio: true },
  { label: 'latency p50 (ms)', read: (r) => r.latencyMs?.p50, digits: 1, ratio: true },
  { label: 'latency p99 (ms)', read: (r) => r.latencyMs?.p99, digits: 1, ratio: true },
  { label: 'latency max (ms)', read: (r) => r.latencyMs?.max, digits: 1, ratio: true },
  { label: 'deliveries/s', read: (r) => r.deliveriesPerSecond, digits: 0, ratio: true },
  { label: 'lost deliveries', read: (r) => r.lost, digits: 0, ratio: false },
  { label: 'events to non-matching subscribers', read: (r) => r.bystanderEvents, digits: 0, ratio: false },
  { label: 'server CPU (cores)', read: (r) => r.serverCpuLoad, digits: 2, ratio: true },
  { label: 'load generator CPU (cores)', read: (r) => r.clientCpuLoad, digits: 2, ratio: false },
  { label: 'time to connect the subscribers (s)', read: (r) => r.connectSeconds, digits: 2, ratio: true },
];

/** What is wrong with a run's figures (connections refused, events lost or misdelivered), or undefined. */
export function problemOf(run: RunMetrics, subscribers: number, bystanders: number): string | undefined {
  if (run.connected !== subscribers) return `${run.connected} of ${subscribers} subscribers connected`;
  if ((run.published ?? 0) === 0) return 'nothing was published';
  if (run.lost !== 0) return `${run.lost} deliveries lost`;
  if (run.deliveries !== run.published! * subscribers) return `${run.deliveries} deliveries for ${run.published} events × ${subscribers}`;
  if (bystanders > 0 && run.bystanders !== bystanders) return `${run.bystanders ?? 0} of ${bystanders} non-matching subscribers stayed connected`;
  if ((run.bystanderEvents ?? 0) !== 0) return `non-matching subscribers received ${run.bystanderEvents} events`;
  return undefined;
}

/** The table, the target's lines and the machine's load, as printed. */
export function render(report: MercureReport): string {
  const table = markdownTable(report, BASELINE, MERCURE_METRICS);
  const load = (figures: readonly number[]): string => figures.map((figure) => figure.toFixed(2)).join(' ');
  const notes = [
    ...report.results.flatMap(targetLines),
    `- load average (1, 5, 15 min) before: ${load(report.loadAverage.start)}, after: ${load(report.loadAverage.end)} (well above 0 before: other work shared the machine)`,
  ];
  return `${table}\n\n${notes.join('\n')}\n`;
}

/** The target's lines: Mercure over `/events?topic=*`, CPU per delivery and p99, medians. */
export function targetLines(result: ScenarioResult): string[] {
  const of = (column: string, read: (run: RunMetrics) => number | undefined): number => median((result.runs[column] ?? []).map((run) => read(run) ?? Number.NaN));
  return [
    ['server CPU per delivery', (r: RunMetrics) => r.cpuPerMillionDeliveries] as const,
    ['latency p99', (r: RunMetrics) => r.latencyMs?.p99] as const,
  ].map(([what, read]) => {
    const ratio = of('mercure', read) / of(BASELINE, read);
    const verdict = !Number.isFinite(ratio) ? 'n/a' : ratio <= TARGET ? 'met' : 'missed';
    return `- ${what}: mercure/${BASELINE} = ${Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'}x (target ≤ ${TARGET}x): **${verdict}**`;
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      subscribers: { type: 'string', default: '10000' },
      bystanders: { type: 'string', default: '1000' },
      rate: { type: 'string', default: '10' },
      duration: { type: 'string', default: '5000' },
      'per-worker': { type: 'string', default: '4000' },
      json: { type: 'string', default: 'bench/results/mercure.json' },
      markdown: { type: 'string', default: 'bench/results/mercure.md' },
      'cpu-prof': { type: 'string' },
      herald: { type: 'string' },
      table: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`Usage: npm run bench:mercure -- [--runs 3] [--subscribers 10000] [--bystanders 1000] [--rate 10] [--duration 5000]
  [--per-worker 4000] [--json FILE] [--markdown FILE] [--cpu-prof DIR] [--herald CLI]
--herald CLI: the Herald to measure (another build's dist/src/cli/main.js); default: this checkout's
npm run bench:mercure -- --table FILE: prints the table of a saved report (--json) again
--cpu-prof DIR: Herald runs under node --cpu-prof, one profile per run in DIR (named <column>-<run>.cpuprofile)\n`);
    return;
  }
  if (values.table !== undefined) {
    process.stdout.write(render(JSON.parse(readFileSync(values.table, 'utf8')) as MercureReport));
    return;
  }
  const runs = Number(values.runs);
  const subscribers = Number(values.subscribers);
  const bystanders = Number(values.bystanders);
  const rate = Number(values.rate);
  const durationMs = Number(values.duration);
  const perWorker = Number(values['per-worker']);
  for (const [name, value] of Object.entries({ runs, subscribers, rate, durationMs, perWorker })) {
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
  }
  if (!Number.isSafeInteger(bystanders) || bystanders < 0) throw new Error('--bystanders must be an integer ≥ 0');
  const twoCores = cpus().length >= 2 && pinSelf('1');
  const serverCpu = twoCores ? '0' : undefined;
  if (!twoCores) process.stderr.write('bench: cannot pin to separate cores (needs 2 cores and taskset); figures will be noisier\n');

  const scenario: Scenario = {
    id: `fanout-${subscribers}-${rate}`,
    title: `${subscribers.toLocaleString('en-US')} subscribers × ${rate} ev/s`,
    kind: 'fanout',
    subscribers,
    rate,
  };
  const result: ScenarioResult = { scenario, runs: {} };
  const problems: string[] = [];
  const loadStart = loadavg();
  const total = runs * COLUMNS.length;
  const started = Date.now();
  let done = 0;
  for (let run = 0; run < runs; run++) {
    // Columns take turns within each round, so drift on the machine hits all of them alike.
    for (const column of COLUMNS) {
      const profileName = `${column.name.replace('*', 'star').replace(/\W+/g, '-')}-${run + 1}.cpuprofile`;
      const settings: RunSettings = {
        durationMs,
        serverCpu,
        perWorker,
        endpoint: column.endpoint(bystanders),
        ...(values['cpu-prof'] === undefined ? {} : { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof'], '--cpu-prof-name', profileName] }),
        ...(values.herald === undefined ? {} : { heraldCli: resolve(values.herald) }),
      };
      const metrics = await runScenario('herald', scenario, settings);
      (result.runs[column.name] ??= []).push(metrics);
      const problem = problemOf(metrics, subscribers, bystanders);
      if (problem !== undefined) problems.push(`${column.name} run ${run + 1}: ${problem}`);
      done++;
      const left = Math.ceil((((Date.now() - started) / done) * (total - done)) / 60_000);
      process.stderr.write(`[${done}/${total}] ${column.name} run ${run + 1}: ${metrics.cpuPerMillionDeliveries?.toFixed(2) ?? '-'} CPU s/M, ` +
        `p50 ${metrics.latencyMs?.p50.toFixed(1) ?? '-'} ms, p99 ${metrics.latencyMs?.p99.toFixed(1) ?? '-'} ms, max ${metrics.latencyMs?.max.toFixed(1) ?? '-'} ms, ` +
        `lost ${metrics.lost ?? '-'}, to non-matching ${metrics.bystanderEvents ?? '-'}${problem === undefined ? '' : ` (${problem})`} (about ${left} min left)\n`);
    }
  }

  const loadAverage = { start: loadStart, end: loadavg() };
  const report: MercureReport = {
    date: new Date().toISOString(),
    command: `npm run bench:mercure -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machineInfo(),
    settings: { runs, durationMs, serverCpu },
    servers: COLUMNS.map((column) => column.name),
    results: [result],
    herald: values.herald === undefined ? 'this checkout' : resolve(values.herald),
    loadAverage,
  };
  const printed = render(report) + problems.map((problem) => `- problem: ${problem}\n`).join('');
  process.stdout.write(`\n${printed}`);
  for (const [file, content] of [[values.json, JSON.stringify(report, null, 2)], [values.markdown, printed]] as const) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
  process.stderr.write(`\nsaved ${values.json} and ${values.markdown}\n`);
  if (problems.length > 0) process.exitCode = 1;
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
