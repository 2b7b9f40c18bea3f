// Temporary files a process writes (spooled dumps for a parallel restore), so
// that every exit path removes them: the owner removes its file in `finally`,
// and the shutdown path (the host went away, a signal arrived) removes
// whatever is still registered. A spooled dump is as large as the database's
// dump; one left behind in /tmp fills a disk. One registry per process (the
// Runtime, src/proc/runtime.ts), as src/proc/children.ts: the shutdown path
// must reach every file whichever call wrote it.

/** The temporary files of one runtime not removed yet. */
export class TempFiles {
  readonly #live = new Set<string>();

  /** Registers a path to remove at shutdown if its owner has not removed it by then. */
  register(path: string): void {
    this.#live.add(path);
  }

  /** Removes a registered file (missing is fine) and forgets it. */
  async remove(path: string): Promise<void> {
    try {
      await Deno.remove(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        this.#live.delete(path);
        throw e;
      }
    }
    this.#live.delete(path);
  }

  /** The registered files not removed yet. */
  live(): string[] {
    return [...this.#live];
  }

  /** Removes every registered file; errors are ignored (best effort at exit). */
  async removeAll(): Promise<void> {
    await Promise.all([...this.#live].map((p) => this.remove(p).catch(() => {})));
  }
}
