/**
 * Raw TCP clients for bytes `fetch` will not send or answers it would hide,
 * and free ports.
 */

import { createServer as createNetServer, connect, type Socket } from 'node:net';
import { Waiters } from './waiting.js';

/**
 * A TCP connection that keeps every byte received (as latin1 text), with
 * waits on what arrived and on the server closing it.
 */
export class RawSocket {
  received = '';
  closed = false;
  /** The socket's error, if it had one (a reset, a refused connection). */
  error: Error | undefined;
  private readonly waiters = new Waiters();

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.received += chunk;
      this.waiters.notify();
    });
    socket.on('error', (error) => (this.error = error));
    socket.on('close', () => {
      this.closed = true;
      this.waiters.notify();
    });
  }

  /** Connects to 127.0.0.1:`port`; resolves once connected. */
  static connect(port: number): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const raw = new RawSocket(socket);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(raw);
      });
    });
  }

  /**
   * Connects and writes `text` (latin1: one byte per character), without
   * waiting for the write: a server may answer and close before it took it all.
   */
  static async send(port: number, text: string): Promise<RawSocket> {
    const raw = await RawSocket.connect(port);
    raw.socket.write(text, 'latin1');
    return raw;
  }

  /** Writes `text` as latin1; resolves once the bytes are handed to the kernel. */
  write(text: string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(text, 'latin1', (error) => (error ? reject(error) : resolve())));
  }

  describe(): string {
    return `${this.closed ? 'closed' : 'open'}${this.error ? ` (${this.error.message})` : ''}, received ${JSON.stringify(this.received.slice(0, 300))}${this.received.length > 300 ? `… (${this.received.length} bytes)` : ''}`;
  }

  /** Resolves once `condition(received)` holds; fails after `timeoutMs` with `what` and what arrived. */
  until(condition: (received: string) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return this.waiters.until(() => condition(this.received), what, timeoutMs, () => this.describe());
  }

  untilIncludes(text: string, timeoutMs?: number): Promise<void> {
    return this.until((received) => received.includes(text), JSON.stringify(text), timeoutMs);
  }

  /** Resolves once the connection is closed (by the server, or by us). */
  untilClosed(what = 'the server to close the connection', timeoutMs = 10_000): Promise<void> {
    return this.waiters.until(() => this.closed, what, timeoutMs, () => this.describe());
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * Sends raw bytes and resolves with the raw answer (headers and body,
 * chunked encoding untouched) once the server closes the connection; fails
 * if it is still open after `timeoutMs`.
 */
export async function rawRequest(port: number, text: string, { timeoutMs = 10_000 } = {}): Promise<string> {
  const raw = await RawSocket.send(port, text);
  try {
    await raw.untilClosed('the server to answer and close the connection', timeoutMs);
  } finally {
    raw.close();
  }
  return raw.received;
}

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
