/**
 * Presence: who is subscribed to what right now, on every node of the hub.
 *
 * Each open stream is one record, kept from the moment the hub accepts it
 * until it closes. A {@link PresenceStore} holds the records of every
 * process that serves the hub: one process keeps them in memory; the
 * workers of `--workers` report theirs to the primary; nodes on Redis keep
 * theirs in Redis under a lease, so a node that dies stops being listed
 * once its lease runs out, and one surviving node reports its streams as
 * lost (Mercure then publishes their `active: false` events).
 *
 * Records are plain data (selectors included), so they cross processes as
 * JSON and match topics again wherever they are read.
 */

import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { randomUuidUrn } from '../uuid.js';
import { matchesTopic, type TopicSelector } from '../topics/selectors.js';

/** Which API the stream was opened with: Herald's `/events`, or Mercure's classic or draft-08 form. */
export type PresenceProtocol = 'herald' | 'mercure-classic' | 'mercure';

export interface PresenceRecord {
  /** The stream's subscriber id, made by the hub (`urn:uuid:…`): unique across nodes, never taken from the client. */
  readonly subscriber: string;
  readonly protocol: PresenceProtocol;
  /** The stream's selectors, as the hub matches them; none: every event. */
  readonly selectors: readonly TopicSelector[];
  /**
   * Mercure: the token payload of each selector's subscription, in the
   * order of `selectors` (`undefined` where the token gives none).
   */
  readonly payloads?: readonly unknown[];
  /** Mercure draft-08: the matcher type each selector was asked with (`Exact`, `URLPattern`, `URITemplate`), in order. */
  readonly matchTypes?: readonly (string | null)[];
  /** The token's `sub`, when the stream has a token that names one. */
  readonly subject?: string;
  /** When the stream opened, in ms since the epoch. */
  readonly since: number;
  /** The process serving the stream (see {@link nodeName}). */
  readonly node: string;
}

/**
 * Where the records of every node are kept.
 *
 * `join` and `leave` resolve once the record is where every node's `list`
 * sees it (or is gone from there): a front end that publishes an event about
 * the change waits for it, so a listing never lags the events it names.
 * They never reject: presence is best effort when the store is down, and a
 * store that comes back is given the whole local state again.
 * Changes take effect in the order they are made, so a `leave` may follow
 * its `join` at once, without waiting for it.
 */
export interface PresenceStore {
  join(record: PresenceRecord): Promise<void>;
  leave(record: PresenceRecord): Promise<void>;
  /** Every node's live records, in no particular order. */
  list(): Promise<readonly PresenceRecord[]>;
  /**
   * Records of streams that ended without a `leave` (their process died),
   * told to one process of the hub only, once.
   */
  onLost(listener: (records: readonly PresenceRecord[]) => void): void;
  /**
   * For stores under a lease: records of this node's, still open, that the
   * store found missing (another node reaped them after a freeze, and may
   * have reported them lost) and wrote again. Absent: it never happens.
   */
  onRestored?(listener: (records: readonly PresenceRecord[]) => void): void;
  close(): Promise<void>;
}

/**
 * A hub's name in presence records: the host and the pid, as operators find
 * them in `ps` and logs, and a random suffix, since neither is unique (two
 * hubs in one process, containers that each run Node as pid 1 on one host).
 */
export function nodeName(): string {
  return `${hostname()}:${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** A new subscriber id: a random URN, as SPEC-08 suggests; it says nothing about the client. */
export function newSubscriberId(): string {
  return randomUuidUrn();
}

/** Whether the record's stream receives (public) events on `topic`: a stream without selectors receives everything. */
export function recordMatches(record: PresenceRecord, topic: string): boolean {
  return record.selectors.length === 0 || record.selectors.some((selector) => matchesTopic(selector, topic));
}

/** The store of a hub served by one process. */
export class LocalPresence implements PresenceStore {
  private readonly records = new Map<string, PresenceRecord>();

  join(record: PresenceRecord): Promise<void> {
    this.records.set(record.subscriber, record);
    return Promise.resolve();
  }

  leave(record: PresenceRecord): Promise<void> {
    this.records.delete(record.subscriber);
    return Promise.resolve();
  }

  list(): Promise<readonly PresenceRecord[]> {
    return Promise.resolve([...this.records.values()]);
  }

  /** A single process that dies takes its listeners with it: nothing is ever lost here. */
  onLost(): void {}

  close(): Promise<void> {
    this.records.clear();
    return Promise.resolve();
  }
}

/**
 * The store of a log that is still opening (Redis is imported on demand):
 * calls wait for the real store; changes and closing never reject, as the
 * contract says, even if the log never opens.
 */
export class DeferredPresence implements PresenceStore {
  constructor(private readonly opening: Promise<PresenceStore>) {
    opening.catch(() => undefined);
  }

  async join(record: PresenceRecord): Promise<void> {
    await this.opening.then((store) => store.join(record), () => undefined);
  }

  async leave(record: PresenceRecord): Promise<void> {
    await this.opening.then((store) => store.leave(record), () => undefined);
  }

  async list(): Promise<readonly PresenceRecord[]> {
    return (await this.opening).list();
  }

  onLost(listener: (records: readonly PresenceRecord[]) => void): void {
    this.opening.then((store) => store.onLost(listener), () => undefined);
  }

  onRestored(listener: (records: readonly PresenceRecord[]) => void): void {
    this.opening.then((store) => store.onRestored?.(listener), () => undefined);
  }

  async close(): Promise<void> {
    await this.opening.then((store) => store.close(), () => undefined);
  }
}
