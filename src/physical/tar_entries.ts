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
const TYPE_NAMES: Readonly<Record<string, string>> = {
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
const META_TYPES: ReadonlySet<string> = new Set([
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
  const cancel = new Cancellation(input, signal);
  let complete = false;
  const budget = new Budget(small.budget);
  const extended: Extended = {};
  try {
    for (;;) {
      const h = await nextHeader(input, extended);
      if (!h) break;
      const header = memberHeader(h);
      const { name, size } = header;
      const what = () => JSON.stringify(name);
      const pathname = snapshotPath(name);
      const kind = entryType(header.type);
      // Bytes after the member's content, to its next header.
      const tail = padding(size);
      if (pathname === "/" || kind !== "file") {
        // No content to hand out (a directory's stray size is skipped too).
        await input.skip(size + tail, what);
        if (pathname === "/") continue;
      }
      const entry: ImportEntry = { pathname, fileInfo: tarFileInfo(header, pathname) };
      if (kind === "symlink") entry.target = h.linkpath ?? "";
      else if (kind === "link") entry.target = hardLinkTarget(pathname, h.linkpath ?? "");
      else if (kind === "file" && size <= small.file) {
        const bytes = await readSmallFile(entry, input, budget, size, what, signal);
        opts.peek?.(pathname, bytes);
      } else if (kind === "file") {
        opts.peek?.(pathname, undefined);
        const body = largeFileBody(entry, input, size, what);
        yield entry;
        await Promise.race([body.settled, cancel.aborted]);
        if (cancel.error) throw cancel.error;
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
    cancel.dispose();
    // Stops the producer (kills pg_basebackup) when we leave early.
    if (!complete) await input.abort(cancel.error ?? new Error("the import was left early"));
    input.release();
  }
}

/** The import's cancellation as the generator sees it: the tar stream is stopped at once. */
class Cancellation {
  /** Set once the signal fired. */
  error: Error | undefined;
  /** Resolves when the signal fires, for a wait to race against. */
  readonly aborted: Promise<void>;
  #wake!: () => void;
  readonly #onAbort = () => {
    this.error = new Error("the import was cancelled");
    this.#wake();
    void this.input.abort(this.error);
  };

  constructor(readonly input: TarInput, readonly signal?: AbortSignal) {
    this.aborted = new Promise<void>((r) => (this.#wake = r));
    if (signal?.aborted) this.#onAbort();
    signal?.addEventListener("abort", this.#onAbort);
  }

  dispose(): void {
    this.signal?.removeEventListener("abort", this.#onAbort);
  }
}

/** Extended (pax, GNU long name) headers for the next member, and global ones. */
interface Extended {
  next?: HeaderData;
  global?: HeaderData;
}

/**
 * The next member's header, the extended headers before it read and applied;
 * null at the end-of-archive marker.
 */
async function nextHeader(input: TarInput, extended: Extended): Promise<Header | null> {
  for (;;) {
    const at = input.offset;
    const block = await input.exact(512, () => `the header at byte ${at}`);
    if (!block) throw new Error("the tar stream ended before its end-of-archive marker");
    const h = new Header(Buffer.from(block.buffer, 0, 512), 0, extended.next, extended.global);
    // The header block's own fields give way to extended ones, as tar's
    // reader applies them (Header keeps the block's link name).
    applyExtended(h, extended.global, true);
    applyExtended(h, extended.next, false);
    if (h.nullBlock) return null;
    if (!h.cksumValid) {
      throw new Error(`corrupt tar stream: bad header checksum at byte ${at}`);
    }
    const typeName = String(h.type);
    if (!META_TYPES.has(typeName)) {
      extended.next = undefined;
      return h;
    }
    await readExtended(input, typeName, h.size ?? 0, at, extended);
  }
}

/** An extended header's body (pax records or a GNU long name), into `extended`. */
async function readExtended(
  input: TarInput,
  typeName: string,
  size: number,
  at: number,
  extended: Extended,
): Promise<void> {
  if (size > MAX_META) throw new Error(`corrupt tar stream: ${typeName} of ${size} bytes`);
  const what = () => `the ${typeName} header at byte ${at}`;
  const body = new TextDecoder().decode(await input.need(size, what));
  await input.skip(padding(size), what);
  if (typeName === "GlobalExtendedHeader") extended.global = Pax.parse(body, extended.global, true);
  else if (typeName === "ExtendedHeader" || typeName === "OldExtendedHeader") {
    extended.next = Pax.parse(body, extended.next, false);
  } else {
    const value = body.replace(/\0.*/s, "");
    const field = typeName === "NextFileHasLongLinkpath" ? "linkpath" : "path";
    extended.next = { ...extended.next, [field]: value };
  }
}

/** A member's header in our terms; a member of a type pg_basebackup never writes is refused. */
function memberHeader(h: Header): TarHeader & { size: number } {
  const typeName = String(h.type);
  const type = TYPE_NAMES[typeName];
  if (!type) {
    throw new Error(
      `unsupported tar member ${
        JSON.stringify(h.path)
      }: type ${typeName} (pg_basebackup writes files, directories and links only)`,
    );
  }
  return {
    name: h.path ?? "",
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    size: h.size ?? 0,
    mtime: h.mtime,
    type,
    linkname: h.linkpath ?? null,
    uname: h.uname,
    gname: h.gname,
  };
}

/**
 * A small file's content, read whole within the budget; `entry` holds that
 * part of the budget until it is opened or released.
 */
async function readSmallFile(
  entry: ImportEntry,
  input: TarInput,
  budget: Budget,
  size: number,
  what: () => string,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  await budget.take(size, signal);
  const bytes = await input.need(size, what);
  await input.skip(padding(size), what);
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
  return bytes;
}

/** A large file's content, left in the tar stream for `entry`'s Open to read. */
function largeFileBody(
  entry: ImportEntry,
  input: TarInput,
  size: number,
  what: () => string,
): Body {
  const body = new Body(input, size, what);
  let taken = false;
  entry.open = () => {
    taken = true;
    return body.stream();
  };
  entry.release = () => {
    if (!taken) body.release();
  };
  return body;
}
