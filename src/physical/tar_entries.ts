// A tar stream (pg_basebackup's base.tar on stdout) turned into import
// entries, one per tar member, at its own path from the snapshot root. The
// stream is read once, in order, and paced by plakar: the next member is not
// read until the previous one's content has been read to its end by an
// Open, or released by the host's acknowledgement. Small files are the
// exception: a cluster holds thousands of them (catalog relations, free
// space maps, status files), and one round trip through plakar each made
// the copy several times slower than pg_basebackup itself. A file of at
// most SMALL_FILE bytes is read whole and handed out at once, within a fixed
// budget of such bytes not yet taken (SMALL_BUDGET).
//
// Headers are decoded by npm:tar's Header and Pax (ustar, pax extended
// headers, GNU long names, base-256 numbers, checksums); this module only
// frames the archive into 512-byte blocks and bodies. A large file's content
// is read from the tool's stdout straight into the protocol's chunk buffers
// (src/physical/tar_input.ts): npm:tar-stream's streaming parser cost several
// times pg_basebackup's own time per copy, nearly all of it per-chunk stream
// machinery and the collection of its buffers (figures: docs/BENCHMARKS.md,
// "Physical"). Memory stays independent of the cluster's size:
// one stream buffer, the small files' budget and the chunks in flight.

import { Buffer } from "node:buffer";
import { Header, type HeaderData, Pax } from "tar";
import { type EntryType, type FileInfo, goMode, type ImportEntry } from "../kloset/connector.ts";
import { TarInput } from "./tar_input.ts";

/** A tar member's header, as this module hands it on (the fields we use). */
export interface TarHeader {
  name: string;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  mtime?: Date;
  type?: string | null;
  linkname?: string | null;
  uname?: string;
  gname?: string;
}

/**
 * The snapshot path of a tar member: "./pg_wal/archive_status/" becomes
 * "/pg_wal/archive_status"; the archive's root (".") becomes "/". A member
 * that would land outside the root ("..") is refused.
 */
export function snapshotPath(name: string): string {
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) {
    throw new SyntaxError(`Cannot import tar member ${JSON.stringify(name)}: path leaves the root`);
  }
  return "/" + parts.join("/");
}

/** Maps TarHeader's type names onto ours (the Go mode table's). */
export function entryType(type: string | null | undefined): EntryType {
  switch (type) {
    case "directory":
    case "symlink":
    case "link":
    case "character-device":
    case "block-device":
    case "fifo":
      return type;
    default:
      return "file";
  }
}

/**
 * A hard link's target as a symlink target relative to the link itself, so
 * that a restored directory resolves it inside the restore wherever it lands.
 */
export function hardLinkTarget(pathname: string, linkname: string): string {
  const from = pathname.split("/").slice(1, -1);
  const to = snapshotPath(linkname).split("/").slice(1);
  let common = 0;
  while (common < from.length && common < to.length - 1 && from[common] === to[common]) common++;
  return [...from.slice(common).map(() => ".."), ...to.slice(common)].join("/");
}

/** The entry's metadata: type, permission and special bits, owner, size and time. */
export function tarFileInfo(header: TarHeader, pathname: string): FileInfo {
  const type = entryType(header.type);
  // A hard link carries no content of its own: it becomes a symlink to its target.
  const mode = goMode(header.mode ?? 0, type === "link" ? "symlink" : type);
  return {
    name: pathname === "/" ? "/" : pathname.slice(pathname.lastIndexOf("/") + 1),
    size: type === "file" ? header.size ?? 0 : 0,
    mode,
    modTime: header.mtime ?? new Date(0),
    uid: header.uid ?? 0,
    gid: header.gid ?? 0,
    nlink: 1,
    username: header.uname ?? "",
    groupname: header.gname ?? "",
  };
}

/** npm:tar's type names onto the ones TarHeader uses (tar's own words). */
const TYPE_NAMES: Record<string, string> = {
  File: "file",
  OldFile: "file",
  ContiguousFile: "file",
  Link: "link",
  SymbolicLink: "symlink",
  CharacterDevice: "character-device",
  BlockDevice: "block-device",
  Directory: "directory",
  FIFO: "fifo",
};

/** Headers that describe the next member instead of being one. */
const META_TYPES = new Set([
  "ExtendedHeader",
  "OldExtendedHeader",
  "GlobalExtendedHeader",
  "NextFileHasLongPath",
  "OldGnuLongPath",
  "NextFileHasLongLinkpath",
]);

/** A pax or long-name body larger than this is refused (a corrupt archive, not a name). */
const MAX_META = 1024 * 1024;

/** Files this small are read whole and handed out without waiting for plakar. */
export const SMALL_FILE = 256 * 1024;
/** Bytes of such files read ahead and not yet taken by an Open or an ack, at most. */
export const SMALL_BUDGET = 8 * 1024 * 1024;

/** A count of bytes held, waited on when full. */
class Budget {
  #used = 0;
  #waiters: (() => void)[] = [];
  constructor(readonly limit: number) {}
  async take(n: number, signal?: AbortSignal): Promise<void> {
    while (this.#used > 0 && this.#used + n > this.limit) {
      if (signal?.aborted) throw signal.reason ?? new Error("aborted");
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        signal?.addEventListener("abort", () => r(), { once: true });
      });
    }
    this.#used += n;
  }
  give(n: number): void {
    this.#used -= n;
    for (const w of this.#waiters.splice(0)) w();
  }
}

/** The fields an extended header (pax, GNU long name) sets, over the block's own; a global one never names a path. */
function applyExtended(h: Header, ext: HeaderData | undefined, global: boolean): void {
  if (!ext) return;
  const fields = [
    "path",
    "linkpath",
    "size",
    "mtime",
    "uid",
    "gid",
    "uname",
    "gname",
    "mode",
  ] as const;
  for (const k of fields) {
    if (global && (k === "path" || k === "linkpath")) continue;
    const v = ext[k];
    if (v !== undefined && v !== null) (h as unknown as Record<string, unknown>)[k] = v;
  }
}

const padding = (size: number) => (512 - (size % 512)) % 512;

/**
 * A large file's content: read by its Open straight from the tar stream, or
 * skipped when released or abandoned. `settled` resolves once the archive
 * may move on (the rest of the body is then skipped by the generator) and
 * rejects when the tar stream failed under the reader.
 */
class Body {
  #remaining: number;
  #done = false;
  readonly settled: Promise<void>;
  #resolve!: () => void;
  #reject!: (e: Error) => void;
  constructor(readonly input: TarInput, size: number, readonly what: () => string) {
    this.#remaining = size;
    this.settled = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Awaited by the generator; a rejection nobody waits on is not unhandled.
    this.settled.catch(() => {});
  }

  get remaining(): number {
    return this.#remaining;
  }

  #settle(err?: Error): void {
    if (this.#done) return;
    this.#done = true;
    if (err) this.#reject(err);
    else this.#resolve();
  }

  release(): void {
    this.#settle();
  }

  /** The content as a byte stream: a reader's buffer is filled from the tar stream directly. */
  stream(): ReadableStream<Uint8Array> {
    return new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: 256 * 1024,
      start: (c) => {
        if (this.#remaining === 0) {
          c.close();
          this.#settle();
        }
      },
      pull: async (c) => {
        const req = c.byobRequest!;
        const v = req.view as Uint8Array;
        try {
          const want = Math.min(v.byteLength, this.#remaining);
          const got = await this.input.readInto(new Uint8Array(v.buffer, v.byteOffset, want));
          if (got.length === 0) throw new Error(`the tar stream ended inside ${this.what()}`);
          this.#remaining -= got.length;
          req.respondWithNewView(got);
          if (this.#remaining === 0) {
            c.close();
            this.#settle();
          }
        } catch (e) {
          const err = e instanceof Error ? e : new Error(String(e));
          c.error(err);
          this.#settle(err);
        }
      },
      // plakar stopped reading: the generator skips the rest.
      cancel: () => this.#settle(),
    });
  }
}

/** How tarEntries reads small files, and who else sees them. */
export interface TarEntriesOptions {
  /** Files of at most this many bytes are read whole. @default SMALL_FILE */
  file?: number;
  /** Bytes of such files held at most. @default SMALL_BUDGET */
  budget?: number;
  /**
   * Called once per regular file as the archive is read, whether or not
   * plakar opens it (an unchanged file is acknowledged unread): with its
   * content when it was read whole, undefined when it is larger than `file`.
   * The importer reads the copy's standby settings this way.
   */
  peek?: (pathname: string, content: Uint8Array | undefined) => void;
}

/**
 * Yields one ImportEntry per tar member, in the archive's order. The
 * generator does not move past an entry until its content has been consumed
 * or released, except for files of at most `opts.file` bytes, read whole
 * within `opts.budget` bytes held. A failure of the tar stream (the tool
 * exiting non-zero, a truncated or corrupt archive) is thrown from the
 * generator, and fails the Open reading at the time.
 */
export async function* tarEntries(
  stream: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
  opts: TarEntriesOptions = {},
): AsyncGenerator<ImportEntry> {
  const small = { file: opts.file ?? SMALL_FILE, budget: opts.budget ?? SMALL_BUDGET };
  const input = new TarInput(stream);
  let abortedWith: Error | undefined;
  let wakeAbort: (() => void) | undefined;
  const aborted = new Promise<void>((r) => (wakeAbort = r));
  const onAbort = () => {
    abortedWith = new Error("the import was cancelled");
    wakeAbort!();
    void input.abort(abortedWith);
  };
  if (signal?.aborted) onAbort();
  signal?.addEventListener("abort", onAbort);
  let complete = false;
  const budget = new Budget(small.budget);
  // Extended (pax, GNU long name) headers for the next member, and global ones.
  let ex: HeaderData | undefined;
  let gex: HeaderData | undefined;
  try {
    for (;;) {
      const at = input.offset;
      const block = await input.exact(512, () => `the header at byte ${at}`);
      if (!block) throw new Error("the tar stream ended before its end-of-archive marker");
      const h = new Header(Buffer.from(block.buffer, 0, 512), 0, ex, gex);
      // The header block's own fields give way to extended ones, as tar's
      // reader applies them (Header keeps the block's link name).
      applyExtended(h, gex, true);
      applyExtended(h, ex, false);
      if (h.nullBlock) break;
      if (!h.cksumValid) {
        throw new Error(`corrupt tar stream: bad header checksum at byte ${at}`);
      }
      const size = h.size ?? 0;
      const typeName = String(h.type);
      if (META_TYPES.has(typeName)) {
        if (size > MAX_META) throw new Error(`corrupt tar stream: ${typeName} of ${size} bytes`);
        const what = () => `the ${typeName} header at byte ${at}`;
        const body = new TextDecoder().decode(await input.need(size, what));
        await input.skip(padding(size), what);
        if (typeName === "GlobalExtendedHeader") gex = Pax.parse(body, gex, true);
        else if (typeName === "ExtendedHeader" || typeName === "OldExtendedHeader") {
          ex = Pax.parse(body, ex, false);
        } else {
          const value = body.replace(/\0.*/s, "");
          ex = { ...ex, [typeName === "NextFileHasLongLinkpath" ? "linkpath" : "path"]: value };
        }
        continue;
      }
      ex = undefined;
      const type = TYPE_NAMES[typeName];
      if (!type) {
        throw new Error(
          `unsupported tar member ${
            JSON.stringify(h.path)
          }: type ${typeName} (pg_basebackup writes files, directories and links only)`,
        );
      }
      const name = h.path ?? "";
      const what = () => JSON.stringify(name);
      const header: TarHeader = {
        name,
        mode: h.mode,
        uid: h.uid,
        gid: h.gid,
        size,
        mtime: h.mtime,
        type,
        linkname: h.linkpath ?? null,
        uname: h.uname,
        gname: h.gname,
      };
      const pathname = snapshotPath(name);
      const kind = entryType(type);
      // Bytes after the member's content, to its next header.
      const tail = padding(size);
      if (pathname === "/" || kind !== "file") {
        // No content to hand out (a directory's stray size is skipped too).
        await input.skip(size + tail, what);
        if (pathname === "/") continue;
      }
      const fileInfo = tarFileInfo(header, pathname);
      const entry: ImportEntry = { pathname, fileInfo };
      if (kind === "symlink") entry.target = h.linkpath ?? "";
      else if (kind === "link") entry.target = hardLinkTarget(pathname, h.linkpath ?? "");
      else if (kind === "file" && size <= small.file) {
        await budget.take(size, signal);
        const bytes = await input.need(size, what);
        await input.skip(tail, what);
        opts.peek?.(pathname, bytes);
        let held = true;
        const giveBack = () => {
          if (held) {
            held = false;
            budget.give(size);
          }
        };
        entry.open = () => {
          giveBack();
          return bytes;
        };
        entry.release = giveBack;
        yield entry;
        continue;
      } else if (kind === "file") {
        opts.peek?.(pathname, undefined);
        const body = new Body(input, size, what);
        let taken = false;
        entry.open = () => {
          taken = true;
          return body.stream();
        };
        entry.release = () => {
          if (!taken) body.release();
        };
        yield entry;
        await Promise.race([body.settled, aborted]);
        if (abortedWith) throw abortedWith;
        // Whatever the reader left (it stopped early, or never opened it).
        await input.skip(body.remaining + tail, what);
        continue;
      }
      yield entry;
    }
    // To the end of the stream: the tool's exit status is known only there.
    await input.drain();
    complete = true;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // Stops the producer (kills pg_basebackup) when we leave early.
    if (!complete) await input.abort(abortedWith ?? new Error("the import was left early"));
    input.release();
  }
}
