/**
 * A subscriber on a plain HTTP request that keeps the exact body bytes and
 * the events a spec-compliant parser (`eventsource-parser`) reads from them.
 */

import { request, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Waiters } from './waiting.js';

/** A parsed event plus its exact bytes on the wire. */
export interface TappedEvent extends EventSourceMessage {}

/**
 * A subscriber on a plain HTTP request: keeps the exact body bytes and the
 * events parsed by `eventsource-parser` (a spec-compliant parser).
 */
export class SseTap {
  readonly events: TappedEvent[] = [];
  readonly comments: string[] = [];
  retry: number | undefined;
  raw = '';
  status = 0;
  headers: IncomingHttpHeaders = {};
  ended = false;
  private readonly waiters = new Waiters();
  private socket: Socket | undefined;

  private constructor() {}

  static open(url: string, path = '/events', headers: Record<string, string> = {}): Promise<SseTap> {
    const tap = new SseTap();
    const parser = createParser({
      onEvent: (event) => tap.events.push(event),
      onComment: (comment) => tap.comments.push(comment),
      onRetry: (retry) => (tap.retry = retry),
    });
    return new Promise((resolve, reject) => {
      const req = request(`${url}${path}`, { headers, agent: false }, (res) => {
        tap.status = res.statusCode ?? 0;
        tap.headers = res.headers;
        tap.socket = res.socket;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          tap.raw += chunk;
          parser.feed(chunk);
          tap.notify();
        });
        const finish = (): void => {
          tap.ended = true;
          tap.notify();
        };
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
        resolve(tap);
      });
      req.on('error', reject);
      req.end();
    });
  }

  private notify(): void {
    this.waiters.notify();
  }

  /** Waits until `condition()` holds, or fails after `timeoutMs` with `what` in the message. */
  until(condition: () => boolean, what = 'condition', timeoutMs = 10_000): Promise<void> {
    const describe = (): string => `got ${this.events.length} events, raw tail: ${JSON.stringify(this.raw.slice(-300))}`;
    return this.waiters.until(condition, what, timeoutMs, describe);
  }

  waitForEvents(count: number, timeoutMs?: number): Promise<void> {
    return this.until(() => this.events.length >= count, `${count} events`, timeoutMs);
  }

  waitForEnd(timeoutMs?: number): Promise<void> {
    return this.until(() => this.ended, 'the stream to end', timeoutMs);
  }

  /**
   * Waits for the event with `id` and returns the events before it. With a
   * sentinel published after what is under test, "nothing else arrived" is
   * sound: a stream is delivered in order, so anything due came first.
   */
  async untilId(id: string, what = `event ${id}`, timeoutMs?: number): Promise<TappedEvent[]> {
    await this.until(() => this.events.some((event) => event.id === id), what, timeoutMs);
    return this.events.slice(0, this.events.findIndex((event) => event.id === id));
  }

  close(): void {
    this.socket?.destroy();
  }
}
