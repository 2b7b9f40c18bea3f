// Reads the header and table of contents at the start of a pg_dump
// custom-format archive, from a one-pass stream, without losing a byte: the
// bytes read are handed back in front of the rest of the stream, so the same
// archive can then be piped into pg_restore.
//
// Why: a safe `recreate` restores into a temporary database, and must create
// it with the archive's encoding and locale before pg_restore starts, then
// apply the database-level properties (owner, comment, ACL, ALTER DATABASE
// SET) that pg_restore only applies with -C (which cannot rename). All of
// that is in the TOC, which pg_dump writes first.
//
// Layout (pg_backup_archiver.c, ReadHead/ReadToc; custom format's extra TOC
// field is one data-state byte plus an offset): "PGDMP", version bytes,
// int and offset sizes, format, compression, creation time, database name,
// server and pg_dump versions, then the entries. Integers are a sign byte
// then `intSize` little-endian bytes; strings are an integer length (-1 for
// NULL) then bytes in the archive's encoding, kept here as bytes.

import { PluginError } from "../errors.ts";

/** One TOC entry; text fields are raw bytes in the archive's encoding (null when absent). */
export interface ArchiveTocEntry {
  dumpId: number;
  /** e.g. "TABLE", "DATABASE", "DATABASE PROPERTIES", "ACL", "COMMENT", "ENCODING". */
  desc: string;
  tag: Uint8Array | null;
  defn: Uint8Array | null;
  owner: Uint8Array | null;
}

/** What the archive says about itself. */
export interface ArchiveToc {
  /** [major, minor, revision] of the archive format, e.g. [1, 14, 0]. */
  version: [number, number, number];
  /** The dumped database's name (header), raw bytes. */
  dbname: Uint8Array | null;
  entries: ArchiveTocEntry[];
}

/** Archive format versions whose TOC layout this reader knows (PostgreSQL 10 to 18). */
const MIN_VERSION = [1, 12] as const;
const MAX_VERSION = [1, 16] as const;

/** The custom format's code in the header (archCustom). */
const FORMAT_CUSTOM = 1;

/** Bytes kept at most while reading the TOC; a larger TOC is refused. @default 512 MiB */
const DEFAULT_LIMIT = 512 * 1024 * 1024;

/** Pulls bytes from a stream on demand and remembers all of them for replay. */
class Prefix {
  #buf = new Uint8Array(64 * 1024);
  #filled = 0;
  pos = 0;
  #done = false;
  constructor(
    readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    readonly limit: number,
  ) {}

  async ensure(n: number): Promise<void> {
    while (this.#filled - this.pos < n) {
      if (this.#done) {
        throw new SyntaxError("Cannot read the archive's TOC: the file ends inside it");
      }
      const { value, done } = await this.reader.read();
      if (done) {
        this.#done = true;
        continue;
      }
      if (this.#filled + value.length > this.limit) {
        throw new RangeError(
          `Cannot read the archive's TOC: it exceeds ${this.limit} bytes`,
        );
      }
      if (this.#filled + value.length > this.#buf.length) {
        const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#filled + value.length));
        next.set(this.#buf.subarray(0, this.#filled));
        this.#buf = next;
      }
      this.#buf.set(value, this.#filled);
      this.#filled += value.length;
    }
  }

  byteAt(): number {
    return this.#buf[this.pos++];
  }

  take(n: number): Uint8Array {
    const out = this.#buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Everything read so far (the whole TOC and whatever followed it in the last chunk). */
  read(): Uint8Array {
    return this.#buf.subarray(0, this.#filled);
  }
}

class TocReader {
  intSize = 4;
  offSize = 8;
  constructor(readonly p: Prefix) {}

  async byte(): Promise<number> {
    await this.p.ensure(1);
    return this.p.byteAt();
  }

  async int(): Promise<number> {
    await this.p.ensure(1 + this.intSize);
    const sign = this.p.byteAt();
    let value = 0;
    let scale = 1;
    for (let i = 0; i < this.intSize; i++) {
      value += this.p.byteAt() * scale;
      scale *= 256;
    }
    return sign ? -value : value;
  }

  async str(): Promise<Uint8Array | null> {
    const len = await this.int();
    if (len < 0) return null;
    await this.p.ensure(len);
    return this.p.take(len);
  }
}

const latin = new TextDecoder("latin1");

/** Decodes an ASCII field (desc); other bytes come through one char each. */
export function asciiText(bytes: Uint8Array | null): string {
  return bytes === null ? "" : latin.decode(bytes);
}

/**
 * A custom-format archive of a version this reader does not know: unlike a
 * damaged file, one that pg_restore itself may still read.
 */
export class ArchiveFormatError extends PluginError {
  constructor(readonly major: number, readonly minor: number) {
    super(
      "failed-precondition",
      `Cannot read the archive's TOC: archive format ${major}.${minor} is not one this reader knows (${
        MIN_VERSION.join(".")
      } to ${MAX_VERSION.join(".")})`,
    );
    this.name = "ArchiveFormatError";
  }
}

/**
 * Reads the header and TOC of a custom-format archive from `input`. Returns
 * the TOC and a stream that yields the archive from its first byte (the part
 * read here, then the rest of `input`). Rejects with ArchiveFormatError on an
 * archive of a version it does not know, SyntaxError on a file that is not a
 * custom archive, RangeError on a TOC too
 * large to hold; `input` is cancelled then.
 */
export async function readArchiveToc(
  input: ReadableStream<Uint8Array>,
  limit = DEFAULT_LIMIT,
): Promise<{ toc: ArchiveToc; stream: ReadableStream<Uint8Array> }> {
  const reader = input.getReader();
  const prefix = new Prefix(reader, limit);
  let toc: ArchiveToc;
  try {
    toc = await parse(new TocReader(prefix));
  } catch (e) {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
    throw e;
  }
  return { toc, stream: replay(prefix.read(), reader) };
}

async function parse(r: TocReader): Promise<ArchiveToc> {
  await r.p.ensure(5);
  if (asciiText(r.p.take(5)) !== "PGDMP") {
    throw new SyntaxError("Cannot read the archive's TOC: not a pg_dump custom-format file");
  }
  const major = await r.byte();
  const minor = await r.byte();
  const rev = await r.byte();
  const below = major < MIN_VERSION[0] || (major === MIN_VERSION[0] && minor < MIN_VERSION[1]);
  const above = major > MAX_VERSION[0] || (major === MAX_VERSION[0] && minor > MAX_VERSION[1]);
  if (below || above) throw new ArchiveFormatError(major, minor);
  const at = (mn: number) => minor >= mn; // major is 1 from here on
  r.intSize = await r.byte();
  r.offSize = await r.byte();
  if (r.intSize < 1 || r.intSize > 8 || r.offSize < 1 || r.offSize > 16) {
    throw new SyntaxError("Cannot read the archive's TOC: implausible integer sizes in the header");
  }
  const format = await r.byte();
  if (format !== FORMAT_CUSTOM) {
    throw new SyntaxError(
      `Cannot read the archive's TOC: format ${format} is not the custom format`,
    );
  }
  if (at(15)) await r.byte(); // compression algorithm
  else await r.int(); // compression level
  for (let i = 0; i < 7; i++) await r.int(); // creation time (struct tm)
  const dbname = await r.str();
  await r.str(); // server version
  await r.str(); // pg_dump version

  const count = await r.int();
  if (count < 0 || count > 100_000_000) {
    throw new SyntaxError(`Cannot read the archive's TOC: implausible entry count ${count}`);
  }
  const entries: ArchiveTocEntry[] = [];
  for (let i = 0; i < count; i++) {
    const dumpId = await r.int();
    await r.int(); // hadDumper
    await r.str(); // table oid
    await r.str(); // oid
    const tag = await r.str();
    const desc = asciiText(await r.str());
    await r.int(); // section
    const defn = await r.str();
    await r.str(); // drop statement
    await r.str(); // copy statement
    await r.str(); // namespace
    await r.str(); // tablespace
    if (at(14)) await r.str(); // table access method
    if (at(16)) await r.int(); // relkind
    const owner = await r.str();
    await r.str(); // "false" (WITH OIDS)
    while ((await r.str()) !== null); // dependencies, ended by a NULL string
    await r.byte(); // data state
    await r.p.ensure(r.offSize);
    r.p.take(r.offSize); // data offset
    entries.push({ dumpId, desc, tag, defn, owner });
  }
  return { version: [major, minor, rev], dbname, entries };
}

/** A stream of `head` (in 1 MiB pieces) followed by what `rest` still holds. */
function replay(
  head: Uint8Array,
  rest: ReadableStreamDefaultReader<Uint8Array>,
): ReadableStream<Uint8Array> {
  let off = 0;
  const piece = 1024 * 1024;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (off < head.length) {
        controller.enqueue(head.slice(off, off + piece));
        off += piece;
        return;
      }
      const { value, done } = await rest.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason) {
      await rest.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}
