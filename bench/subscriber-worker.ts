/**
 * A load-generator process: holds thousands of SSE subscribers on raw TCP
 * sockets and counts the events they receive. Several of these run side by
 * side (each under the 20000-fd cap, each from its own 127.0.0.x source
 * address) and are driven over IPC by `bench/run.ts`.
 *
 * Every subscriber counts `data:` lines, which costs one native `indexOf`
 * scan per read. One subscriber in `sampleEvery` also reads the publish
 * timestamp embedded in each event (`{"t":<ms>,...}`) for latency figures.
 */

import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface ConnectCommand {
  readonly type: 'connect';
  readonly host: string;
  readonly port: number;
  /** The whole HTTP request, e.g. `GET /events?topic=bench HTTP/1.1\r\nHost: ...\r\n\r\n`. */
  readonly request: string;
  /** One request per subscriber (subscriber `i` sends `requests[i]`), when they differ; else every one sends `request`. */
  readonly requests?: readonly string[];
  readonly count: number;
  readonly localAddresses: readonly string[];
  /** Connections being opened at once. */
  readonly concurrency: number;
  /** One subscriber in this many measures latency. */
  readonly sampleEvery: number;
}

export type WorkerCommand = ConnectCommand | { readonly type: 'reset' } | { readonly type: 'report' } | { readonly type: 'close' };

export interface ConnectedReport {
  readonly type: 'connected';
  readonly connected: number;
  readonly failed: number;
  readonly firstError: string | undefined;
}

export interface CountReport {
  readonly type: 'report';
  readonly events: number;
  /** Publish-to-receive latencies in ms, sampled. */
  readonly latencies: number[];
  readonly open: number;
  /** Streams the server closed or reset while they were expected to stay open. */
  readonly lost: number;
}

export type WorkerReport = ConnectedReport | CountReport;

const MARKER = Buffer.from('\ndata:');
const STAMP = Buffer.from('{"t":');
const HEAD_END = Buffer.from('\r\n\r\n');
/** The most latency samples one worker keeps per window; beyond it, reservoir sampling. */
const MAX_SAMPLES = 50_000;

let events = 0;
let latencies: number[] = [];
let seenSamples = 0;
let open = 0;
let lost = 0;
const sockets = new Set<Socket>();
const readBuffer = Buffer.allocUnsafe(256 * 1024);

function countMarkers(buffer: Buffer, end: number): number {
  // A view, not a copy: indexOf must not scan stale bytes past `end` in the shared read buffer.
  const view = buffer.subarray(0, end);
  let count = 0;
  for (let at = view.indexOf(MARKER); at !== -1; at = view.indexOf(MARKER, at + MARKER.length)) count++;
  return count;
}

/** Markers that begin in the previous read's tail and end in this read. */
function splitMarkers(tail: Buffer, tailLength: number, chunk: Buffer, end: number): number {
  let count = 0;
  for (let inTail = 1; inTail < MARKER.length; inTail++) {
    const inChunk = MARKER.length - inTail;
    if (inTail > tailLength || inChunk > end) continue;
    if (tail.compare(MARKER, 0, inTail, tailLength - inTail, tailLength) !== 0) continue;
    if (chunk.compare(MARKER, inTail, MARKER.length, 0, inChunk) === 0) count++;
  }
  return count;
}

function recordLatency(ms: number): void {
  seenSamples++;
  if (latencies.length < MAX_SAMPLES) latencies.push(ms);
  else {
    const slot = Math.floor(Math.random() * seenSamples);
    if (slot < MAX_SAMPLES) latencies[slot] = ms;
  }
}

function readStamps(buffer: Buffer, end: number): void {
  const now = performance.timeOrigin + performance.now();
  const view = buffer.subarray(0, end);
  let at = view.indexOf(STAMP);
  while (at !== -1) {
    let stop = at + STAMP.length;
    while (stop < end && view[stop] !== 0x2c /* , */ && view[stop] !== 0x7d /* } */) stop++;
    // A stamp cut off by the end of this read is skipped rather than misread.
    if (stop < end) recordLatency(now - Number(view.toString('latin1', at + STAMP.length, stop)));
    at = view.indexOf(STAMP, stop);
  }
}

function openOne(command: ConnectCommand, index: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sampled = index % command.sampleEvery === 0;
    let headersDone = false;
    let head = '';
    /** The end of the previous read, so a marker split across two reads is still counted. */
    const tail = Buffer.alloc(MARKER.length - 1);
    let tailLength = 0;
    const socket = connect({
      host: command.host,
      port: command.port,
      localAddress: command.localAddresses[index % command.localAddresses.length],
      onread: {
        buffer: readBuffer,
        callback: (length: number, buffer: Uint8Array) => {
          let chunk = buffer as Buffer;
          let end = length;
          if (!headersDone) {
            head += chunk.toString('latin1', 0, length);
            const at = head.indexOf('\r\n\r\n');
            if (at === -1) return true;
            headersDone = true;
            if (!head.startsWith('HTTP/1.1 200')) {
              socket.destroy();
              finish(false, head.split('\r\n')[0]);
              return false;
            }
            const body = Buffer.from(head.slice(at + HEAD_END.length), 'latin1');
            chunk = body;
            end = body.length;
            open++;
            finish(true);
          }
          if (end === 0) return true;
          events += splitMarkers(tail, tailLength, chunk, end) + countMarkers(chunk, end);
          if (sampled) readStamps(chunk, end);
          tailLength = Math.min(tail.length, end);
          chunk.copy(tail, 0, end - tailLength, end);
          return true;
        },
      },
    });
    socket.setNoDelay(true);
    sockets.add(socket);
    let settled = false;
    const finish = (ok: boolean, why?: string): void => {
      if (settled) return;
      settled = true;
      if (!ok && why !== undefined) firstError ??= why;
      resolve(ok);
    };
    socket.on('connect', () => socket.write(command.requests?.[index] ?? command.request));
    socket.on('error', (error) => finish(false, error.message));
    socket.on('close', () => {
      sockets.delete(socket);
      if (headersDone && !closing) {
        open--;
        lost++;
      }
      finish(false, 'closed before the response headers');
    });
  });
}

let firstError: string | undefined;
let closing = false;

async function connectAll(command: ConnectCommand): Promise<void> {
  let next = 0;
  let connected = 0;
  let failed = 0;
  const lane = async (): Promise<void> => {
    while (next < command.count) {
      const index = next++;
      if (await openOne(command, index)) connected++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(command.concurrency, command.count) }, lane));
  send({ type: 'connected', connected, failed, firstError });
}

function send(report: WorkerReport): void {
  process.send!(report);
}

process.on('message', (command: WorkerCommand) => {
  switch (command.type) {
    case 'connect':
      void connectAll(command);
      break;
    case 'reset':
      events = 0;
      latencies = [];
      seenSamples = 0;
      lost = 0;
      break;
    case 'report':
      send({ type: 'report', events, latencies, open, lost });
      break;
    case 'close':
      closing = true;
      for (const socket of sockets) socket.destroy();
      process.disconnect();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
