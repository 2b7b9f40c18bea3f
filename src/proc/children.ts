// Every child tool a process starts, so that when the host goes away (its
// stream ends, its pipe breaks, a signal arrives) all of them are stopped and
// awaited before the process exits. A pg_dump left behind keeps its server
// backend's snapshot and locks (ALTER TABLE waits, VACUUM's horizon is held);
// a psql or pg_restore left behind keeps writing into the target. One registry
// per process (the Runtime, src/proc/runtime.ts): the shutdown path must reach
// every child whichever call started it.

/** The live child processes of one runtime. */
export class Children {
  readonly #live = new Set<Deno.ChildProcess>();

  /** Registers a freshly spawned child; it leaves the set when it exits. */
  track(child: Deno.ChildProcess): Deno.ChildProcess {
    this.#live.add(child);
    const forget = () => this.#live.delete(child);
    child.status.then(forget, forget);
    return child;
  }

  /** How many tracked children have not exited yet. */
  get live(): number {
    return this.#live.size;
  }

  /**
   * Stops every live child: SIGTERM, then SIGKILL for those still running
   * after `graceMs`; resolves once all have exited.
   */
  async stopAll(graceMs = 2000): Promise<void> {
    const children = [...this.#live];
    if (children.length === 0) return;
    for (const c of children) signal(c, "SIGTERM");
    const all = Promise.all(children.map((c) => c.status.catch(() => {})));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) { for (const c of children) signal(c, "SIGKILL"); }
    await all;
  }
}

function signal(child: Deno.ChildProcess, sig: Deno.Signal): void {
  try {
    child.kill(sig);
  } catch { /* already exited */ }
}
