/**
 * The JSON a benchmark run saves (`npm run bench -- --json FILE`), read back by the plot and the table.
 */

import type { RunMetrics, Scenario } from './harness.js';

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly kernel: string;
  readonly nginx: string | undefined;
}

export interface ScenarioResult {
  readonly scenario: Scenario;
  /** Every run's figures, per column: a server, or a configuration of Herald (absent: not run). */
  readonly runs: Partial<Record<string, RunMetrics[]>>;
}

export interface BenchReport {
  /** ISO date of the run. */
  readonly date: string;
  readonly command: string;
  readonly machine: MachineInfo;
  readonly settings: { readonly runs: number; readonly durationMs: number; readonly serverCpu: string | undefined };
  /** The columns compared, the first being the one the ratios are of (Herald, or a Herald configuration). */
  readonly servers: readonly string[];
  readonly results: readonly ScenarioResult[];
}
