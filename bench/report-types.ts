/**
 * The JSON a benchmark run saves (`npm run bench -- --json FILE`), read back by the plot and the table.
 */

import type { RunMetrics, Scenario } from './harness.js';
import type { ServerName } from './servers.js';

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
  /** Every run's figures, per server (a server absent here was not run). */
  readonly runs: Partial<Record<ServerName, RunMetrics[]>>;
}

export interface BenchReport {
  /** ISO date of the run. */
  readonly date: string;
  readonly command: string;
  readonly machine: MachineInfo;
  readonly settings: { readonly runs: number; readonly durationMs: number; readonly serverCpu: string | undefined };
  readonly servers: readonly ServerName[];
  readonly results: readonly ScenarioResult[];
}
