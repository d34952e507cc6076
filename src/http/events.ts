/**
 * `GET /events`: turns an HTTP response into a hub subscriber.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hub } from '../hub/hub.js';
import type { StreamSink } from '../hub/sink.js';

/** One small object per stream; methods live on the prototype, not in per-connection closures. */
class ResponseSink implements StreamSink {
  constructor(private readonly res: ServerResponse) {}

  write(chunk: Buffer | string): boolean {
    if (this.res.destroyed || this.res.writableEnded) return true;
    return this.res.write(chunk);
  }

  get pendingBytes(): number {
    return this.res.writableLength;
  }

  onDrain(callback: () => void): void {
    this.res.once('drain', callback);
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }

  destroy(): void {
    this.res.destroy();
  }
}

export const STREAM_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  // no-transform: compression proxies must not buffer or gzip the stream.
  'Cache-Control': 'no-cache, no-transform',
  // nginx: do not buffer this response.
  'X-Accel-Buffering': 'no',
} as const;

/** Throws a HeraldError (bad selector, too many connections, shutdown) before any byte is written. */
export function handleEvents(hub: Hub, req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
  const header = req.headers['last-event-id'];
  const lastEventId = (typeof header === 'string' && header !== '' ? header : undefined) ?? (query.get('lastEventId') || undefined);
  const subscriber = hub.subscribe({
    selectors: query.getAll('topic'),
    lastEventId,
    open: () => {
      req.socket.setNoDelay(true);
      res.writeHead(200, STREAM_HEADERS);
      return new ResponseSink(res);
    },
  });
  res.once('close', () => hub.unsubscribe(subscriber));
  // A write to a connection that just reset must not crash the process; `close` follows and cleans up.
  res.on('error', () => {});
}
