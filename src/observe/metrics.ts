/**
 * `GET /metrics`: the hub's figures in Prometheus' text format (prom-client).
 *
 * Every hub has a registry of its own, so several hubs in one process (tests,
 * a library user's app) never mix figures. Topic labels are bounded: the
 * first segment of the topic, for the first {@link MAX_TOPIC_BUCKETS} distinct
 * ones seen, then `other`, so a publisher inventing topics cannot blow up the
 * number of series.
 */

import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Hub } from '../hub/hub.js';
import type { CloseReason } from '../hub/sink.js';

/** Distinct topic buckets at most; later ones count as `other`. */
export const MAX_TOPIC_BUCKETS = 50;
/** Why a stream was refused, for `herald_stream_refusals_total`. */
export type RefusalReason = 'limit' | 'auth' | 'invalid' | 'shutdown';
/** How often `herald_event_loop_delay_seconds` samples the event loop, in ms. */
export const LOOP_SAMPLE_MS = 10;

export class HubMetrics {
  readonly registry = new Registry();
  private readonly buckets = new Set<string>();
  private readonly published: Counter<'topic'>;
  private readonly delivered: Counter<'topic'>;
  private readonly connects: Counter;
  private readonly disconnects: Counter<'reason'>;
  private readonly refusals: Counter<'reason'>;
  private readonly publishSeconds: Histogram;
  private readonly lagSeconds: Histogram;
  private readonly loopTimer: NodeJS.Timeout;

  constructor(hub: Hub, options: { readonly node?: string; readonly processMetrics?: boolean } = {}) {
    const node = options.node ?? `${hostname()}:${process.pid}`;
    this.registry.setDefaultLabels({ node });
    const registers = [this.registry];
    new Gauge({
      name: 'herald_streams_open',
      help: 'Open SSE streams on this node.',
      registers,
      collect() {
        this.set(hub.connections);
      },
    });
    this.connects = new Counter({ name: 'herald_stream_connects_total', help: 'Streams opened.', registers });
    this.disconnects = new Counter({
      name: 'herald_stream_disconnects_total',
      help: 'Streams closed, by reason: client-closed, slow-consumer (dropped past --max-buffer), shutdown, token-expired, log-gap, replay-failed.',
      labelNames: ['reason'],
      registers,
    });
    this.refusals = new Counter({
      name: 'herald_stream_refusals_total',
      help: 'Subscriptions refused before a stream opened, by reason: limit, auth, invalid, shutdown.',
      labelNames: ['reason'],
      registers,
    });
    this.published = new Counter({
      name: 'herald_events_published_total',
      help: 'Events stored, by topic bucket (first topic segment; bounded).',
      labelNames: ['topic'],
      registers,
    });
    this.delivered = new Counter({
      name: 'herald_events_delivered_total',
      help: 'Event deliveries to streams, by topic bucket.',
      labelNames: ['topic'],
      registers,
    });
    let lastBytes = 0;
    new Counter({
      name: 'herald_bytes_written_total',
      help: 'Bytes written to streams (events, notices, heartbeats).',
      registers,
      collect() {
        const now = hub.counters().bytesWritten;
        this.inc(now - lastBytes);
        lastBytes = now;
      },
    });
    this.publishSeconds = new Histogram({
      name: 'herald_publish_duration_seconds',
      help: 'Time to store a publish (the event log append), in seconds.',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.lagSeconds = new Histogram({
      name: 'herald_delivery_lag_seconds',
      help: 'Time from an event being stored to its fan-out on this node, in seconds.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    new Gauge({
      name: 'herald_history_events',
      help: 'Events kept in history for resume.',
      registers,
      collect() {
        this.set(hub.log.stats().size);
      },
    });
    new Gauge({
      name: 'herald_event_log_up',
      help: '1 when the event log (Redis, or the primary of --workers) takes publishes, else 0.',
      registers,
      collect() {
        this.set(hub.health().ok ? 1 : 0);
      },
    });
    // A timer due every LOOP_SAMPLE_MS fires late by as long as the event loop
    // was held (a synchronous read, a long fan-out): every stream and publish
    // on this node waited that long. Cumulative, so any number of scrapers can
    // read it and rate() works; prom-client's nodejs_eventloop_lag_* gauges
    // reset on every scrape instead.
    const loopDelay = new Histogram({
      name: 'herald_event_loop_delay_seconds',
      help: `Event-loop delay: how late a timer due every ${LOOP_SAMPLE_MS} ms fired, in seconds. Meanwhile no stream on this node was written and no publish answered; samples over 0.05 s are stalls worth an alert.`,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    let due = performance.now() + LOOP_SAMPLE_MS;
    this.loopTimer = setInterval(() => {
      const now = performance.now();
      loopDelay.observe(Math.max(0, now - due) / 1000);
      due = now + LOOP_SAMPLE_MS;
    }, LOOP_SAMPLE_MS);
    this.loopTimer.unref();
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });

    hub.observe({
      connected: () => this.connects.inc(),
      disconnected: (_subscriber, reason: CloseReason) => this.disconnects.inc({ reason }),
      published: (events, seconds) => {
        this.publishSeconds.observe(seconds);
        for (const event of events) this.published.inc({ topic: this.bucketOf(event.topic) });
      },
      dispatched: (event, deliveries) => {
        if (deliveries > 0) this.delivered.inc({ topic: this.bucketOf(event.topic) }, deliveries);
        this.lagSeconds.observe(Math.max(0, Date.now() - event.time) / 1000);
      },
    });
  }

  refused(reason: RefusalReason): void {
    this.refusals.inc({ reason });
  }

  private bucketOf(topic: string | undefined): string {
    if (topic === undefined) return '(none)';
    const slash = topic.indexOf('/');
    const bucket = slash === -1 ? topic : topic.slice(0, slash);
    if (this.buckets.has(bucket)) return bucket;
    if (this.buckets.size >= MAX_TOPIC_BUCKETS) return 'other';
    this.buckets.add(bucket);
    return bucket;
  }

  /** Stops sampling the event loop (the figures stay readable). */
  close(): void {
    clearInterval(this.loopTimer);
  }

  /** The text of `GET /metrics`. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** The refusal reason of an error code answered to a subscription. */
export function refusalReason(code: string): RefusalReason {
  if (code === 'HERALD_ERR_TOO_MANY_CONNECTIONS' || code === 'HERALD_ERR_RATE_LIMITED') return 'limit';
  if (code === 'HERALD_ERR_UNAUTHORIZED' || code === 'HERALD_ERR_FORBIDDEN') return 'auth';
  if (code === 'HERALD_ERR_SHUTTING_DOWN') return 'shutdown';
  return 'invalid';
}
