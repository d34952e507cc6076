/**
 * Waiting without guessing: promises that settle when something observable
 * happens, each bounded by a timeout whose error says what was awaited and
 * what was seen instead.
 */

/**
 * Promises that settle when a condition becomes true: the owner calls
 * `notify()` whenever its state changes (bytes arrived, the stream ended).
 */
export class Waiters {
  private readonly checks = new Set<() => void>();

  notify(): void {
    for (const check of this.checks) check();
  }

  /** Resolves once `condition()` holds; rejects after `timeoutMs`, naming `what` and what `describe()` says. */
  until(condition: () => boolean, what: string, timeoutMs: number, describe: () => string): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!condition()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${describe()}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.checks.delete(check);
      };
      this.checks.add(check);
    });
  }
}

/** Things that arrive one by one (events of an EventSource, reads of a log), with waits on what has arrived. */
export class Recorder<T> {
  readonly items: T[] = [];
  private readonly waiters = new Waiters();

  constructor(private readonly show: (items: readonly T[]) => string = (items) => JSON.stringify(items)) {}

  push(item: T): void {
    this.items.push(item);
    this.waiters.notify();
  }

  get length(): number {
    return this.items.length;
  }

  until(condition: (items: readonly T[]) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return this.waiters.until(() => condition(this.items), what, timeoutMs, () => `got ${this.items.length}: ${this.show(this.items).slice(0, 600)}`);
  }

  /** Resolves once at least `count` items arrived. */
  untilCount(count: number, what = `${count} items`, timeoutMs?: number): Promise<void> {
    return this.until((items) => items.length >= count, what, timeoutMs);
  }
}

/** Resolves as `promise` does, or rejects after `timeoutMs` naming `what`: no test waits forever. */
export async function within<T>(promise: Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Probes until `accept(value)` holds and returns that value; throws after
 * `timeoutMs` with `what` and the last value seen. Only for state that
 * nothing announces (another process's `/health`, `/proc`): whatever emits
 * an event is waited on through the event instead.
 */
export async function pollUntil<T>(
  probe: () => T | Promise<T>,
  accept: (value: T) => boolean,
  what: string,
  { timeoutMs = 10_000, everyMs = 50, show = (value: T) => JSON.stringify(value) }: { timeoutMs?: number; everyMs?: number; show?: (value: T) => string } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${show(value)?.slice(0, 600)}`);
    await sleep(everyMs);
  }
}

/**
 * Lets time pass. For pacing only (a publisher at a rate, a client that
 * dribbles, a fault held on purpose), never to wait for something to happen.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
