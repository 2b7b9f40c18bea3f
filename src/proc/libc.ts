// The few libc calls Deno has no permission-friendly API for, through FFI:
// fcntl (a pipe's size) and readlink of /proc/*/fd links, which Deno grants
// only to a process with every permission while the executables run with a
// narrower set (harness/permissions.ts). Loaded once per process, on first
// use, by the Runtime (src/proc/runtime.ts); null where FFI is not allowed or
// there is no libc.so.6 (then callers do without).

export interface Libc {
  fcntl(fd: number, cmd: number, arg: number): number;
  /** The link's target, or null when it cannot be read. */
  readlink(path: string): string | null;
}

/** How many of this process's descriptors are looked at when one is sought. */
export const MAX_FD = 4096;

/** Opens libc.so.6; null where FFI is not allowed or there is none. */
export function loadLibc(): Libc | null {
  try {
    const lib = Deno.dlopen("libc.so.6", {
      fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
      readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
    });
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const buf = new Uint8Array(4096);
    return {
      fcntl: (fd, cmd, arg) => lib.symbols.fcntl(fd, cmd, arg),
      readlink: (path) => {
        const n = Number(lib.symbols.readlink(enc.encode(path + "\0"), buf, BigInt(buf.length)));
        return n < 0 ? null : dec.decode(buf.subarray(0, n));
      },
    };
  } catch {
    return null;
  }
}

/** The descriptor of this process open on `path`, from /proc/self/fd; undefined if none. */
export function descriptorOf(c: Libc | null, path: string): number | undefined {
  if (Deno.build.os !== "linux" || !c) return undefined;
  for (let fd = 0; fd < MAX_FD; fd++) {
    if (c.readlink(`/proc/self/fd/${fd}`) === path) return fd;
  }
  return undefined;
}
