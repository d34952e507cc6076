/**
 * The dashboard's data: `GET /dashboard/stream`, an SSE stream of the hub's
 * own figures (`event: stats`, every second) and of the events it fans out
 * (`event: tail`, with topic and type, private ones included). The dashboard
 * page reads it with `EventSource`, like any other subscriber.
 *
 * Nothing runs while nobody watches: the timer and the tail start with the
 * first viewer and stop with the last.
 */

import { HeraldError } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import type { StreamSink } from '../hub/sink.js';
import type { StoredEvent } from '../log/event-log.js';
import { frameComment, frameEvent, frameRetry } from '../protocol/framing.js';
import { isLoopbackClient, type AccessPolicy } from './access.js';
import type { RequestView } from './exchange.js';

/** Figures are sent this often. */
const STATS_INTERVAL_MS = 1000;
/** Tail events sent per second at most; the rest are counted as skipped. */
const TAIL_PER_SECOND = 200;
/** Tail data is cut to this many characters: the dashboard shows, it does not archive. */
const TAIL_DATA_CHARS = 2000;
/** Rows of the topics and subscribers tables. */
const TABLE_ROWS = 100;
/** Bytes a viewer may leave unread before it is dropped. */
const VIEWER_MAX_BUFFER = 1024 * 1024;

export interface DashboardStats {
  readonly time: number;
  readonly connections: number;
  readonly published: number;
  readonly delivered: number;
  readonly dropped: number;
  readonly bytesWritten: number;
  readonly history: number;
  readonly health: { readonly ok: boolean; readonly reason?: string };
  /** Subscribers per selector (`(everything)` for streams without one), busiest first. */
  readonly topics: readonly { readonly selector: string; readonly subscribers: number }[];
  /** Connected streams, the most backed-up first. */
  readonly subscribers: readonly {
    readonly address: string;
    readonly topics: readonly string[];
    readonly since: number;
    readonly queuedBytes: number;
    readonly requestId: string;
    readonly token: boolean;
    /** `herald` (`/events`), `mercure` (draft-08) or `mercure-classic`. */
    readonly protocol: string;
  }[];
  /** Open streams per API (`herald`, `mercure`, `mercure-classic`). */
  readonly protocols: Readonly<Record<string, number>>;
  /** Tail events left out since the last figures (past the per-second cap). */
  readonly tailSkipped: number;
}

export class DashboardFeed {
  private readonly viewers = new Set<StreamSink>();
  private timer: NodeJS.Timeout | undefined;
  private tailBudget = TAIL_PER_SECOND;
  private tailSkipped = 0;

  constructor(
    private readonly hub: Hub,
    private readonly access: AccessPolicy,
    private readonly retryMs: number,
  ) {
    hub.observe({ dispatched: (event) => this.tail(event) });
  }

  /**
   * Opens a viewer's stream. With subscriber tokens configured, it needs one
   * whose scope is everything (`**`); without, only this machine may watch:
   * the figures name clients.
   */
  async open(request: RequestView, open: () => StreamSink, isGone: () => boolean): Promise<void> {
    if (this.access.subscribersNeedTokens) {
      await this.access.checkAdmin(request);
    } else if (!isLoopbackClient(request)) {
      throw new HeraldError('HERALD_ERR_FORBIDDEN', 'the dashboard is served to this machine only unless tokens are configured (--jwt-key ...)');
    }
    if (isGone()) return;
    const viewer = open();
    viewer.write(frameRetry(this.retryMs) + frameComment('dashboard'));
    viewer.write(frameEvent({ event: 'stats', data: JSON.stringify(this.snapshot()) }));
    this.viewers.add(viewer);
    viewer.onClose(() => {
      this.viewers.delete(viewer);
      if (this.viewers.size === 0) this.stop();
    });
    this.timer ??= setInterval(() => this.tick(), STATS_INTERVAL_MS);
    this.timer.unref();
  }

  private tail(event: StoredEvent): void {
    if (this.viewers.size === 0) return;
    if (this.tailBudget <= 0) {
      this.tailSkipped++;
      return;
    }
    this.tailBudget--;
    const data = event.data.length > TAIL_DATA_CHARS ? `${event.data.slice(0, TAIL_DATA_CHARS)}…` : event.data;
    const frame = frameEvent({
      event: 'tail',
      data: JSON.stringify({ id: event.id, topic: event.topic ?? null, type: event.event ?? 'message', private: event.private === true, data }),
    });
    this.send(frame);
  }

  /** A viewer that does not keep up is dropped: the dashboard must never hold the hub's memory. */
  private send(frame: string): void {
    for (const viewer of this.viewers) {
      if (viewer.pendingBytes > VIEWER_MAX_BUFFER) viewer.destroy();
      else viewer.write(frame);
    }
  }

  private tick(): void {
    this.tailBudget = TAIL_PER_SECOND;
    const frame = frameEvent({ event: 'stats', data: JSON.stringify(this.snapshot()) });
    this.tailSkipped = 0;
    this.send(frame);
  }

  snapshot(): DashboardStats {
    const counters = this.hub.counters();
    const streams = this.hub.streams();
    const perSelector = new Map<string, number>();
    const protocols: Record<string, number> = {};
    for (const stream of streams) {
      const protocol = stream.protocol ?? 'herald';
      protocols[protocol] = (protocols[protocol] ?? 0) + 1;
      const selectors = stream.selectors.length === 0 ? ['(everything)'] : stream.selectors.map((selector) => selector.source);
      for (const selector of selectors) perSelector.set(selector, (perSelector.get(selector) ?? 0) + 1);
    }
    const health = this.hub.health();
    return {
      time: Date.now(),
      connections: counters.connections,
      published: counters.published,
      delivered: counters.delivered,
      dropped: counters.dropped,
      bytesWritten: counters.bytesWritten,
      history: this.hub.log.stats().size,
      health: health.ok ? { ok: true } : { ok: false, reason: health.reason },
      topics: [...perSelector]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, TABLE_ROWS)
        .map(([selector, subscribers]) => ({ selector, subscribers })),
      subscribers: [...streams]
        .sort((a, b) => b.sink.pendingBytes - a.sink.pendingBytes || a.connectedAt - b.connectedAt)
        .slice(0, TABLE_ROWS)
        .map((stream) => ({
          address: stream.address ?? '',
          topics: stream.selectors.map((selector) => selector.source),
          since: stream.connectedAt,
          queuedBytes: stream.sink.pendingBytes,
          requestId: stream.requestId ?? '',
          token: stream.scope !== undefined,
          protocol: stream.protocol ?? 'herald',
        })),
      protocols,
      tailSkipped: this.tailSkipped,
    };
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Ends every viewer's stream (shutdown). */
  close(): void {
    this.stop();
    for (const viewer of this.viewers) viewer.end();
    this.viewers.clear();
  }
}
