/**
 * Structured logs: JSON lines (pino) for machines, coloured lines on a
 * terminal (pino-pretty, loaded only then).
 *
 * One line per start, stop, error and dropped subscriber, each with the
 * request id where there is a request. Tokens and secrets are never logged:
 * nothing here logs request headers or URLs with their query.
 */

import type { LogLevel } from '../config/options.js';

/** What Herald logs through: pino's methods, so a pino logger (or anything shaped like one) can be passed in. */
export interface Logger {
  error(fields: object, message?: string): void;
  error(message: string): void;
  warn(fields: object, message?: string): void;
  warn(message: string): void;
  info(fields: object, message?: string): void;
  info(message: string): void;
  debug(fields: object, message?: string): void;
  debug(message: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export interface LoggerSettings {
  readonly level: LogLevel;
  /** Human-readable, coloured lines (for a terminal) instead of JSON. */
  readonly pretty: boolean;
  /** Where lines go; default standard output. */
  readonly destination?: NodeJS.WritableStream;
}

/** The `herald` command's logger. Loads pino, and pino-pretty only for a terminal. */
export async function createLogger({ level, pretty: human, destination = process.stdout }: LoggerSettings): Promise<Logger> {
  const { pino } = await import('pino');
  const base = { name: 'herald', pid: process.pid };
  if (!human) return pino({ level, base }, destination) as Logger;
  const { default: pretty } = await import('pino-pretty');
  // Synchronous, so the last lines before an exit are not lost.
  return pino({ level, base }, pretty({ colorize: true, sync: true, destination, ignore: 'pid,hostname,name', translateTime: 'SYS:HH:MM:ss.l' })) as Logger;
}

function quiet(): void {}

/** A logger that writes nothing: the default of `createHub()`. */
export function silentLogger(): Logger {
  const logger: Logger = { error: quiet, warn: quiet, info: quiet, debug: quiet, child: () => logger };
  return logger;
}

let sequence = 0;
const processTag = Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, '0');

/**
 * The id of a request: the client's `X-Request-Id` when it is a plain token
 * (a proxy's), else a short id unique in this process.
 */
export function requestIdOf(given: string | undefined): string {
  if (given !== undefined && /^[A-Za-z0-9._:-]{1,128}$/.test(given)) return given;
  return `${processTag}-${(++sequence).toString(36)}`;
}
