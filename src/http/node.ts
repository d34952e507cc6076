/**
 * `node:http` and `node:http2` as a transport: their request and response
 * objects (HTTP/2 through its compatibility API) as an {@link HttpExchange},
 * and the sinks that write a stream.
 *
 * On HTTP/1.1 a stream's body is delimited by the connection's end
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
import { HeraldError } from '../errors.js';
import type { StreamSink } from '../hub/sink.js';
import type { HeaderFields, HttpExchange } from './exchange.js';

/** A target's scheme and host, for parsing origin-form targets. */
const ORIGIN = 'http://herald.invalid';

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

  onClose(callback: () => void): void {
    if (this.socket.destroyed) queueMicrotask(callback);
    else this.socket.once('close', callback);
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

  onClose(callback: () => void): void {
    if (this.stream.closed || this.stream.destroyed) queueMicrotask(callback);
    else this.stream.once('close', callback);
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

function tooLarge(limit: number): HeraldError {
  return new HeraldError('HERALD_ERR_BODY_TOO_LARGE', `the body is larger than ${limit} bytes (--max-body)`);
}

/**
 * Reads the whole body. Rejects at once when `Content-Length` announces more
 * than `limit`, and as soon as the bytes received pass it.
 */
export function readNodeBody(req: IncomingMessage, limit: number, deadlineMs: number): Promise<Buffer> {
  const announced = Number(req.headers['content-length']);
  if (Number.isFinite(announced) && announced > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const timer = setTimeout(() => {
      finish(new HeraldError('HERALD_ERR_BODY_TIMEOUT', `the body did not arrive within ${deadlineMs} ms`));
    }, deadlineMs);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) finish(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(undefined);
    const onAbort = (): void => finish(new HeraldError('HERALD_ERR_REQUEST_ABORTED', 'the client closed the request before its body arrived'));
    function finish(error: Error | undefined): void {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onAbort).off('close', onAbort);
      if (error === undefined) resolve(Buffer.concat(chunks, received));
      else {
        // Keep reading (and discarding) so the client can read our answer instead of a reset.
        req.resume();
        reject(error);
      }
    }
    req.on('data', onData).on('end', onEnd).on('error', onAbort).on('close', onAbort);
  });
}

/** Whether the response belongs to an HTTP/2 stream (`node:http2`'s compatibility API). */
function isHttp2(res: ServerResponse | Http2ServerResponse): res is Http2ServerResponse {
  return res instanceof Http2ServerResponse;
}

/**
 * The exchange of one `node:http` (or `node:http2` compatibility) request.
 * @throws HeraldError `HERALD_ERR_BAD_REQUEST` for a request target that is not a URL
 */
export function nodeExchange(req: IncomingMessage, res: ServerResponse): HttpExchange {
  const response = res as ServerResponse | Http2ServerResponse;
  let url: URL;
  try {
    // An origin-form target like `//events` must stay a path, not become a host.
    const target = req.url ?? '/';
    url = new URL(target.startsWith('/') ? `${ORIGIN}${target}` : target, ORIGIN);
  } catch {
    throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'the request target is not a valid URL');
  }
  // The socket, not only the response: a parser error destroys it before the response hears of it.
  const gone = (): boolean => (isHttp2(response) ? response.stream.destroyed || response.stream.closed : res.destroyed || req.socket.destroyed);
  return {
    method: req.method ?? 'GET',
    url,
    httpVersion: req.httpVersion,
    streamFraming: isHttp2(response) ? 'framed' : 'close-delimited',
    remoteAddress: req.socket.remoteAddress,
    header(name) {
      const value = req.headers[name];
      if (value === undefined) return undefined;
      return typeof value === 'string' ? value : value.join(name === 'cookie' ? '; ' : ', ');
    },
    readBody: (limit, deadlineMs) => readNodeBody(req, limit, deadlineMs),
    get parsedBody() {
      // Only a stream someone has read to the end: `complete` alone means received, not consumed.
      return req.readableEnded ? (req as IncomingMessage & { body?: unknown }).body : undefined;
    },
    isGone: gone,
    respond(status, fields, body) {
      // Already answered, or nobody to answer (the parser's error handler may have answered and closed).
      // (Over HTTP/2 the socket is the session's: a HEAD stream reads as not writable, yet takes its answer.)
      if (res.headersSent || gone() || (!isHttp2(response) && res.socket?.writable === false)) {
        res.destroy();
        return;
      }
      res.writeHead(status, fields as Record<string, string>);
      res.end(body);
    },
    openStream(fields: HeaderFields): StreamSink {
      if (isHttp2(response)) {
        // RFC 9113 §8.2.2: no connection-specific fields; the stream ends with END_STREAM, not with the connection.
        response.removeHeader('Content-Length');
        // On HTTP/2, writeHead sends the HEADERS frame at once.
        response.writeHead(200, fields as Record<string, string>);
        return new Http2StreamSink(response.stream, response);
      }
      const socket = req.socket;
      socket.setNoDelay(true);
      // The body ends with the connection: Node then neither chunks it nor keeps the connection alive.
      res.removeHeader('Content-Length');
      res.removeHeader('Transfer-Encoding');
      res.writeHead(200, fields as Record<string, string>);
      res.flushHeaders();
      return new SocketSink(socket, res);
    },
  };
}
