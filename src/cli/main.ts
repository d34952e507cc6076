#!/usr/bin/env node
/**
 * The `herald` command: a thin shell over `createHub()`.
 */

import { resolveOptions, type OptionSpec } from '../config/options.js';
import { Herald } from '../herald.js';
import { VERSION } from '../version.js';
import { helpText, parseCommandLine } from './args.js';

async function main(argv: readonly string[]): Promise<void> {
  let herald: Herald;
  try {
    const command = parseCommandLine(argv, process.env);
    if (command.help) {
      process.stdout.write(helpText());
      return;
    }
    if (command.version) {
      process.stdout.write(`${VERSION}\n`);
      return;
    }
    const label = (spec: OptionSpec): string => command.sources.get(spec.key) ?? spec.key;
    herald = new Herald(resolveOptions(command.options, label));
  } catch (error) {
    process.stderr.write(`herald: ${(error as Error).message}\n`);
    process.exit(2);
  }

  // Signal handlers go in before the ready line: a supervisor may signal as soon as it reads it.
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`Herald received ${signal}: ending streams and finishing publishes\n`);
    // A backstop: whatever hangs, the process exits within the shutdown budget.
    setTimeout(() => process.exit(0), herald.options.shutdownTimeout + 900).unref();
    herald.close().then(
      () => {
        process.stdout.write('Herald stopped\n');
        process.exit(0);
      },
      (error: unknown) => {
        process.stderr.write(`herald: error while stopping: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  try {
    const { url } = await herald.listen();
    process.stdout.write(`Herald ${VERSION} listening on ${url} (GET /events, POST /trigger, GET /health)\n`);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    const why = code === 'EADDRINUSE' ? `port ${herald.options.port} on ${herald.options.host} is already in use` : message;
    process.stderr.write(`herald: cannot listen: ${why}\n`);
    process.exit(1);
  }
}

await main(process.argv.slice(2));
