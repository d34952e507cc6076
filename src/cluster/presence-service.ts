/**
 * The primary's side of the workers' presence (`--workers` without Redis):
 * it holds the records each worker reports, lists them all for any worker,
 * and when a worker dies with streams open, hands that worker's records to
 * one worker that serves connections, as lost, so their ends are reported
 * once (Mercure's `active: false` events) and by a process that has a hub.
 *
 * Apart from `primary.ts` for the same reason as the log service: the
 * contract suite drives the workers' store against this very code.
 */

import type { PresenceRecord } from '../presence/presence.js';
import type { WorkerMessage } from './ipc.js';
import type { WorkerEnd } from './log-service.js';

export type PresenceRequest = Extract<WorkerMessage, { readonly herald: 'presence' | 'presence-list' }>;

export class PrimaryPresenceService {
  private readonly records = new Map<WorkerEnd, Map<string, PresenceRecord>>();
  /** Workers serving connections (ready), which can report lost records. */
  private readonly serving: WorkerEnd[] = [];
  /** Lost records waiting for a worker to be ready (every worker was down). */
  private orphans: PresenceRecord[] = [];

  serve(worker: WorkerEnd, message: PresenceRequest): void {
    if (message.herald === 'presence-list') {
      const records = [...this.records.values()].flatMap((own) => [...own.values()]);
      worker.send({ herald: 'presence-listed', id: message.id, records });
      return;
    }
    let own = this.records.get(worker);
    if (own === undefined) this.records.set(worker, (own = new Map()));
    for (const change of message.changes) {
      if ('join' in change) own.set(change.join.subscriber, change.join);
      else own.delete(change.leave);
    }
    worker.send({ herald: 'presence-done', id: message.id });
  }

  /** The worker serves connections: it may be handed lost records (and is, if some wait). */
  ready(worker: WorkerEnd): void {
    this.serving.push(worker);
    if (this.orphans.length > 0) this.handOver(this.orphans.splice(0));
  }

  /** The worker is gone: its records are lost, unless it left none (a clean stop ends its streams first). */
  remove(worker: WorkerEnd): void {
    const at = this.serving.indexOf(worker);
    if (at >= 0) this.serving.splice(at, 1);
    const own = this.records.get(worker);
    this.records.delete(worker);
    if (own !== undefined && own.size > 0) this.handOver([...own.values()]);
  }

  private handOver(records: PresenceRecord[]): void {
    const [heir] = this.serving;
    if (heir === undefined) this.orphans.push(...records);
    else heir.send({ herald: 'presence-lost', records });
  }
}
