/**
 * Event ids: `<milliseconds>-<sequence>`, e.g. `1764032400000-3`.
 *
 * The first part is the wall-clock time the id was assigned (never moving
 * backwards within one log), the second counts events within that millisecond.
 * Ids therefore sort by (ms, seq), stay unique across restarts as long as the
 * clock does not step back past the previous run, and match the id shape of
 * Redis Streams so every event log can share one scheme. Clients must treat
 * them as opaque strings.
 */

export interface EventId {
  readonly ms: number;
  readonly seq: number;
}

const ID_SHAPE = /^(\d{1,15})-(\d{1,9})$/;

export function formatEventId(id: EventId): string {
  return `${id.ms}-${id.seq}`;
}

/** Parses an id written by {@link formatEventId}; `undefined` for anything else. */
export function parseEventId(text: string): EventId | undefined {
  const match = ID_SHAPE.exec(text);
  if (match === null) return undefined;
  return { ms: Number(match[1]), seq: Number(match[2]) };
}

export function compareEventIds(a: EventId, b: EventId): number {
  return a.ms - b.ms || a.seq - b.seq;
}

/** Hands out strictly increasing ids, starting after `after`. */
export class EventIdGenerator {
  private last: EventId;

  constructor(after: EventId) {
    this.last = after;
  }

  /** Goes back to hand out ids after `last` again (ids assigned to a write that failed were never seen). */
  rewind(last: EventId): void {
    this.last = last;
  }

  next(now: number = Date.now()): EventId {
    const id = now > this.last.ms ? { ms: now, seq: 0 } : { ms: this.last.ms, seq: this.last.seq + 1 };
    this.last = id;
    return id;
  }
}

/** Digits of the two parts of a position in base 36: 36^10 > 10^15 ms, 36^6 > 10^9 per ms. */
const MS_DIGITS = 10;
const SEQ_DIGITS = 6;

/**
 * The position of an id of this scheme: fixed-width base 36, so positions
 * sort as plain strings in id order (ids themselves do not: `1-10` < `1-9`).
 */
export function positionOf(id: EventId): string {
  // A marker just before a millisecond's first id (a log's start) sorts after every id of the millisecond before.
  if (id.seq < 0) return positionOf({ ms: id.ms - 1, seq: 36 ** SEQ_DIGITS - 1 });
  return id.ms.toString(36).padStart(MS_DIGITS, '0') + id.seq.toString(36).padStart(SEQ_DIGITS, '0');
}

/** The id whose position this is; `undefined` for a string that is not one. */
export function idOfPosition(position: string): EventId | undefined {
  if (position.length !== MS_DIGITS + SEQ_DIGITS || !/^[0-9a-z]+$/.test(position)) return undefined;
  return { ms: parseInt(position.slice(0, MS_DIGITS), 36), seq: parseInt(position.slice(MS_DIGITS), 36) };
}
