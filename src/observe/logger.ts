/**
 * Structured logs (pino): JSON lines for machines, coloured lines on a terminal.
 *
 * One line per start, stop, error and dropped subscriber, each with the
 * request id where there is a request. Tokens and secrets are never logged:
 * nothing here logs request headers or URLs with their query.
 */

import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { LogLevel } from '../config/options.js';

export type { Logger };


export interface LoggerSettings {
  readonly level: LogLevel;
  /** Human-readable, coloured lines (for a terminal) instead of JSON. */
  readonly pretty: boolean;
  /** Where lines go; default standard output. */
  readonly destination?: NodeJS.WritableStream;
}

export function createLogger({ level, pretty: human, destination = process.stdout }: LoggerSettings): Logger {
  const base = { name: 'herald', pid: process.pid };
  if (!human) return pino({ level, base }, destination);
  // Synchronous, so the last lines before an exit are not lost.
  return pino({ level, base }, pretty({ colorize: true, sync: true, destination, ignore: 'pid,hostname,name', translateTime: 'SYS:HH:MM:ss.l' }));
}

/** A logger that writes nothing: the default of `createHub()`. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

let sequence = 0;
const processTag = Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, '0');

/**
 * The id of a request: the client's `X-Request-Id` when it is a plain token
 * (a proxy's), else a short id unique in this process.
 */
export function requestIdOf(given: string | string[] | undefined): string {
  if (typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given)) return given;
  return `${processTag}-${(++sequence).toString(36)}`;
}
