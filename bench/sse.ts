/**
 * A raw-TCP SSE client for benchmarks that need whole events (ids, types,
 * data), not just a count: the resume storm's live subscriber and resumers.
 * No EventSource, no reconnects: a stream that ends is reported as ended.
 */

import { connect, type Socket } from 'node:net';

export interface SseEvent {
  readonly id: string | undefined;
  readonly event: string | undefined;
  readonly data: string;
}

export interface StreamHandlers {
  /** The response head arrived with this status. */
  readonly onHead?: (status: number) => void;
  readonly onEvent: (event: SseEvent) => void;
  /** The stream ended or failed; `error` is undefined when closed by {@link SseStream.close}. */
  readonly onEnd?: (error: string | undefined) => void;
}

const HEAD_END = '\r\n\r\n';

/** One SSE stream on its own socket: `GET path` with optional extra header lines. */
export class SseStream {
  private readonly socket: Socket;
  private head = '';
  private headDone = false;
  /** Text after the head not yet parsed into lines. */
  private rest = '';
  private id: string | undefined;
  private event: string | undefined;
  private data: string[] = [];
  private closed = false;

  constructor(host: string, port: number, path: string, headers: Readonly<Record<string, string>>, private readonly handlers: StreamHandlers) {
    this.socket = connect({ host, port });
    this.socket.setNoDelay(true);
    this.socket.setEncoding('utf8');
    const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    this.socket.on('connect', () => this.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nAccept: text/event-stream\r\n${lines}\r\n`));
    this.socket.on('data', (chunk: string) => this.receive(chunk));
    this.socket.on('error', (error) => this.end(error.message));
    this.socket.on('close', () => this.end('the server closed the stream'));
  }

  close(): void {
    this.end(undefined);
  }

  private end(error: string | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.handlers.onEnd?.(error);
  }

  private receive(chunk: string): void {
    if (!this.headDone) {
      this.head += chunk;
      const end = this.head.indexOf(HEAD_END);
      if (end === -1) return;
      const head = this.head.slice(0, end);
      chunk = this.head.slice(end + HEAD_END.length);
      this.headDone = true;
      this.head = '';
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      this.handlers.onHead?.(status);
      if (status !== 200) return this.end(`status ${status}`);
      // Herald delimits an SSE body by the connection's end; a chunked body would need decoding first.
      if (/^transfer-encoding:\s*chunked/im.test(head)) return this.end('chunked SSE bodies are not supported by this client');
    }
    const text = this.rest + chunk;
    let start = 0;
    for (;;) {
      const newline = text.indexOf('\n', start);
      if (newline === -1) break;
      this.line(text.slice(start, text[newline - 1] === '\r' ? newline - 1 : newline));
      start = newline + 1;
      if (this.closed) return;
    }
    this.rest = text.slice(start);
  }

  /** §9.2.6 of the HTML standard, the fields Herald writes. */
  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) this.handlers.onEvent({ id: this.id, event: this.event, data: this.data.join('\n') });
      this.event = undefined;
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'id') this.id = value;
    else if (field === 'event') this.event = value;
  }
}
