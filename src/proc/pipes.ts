// Wider pipes for streaming a tool's output. A Linux pipe holds 64 KiB and
// pg_dump writes in 4 KiB pieces, so a reader that drains the pipe as soon
// as it can wakes once per piece: on two cores that bookkeeping, not the
// copying, is what a relay pays for. With a 1 MiB pipe the reader can let
// output gather and take it in large reads while the tool never blocks.
//
// Best effort: F_SETPIPE_SZ through libc when FFI is allowed, else nothing
// changes and reads simply stay small. The /proc/*/fd links are read through
// libc's readlink too (src/proc/libc.ts).

import { type Libc, MAX_FD } from "./libc.ts";

const F_SETPIPE_SZ = 1031;
/** The kernel's default /proc/sys/fs/pipe-max-size. */
export const WIDE_PIPE = 1024 * 1024;

/** Sets the size of the pipe open on `fd` of this process through `c`; false if it could not. */
export function widenFd(c: Libc | null, fd: number, size = WIDE_PIPE): boolean {
  if (Deno.build.os !== "linux" || !c) return false;
  try {
    if (!c.readlink(`/proc/self/fd/${fd}`)?.startsWith("pipe:")) return false;
    return c.fcntl(fd, F_SETPIPE_SZ, size) >= size;
  } catch {
    return false;
  }
}

/**
 * Widens the pipe behind `childFd` of process `pid` (a child's stdout): finds
 * this process's end of the same pipe in /proc and sets its size.
 */
export function widenChildPipe(
  c: Libc | null,
  pid: number,
  childFd = 1,
  size = WIDE_PIPE,
): boolean {
  if (Deno.build.os !== "linux" || !c) return false;
  try {
    const target = c.readlink(`/proc/${pid}/fd/${childFd}`);
    if (!target?.startsWith("pipe:")) return false;
    for (let fd = 0; fd < MAX_FD; fd++) {
      if (c.readlink(`/proc/self/fd/${fd}`) === target) return widenFd(c, fd, size);
    }
  } catch { /* the child is gone or /proc is not there */ }
  return false;
}
