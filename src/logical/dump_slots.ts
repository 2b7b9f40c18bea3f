// max_parallel_dumps: plakar opens up to -concurrency files at once (the
// number of CPUs by default), and each open starts a pg_dump, so a full
// backup of a cluster with many databases starts that many dumps against the
// server together. With a bound, an Open waits here for a free slot; the slot
// is held from the tool's start until it has exited (finished, failed, or
// killed because the stream was cancelled). Without one, nothing waits.

import { Semaphore } from "../proc/semaphore.ts";

export class DumpSlots {
  readonly #semaphore: Semaphore | undefined;
  readonly #closed = new AbortController();

  /** `limit` undefined: no bound. */
  constructor(limit?: number) {
    this.#semaphore = limit === undefined ? undefined : new Semaphore(limit);
  }

  /**
   * Starts a dump once a slot is free. `start` receives the release function,
   * to be called when the tool has exited (ToolSpec.onExit); a `start` that
   * throws releases the slot itself.
   */
  async start<T>(start: (release: () => void) => T | Promise<T>): Promise<T> {
    if (!this.#semaphore) return await start(() => {});
    const release = await this.#semaphore.acquire(this.#closed.signal);
    try {
      return await start(release);
    } catch (e) {
      release();
      throw e;
    }
  }

  /** Rejects every Open still waiting (the connector is closing). */
  close(): void {
    this.#closed.abort(new Error("the backup was stopped before this dump could start"));
  }
}
