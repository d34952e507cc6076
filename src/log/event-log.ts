/**
 * The event log: the seam between the hub and where events are kept.
 *
 * Appending assigns ids (in one atomic step per batch), reading after an id
 * serves resume, and the tail feeds live delivery. The hub dispatches only
 * what the tail reports, so one path serves events appended here and, for
 * shared logs, events appended by other nodes.
 */

/** An event as a publisher hands it to the log, before it has an id. */
export interface EventDraft {
  /** Absent: the event reaches only subscribers without topic selectors. */
  readonly topic?: string | undefined;
  /** The SSE `event` field; absent means the client's default `message`. */
  readonly event?: string | undefined;
  /** The `data` text exactly as subscribers will receive it. */
  readonly data: string;
  /** Only subscribers whose token allows the topic receive it (see `--jwt-*`). */
  readonly private?: boolean | undefined;
}

/** An event the log has accepted. */
export interface StoredEvent extends EventDraft {
  readonly id: string;
  /** The framed bytes, filled in by the hub the first time it sends the event; kept to serve replays. */
  frame?: Buffer;
}

/**
 * What a log can say about resuming after an id:
 * - `complete`: `events` are all retained events after the id, in order;
 * - `expired`: the id is older than the retained history, so events may have
 *   been lost in between; `events` holds everything still retained;
 * - `unknown`: the id is not one this log could have issued (malformed, or
 *   ahead of the newest event); `events` is empty.
 */
export type ResumeResult =
  | { readonly status: 'complete'; readonly events: readonly StoredEvent[] }
  | { readonly status: 'expired'; readonly events: readonly StoredEvent[] }
  | { readonly status: 'unknown'; readonly events: readonly StoredEvent[] };

export interface EventLogStats {
  /** Events retained. */
  readonly size: number;
  readonly oldestId: string | undefined;
  readonly newestId: string | undefined;
}

export type TailListener = (events: readonly StoredEvent[]) => void;

/** Whether a log can take appends and feed its tail right now. */
export type LogHealth = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface EventLog {
  /** Stores the drafts as one atomic batch, in order; resolves once they are kept. */
  append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent[]>;
  /** Retained events after `lastEventId`, for resume. */
  readAfter(lastEventId: string): Promise<ResumeResult>;
  /** Registers a listener for every appended batch, in id order; returns the unsubscribe function. */
  tail(listener: TailListener): () => void;
  stats(): EventLogStats;
  /** For logs that connect somewhere: resolves once connected, or once waiting longer is pointless. */
  ready?(): Promise<void>;
  /** For logs that live elsewhere (Redis, another process); absent means always healthy. */
  health?(): LogHealth;
  /**
   * For shared logs: registers a listener called when this node's tail may
   * have skipped events (it fell behind trimming, or the store lost data).
   * The hub then ends its streams so every client resumes from its last id
   * and learns exactly what it missed. Returns the unsubscribe function.
   */
  onGap?(listener: () => void): () => void;
  close(): Promise<void>;
}

/** The `private` flag of a draft, as a field to spread into an event: absent unless set, so public events carry nothing extra. */
export function privacy(draft: EventDraft): { private?: true } {
  return draft.private === true ? { private: true } : {};
}
