/**
 * `GET /events`: turns an HTTP response into a hub subscriber.
 *
 * On HTTP/1.1 the stream's body is delimited by the connection's end
 * (`Connection: close`, no chunked encoding), so the bytes on the socket are
 * exactly the SSE frames: the hub's framed Buffers go to the socket as they
 * are, one shared Buffer for every subscriber, with no per-write chunk header.
 * An SSE stream never shares its connection with another request anyway.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Hub } from '../hub/hub.js';
import type { StreamSink } from '../hub/sink.js';
import type { AccessPolicy } from './access.js';

/**
 * A stream written straight to its socket. One small object per stream;
 * methods live on the prototype, not in per-connection closures.
 */
export class SocketSink implements StreamSink {
  constructor(
    private readonly socket: Socket,
    /** The response, when Node's HTTP server owns the connection; it ends the exchange. */
    private readonly res?: ServerResponse,
  ) {}

  write(chunk: Buffer | string): boolean {
    if (this.socket.destroyed) return true;
    return this.socket.write(chunk);
  }

  writeMany(chunks: readonly Buffer[]): boolean {
    if (this.socket.destroyed) return true;
    // Corked writes leave in one writev: one syscall for the whole batch, no copy.
    this.socket.cork();
    for (const chunk of chunks) this.socket.write(chunk);
    this.socket.uncork();
    return this.socket.writableLength < this.socket.writableHighWaterMark;
  }

  get pendingBytes(): number {
    return this.socket.writableLength;
  }

  onDrain(callback: () => void): void {
    this.socket.once('drain', callback);
  }

  end(): void {
    // The response has no length and no chunking, so ending it closes the connection.
    if (this.res === undefined) this.socket.end();
    else if (!this.res.writableEnded) this.res.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export const STREAM_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  // no-transform: compression proxies must not buffer or gzip the stream.
  'Cache-Control': 'no-cache, no-transform',
  // nginx: do not buffer this response.
  'X-Accel-Buffering': 'no',
} as const;

function openStream(req: IncomingMessage, res: ServerResponse): StreamSink {
  const socket = req.socket;
  socket.setNoDelay(true);
  // The body ends with the connection: Node then neither chunks it nor keeps the connection alive.
  res.removeHeader('Content-Length');
  res.removeHeader('Transfer-Encoding');
  res.writeHead(200, { ...STREAM_HEADERS, Connection: 'close' });
  res.flushHeaders();
  return new SocketSink(socket, res);
}

/**
 * The subscription a `GET /events` asks for: `topic` selectors, and the id to
 * resume after (the `Last-Event-ID` header wins over `?lastEventId=`, which
 * serves first connections: an `EventSource` cannot set headers).
 */
export function subscriptionOf(query: URLSearchParams, lastEventIdHeader: string | string[] | undefined): { selectors: string[]; lastEventId: string | undefined } {
  const header = typeof lastEventIdHeader === 'string' && lastEventIdHeader !== '' ? lastEventIdHeader : undefined;
  return { selectors: query.getAll('topic'), lastEventId: header ?? (query.get('lastEventId') || undefined) };
}

/** Rejects with a HeraldError (bad token, bad selector, too many connections, shutdown) before any byte is written. */
export async function handleEvents(hub: Hub, req: IncomingMessage, res: ServerResponse, url: URL, access: AccessPolicy, requestId?: string): Promise<void> {
  const request = subscriptionOf(url.searchParams, req.headers['last-event-id']);
  const { scope, expiresAt } = await access.checkSubscribe(req, url, request.selectors);
  if (res.destroyed) return;
  const subscriber = hub.subscribe({ ...request, scope, expiresAt, client: req.socket.remoteAddress, requestId, open: () => openStream(req, res) });
  // Socket errors (a reset mid-write) are handled by the HTTP server, which destroys the socket; `close` cleans up.
  res.once('close', () => hub.unsubscribe(subscriber));
}
