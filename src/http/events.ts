/**
 * `GET /events`: turns an HTTP response into a hub subscriber.
 *
 * On HTTP/1.1 the stream's body is delimited by the connection's end
 * (`Connection: close`, no chunked encoding), so the bytes on the socket are
 * exactly the SSE frames: the hub's framed Buffers go to the socket as they
 * are, one shared Buffer for every subscriber, with no per-write chunk header.
 * An SSE stream never shares its connection with another request anyway.
 * This holds over TLS too: the socket is then a `TLSSocket`, which encrypts
 * what is written to it.
 *
 * On HTTP/2 many streams share one connection, and the bytes of each travel
 * in DATA frames under flow control (RFC 9113 §5.2), so a stream is written
 * through its `Http2Stream`, never the socket.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as http2, Http2ServerResponse, type ServerHttp2Stream } from 'node:http2';
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

/**
 * A stream on an HTTP/2 connection, written through its `Http2Stream`: the
 * bytes go out in DATA frames as the client's flow-control window allows, and
 * the queue counted against `--max-buffer` is this stream's alone, so one slow
 * tab cannot hold back the other streams of its connection.
 */
export class Http2StreamSink implements StreamSink {
  constructor(
    private readonly stream: ServerHttp2Stream,
    /** The compatibility response owning the stream; it ends the exchange. */
    private readonly res: Http2ServerResponse,
  ) {}

  write(chunk: Buffer | string): boolean {
    if (this.stream.destroyed || this.stream.writableEnded) return true;
    return this.stream.write(chunk);
  }

  writeMany(chunks: readonly Buffer[]): boolean {
    if (this.stream.destroyed || this.stream.writableEnded) return true;
    // Corked writes reach nghttp2 together, so they can share DATA frames.
    this.stream.cork();
    for (const chunk of chunks) this.stream.write(chunk);
    this.stream.uncork();
    return this.stream.writableLength < this.stream.writableHighWaterMark;
  }

  /** Bytes written but not yet sent: waiting for the client's window, or for the connection. */
  get pendingBytes(): number {
    return this.stream.writableLength;
  }

  onDrain(callback: () => void): void {
    this.stream.once('drain', callback);
  }

  /** Ends the stream (END_STREAM after the queued DATA); the connection stays for its other streams. */
  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }

  /** Resets this stream only (RST_STREAM with CANCEL, RFC 9113 §8.7); the connection and its other streams go on. */
  destroy(): void {
    if (!this.stream.closed) this.stream.close(http2.NGHTTP2_CANCEL);
  }
}

export const STREAM_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  // no-transform: compression proxies must not buffer or gzip the stream.
  'Cache-Control': 'no-cache, no-transform',
  // nginx: do not buffer this response.
  'X-Accel-Buffering': 'no',
} as const;

/** Whether the response belongs to an HTTP/2 stream (`node:http2`'s compatibility API). */
function isHttp2(res: ServerResponse | Http2ServerResponse): res is Http2ServerResponse {
  return res instanceof Http2ServerResponse;
}

/** Whether the client left already: the answer has nowhere to go. */
function isGone(res: ServerResponse | Http2ServerResponse): boolean {
  return isHttp2(res) ? res.stream.destroyed || res.stream.closed : res.destroyed;
}

function openStream(req: IncomingMessage, res: ServerResponse): StreamSink {
  const response = res as ServerResponse | Http2ServerResponse;
  if (isHttp2(response)) {
    // RFC 9113 §8.2.2: no connection-specific fields (Connection, Keep-Alive, Transfer-Encoding) on HTTP/2;
    // the stream ends with END_STREAM, not with the connection.
    response.removeHeader('Content-Length');
    // On HTTP/2, writeHead sends the HEADERS frame at once.
    response.writeHead(200, STREAM_HEADERS);
    return new Http2StreamSink(response.stream, response);
  }
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
  if (isGone(res as ServerResponse | Http2ServerResponse)) return;
  const subscriber = hub.subscribe({ ...request, scope, expiresAt, client: req.socket.remoteAddress, requestId, open: () => openStream(req, res) });
  // Socket errors (a reset mid-write) are handled by the HTTP server, which destroys the socket; `close` cleans up.
  res.once('close', () => hub.unsubscribe(subscriber));
}
