// Temporary files this process writes (spooled dumps for a parallel
// restore), so that every exit path removes them: the owner removes its file
// in `finally`, and the shutdown path (the host went away, a signal arrived)
// removes whatever is still registered. A spooled dump is as large as the
// database's dump; one left behind in /tmp fills a disk. Process-wide on
// purpose, as src/proc/children.ts: the shutdown path must reach every file
// whichever call wrote it.

const live = new Set<string>();

/** Registers a path to remove at shutdown if its owner has not removed it by then. */
export function registerTempFile(path: string): void {
  live.add(path);
}

/** Removes a registered file (missing is fine) and forgets it. */
export async function removeTempFile(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      live.delete(path);
      throw e;
    }
  }
  live.delete(path);
}

/** The registered files not removed yet. */
export function liveTempFiles(): string[] {
  return [...live];
}

/** Removes every registered file; errors are ignored (best effort at exit). */
export async function removeAllTempFiles(): Promise<void> {
  await Promise.all([...live].map((p) => removeTempFile(p).catch(() => {})));
}
