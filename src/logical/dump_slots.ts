// max_parallel_dumps: plakar opens up to -concurrency files at once (the
// number of CPUs by default), and each open starts a pg_dump, so a full
// backup of a cluster with many databases starts that many dumps against the
// server together. With a bound, an Open waits here for a free slot; the slot
// is held from the tool's start until it has exited (finished, failed, or
// killed because the stream was cancelled). Without one, nothing waits.
//
// A read-ahead dump (src/logical/read_ahead.ts) takes a slot like any other,
// but only one that is free now (tryStart never waits, so it never queues
// ahead of an Open), never with a bound of 1 (it would be a second dump at
// once), and it gives its slot back when an Open would otherwise wait
// (onContention), so read-ahead never delays a file plakar has opened.

import { Semaphore } from "../proc/semaphore.ts";

export class DumpSlots {
  readonly #semaphore: Semaphore | undefined;
  readonly #closed = new AbortController();
  /** Called when a start finds every slot taken, before it waits. */
  onContention: (() => void) | undefined;

  /** `limit` undefined: no bound. */
  constructor(limit?: number) {
    this.#semaphore = limit === undefined ? undefined : new Semaphore(limit);
  }

  /** Whether a dump may run ahead of plakar's Opens: not with a bound of one dump at a time. */
  get readAhead(): boolean {
    return !this.#semaphore || this.#semaphore.limit >= 2;
  }

  #full(): boolean {
    return !!this.#semaphore && this.#semaphore.held >= this.#semaphore.limit;
  }

  /**
   * Starts a dump once a slot is free. `start` receives the release function,
   * to be called when the tool has exited (ToolSpec.onExit); a `start` that
   * throws releases the slot itself.
   */
  async start<T>(start: (release: () => void) => T | Promise<T>): Promise<T> {
    if (!this.#semaphore) return await start(() => {});
    if (this.#full()) this.onContention?.();
    // acquire() takes a free slot synchronously: tryStart relies on it.
    const release = await this.#semaphore.acquire(this.#closed.signal);
    try {
      return await start(release);
    } catch (e) {
      release();
      throw e;
    }
  }

  /**
   * Starts a dump only if a slot is free now; undefined when none is, when
   * read-ahead is off (a bound of 1) or when the connector is closing.
   */
  tryStart<T>(start: (release: () => void) => T | Promise<T>): Promise<T> | undefined {
    if (!this.readAhead || this.#closed.signal.aborted || this.#full()) return undefined;
    return this.start(start);
  }

  /** Rejects every Open still waiting (the connector is closing). */
  close(): void {
    this.#closed.abort(new Error("the backup was stopped before this dump could start"));
  }
}
