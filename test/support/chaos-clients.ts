/**
 * A child process holding many real `EventSource` clients (the `eventsource`
 * package) for test/chaos.test.ts, so their parsing does not compete with the
 * load balancer and the publishers in the test process.
 *
 * The clients reconnect by themselves (EventSource sends `Last-Event-ID`).
 * Each connection's `X-Request-Id` answer names the Herald process that
 * served it (its prefix is per process), so a report says which node
 * delivered, or failed to deliver, what.
 *
 * Talks to its parent over IPC (advanced serialization): see the message types.
 */

import { EventSource } from 'eventsource';

export interface ClientSpec {
  readonly index: number;
  /** `topic` selectors of the subscription (none: everything). */
  readonly selectors: readonly string[];
  /** The topics (of the test's fixed set) those selectors match; `''` stands for events without a topic. */
  readonly matches: readonly string[];
}

export type ToClients =
  | { readonly type: 'start'; readonly url: string; readonly clients: readonly ClientSpec[]; readonly sentinelTopics: readonly string[] }
  | { readonly type: 'status'; readonly ref: number; readonly sentinel: number }
  | { readonly type: 'finish' };

export type FromClients =
  | { readonly type: 'opened' }
  /** Every client of this process holds every event of sentinel batch `sentinel` that its selectors match. */
  | { readonly type: 'sentinel'; readonly sentinel: number }
  | { readonly type: 'status'; readonly ref: number; readonly lacking: readonly ClientState[] }
  | { readonly type: 'report'; readonly clients: readonly ClientReport[] };

/** One request of a client, answered or not. */
export interface Connection {
  /** When it was sent (ms since the epoch). */
  readonly at: number;
  /** The answering process's tag (the prefix of `X-Request-Id`). */
  readonly tag: string | undefined;
  readonly status: number;
  /** The `Last-Event-ID` it carried, or a `lastEventId` query of a re-created client. */
  readonly lastEventId: string | undefined;
}

export interface ClientReport {
  readonly index: number;
  /** Ids, in the order received, of every event but `herald-resync`. */
  readonly ids: string[];
  /** The `n` of each event's data (parallel to `ids`). */
  readonly ns: number[];
  /** The connection (index into `connections`) each event arrived on (parallel to `ids`). */
  readonly conns: number[];
  readonly connections: Connection[];
  /** Requests that failed before any answer (no backend, connection reset). */
  failedAttempts: number;
  /** `herald-resync` events: when, on which connection, with what data. */
  readonly resyncs: { at: number; conn: number; data: string }[];
  /** Times the EventSource gave up (an answer other than a 200 stream) and was re-created. */
  readonly fatal: { at: number; message: string }[];
}

export interface ClientState {
  readonly index: number;
  readonly selectors: readonly string[];
  readonly readyState: number;
  readonly tag: string | undefined;
  readonly lastId: string | undefined;
  readonly received: number;
}

/** The process tag of an `X-Request-Id` Herald generated (`<tag>-<sequence>`). */
export function tagOf(requestId: string | null): string | undefined {
  if (requestId === null) return undefined;
  const dash = requestId.lastIndexOf('-');
  return dash > 0 ? requestId.slice(0, dash) : requestId;
}

class Client {
  readonly report: ClientReport;
  private source: EventSource | undefined;
  private opened = false;
  private closed = false;
  /** Per sentinel batch, the distinct `n`s received. */
  private readonly sentinels = new Map<number, Set<number>>();
  private readonly sentinelNeed: number;

  constructor(
    readonly spec: ClientSpec,
    private readonly url: string,
    sentinelTopics: readonly string[],
    private readonly onOpened: () => void,
    private readonly onSentinel: (sentinel: number) => void,
  ) {
    this.report = { index: spec.index, ids: [], ns: [], conns: [], connections: [], failedAttempts: 0, resyncs: [], fatal: [] };
    this.sentinelNeed = sentinelTopics.filter((topic) => spec.matches.includes(topic)).length;
    if (this.sentinelNeed === 0) throw new Error(`client ${spec.index} matches no sentinel topic`);
  }

  lastId(): string | undefined {
    return this.report.ids[this.report.ids.length - 1];
  }

  hasSentinel(sentinel: number): boolean {
    return (this.sentinels.get(sentinel)?.size ?? 0) >= this.sentinelNeed;
  }

  state(): ClientState {
    const last = this.report.connections[this.report.connections.length - 1];
    return {
      index: this.spec.index,
      selectors: this.spec.selectors,
      readyState: this.source?.readyState ?? -1,
      tag: last?.tag,
      lastId: this.lastId(),
      received: this.report.ids.length,
    };
  }

  open(resumeFrom?: string): void {
    const query = new URLSearchParams();
    for (const selector of this.spec.selectors) query.append('topic', selector);
    if (resumeFrom !== undefined) query.set('lastEventId', resumeFrom);
    const search = query.toString();
    const report = this.report;
    const source = new EventSource(`${this.url}/events${search === '' ? '' : `?${search}`}`, {
      fetch: async (url, init) => {
        const at = Date.now();
        const lastEventId = init.headers['Last-Event-ID'] ?? resumeFrom;
        try {
          const response = await fetch(url, init as RequestInit);
          report.connections.push({ at, tag: tagOf(response.headers.get('x-request-id')), status: response.status, lastEventId });
          return response;
        } catch (error) {
          report.failedAttempts++;
          throw error;
        }
      },
    });
    this.source = source;
    source.onopen = () => {
      if (this.opened) return;
      this.opened = true;
      this.onOpened();
    };
    source.onmessage = (event) => {
      const data = JSON.parse(event.data) as { n: number; s?: number };
      report.ids.push(event.lastEventId);
      report.ns.push(data.n);
      report.conns.push(report.connections.length - 1);
      if (data.s !== undefined) {
        let seen = this.sentinels.get(data.s);
        if (seen === undefined) this.sentinels.set(data.s, (seen = new Set()));
        const had = this.hasSentinel(data.s);
        seen.add(data.n);
        if (!had && this.hasSentinel(data.s)) this.onSentinel(data.s);
      }
    };
    source.addEventListener('herald-resync', (event) => {
      report.resyncs.push({ at: Date.now(), conn: report.connections.length - 1, data: (event as MessageEvent).data });
    });
    source.onerror = (event) => {
      if (this.closed || source.readyState !== source.CLOSED) return;
      // The EventSource failed for good (an answer other than a 200 stream): a real
      // application would re-create it after a while; this one does, from its last id.
      report.fatal.push({ at: Date.now(), message: `${(event as { message?: string }).message ?? 'error'} (${(event as { code?: number }).code ?? '?'})` });
      setTimeout(() => {
        if (!this.closed) this.open(this.lastId());
      }, 500).unref();
    };
  }

  close(): void {
    this.closed = true;
    this.source?.close();
  }
}

function main(): void {
  const send = (message: FromClients, then?: () => void): void => {
    process.send!(message, undefined, undefined, () => then?.());
  };
  let clients: Client[] = [];
  process.on('message', (message: ToClients) => {
    switch (message.type) {
      case 'start': {
        let opened = 0;
        const done = new Map<number, number>();
        clients = message.clients.map(
          (spec) =>
            new Client(
              spec,
              message.url,
              message.sentinelTopics,
              () => {
                if (++opened === message.clients.length) send({ type: 'opened' });
              },
              (sentinel) => {
                const count = (done.get(sentinel) ?? 0) + 1;
                done.set(sentinel, count);
                if (count === message.clients.length) send({ type: 'sentinel', sentinel });
              },
            ),
        );
        for (const client of clients) client.open();
        break;
      }
      case 'status':
        send({ type: 'status', ref: message.ref, lacking: clients.filter((c) => !c.hasSentinel(message.sentinel)).map((c) => c.state()) });
        break;
      case 'finish':
        for (const client of clients) client.close();
        send({ type: 'report', clients: clients.map((c) => c.report) }, () => process.exit(0));
        break;
    }
  });
  // The parent went away (it failed hard): nothing left to report to.
  process.on('disconnect', () => process.exit(0));
}

// Only as the child the test forks (the test imports the types and `tagOf`).
if (process.env.HERALD_CHAOS_CLIENT_PROCESS === '1' && process.send !== undefined) main();
