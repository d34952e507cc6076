/**
 * The framed bytes of recent events, by position, within a byte budget.
 *
 * Live fan-out frames each event once anyway; keeping the newest frames lets
 * the replays of a reconnect storm (thousands of clients asking for the same
 * recent events) share those bytes instead of framing them per client. The
 * frames are the hub's: the log's events are never touched.
 */

/** Bytes of frames kept at most; the oldest go first. Small: a storm replays the newest events. */
const DEFAULT_BUDGET_BYTES = 1024 * 1024;
/** Frames kept at most, whatever their size. */
const MAX_FRAMES = 1024;

export class FrameCache {
  /** Insertion order is age order: the first entry is the oldest. */
  private readonly frames = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly budgetBytes: number = DEFAULT_BUDGET_BYTES) {}

  get(position: string): Buffer | undefined {
    return this.frames.get(position);
  }

  set(position: string, frame: Buffer): void {
    // A frame larger than the budget would evict everything to keep nothing worth keeping.
    if (frame.length > this.budgetBytes / 4 || this.frames.has(position)) return;
    this.frames.set(position, frame);
    this.bytes += frame.length;
    for (const [oldest, old] of this.frames) {
      if (this.bytes <= this.budgetBytes && this.frames.size <= MAX_FRAMES) break;
      this.frames.delete(oldest);
      this.bytes -= old.length;
    }
  }
}
