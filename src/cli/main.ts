#!/usr/bin/env node
/**
 * The `herald` command: a thin shell over `createHub()`, plus the primary
 * process of `--workers`.
 */

import cluster from 'node:cluster';
import { ClusterPrimary } from '../cluster/primary.js';
import { Socket } from 'node:net';
import { isPrimaryMessage } from '../cluster/ipc.js';
import { WorkerEventLog } from '../cluster/worker-log.js';
import { OPTION_SPECS, resolveOptions, type OptionSpec, type ResolvedOptions } from '../config/options.js';
import { exposureWarning, Herald } from '../herald.js';
import { VERSION } from '../version.js';
import { helpText, parseCommandLine } from './args.js';
import { tokenCommand } from './token.js';

const warn = (line: string): void => void process.stderr.write(`${line}\n`);
const readyLine = (url: string, suffix = ''): string =>
  `Herald ${VERSION} listening on ${url} (GET /events, POST /trigger, GET /health)${suffix}\n`;

/** Names options in errors the way the user gave them: the flag or the env var. */
let labelOf: (key: keyof ResolvedOptions) => string = (key) => key;

function readOptions(argv: readonly string[]): ResolvedOptions | undefined {
  try {
    const command = parseCommandLine(argv, process.env);
    if (command.help) {
      process.stdout.write(helpText());
      return undefined;
    }
    if (command.version) {
      process.stdout.write(`${VERSION}\n`);
      return undefined;
    }
    const label = (spec: OptionSpec): string => command.sources.get(spec.key) ?? spec.key;
    labelOf = (key) => command.sources.get(key) ?? `--${OPTION_SPECS.find((spec) => spec.key === key)?.flag ?? key}`;
    return resolveOptions(command.options, label);
  } catch (error) {
    process.stderr.write(`herald: ${(error as Error).message}\n`);
    process.exit(2);
  }
}

/**
 * Signal handlers go in before the ready line: a supervisor may signal as soon as it reads it.
 * A backstop makes the process exit within the shutdown budget whatever hangs.
 */
function onStopSignal(budgetMs: number, stop: () => Promise<void>, announce: boolean): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    if (announce) process.stdout.write(`Herald received ${signal}: ending streams and finishing publishes\n`);
    setTimeout(() => process.exit(0), budgetMs).unref();
    stop().then(
      () => {
        if (announce) process.stdout.write('Herald stopped\n');
        process.exit(0);
      },
      (error: unknown) => {
        process.stderr.write(`herald: error while stopping: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}

function listenFailure(options: ResolvedOptions, error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  const why = code === 'EADDRINUSE' ? `port ${options.port} on ${options.host} is already in use` : message;
  return `herald: cannot listen: ${why}`;
}

/** One process serving the hub: the whole hub, or one worker of `--workers`. */
async function serve(options: ResolvedOptions): Promise<void> {
  const worker = cluster.isWorker;
  const tag = worker ? `herald[worker ${process.pid}]` : 'herald';
  // Workers without Redis share the primary's log; with Redis each follows Redis itself.
  const eventLog = worker && options.redis === '' ? new WorkerEventLog(process as never) : undefined;
  let herald: Herald;
  try {
    herald = new Herald(options, { eventLog, notify: (line) => warn(`${tag}: ${line}`), label: labelOf, warnOnExposure: !worker });
  } catch (error) {
    warn(`herald: ${(error as Error).message}`);
    process.exit(2);
  }
  onStopSignal(options.shutdownTimeout + 900, () => herald.close(), !worker);
  if (worker) {
    // The primary is gone: nothing will supervise or feed this worker any more.
    process.once('disconnect', () => void herald.close().finally(() => process.exit(0)));
  }
  try {
    if (worker) {
      // The primary listens and passes each connection here, paused, with its socket as the handle.
      const accept = await herald.attach();
      process.on('message', (message: unknown, handle: unknown) => {
        if (!isPrimaryMessage(message) || message.herald !== 'connection' || !(handle instanceof Socket)) return;
        accept(handle);
        handle.resume();
      });
      process.send!({ herald: 'ready' });
      return;
    }
    const { url } = await herald.listen();
    process.stdout.write(readyLine(url));
  } catch (error) {
    warn(listenFailure(options, error));
    process.exit(1);
  }
}

async function supervise(options: ResolvedOptions): Promise<void> {
  const primary = new ClusterPrimary(options, { info: (line) => void process.stdout.write(`${line}\n`), warn });
  onStopSignal(options.shutdownTimeout * 2 + 2000, () => primary.stop(), true);
  try {
    const exposed = exposureWarning(options);
    if (exposed !== undefined) warn(`herald: ${exposed}`);
    const url = await primary.start();
    process.stdout.write(readyLine(url, ` with ${options.workers} workers`));
  } catch (error) {
    warn(`herald: ${(error as Error).message}`);
    await primary.stop();
    process.exit(1);
  }
}

async function token(argv: readonly string[]): Promise<void> {
  try {
    process.stdout.write(await tokenCommand(argv, process.env));
  } catch (error) {
    process.stderr.write(`herald token: ${(error as Error).message}\n`);
    process.exit(2);
  }
}

const options = process.argv[2] === 'token' ? await token(process.argv.slice(3)) : readOptions(process.argv.slice(2));
if (options !== undefined) {
  if (options.workers > 1 && cluster.isPrimary) await supervise(options);
  else await serve(options);
}
