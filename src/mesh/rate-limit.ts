/**
 * Client-side limits for a control plane: how many requests are in flight at once (ConcurrencyLimit) and how many
 * start per second (TokenBucket). Both serve waiters first come, first served, so one busy call cannot starve the
 * others. Used by the Kubernetes API client and the REST client (and the REST provisioner's bound on session
 * setups); nothing here knows about HTTP.
 */

/** At most `max` holders at once; acquire() resolves with the function that gives the slot back. */
export class ConcurrencyLimit {
  private held = 0;
  private peak = 0;
  private readonly queue: (() => void)[] = [];

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`a concurrency limit must be a whole number of at least 1, not ${max}`);
  }

  /** Slots held now. */
  get inFlight(): number {
    return this.held;
  }

  /** The most slots ever held at once. */
  get maxInFlight(): number {
    return this.peak;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = (): void => {
        this.held++;
        this.peak = Math.max(this.peak, this.held);
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.held--;
          this.queue.shift()?.();
        });
      };
      if (this.held < this.max) grant();
      else this.queue.push(grant);
    });
  }

  /** Runs `fn` holding a slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** The bucket size used when none is given: a fifth of a second's worth of requests, at least 1. */
export function defaultBurst(ratePerSec: number): number {
  return Math.max(1, Math.ceil(ratePerSec / 5));
}

/**
 * A token bucket: `ratePerSec` tokens a second, at most `burst` saved up (it starts full). take() resolves when the
 * caller got a token; over any window of T seconds at most burst + ratePerSec * T takes resolve.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly queue: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private waitedMs = 0;

  constructor(
    readonly ratePerSec: number,
    readonly burst: number = defaultBurst(ratePerSec),
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(ratePerSec > 0) || !Number.isFinite(ratePerSec)) throw new RangeError(`a rate limit must be a positive number of requests per second, not ${ratePerSec}`);
    if (!Number.isInteger(burst) || burst < 1) throw new RangeError(`a rate limit's burst must be a whole number of at least 1, not ${burst}`);
    this.tokens = burst;
    this.last = this.now();
  }

  /** Callers waiting for a token. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Total time callers spent waiting for tokens, ms (the throttling the limit imposed). */
  get throttledMs(): number {
    return this.waitedMs;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.ratePerSec);
    this.last = t;
  }

  take(): Promise<void> {
    this.refill();
    if (this.queue.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    const since = this.now();
    return new Promise((resolve) => {
      this.queue.push(() => {
        this.waitedMs += this.now() - since;
        resolve();
      });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.timer !== null || this.queue.length === 0) return;
    this.refill();
    const missing = Math.max(0, 1 - this.tokens);
    // +1 ms: timers may fire a fraction of a millisecond early relative to performance.now().
    const delay = Math.ceil((missing / this.ratePerSec) * 1000) + (missing > 0 ? 1 : 0);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refill();
      while (this.queue.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.queue.shift()!();
      }
      this.schedule();
    }, delay);
  }
}
