/**
 * In-process hubs on port 0, publishing to them, and waiting on what their
 * hub says happened (through `hub.observe`), not on the clock.
 */

import assert from 'node:assert/strict';
import { createHub, type CloseReason, type Herald, type HeraldOptions, type Hub } from '../../src/index.js';
import { Waiters } from './waiting.js';

/**
 * What a hub reported to its observer so far: streams opened and closed
 * (with why), events stored and dispatched. Waits on it settle the moment
 * the hub reports, whatever the machine's speed.
 */
export class HubWatch {
  /** Streams the hub accepted. */
  connected = 0;
  /** Why each closed stream closed, in order. */
  readonly disconnects: CloseReason[] = [];
  /** Ids of the events stored, in the order the log stored them. */
  readonly published: string[] = [];
  /** Each dispatched event's id and how many subscribers it went to. */
  readonly dispatched: { readonly id: string; readonly deliveries: number }[] = [];
  private readonly waiters = new Waiters();

  constructor(private readonly hub: Hub) {
    hub.observe({
      connected: () => {
        this.connected++;
        this.waiters.notify();
      },
      disconnected: (_subscriber, reason) => {
        this.disconnects.push(reason);
        this.waiters.notify();
      },
      published: (events) => {
        for (const event of events) this.published.push(event.id);
        this.waiters.notify();
      },
      dispatched: (event, deliveries) => {
        this.dispatched.push({ id: event.id, deliveries });
        this.waiters.notify();
      },
    });
  }

  /** Streams open right now. */
  get connections(): number {
    return this.hub.connections;
  }

  /** Streams closed for `reason`. */
  closedFor(reason: CloseReason): number {
    return this.disconnects.filter((why) => why === reason).length;
  }

  describe(): string {
    const reasons = [...new Set(this.disconnects)].map((reason) => `${reason} ×${this.closedFor(reason)}`).join(', ');
    return `the hub reported ${this.connected} streams opened, ${this.disconnects.length} closed (${reasons || 'none'}), ${this.connections} open; ${this.published.length} events stored, ${this.dispatched.length} dispatched`;
  }

  /** Resolves once `condition()` holds, re-checked whenever the hub reports something; fails after `timeoutMs`. */
  until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return this.waiters.until(condition, what, timeoutMs, () => this.describe());
  }

  /** Resolves once exactly `count` streams are open. */
  untilConnections(count: number, timeoutMs?: number): Promise<void> {
    return this.until(() => this.connections === count, `${count} open streams`, timeoutMs);
  }

  /** Resolves once the event with `id` was dispatched; with how many subscribers it went to. */
  async untilDispatched(id: string, timeoutMs?: number): Promise<number> {
    await this.until(() => this.dispatched.some((entry) => entry.id === id), `event ${id} to be dispatched`, timeoutMs);
    return this.dispatched.find((entry) => entry.id === id)!.deliveries;
  }
}

/** Watches a hub from now on (attach before the traffic you want to wait on). */
export function watchHub(target: Herald | Hub): HubWatch {
  return new HubWatch('hub' in target ? target.hub : target);
}

export interface RunningHub {
  readonly herald: Herald;
  readonly url: string;
  readonly port: number;
  /** What the hub reported since it started. */
  readonly watch: HubWatch;
  close(): Promise<void>;
}

/** An in-process hub listening on 127.0.0.1 and a free port. */
export async function startHub(options: HeraldOptions = {}): Promise<RunningHub> {
  const herald = createHub({ heartbeat: 0, routes: 'all', ...options });
  const watch = watchHub(herald);
  const { url, port } = await herald.listen(0, '127.0.0.1');
  return { herald, url, port, watch, close: () => herald.close() };
}

/** Runs `body` against a fresh hub and closes the hub afterwards, whatever happens. */
export async function withHub(options: HeraldOptions, body: (hub: RunningHub) => Promise<void>): Promise<void> {
  const hub = await startHub(options);
  try {
    await body(hub);
  } finally {
    await hub.close();
  }
}

export interface PublishResult {
  readonly status: number;
  readonly headers: Headers;
  readonly body: any;
}

/** POSTs to /trigger; `body` that is not a string is sent as JSON. */
export async function trigger(
  url: string,
  body: unknown,
  { contentType = 'application/json', query = '', headers = {} }: { contentType?: string; query?: string; headers?: Record<string, string> } = {},
): Promise<PublishResult> {
  const response = await fetch(`${url}/trigger${query}`, {
    method: 'POST',
    headers: { 'Content-Type': contentType, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
}

/** `GET /health` (which must answer 200), as JSON. */
export async function health(url: string): Promise<any> {
  const response = await fetch(`${url}/health`);
  const body = await response.json();
  assert.equal(response.status, 200, `GET /health: ${JSON.stringify(body)}`);
  return body;
}
