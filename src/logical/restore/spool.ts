// Spooling a custom-format dump to a file, for `jobs=N`: pg_restore -j reads
// the archive at random offsets from several processes, so it cannot read a
// pipe. The file goes to `spool_dir` (default: the system temp directory),
// only after the free space there is checked against the size plakar records
// for the file. Where the system lets a process reopen another's open file
// (Linux's /proc/PID/fd), the file is unlinked as soon as it is open and
// pg_restore is given that descriptor's path: no exit path, SIGKILL
// included, can leave it on disk, because the kernel frees it when the last
// descriptor closes. plakar SIGKILLs its plugins when it is interrupted, so
// cleanup that runs in this process cannot be relied on. Elsewhere the file
// keeps its name and is removed on every path this process still runs:
// after the restore, on failure, on cancel, and (the runtime's temporary
// files, src/proc/temp_files.ts) at shutdown.

import { statfs } from "node:fs/promises";
import { descriptorOf } from "../../proc/libc.ts";
import type { Runtime } from "../../proc/runtime.ts";
import type { TempFiles } from "../../proc/temp_files.ts";

/** The system temp directory, as Deno.makeTempFile picks it. */
export function systemTempDir(): string {
  return Deno.env.get("TMPDIR") || "/tmp";
}

/** Bytes available to this user in the filesystem holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return Number(s.bavail) * Number(s.bsize);
}

const MiB = 1024 * 1024;
const fmtMiB = (n: number) => `${Math.ceil(n / MiB)} MiB`;

/**
 * Fails when `dir` does not have room for `size` bytes. A size of 0 means
 * unknown (a snapshot that did not record it): the writing itself then stops
 * with a clear message if the disk fills.
 */
export async function checkSpoolSpace(dir: string, size: number): Promise<void> {
  let free: number;
  try {
    free = await freeBytes(dir);
  } catch (e) {
    throw new Error(`Cannot spool the dump to ${dir} (spool_dir): ${(e as Error).message}`);
  }
  if (size > free) {
    throw new Error(
      `Cannot spool the dump to ${dir} (spool_dir): it needs ${fmtMiB(size)} and ${
        fmtMiB(free)
      } are free; free some space, set spool_dir= to a larger filesystem, or restore without jobs= (streamed, no disk)`,
    );
  }
}

/** A spooled dump on disk; dispose (or remove) to delete it. */
export class SpoolFile implements AsyncDisposable {
  /**
   * @param path what a tool opens to read the dump: the open descriptor's
   * /proc path once the name is unlinked, else the file's name
   * @param size the bytes written
   * @param tempFiles the registry the named file is in until removed
   * @param file the descriptor that keeps an unlinked file alive; without
   * it, the file still has its name on disk, which remove() deletes
   */
  constructor(
    readonly path: string,
    readonly size: number,
    readonly tempFiles: TempFiles,
    readonly file?: Deno.FsFile,
  ) {}
  async remove(): Promise<void> {
    if (!this.file) {
      await this.tempFiles.remove(this.path);
      return;
    }
    try {
      this.file.close();
    } catch { /* already closed */ }
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}

/**
 * Unlinks `path`, open as `file`, and returns the path another process opens
 * it by (/proc/<this pid>/fd/N); undefined, with the name kept, where that is
 * not possible.
 */
async function unlinkOpen(runtime: Runtime, path: string): Promise<string | undefined> {
  const fd = descriptorOf(runtime.libc(), path);
  if (fd === undefined) return undefined;
  await runtime.tempFiles.remove(path);
  // Not /proc/self: the reader resolves the path in its own process.
  return `/proc/${Deno.pid}/fd/${fd}`;
}

export interface SpoolOptions {
  /** Directory for the file. @default systemTempDir() */
  dir?: string;
  /** The size the snapshot records for the file (0: unknown). */
  size?: number;
  /** Aborting stops the writing, cancels the input and removes the file. */
  signal?: AbortSignal;
  /** The process's runtime: the file is registered there, the chunks' buffers given back. */
  runtime: Runtime;
}

/**
 * Writes `input` to a new 0600 file and returns it once complete. The input
 * is always consumed or cancelled; on any failure the file is removed.
 */
export async function spool(
  input: ReadableStream<Uint8Array>,
  options: SpoolOptions,
): Promise<SpoolFile> {
  const dir = options.dir ?? systemTempDir();
  const { signal, runtime } = options;
  try {
    signal?.throwIfAborted();
    await checkSpoolSpace(dir, options.size ?? 0);
  } catch (e) {
    await input.cancel().catch(() => {});
    throw e;
  }
  let path: string;
  try {
    path = await Deno.makeTempFile({ dir, prefix: "plakar-pg-spool-", suffix: ".dump" });
  } catch (e) {
    await input.cancel().catch(() => {});
    throw new Error(`Cannot spool the dump to ${dir} (spool_dir): ${(e as Error).message}`);
  }
  runtime.tempFiles.register(path);
  const reader = input.getReader();
  const onAbort = () => void reader.cancel(signal?.reason).catch(() => {});
  signal?.addEventListener("abort", onAbort);
  let written = 0;
  let file: Deno.FsFile | undefined;
  let readPath: string | undefined;
  let complete = false;
  try {
    file = await Deno.open(path, { write: true, truncate: true });
    readPath = await unlinkOpen(runtime, path);
    for (;;) {
      const { value, done } = await reader.read();
      signal?.throwIfAborted();
      if (done) break;
      let off = 0;
      while (off < value.length) {
        try {
          off += await file.write(value.subarray(off));
        } catch (e) {
          // Deno gives the errno's name: the disk, or the user's quota, is full.
          const code = (e as { code?: string }).code;
          const full = code === "ENOSPC" || code === "EDQUOT";
          throw new Error(
            full
              ? `Cannot spool the dump to ${dir} (spool_dir): the disk filled after ${
                fmtMiB(written + off)
              }; free some space, set spool_dir= to a larger filesystem, or restore without jobs=`
              : `Cannot spool the dump to ${dir} (spool_dir): ${(e as Error).message}`,
            { cause: e },
          );
        }
      }
      written += value.length;
      // Written out: a message buffer lent for exactly this chunk is reused.
      runtime.buffers.giveBack(value);
    }
    complete = true;
    if (readPath !== undefined) return new SpoolFile(readPath, written, runtime.tempFiles, file);
    file.close();
    return new SpoolFile(path, written, runtime.tempFiles);
  } catch (e) {
    await reader.cancel().catch(() => {});
    throw e;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    reader.releaseLock();
    // On success the caller owns the file; on failure it goes now.
    if (!complete) {
      try {
        file?.close();
      } catch { /* already closed */ }
      await runtime.tempFiles.remove(path).catch(() => {});
    }
  }
}
