/**
 * The publisher of a benchmark: keep-alive HTTP requests, either at a set
 * rate or as fast as the server acknowledges them. Each event's data carries
 * the time it was sent, for subscribers to measure latency.
 */

import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ServerUnderTest } from './servers.js';

/** Pads the event to about 100 bytes of data, like the reference figures. */
const PAD = 'x'.repeat(60);

let sequence = 0;

export function eventData(): string {
  return `{"t":${(performance.timeOrigin + performance.now()).toFixed(3)},"s":${sequence++},"p":"${PAD}"}`;
}

export class Publisher {
  private readonly agent: Agent;
  published = 0;
  failed = 0;
  firstError: string | undefined;

  constructor(
    private readonly server: ServerUnderTest,
    private readonly topic: string,
    sockets = 8,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets: sockets });
  }

  /** Whether the server takes several events in one request. */
  get canBatch(): boolean {
    return this.server.publishRequest(this.topic, ['1', '2']) !== undefined;
  }

  /** Publishes `count` events in one request; resolves once answered: true if acknowledged. */
  send(count = 1): Promise<boolean> {
    const texts = Array.from({ length: count }, eventData);
    const spec = this.server.publishRequest(this.topic, texts);
    if (spec === undefined) throw new Error(`${this.server.name} cannot publish a batch`);
    return new Promise((resolve) => {
      const req = request(
        { host: this.server.host, port: this.server.port, path: spec.path, method: 'POST', agent: this.agent,
          headers: { 'Content-Type': spec.contentType, 'Content-Length': Buffer.byteLength(spec.body) } },
        (res) => {
          res.resume();
          res.on('end', () => {
            const ok = res.statusCode !== undefined && res.statusCode < 300;
            if (ok) this.published += count;
            else this.fail(`status ${res.statusCode}`, count);
            resolve(ok);
          });
        },
      );
      req.on('error', (error) => {
        this.fail(error.message, count);
        resolve(false);
      });
      req.end(spec.body);
    });
  }

  private fail(why: string, count: number): void {
    this.failed += count;
    this.firstError ??= why;
  }

  /**
   * Publishes `rate` events per second for `durationMs`, one event per
   * request, evenly spread (a 2 ms clock catches up on what is due).
   */
  async atRate(rate: number, durationMs: number): Promise<void> {
    const start = performance.now();
    let sent = 0;
    const inFlight = new Set<Promise<boolean>>();
    while (true) {
      const elapsed = performance.now() - start;
      if (elapsed >= durationMs) break;
      const due = Math.floor((elapsed / 1000) * rate) - sent;
      for (let i = 0; i < due; i++) {
        const pending = this.send(1);
        inFlight.add(pending);
        void pending.then(() => inFlight.delete(pending));
        sent++;
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await Promise.all(inFlight);
  }

  /** Publishes as fast as acknowledged, `concurrency` requests at a time, each of `batch` events. */
  async saturate(durationMs: number, concurrency: number, batch: number): Promise<void> {
    const deadline = performance.now() + durationMs;
    const lane = async (): Promise<void> => {
      while (performance.now() < deadline) await this.send(batch);
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
  }

  close(): void {
    this.agent.destroy();
  }
}
