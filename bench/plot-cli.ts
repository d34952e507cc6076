/**
 * Re-plots a saved benchmark report without re-running it:
 *
 *   node dist/bench/plot-cli.js results.json out.svg
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { latencyPlotSvg } from './plot.js';
import type { BenchReport } from './report-types.js';

function main(argv: readonly string[]): number {
  const [input, output] = argv;
  if (input === undefined || output === undefined || argv.length > 2) {
    process.stderr.write('usage: node dist/bench/plot-cli.js results.json out.svg\n');
    return 2;
  }
  let report: BenchReport;
  try {
    report = JSON.parse(readFileSync(input, 'utf8')) as BenchReport;
  } catch (error) {
    process.stderr.write(`cannot read ${input}: ${(error as Error).message}\n`);
    return 1;
  }
  if (typeof report !== 'object' || report === null || !Array.isArray(report.results)) {
    process.stderr.write(`${input} is not a benchmark report (no "results" array)\n`);
    return 1;
  }
  writeFileSync(output, latencyPlotSvg(report));
  process.stdout.write(`wrote ${output}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
