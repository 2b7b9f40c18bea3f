// A counting semaphore: at most `limit` holders at once, the others wait in
// arrival order. It bounds how many dumps run against the server at once
// (max_parallel_dumps): plakar opens up to -concurrency files together.

export class Semaphore {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`Cannot make a semaphore of ${limit} slots: at least 1`);
    }
    this.#free = limit;
  }

  /** Slots held now. */
  get held(): number {
    return this.limit - this.#free;
  }

  /** Waiters queued now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Waits for a slot; resolves to its release function (idempotent: a second
   * call does nothing). An aborted `signal` rejects while waiting.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next(); // the slot passes straight to the next waiter
      else this.#free++;
    };
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve(release);
      };
      const onAbort = () => {
        const i = this.#waiting.indexOf(grant);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(grant);
    });
  }
}

/**
 * Calls `fn` on each item, at most `limit` at a time, starting them in
 * order; resolves to the results in the items' order. The first rejection
 * rejects (the calls already started run on).
 */
export function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const slots = new Semaphore(limit);
  return Promise.all(items.map(async (item, i) => {
    const release = await slots.acquire();
    try {
      return await fn(item, i);
    } finally {
      release();
    }
  }));
}
