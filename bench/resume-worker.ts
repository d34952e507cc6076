/**
 * The resumers of the resume storm, in a process of their own (forked by
 * `bench/resume-storm.ts`, on the load generator's core), so parsing their
 * history never delays the live subscriber's measurements.
 *
 * All of them connect at once with `Last-Event-ID` and check what they get:
 * exactly the events of their topic after that id, in order, nothing else
 * (each event's data names its topic and its index in the history).
 */

import { performance } from 'node:perf_hooks';
import { SseStream } from './sse.js';

export interface StormCommand {
  readonly type: 'storm';
  readonly host: string;
  readonly port: number;
  readonly topic: string;
  readonly lastEventId: string;
  readonly resumers: number;
  /** Events each must receive: indexes `firstIndex`, `firstIndex + step`, ... (`count` of them). */
  readonly count: number;
  readonly firstIndex: number;
  readonly step: number;
  /** Give up on a resumer after this long. */
  readonly timeoutMs: number;
}

export interface ResumerResult {
  readonly received: number;
  /** From the storm's start to the response head, the first event and the last expected event, in ms (undefined: never). */
  readonly headMs: number | undefined;
  readonly firstEventMs: number | undefined;
  readonly completeMs: number | undefined;
  /** Why it failed: wrong or missing events, a resync notice, the stream ended, the timeout. */
  readonly error: string | undefined;
}

export interface StormReport {
  readonly type: 'storm-report';
  readonly results: readonly ResumerResult[];
}

/** Sent every few seconds while a storm lasts. */
export interface StormProgress {
  readonly type: 'storm-progress';
  /** Resumers that received all their events, and those that failed. */
  readonly done: number;
  readonly failed: number;
  readonly events: number;
}

let progressDone = 0;
let progressFailed = 0;
let progressEvents = 0;

interface EventData {
  readonly i?: unknown;
  readonly k?: unknown;
}

function runResumer(command: StormCommand, started: number): Promise<ResumerResult> {
  return new Promise((resolve) => {
    const since = (): number => performance.now() - started;
    let received = 0;
    let headMs: number | undefined;
    let firstEventMs: number | undefined;
    let done = false;
    const finish = (error: string | undefined): void => {
      if (done) return;
      done = true;
      if (error === undefined) progressDone++;
      else progressFailed++;
      clearTimeout(timer);
      stream.close();
      resolve({ received, headMs, firstEventMs, completeMs: error === undefined ? since() : undefined, error });
    };
    const timer = setTimeout(() => finish(`timed out after ${command.timeoutMs} ms with ${received} of ${command.count} events`), command.timeoutMs);
    const path = `/events?topic=${encodeURIComponent(command.topic)}`;
    const stream = new SseStream(command.host, command.port, path, { 'Last-Event-ID': command.lastEventId }, {
      onHead: () => (headMs = since()),
      onEvent: (event) => {
        if (done) return;
        if (event.event !== undefined && event.event !== 'message') {
          // herald-resync (expired or unknown id) or anything else: not the history asked for.
          return finish(`unexpected "${event.event}" event after ${received}: ${event.data.slice(0, 200)}`);
        }
        let data: EventData;
        try {
          data = JSON.parse(event.data) as EventData;
        } catch {
          return finish(`event ${received} is not the bench's JSON: ${event.data.slice(0, 100)}`);
        }
        const expected = command.firstIndex + received * command.step;
        if (data.k !== command.topic) return finish(`event ${received} (id ${event.id}) is on topic ${String(data.k)}, not ${command.topic}`);
        if (data.i !== expected) return finish(`event ${received} (id ${event.id}) is history index ${String(data.i)}, expected ${expected}`);
        received++;
        progressEvents++;
        if (received === 1) firstEventMs = since();
        if (received === command.count) finish(undefined);
      },
      onEnd: (error) => {
        if (!done) finish(`the stream ended after ${received} of ${command.count} events: ${error ?? 'closed'}`);
      },
    });
  });
}

// Ready: the parent sends the storm when its window starts.
if (process.connected) process.send!({ type: 'ready' });

process.on('message', (message: StormCommand | { readonly type: 'close' }) => {
  if (message.type === 'close') process.exit(0);
  if (message.type !== 'storm') return;
  const started = performance.now();
  const ticker = setInterval(() => process.send!({ type: 'storm-progress', done: progressDone, failed: progressFailed, events: progressEvents } satisfies StormProgress), 5000);
  void Promise.all(Array.from({ length: message.resumers }, () => runResumer(message, started))).then((results) => {
    clearInterval(ticker);
    const report: StormReport = { type: 'storm-report', results };
    process.send!(report);
  });
});
