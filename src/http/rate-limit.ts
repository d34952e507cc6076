/**
 * Publish rate limits per client address: a token bucket each, refilled at
 * `rate` events per second up to `burst`. A batch takes one token per event.
 */

/** Buckets kept at most; past it the fullest are forgotten first (they cost nothing to recreate). */
const MAX_BUCKETS = 100_000;

interface Bucket {
  tokens: number;
  updated: number;
}

export class PublishRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    /** Events per second per client; 0 turns limiting off. */
    private readonly rate: number,
    private readonly burst: number = rate,
    private readonly now: () => number = Date.now,
  ) {
    // Full buckets carry no information: dropping them keeps memory bounded by the clients active lately.
    this.sweeper = setInterval(() => this.sweep(), 10_000);
    this.sweeper.unref();
  }

  get enabled(): boolean {
    return this.rate > 0;
  }

  /**
   * Takes `count` tokens for `client`.
   * @returns 0 when allowed, else the seconds to wait before this many could pass
   */
  take(client: string, count: number): number {
    if (!this.enabled) return 0;
    const bucket = this.refill(client);
    if (bucket.tokens >= count) {
      bucket.tokens -= count;
      return 0;
    }
    if (count > this.burst) return Number.POSITIVE_INFINITY;
    return Math.max(1, Math.ceil((count - bucket.tokens) / this.rate));
  }

  /**
   * Whether `client` could publish one event now, without taking it.
   * @returns 0 when it could, else the seconds to wait
   */
  peek(client: string): number {
    if (!this.enabled) return 0;
    const bucket = this.refill(client);
    return bucket.tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - bucket.tokens) / this.rate));
  }

  private refill(client: string): Bucket {
    const now = this.now();
    let bucket = this.buckets.get(client);
    if (bucket === undefined) {
      if (this.buckets.size >= MAX_BUCKETS) this.sweep();
      bucket = { tokens: this.burst, updated: now };
      this.buckets.set(client, bucket);
      return bucket;
    }
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.updated) / 1000) * this.rate);
    bucket.updated = now;
    return bucket;
  }

  private sweep(): void {
    for (const [client] of this.buckets) {
      if (this.refill(client).tokens >= this.burst) this.buckets.delete(client);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    this.buckets.clear();
  }
}
