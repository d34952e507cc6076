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
import { cliDefaults, OPTION_SPECS, resolveOptions, type OptionSpec, type ResolvedOptions } from '../config/options.js';
import { exposureWarning, Herald } from '../herald.js';
import { engineOf } from '../log/create.js';
import { isHeraldError } from '../errors.js';
import { VERSION } from '../version.js';
import { helpText, parseCommandLine } from './args.js';
import { tokenCommand } from './token.js';
import { AggregatorRegistry } from 'prom-client';
import { createLogger, type Logger } from '../observe/logger.js';

const readyLine = (url: string, suffix = ''): string => `Herald ${VERSION} listening on ${url} (GET /events, POST /trigger, GET /health)${suffix}`;

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
    return resolveOptions({ ...cliDefaults(), ...command.options }, label);
  } catch (error) {
    process.stderr.write(`herald: ${(error as Error).message}\n`);
    process.exit(2);
  }
}

/**
 * Signal handlers go in before the ready line: a supervisor may signal as soon as it reads it.
 * A backstop makes the process exit within the shutdown budget whatever hangs.
 */
function onStopSignal(logger: Logger, budgetMs: number, stop: () => Promise<void>, announce: boolean): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    if (announce) logger.info({ signal }, `Herald received ${signal}: ending streams and finishing publishes`);
    setTimeout(() => process.exit(0), budgetMs).unref();
    stop().then(
      () => {
        if (announce) logger.info('Herald stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
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
  return `cannot listen: ${why}`;
}

/** JSON lines, or coloured ones when standard output is a terminal. */
async function loggerFor(options: ResolvedOptions): Promise<Logger> {
  const logger = await createLogger({ level: options.logLevel, pretty: process.stdout.isTTY === true });
  return cluster.isWorker ? logger.child({ worker: process.pid }) : logger;
}

/** What the start line says about the setup (never a secret). */
function setupOf(options: ResolvedOptions): Record<string, unknown> {
  return {
    version: VERSION,
    store: engineOf(options).name,
    auth: exposureWarning(options, '0.0.0.0') === undefined ? 'jwt' : 'loopback publishers only',
    workers: options.workers,
  };
}

/** One process serving the hub: the whole hub, or one worker of `--workers`. */
async function serve(options: ResolvedOptions): Promise<void> {
  const worker = cluster.isWorker;
  const logger = await loggerFor(options);
  // Workers without Redis share the primary's log; with Redis each follows Redis itself.
  const eventLog = worker && !engineOf(options).shared ? new WorkerEventLog(process as never) : undefined;
  let herald: Herald;
  try {
    herald = new Herald(options, { eventLog, logger, label: labelOf, warnOnExposure: !worker });
  } catch (error) {
    process.stderr.write(`herald: ${(error as Error).message}\n`);
    process.exit(2);
  }
  onStopSignal(logger, options.shutdownTimeout + 900, () => herald.close(), !worker);
  if (worker) {
    // The primary aggregates the workers' metrics for --metrics-port; constructing an
    // aggregator is what makes prom-client answer the primary's requests here.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([herald.metrics.registry]);
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
    logger.info({ url, ...setupOf(options) }, readyLine(url));
  } catch (error) {
    // A failed start is a one-line message on stderr, like a bad option (an unusable --store is one).
    if (isHeraldError(error) && error.code === 'HERALD_ERR_INVALID_OPTION') {
      process.stderr.write(`herald: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`herald: ${listenFailure(options, error)}\n`);
    process.exit(1);
  }
}

async function supervise(options: ResolvedOptions): Promise<void> {
  const logger = await loggerFor(options);
  const primary = new ClusterPrimary(options, { info: (line) => logger.info(line), warn: (line) => logger.warn(line) });
  onStopSignal(logger, options.shutdownTimeout * 2 + 2000, () => primary.stop(), true);
  try {
    const exposed = exposureWarning(options);
    if (exposed !== undefined) logger.warn(exposed);
    const url = await primary.start();
    logger.info({ url, ...setupOf(options) }, readyLine(url, ` with ${options.workers} workers`));
  } catch (error) {
    process.stderr.write(`herald: ${(error as Error).message}\n`);
    await primary.stop();
    process.exit(isHeraldError(error) && error.code === 'HERALD_ERR_INVALID_OPTION' ? 2 : 1);
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

const command = process.argv[2];
if (command === 'publish' || command === 'tail') {
  // Loaded only when asked for: the server never loads the clients.
  const run = command === 'publish' ? (await import('./publish.js')).publishCommand : (await import('./tail.js')).tailCommand;
  // exitCode, not exit(): piped output is written out first.
  process.exitCode = await run(process.argv.slice(3), process.env);
} else {
  const options = command === 'token' ? await token(process.argv.slice(3)) : readOptions(process.argv.slice(2));
  if (options !== undefined) {
    if (options.workers > 1 && cluster.isPrimary) await supervise(options);
    else await serve(options);
  }
}
