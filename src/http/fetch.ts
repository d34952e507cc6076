/**
 * Web-standard `Request` and `Response` as a transport (`hub.fetch`), so
 * Hono, Bun, Deno and any fetch-based server can mount Herald. A stream is a
 * `ReadableStream` body: the hub writes into its queue, the server reads it
 * out, and a reader that stops reading fills the queue until `--max-buffer`
 * drops it, exactly like a slow socket.
 */

import { HeraldError } from '../errors.js';
import type { StreamSink } from '../hub/sink.js';
import type { HeaderFields, HttpExchange } from './exchange.js';

/** What a fetch-based server knows of the connection, beyond the `Request`. */
export interface FetchInfo {
  /** The client's address (e.g. Hono's `getConnInfo(c).remote.address`): loopback publishing and per-address limits need it. */
  readonly remoteAddress?: string | undefined;
}

/** Bytes a stream's queue holds before the hub is told to wait (and counts them against `--max-buffer`). */
const QUEUE_BYTES = 64 * 1024;

/** A stream whose bytes go into a `ReadableStream`'s queue. */
export class WebStreamSink implements StreamSink {
  readonly body: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private closed = false;
  private drainWaiters: (() => void)[] = [];
  private closeWaiters: (() => void)[] = [];

  constructor(signal?: AbortSignal) {
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        // The reader wants more: whoever waits for room may write again.
        pull: () => {
          const waiters = this.drainWaiters;
          this.drainWaiters = [];
          for (const waiter of waiters) waiter();
        },
        cancel: () => this.markClosed(),
      },
      new ByteLengthQueuingStrategy({ highWaterMark: QUEUE_BYTES }),
    );
    signal?.addEventListener('abort', () => this.destroy(), { once: true });
  }

  write(chunk: Buffer | string): boolean {
    if (this.closed) return true;
    this.controller.enqueue(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    return (this.controller.desiredSize ?? 0) > 0;
  }

  writeMany(chunks: readonly Buffer[]): boolean {
    for (const chunk of chunks) this.write(chunk);
    return this.closed || (this.controller.desiredSize ?? 0) > 0;
  }

  get pendingBytes(): number {
    return this.closed ? 0 : QUEUE_BYTES - (this.controller.desiredSize ?? 0);
  }

  onDrain(callback: () => void): void {
    this.drainWaiters.push(callback);
  }

  onClose(callback: () => void): void {
    if (this.closed) queueMicrotask(callback);
    else this.closeWaiters.push(callback);
  }

  end(): void {
    if (this.closed) return;
    this.controller.close();
    this.markClosed();
  }

  destroy(): void {
    if (this.closed) return;
    this.controller.error(new HeraldError('HERALD_ERR_REQUEST_ABORTED', 'the stream was closed by the hub'));
    this.markClosed();
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    const waiters = [...this.closeWaiters, ...this.drainWaiters];
    this.closeWaiters = [];
    this.drainWaiters = [];
    for (const waiter of waiters) waiter();
  }
}

/** A `Request` as an exchange, and the `Response` it gets once a route answers. */
export function fetchExchange(request: Request, info: FetchInfo = {}): { exchange: HttpExchange; response: Promise<Response>; answered: () => boolean } {
  let resolve!: (response: Response) => void;
  const response = new Promise<Response>((settle) => (resolve = settle));
  let answered = false;
  const answer = (value: Response): void => {
    if (answered) return;
    answered = true;
    resolve(value);
  };
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'the request URL is not valid');
  }
  const exchange: HttpExchange = {
    method: request.method.toUpperCase(),
    url,
    httpVersion: undefined,
    streamFraming: 'framed',
    remoteAddress: info.remoteAddress,
    header: (name) => request.headers.get(name) ?? undefined,
    readBody: (limit, deadlineMs) => readWebBody(request, limit, deadlineMs),
    parsedBody: undefined,
    isGone: () => request.signal.aborted,
    respond(status, fields, body) {
      // A Response may not carry a body on 204 or for HEAD's sake; the routes pass none then.
      answer(new Response(status === 204 || body === undefined ? null : body, { status, headers: fields as Record<string, string> }));
    },
    openStream(fields: HeaderFields) {
      const sink = new WebStreamSink(request.signal);
      answer(new Response(sink.body, { status: 200, headers: fields as Record<string, string> }));
      return sink;
    },
  };
  return { exchange, response, answered: () => answered };
}

/** Reads a `Request` body with the same bound and deadline as a socket's. */
async function readWebBody(request: Request, limit: number, deadlineMs: number): Promise<Uint8Array> {
  const tooLarge = (): HeraldError => new HeraldError('HERALD_ERR_BODY_TOO_LARGE', `the body is larger than ${limit} bytes (--max-body)`);
  const announced = Number(request.headers.get('content-length'));
  if (Number.isFinite(announced) && announced > limit) throw tooLarge();
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HeraldError('HERALD_ERR_BODY_TIMEOUT', `the body did not arrive within ${deadlineMs} ms`)), deadlineMs);
    timer.unref?.();
  });
  try {
    for (;;) {
      let step: Awaited<ReturnType<typeof reader.read>>;
      try {
        step = await Promise.race([reader.read(), deadline]);
      } catch (error) {
        if (error instanceof HeraldError) throw error;
        throw new HeraldError('HERALD_ERR_REQUEST_ABORTED', 'the client closed the request before its body arrived');
      }
      if (step.done) break;
      received += step.value.length;
      if (received > limit) throw tooLarge();
      chunks.push(step.value);
    }
  } catch (error) {
    void reader.cancel().catch(() => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(chunks, received);
}
