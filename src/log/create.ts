/**
 * Which event log the options ask for, and opening it. The engines that need
 * more than Node (SQLite's native addon, a Redis client) are loaded only when
 * asked for, so a hub that keeps history in memory loads neither.
 */

import { DeferredPresence, LocalPresence, type PresenceStore } from '../presence/presence.js';
import type { ResolvedOptions } from '../config/options.js';
import type { EventLog, EventLogStats, LogHealth, ReadPage, ReadRequest, StoredEvent, TailListener, EventDraft } from './event-log.js';
import { MemoryEventLog } from './memory-log.js';

export type EngineName = 'memory' | 'sqlite' | 'redis';

/** The options that choose and shape a log. */
export type LogOptions = Pick<ResolvedOptions, 'store' | 'redis' | 'redisPrefix' | 'history' | 'historyTtl'> & Partial<Pick<ResolvedOptions, 'presenceLease'>>;

export interface Engine {
  readonly name: EngineName;
  /**
   * Whether several processes can each open this log and see one history
   * (Redis). If not, the primary of `--workers` owns the log and its workers
   * reach it over IPC.
   */
  readonly shared: boolean;
}

/** The engine the options choose: Redis with `redis`, SQLite with `store`, else memory. */
export function engineOf(options: LogOptions): Engine {
  if (options.redis !== undefined) return { name: 'redis', shared: true };
  if (options.store !== undefined) return { name: 'sqlite', shared: false };
  return { name: 'memory', shared: false };
}

/**
 * Opens the log the options ask for. SQLite and Redis open in the
 * background: their module loads on first use, and `ready()` rejects (with
 * `HERALD_ERR_INVALID_OPTION`) when the log cannot be opened at all.
 *
 * @param notify told, in one line, about events worth an operator's attention (Redis lost or back)
 */
export function createEventLog(options: LogOptions, notify?: (message: string) => void): EventLog {
  const engine = engineOf(options);
  switch (engine.name) {
    case 'redis': {
      const url = options.redis!;
      return new DeferredEventLog(
        true,
        import('./redis-log.js').then(
          ({ RedisEventLog }) =>
            new RedisEventLog({ url, prefix: options.redisPrefix, capacity: options.history, maxAgeMs: options.historyTtl, notify, presenceLeaseMs: options.presenceLease }),
        ),
      );
    }
    case 'sqlite': {
      const path = options.store!;
      return new DeferredEventLog(
        false,
        import('./sqlite-log.js').then(({ SqliteEventLog }) => new SqliteEventLog({ path, capacity: options.history, maxAgeMs: options.historyTtl })),
      );
    }
    case 'memory':
      return new MemoryEventLog({ capacity: options.history, maxAgeMs: options.historyTtl });
  }
}

const EMPTY_STATS: EventLogStats = Object.freeze({ size: 0, oldestId: undefined, newestId: undefined });

/**
 * A log that is still opening: calls wait for it, listeners are passed on
 * once it is open, and a log that failed to open fails every call with the
 * reason.
 */
export class DeferredEventLog implements EventLog {
  private log: EventLog | undefined;
  private failure: unknown;
  private readonly opening: Promise<EventLog>;
  private readonly listeners = new Set<TailListener>();
  private readonly gapListeners = new Set<() => void>();
  private closed = false;

  constructor(
    readonly shared: boolean,
    opening: Promise<EventLog>,
  ) {
    this.opening = opening.then(
      (log) => {
        this.log = log;
        log.tail((events) => {
          for (const listener of this.listeners) listener(events);
        });
        log.onGap?.(() => {
          for (const listener of this.gapListeners) listener();
        });
        // Closed while opening: the log opened for nothing.
        if (this.closed) void log.close();
        return log;
      },
      (error: unknown) => {
        this.failure = error;
        throw error;
      },
    );
    // Failures surface through ready() and each call; nobody need listen here.
    this.opening.catch(() => undefined);
  }

  async append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent[]> {
    return (await this.opening).append(drafts);
  }

  async read(request: ReadRequest): Promise<ReadPage> {
    return (await this.opening).read(request);
  }

  tail(listener: TailListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onGap(listener: () => void): () => void {
    this.gapListeners.add(listener);
    return () => this.gapListeners.delete(listener);
  }

  /** The opened log's store (Redis's), else this process's own. */
  presence(node: string): PresenceStore {
    return new DeferredPresence(this.opening.then((log) => log.presence?.(node) ?? new LocalPresence()));
  }

  stats(): EventLogStats {
    return this.log?.stats() ?? EMPTY_STATS;
  }

  async ready(): Promise<void> {
    const log = await this.opening;
    await log.ready?.();
  }

  health(): LogHealth {
    if (this.log !== undefined) return this.log.health?.() ?? { ok: true };
    if (this.failure !== undefined) return { ok: false, reason: `the event log cannot open: ${(this.failure as Error).message}` };
    return { ok: false, reason: 'the event log is opening' };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.gapListeners.clear();
    const log = await this.opening.catch(() => undefined);
    await log?.close();
  }
}
