/**
 * The event log of a worker when the primary process owns the real one:
 * appends and resume reads go to the primary over IPC, stored batches come
 * back to every worker's tail.
 */

import { HeraldError } from '../errors.js';
import { extras, type EventDraft, type EventLog, type EventLogStats, type LogHealth, type ReadPage, type ReadRequest, type StoredEvent, type TailListener } from '../log/event-log.js';
import { isPrimaryMessage, type PresenceChange, type PrimaryMessage, type WireError, type WorkerMessage } from './ipc.js';
import type { PresenceRecord, PresenceStore } from '../presence/presence.js';

/** The IPC end a worker has: `process` in a `node:cluster` worker. */
export interface PrimaryChannel {
  /** Sends a message; `done` is told whether it went (an error once the channel is closed). */
  send(message: WorkerMessage, done: (error: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  /** The channel closed: the primary is gone, nothing sent will be answered. */
  on(event: 'disconnect', listener: () => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'disconnect', listener: () => void): unknown;
  readonly connected: boolean;
}

/**
 * A request the primary has not answered in this long fails: the primary
 * answers every request (a read is one bounded page), so one that never
 * comes means the primary is stuck, and a replay ends rather than hangs.
 */
const REQUEST_TIMEOUT_MS = 10_000;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface Waiting {
  readonly resolve: (value: PrimaryMessage) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class WorkerEventLog implements EventLog {
  /** Other workers append to the primary's log too; their batches come back through the tail. */
  readonly shared = true;
  private readonly listeners = new Set<TailListener>();
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private outbox: { drafts: readonly EventDraft[]; resolve: (events: readonly StoredEvent[]) => void; reject: (error: unknown) => void }[] = [];
  private latestStats: EventLogStats = { size: 0, oldestId: undefined, newestId: undefined };
  private closed = false;
  private readonly lostListeners: ((records: readonly PresenceRecord[]) => void)[] = [];

  constructor(private readonly primary: PrimaryChannel) {
    primary.on('message', this.receive);
    primary.on('disconnect', this.disconnected);
  }

  /** Nothing sent to the primary will be answered now: every caller waiting is told at once. */
  private readonly disconnected = (): void => this.failAll(unavailable('the primary process is gone'));

  private failAll(error: HeraldError): void {
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const { reject, timer } of waiting) {
      clearTimeout(timer);
      reject(error);
    }
  }

  private readonly receive = (message: unknown): void => {
    if (!isPrimaryMessage(message) || message.herald === 'connection') return;
    if (message.herald === 'events') {
      this.latestStats = message.stats;
      for (const listener of this.listeners) listener(message.events);
      return;
    }
    if (message.herald === 'presence-lost') {
      for (const listener of this.lostListeners) {
        try {
          listener(message.records);
        } catch {
          // A record the listener cannot report (malformed) must not take the worker down; the others are reported.
        }
      }
      return;
    }
    const waiting = this.waiting.get(message.id);
    // Unknown: answered after it timed out, or after the worker closed.
    if (waiting === undefined) return;
    this.waiting.delete(message.id);
    clearTimeout(waiting.timer);
    waiting.resolve(message);
  };

  private request(message: DistributiveOmit<Extract<WorkerMessage, { id: number }>, 'id'>): Promise<PrimaryMessage> {
    if (this.closed || !this.primary.connected) return Promise.reject(unavailable('the primary process is gone'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const fail = (error: HeraldError): void => {
        const waiting = this.waiting.get(id);
        if (waiting === undefined) return;
        this.waiting.delete(id);
        clearTimeout(waiting.timer);
        reject(error);
      };
      const timer = setTimeout(() => fail(unavailable('the primary process did not answer in time')), REQUEST_TIMEOUT_MS);
      timer.unref();
      this.waiting.set(id, { resolve, reject, timer });
      this.primary.send({ ...message, id } as WorkerMessage, (error) => {
        if (error !== null) fail(unavailable(`the primary process cannot be reached (${error.message})`));
      });
    });
  }

  /**
   * The publishes of one event-loop turn travel to the primary in one
   * message (a busy worker pays the IPC cost once per turn, not per publish);
   * each keeps its own atomicity and outcome.
   */
  append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent[]> {
    return new Promise((resolve, reject) => {
      this.outbox.push({ drafts, resolve, reject });
      if (this.outbox.length === 1) setImmediate(this.sendAppends);
    });
  }

  private readonly sendAppends = (): void => {
    const appends = this.outbox;
    this.outbox = [];
    this.request({ herald: 'append', batches: appends.map((append) => append.drafts) }).then(
      (reply) => {
        if (reply.herald !== 'appended') throw unavailable('the primary process sent an unexpected reply');
        appends.forEach(({ drafts, resolve, reject }, i) => {
          const outcome = reply.results[i];
          if (outcome === undefined || 'error' in outcome) {
            reject(fromWire(outcome?.error));
            return;
          }
          // The primary sent only what its log decided (id, position, time); the rest is the draft's, as the log keeps it.
          resolve(drafts.map((draft, k) => ({ ...outcome.stored[k]!, topic: draft.topic, event: draft.event, data: draft.data, ...extras(draft) })));
        });
      },
    ).catch((error: unknown) => {
      for (const { reject } of appends) reject(error);
    });
  };

  async read(request: ReadRequest): Promise<ReadPage> {
    const reply = await this.request({ herald: 'read', request });
    if (reply.herald !== 'read-result' || reply.page === undefined) throw fromWire(reply.herald === 'read-result' ? reply.error : undefined);
    return reply.page;
  }

  /** The primary holds every worker's presence records: changes and listings go there. */
  presence(): PresenceStore {
    return new WorkerPresence(
      (message) => this.request(message),
      (listener) => this.lostListeners.push(listener),
    );
  }

  tail(listener: TailListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stats(): EventLogStats {
    return this.latestStats;
  }

  health(): LogHealth {
    return this.primary.connected ? { ok: true } : { ok: false, reason: 'the primary process is gone' };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.primary.off('message', this.receive);
    this.primary.off('disconnect', this.disconnected);
    this.listeners.clear();
    this.failAll(unavailable('the worker is closing'));
  }
}

/** The primary (the log's owner) cannot be asked: nothing was acknowledged. */
function unavailable(why: string): HeraldError {
  return new HeraldError('HERALD_ERR_STORE_UNAVAILABLE', `${why}; nothing was acknowledged, retry`, { retryAfter: 1 });
}

/** The error the primary's log raised, rebuilt with its code and retry delay. */
function fromWire(error: WireError | undefined): HeraldError {
  if (error?.code !== undefined) return new HeraldError(error.code, error.message, error.retryAfter === undefined ? {} : { retryAfter: error.retryAfter });
  return unavailable(error?.message ?? 'the primary process sent an unexpected reply');
}

type PresenceRequest = DistributiveOmit<Extract<WorkerMessage, { herald: 'presence' | 'presence-list' }>, 'id'>;

/**
 * A worker's presence store: its records live in the primary, which hears
 * of a worker that dies and hands that worker's records to another one as
 * lost. Changes of one event-loop turn travel in one message, answered once
 * the primary holds them.
 */
class WorkerPresence implements PresenceStore {
  private changes: PresenceChange[] = [];
  private waiters: (() => void)[] = [];

  constructor(
    private readonly request: (message: PresenceRequest) => Promise<PrimaryMessage>,
    private readonly listenForLost: (listener: (records: readonly PresenceRecord[]) => void) => void,
  ) {}

  join(record: PresenceRecord): Promise<void> {
    return this.change({ join: record });
  }

  leave(record: PresenceRecord): Promise<void> {
    return this.change({ leave: record.subscriber });
  }

  private change(change: PresenceChange): Promise<void> {
    return new Promise((resolve) => {
      this.changes.push(change);
      this.waiters.push(resolve);
      if (this.changes.length === 1) setImmediate(this.send);
    });
  }

  private readonly send = (): void => {
    const { changes, waiters } = this;
    this.changes = [];
    this.waiters = [];
    const settle = (): void => {
      for (const resolve of waiters) resolve();
    };
    // Presence is best effort: a primary that is gone takes every worker's records with it.
    this.request({ herald: 'presence', changes }).then(settle, settle);
  };

  async list(): Promise<readonly PresenceRecord[]> {
    try {
      const reply = await this.request({ herald: 'presence-list' });
      return reply.herald === 'presence-listed' ? reply.records : [];
    } catch (error) {
      throw error instanceof HeraldError ? error : unavailable('the primary process did not list presence');
    }
  }

  onLost(listener: (records: readonly PresenceRecord[]) => void): void {
    this.listenForLost(listener);
  }

  async close(): Promise<void> {}
}
