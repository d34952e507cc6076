/**
 * `--max-connections-per-ip`: streams one client address may hold. Counted
 * by the HTTP layer (the hub knows subscribers, not addresses), across every
 * path that opens streams.
 */

import { HeraldError } from '../errors.js';

export class AddressLimit {
  private readonly open = new Map<string, number>();

  constructor(
    /** Streams per address at most; 0: no limit. */
    private readonly limit: number,
    /** Seconds a refused client is told to wait. */
    private readonly retryAfter: number,
  ) {}

  /**
   * Counts one more stream for `address`; returns the function that counts
   * it off again (call it once, when the stream closes).
   * @throws HeraldError `HERALD_ERR_RATE_LIMITED` when the address holds `limit` streams already
   */
  take(address: string | undefined): () => void {
    if (this.limit === 0 || address === undefined) return noop;
    const held = this.open.get(address) ?? 0;
    if (held >= this.limit) {
      throw new HeraldError('HERALD_ERR_RATE_LIMITED', `this address already holds ${this.limit} streams (--max-connections-per-ip)`, { retryAfter: this.retryAfter });
    }
    this.open.set(address, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.open.get(address)! - 1;
      if (left === 0) this.open.delete(address);
      else this.open.set(address, left);
    };
  }
}

function noop(): void {}
