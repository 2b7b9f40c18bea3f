// Wider pipes for streaming a tool's output. A Linux pipe holds 64 KiB and
// pg_dump writes in 4 KiB pieces, so a reader that drains the pipe as soon
// as it can wakes once per piece: on two cores that bookkeeping, not the
// copying, is what a relay pays for. With a 1 MiB pipe the reader can let
// output gather and take it in large reads while the tool never blocks.
//
// Best effort: F_SETPIPE_SZ through libc when FFI is allowed, else nothing
// changes and reads simply stay small.

const F_SETPIPE_SZ = 1031;
/** The kernel's default /proc/sys/fs/pipe-max-size. */
export const WIDE_PIPE = 1024 * 1024;

type Fcntl = (fd: number, cmd: number, arg: number) => number;
let fcntl: Fcntl | null | undefined;

function libc(): Fcntl | null {
  if (fcntl !== undefined) return fcntl;
  try {
    const lib = Deno.dlopen("libc.so.6", {
      fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
    });
    fcntl = (fd, cmd, arg) => lib.symbols.fcntl(fd, cmd, arg);
  } catch {
    fcntl = null;
  }
  return fcntl;
}

/** Sets the size of the pipe open on `fd` of this process; false if it could not. */
export function widenFd(fd: number, size = WIDE_PIPE): boolean {
  if (Deno.build.os !== "linux") return false;
  const f = libc();
  if (!f) return false;
  try {
    if (!Deno.readLinkSync(`/proc/self/fd/${fd}`).startsWith("pipe:")) return false;
    return f(fd, F_SETPIPE_SZ, size) >= size;
  } catch {
    return false;
  }
}

/**
 * Widens the pipe behind `childFd` of process `pid` (a child's stdout): finds
 * this process's end of the same pipe in /proc and sets its size.
 */
export function widenChildPipe(pid: number, childFd = 1, size = WIDE_PIPE): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    const target = Deno.readLinkSync(`/proc/${pid}/fd/${childFd}`);
    if (!target.startsWith("pipe:")) return false;
    for (const e of Deno.readDirSync("/proc/self/fd")) {
      let link: string;
      try {
        link = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
      } catch {
        continue;
      }
      if (link === target) return widenFd(Number(e.name), size);
    }
  } catch { /* the child is gone or /proc is not there */ }
  return false;
}
