/**
 * A small TCP load balancer for tests: each accepted connection goes to the
 * next live backend in round-robin order and the bytes are piped both ways,
 * untouched. A backend that refuses the connection (or does not accept it in
 * time) is skipped for that connection; when every backend refuses, the
 * client's connection is closed. When either side closes, so does the other.
 * Backends can be added and removed while it runs.
 */

import { connect, createServer, type Server, type Socket } from 'node:net';

export interface LoadBalancerStats {
  /** Client connections accepted. */
  accepted: number;
  /** Client connections piped to a backend. */
  piped: number;
  /** Backend connection attempts refused (or timed out) and skipped. */
  skipped: number;
  /** Client connections closed because no backend took them. */
  rejected: number;
}

interface Pair {
  readonly client: Socket;
  readonly backend: Socket;
  readonly port: number;
}

export interface LoadBalancerOptions {
  /** How long a backend has to accept a connection before it is skipped (default 2 s). */
  readonly connectTimeoutMs?: number;
}

export class LoadBalancer {
  readonly stats: LoadBalancerStats = { accepted: 0, piped: 0, skipped: 0, rejected: 0 };
  private readonly backends: number[] = [];
  private readonly pairs = new Set<Pair>();
  private readonly pending = new Set<Socket>();
  private next = 0;
  private closed = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly connectTimeoutMs: number,
  ) {}

  /** Listens on 127.0.0.1 and a free port, in front of these backend ports (on 127.0.0.1). */
  static async start(backends: readonly number[] = [], options: LoadBalancerOptions = {}): Promise<LoadBalancer> {
    // pauseOnConnect: nothing is read from the client until a backend took the connection.
    const server = createServer({ pauseOnConnect: true });
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
    const balancer = new LoadBalancer(server, port, options.connectTimeoutMs ?? 2000);
    for (const backend of backends) balancer.add(backend);
    server.on('connection', (client) => balancer.accept(client));
    return balancer;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The backend ports new connections may go to. */
  list(): readonly number[] {
    return [...this.backends];
  }

  /** New connections may go to this backend too. */
  add(port: number): void {
    if (!this.backends.includes(port)) this.backends.push(port);
  }

  /** New connections no longer go to this backend; with `cut`, its open connections are closed too. */
  remove(port: number, { cut = false }: { cut?: boolean } = {}): void {
    const index = this.backends.indexOf(port);
    if (index >= 0) this.backends.splice(index, 1);
    if (!cut) return;
    for (const pair of this.pairs) {
      if (pair.port !== port) continue;
      pair.client.destroy();
      pair.backend.destroy();
    }
  }

  /** Open piped connections, per backend port. */
  open(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const pair of this.pairs) counts.set(pair.port, (counts.get(pair.port) ?? 0) + 1);
    return counts;
  }

  private accept(client: Socket): void {
    this.stats.accepted++;
    if (this.closed) {
      client.destroy();
      return;
    }
    this.pending.add(client);
    // A client that goes away while we look for a backend: nothing to do but forget it.
    client.on('error', () => client.destroy());
    const candidates = this.roundRobin();
    const tryNext = (attempt: number): void => {
      if (client.destroyed || this.closed) {
        this.pending.delete(client);
        client.destroy();
        return;
      }
      const port = candidates[attempt];
      if (port === undefined) {
        this.stats.rejected++;
        this.pending.delete(client);
        client.destroy();
        return;
      }
      const backend = connect({ port, host: '127.0.0.1' });
      let settled = false;
      const timer = setTimeout(() => fail(), this.connectTimeoutMs);
      const fail = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        backend.destroy();
        this.stats.skipped++;
        tryNext(attempt + 1);
      };
      backend.once('error', fail);
      backend.once('connect', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        backend.off('error', fail);
        this.pending.delete(client);
        this.pipe(client, backend, port);
      });
    };
    tryNext(0);
  }

  /** The live backends, starting with the next one in turn. */
  private roundRobin(): number[] {
    const count = this.backends.length;
    if (count === 0) return [];
    const start = this.next++ % count;
    return Array.from({ length: count }, (_, i) => this.backends[(start + i) % count]!);
  }

  private pipe(client: Socket, backend: Socket, port: number): void {
    if (client.destroyed) {
      backend.destroy();
      return;
    }
    this.stats.piped++;
    const pair: Pair = { client, backend, port };
    this.pairs.add(pair);
    client.setNoDelay(true);
    backend.setNoDelay(true);
    // An end from one side ends the other once what was written is flushed
    // (pipe's default); an error or a close tears both down.
    client.pipe(backend);
    backend.pipe(client);
    const teardown = (): void => {
      this.pairs.delete(pair);
      if (!client.destroyed) client.end();
      if (!backend.destroyed) backend.end();
      // Whatever is still unflushed after a moment is dropped with the connection.
      setTimeout(() => {
        client.destroy();
        backend.destroy();
      }, 1000).unref();
    };
    const abort = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      backend.destroy();
    };
    client.on('error', abort);
    backend.on('error', abort);
    client.once('close', teardown);
    backend.once('close', teardown);
    client.resume();
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    this.closed = true;
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.backend.destroy();
    }
    this.pairs.clear();
    for (const client of this.pending) client.destroy();
    this.pending.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
