/**
 * Both ends of a worker's IPC channel, in one process. Messages pass as
 * `process.send` passes them (cluster's default `json` serialisation:
 * `undefined` fields vanish, only plain data survives), asynchronously and
 * in order. `disconnect()` closes it as a dying primary would.
 */

import { EventEmitter } from 'node:events';
import { isWorkerMessage, type PrimaryMessage, type WorkerMessage } from '../../src/cluster/ipc.js';
import type { WorkerEnd } from '../../src/cluster/log-service.js';
import type { PrimaryChannel } from '../../src/cluster/worker-log.js';

export class InProcessChannel {
  connected = true;
  private readonly workerSide = new EventEmitter();
  /** The worker's end: what `process` is in a cluster worker. */
  readonly worker: PrimaryChannel;
  /** The primary's end, to one worker. */
  readonly primary: WorkerEnd;

  /** @param serve what the primary does with each message the worker sends (after the copy, a turn later) */
  constructor(serve: (primary: WorkerEnd, message: WorkerMessage) => void) {
    const channel = this;
    const workerSide = this.workerSide;
    this.worker = {
      send: (message: WorkerMessage, done: (error: Error | null) => void) => {
        if (!this.connected) {
          setImmediate(() => done(new Error('channel closed')));
          return false;
        }
        const copy: unknown = JSON.parse(JSON.stringify(message));
        setImmediate(() => {
          if (!this.connected) return;
          done(null);
          if (isWorkerMessage(copy)) serve(this.primary, copy);
        });
        return true;
      },
      on: (event: string, listener: (...args: any[]) => void) => workerSide.on(event, listener),
      off: (event: string, listener: (...args: any[]) => void) => workerSide.off(event, listener),
      get connected() {
        return channel.connected;
      },
    } as PrimaryChannel;
    this.primary = {
      send: (message: PrimaryMessage) => {
        if (!this.connected) return;
        const copy: unknown = JSON.parse(JSON.stringify(message));
        setImmediate(() => {
          if (this.connected) workerSide.emit('message', copy);
        });
      },
    };
  }

  disconnect(): void {
    if (!this.connected) return;
    this.connected = false;
    this.workerSide.emit('disconnect');
  }
}
