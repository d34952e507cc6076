/**
 * Command-line parsing for `herald`: flags and env vars into options.
 */

import { parseArgs } from 'node:util';
import { formatDefault, OPTION_SPECS, type HeraldOptions, type OptionSpec } from '../config/options.js';
import { HeraldError } from '../errors.js';

const USAGE = `Usage: herald [options]

Runs the Herald SSE hub: subscribe with GET /events, publish with POST /trigger.
Every option can also be set with its environment variable; a flag wins over the env.
Durations take 250ms, 30s, 5m, 1h or milliseconds; sizes take 512kb, 1mb or bytes.

Commands:
  herald publish --help   publish an event to a hub (POST /trigger)
  herald tail --help      follow a hub's events (GET /events), resuming after drops
  herald token --help     mint a development token (HS256, --jwt-key)`;

const PLACEHOLDER: Partial<Record<OptionSpec['kind'], string>> = { integer: 'n', workers: 'n|auto', 'redis-url': 'url', routes: 'list' };

export function helpText(): string {
  const rows = OPTION_SPECS.map((spec) => [`--${spec.flag} <${PLACEHOLDER[spec.kind] ?? spec.kind}>`, spec.env.join(', '), spec.description, formatDefault(spec, 'cli')]);
  rows.push(['--help', '', 'show this help and exit', ''], ['--version', '', 'print the version and exit', '']);
  const width = (column: number): number => Math.max(...rows.map((row) => row[column]!.length));
  const [flagWidth, envWidth] = [width(0), width(1)];
  const lines = rows.map(([flag, env, description, value]) => {
    const shown = value === '' ? '' : ` (default: ${value})`;
    return `  ${flag!.padEnd(flagWidth)}  ${env!.padEnd(envWidth)}  ${description}${shown}`;
  });
  return `${USAGE}\n\nOptions:\n${lines.join('\n')}\n`;
}

export interface ParsedCommandLine {
  readonly options: HeraldOptions;
  /** Where each option came from, to name it in errors. */
  readonly sources: ReadonlyMap<string, string>;
  readonly help: boolean;
  readonly version: boolean;
}

/** Reads flags and env vars into options; a flag wins over an env var. */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommandLine {
  const flagOptions = Object.fromEntries(OPTION_SPECS.map((spec) => [spec.flag, { type: 'string' as const }]));
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...flagOptions, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new HeraldError('HERALD_ERR_INVALID_OPTION', `${(error as Error).message.split('\n')[0]} (see herald --help)`);
  }
  const options: Record<string, string> = {};
  const sources = new Map<string, string>();
  for (const spec of OPTION_SPECS) {
    const fromFlag = (parsed.values as Record<string, unknown>)[spec.flag];
    if (typeof fromFlag === 'string') {
      options[spec.key] = fromFlag;
      sources.set(spec.key, `--${spec.flag}`);
      continue;
    }
    const envName = spec.env.find((name) => env[name] !== undefined && env[name] !== '');
    if (envName !== undefined) {
      options[spec.key] = env[envName]!;
      sources.set(spec.key, envName);
    }
  }
  return { options, sources, help: parsed.values.help === true, version: parsed.values.version === true };
}
