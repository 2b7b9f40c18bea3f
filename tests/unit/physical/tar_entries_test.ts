import tar from "tar-stream";
import { assert, assertEquals, assertMatch, assertRejects } from "../../helpers/assert.ts";
import {
  hardLinkTarget,
  snapshotPath,
  tarEntries,
  type TarHeader,
} from "../../../src/physical/tar_entries.ts";
import { contentStream, type ImportEntry } from "../../../src/kloset/connector.ts";
import { concatBytes } from "../../../src/proc/bytes.ts";
import { byteStream } from "../../helpers/streams.ts";
import {
  ModeDir,
  ModeNamedPipe,
  ModeSetgid,
  ModeSetuid,
  ModeSticky,
  ModeSymlink,
} from "../../../src/kloset/mode.ts";

/** Every file paced by plakar (no small-file read-ahead). */
const PACED = { file: -1, budget: 0 };

interface Member {
  header: TarHeader;
  content?: Uint8Array | string;
}

/** A tar archive of `members`, built by npm:tar-stream's packer. */
async function makeTar(members: Member[]): Promise<Uint8Array> {
  // deno-lint-ignore no-explicit-any
  const pack = (tar as any).pack();
  const parts: Uint8Array[] = [];
  pack.on("data", (c: Uint8Array) => parts.push(new Uint8Array(c)));
  const ended = new Promise((r) => pack.on("end", r));
  for (const m of members) {
    await new Promise<void>((resolve, reject) =>
      pack.entry(
        { mtime: new Date(1_700_000_000_000), ...m.header },
        m.content ?? "",
        (e: Error | null) => e ? reject(e) : resolve(),
      )
    );
  }
  pack.finalize();
  await ended;
  return concatBytes(parts);
}

/** A stream of `bytes` in small chunks, optionally failing after `failAfter` bytes. */
function streamOf(bytes: Uint8Array, chunk = 1000, failAfter?: number): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (failAfter !== undefined && off >= failAfter) {
        c.error(
          new Error("pg_basebackup of h:1 exited with status 1: server closed the connection"),
        );
        return;
      }
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.slice(off, off + chunk));
      off += chunk;
    },
  });
}

async function read(e: ImportEntry): Promise<string> {
  return new TextDecoder().decode(await new Response(contentStream(await e.open!())).arrayBuffer());
}

const signal = new AbortController().signal;

Deno.test("snapshotPath() puts each tar member at its own path from the root", () => {
  assertEquals(snapshotPath("PG_VERSION"), "/PG_VERSION");
  assertEquals(snapshotPath("./pg_wal/archive_status/"), "/pg_wal/archive_status");
  assertEquals(snapshotPath("base/1/"), "/base/1");
  assertEquals(snapshotPath("."), "/");
});

Deno.test("snapshotPath() refuses a member that leaves the root", () => {
  let err: Error | undefined;
  try {
    snapshotPath("base/../../etc/passwd");
  } catch (e) {
    err = e as Error;
  }
  assert(err instanceof SyntaxError);
});

Deno.test("hardLinkTarget() is relative to the link, so it resolves inside any restore", () => {
  assertEquals(hardLinkTarget("/a/b/c", "a/x"), "../x");
  assertEquals(hardLinkTarget("/top", "base/1/2"), "base/1/2");
  assertEquals(hardLinkTarget("/base/1/3", "base/1/2"), "2");
});

Deno.test("tarEntries() keeps type, permission and special bits, owner and time of each member", async () => {
  const bytes = await makeTar([
    { header: { name: "./base/", type: "directory", mode: 0o700, uid: 101, gid: 104 } },
    {
      header: {
        name: "base/1",
        mode: 0o4750,
        uid: 101,
        gid: 104,
        uname: "postgres",
        gname: "postgres",
      },
      content: "hello",
    },
    { header: { name: "tmp/", type: "directory", mode: 0o3777 } },
    { header: { name: "pg_tblspc/16384", type: "symlink", linkname: "/srv/ts", mode: 0o777 } },
    { header: { name: "base/2", type: "link", linkname: "base/1", mode: 0o600 } },
    { header: { name: "fifo", type: "fifo", mode: 0o600 } },
  ]);
  const got: ImportEntry[] = [];
  const contents: string[] = [];
  for await (const e of tarEntries(streamOf(bytes), signal)) {
    got.push(e);
    if (e.open) contents.push(await read(e));
  }
  assertEquals(got.map((e) => e.pathname), [
    "/base",
    "/base/1",
    "/tmp",
    "/pg_tblspc/16384",
    "/base/2",
    "/fifo",
  ]);
  assertEquals(contents, ["hello"]);
  const fi = got.map((e) => e.fileInfo!);
  assertEquals(fi[0].mode, ModeDir + 0o700);
  assertEquals([fi[1].mode, fi[1].size, fi[1].uid, fi[1].gid], [ModeSetuid + 0o750, 5, 101, 104]);
  assertEquals([fi[1].name, fi[1].username, fi[1].groupname], ["1", "postgres", "postgres"]);
  assertEquals(fi[1].modTime.getTime(), 1_700_000_000_000);
  assertEquals(fi[2].mode, ModeDir + ModeSetgid + ModeSticky + 0o777);
  assertEquals([fi[3].mode, got[3].target], [ModeSymlink + 0o777, "/srv/ts"]);
  assertEquals([fi[4].mode, got[4].target], [ModeSymlink + 0o600, "1"]);
  assertEquals(fi[5].mode, ModeNamedPipe + 0o600);
  assert(!got[0].open && !got[3].open && !got[4].open, "only regular files have content");
});

Deno.test("tarEntries() does not move past a file until its content is read or released", async () => {
  const bytes = await makeTar([
    { header: { name: "a" }, content: "x".repeat(100_000) },
    { header: { name: "b" }, content: "second" },
    { header: { name: "c" }, content: "third" },
  ]);
  const gen = tarEntries(streamOf(bytes), signal, PACED);
  const a = (await gen.next()).value as ImportEntry;
  let moved = false;
  const nextB = gen.next().then((r) => {
    moved = true;
    return r.value as ImportEntry;
  });
  await new Promise((r) => setTimeout(r, 50));
  assert(!moved, "the generator moved past an entry nobody consumed");
  await a.release!(); // acknowledged without an Open
  const b = await nextB;
  assertEquals(b.pathname, "/b");
  // Opened, partly read, then cancelled (plakar stopped reading): drained, and on.
  const reader = (contentStream(await b.open!())).getReader();
  await reader.read();
  await reader.cancel();
  const c = (await gen.next()).value as ImportEntry;
  assertEquals([c.pathname, await read(c)], ["/c", "third"]);
  assert((await gen.next()).done);
});

Deno.test("tarEntries() hands out small files without waiting, within its budget, and paces the rest", async () => {
  const bytes = await makeTar([
    { header: { name: "s1" }, content: "a".repeat(3000) },
    { header: { name: "s2" }, content: "b".repeat(3000) },
    { header: { name: "s3" }, content: "c".repeat(3000) },
    { header: { name: "big" }, content: "x".repeat(50_000) },
    { header: { name: "after" }, content: "end" },
  ]);
  // Files up to 4000 bytes are small; 6000 bytes of them may be held.
  const gen = tarEntries(streamOf(bytes), signal, { file: 4000, budget: 6000 });
  const s1 = (await gen.next()).value as ImportEntry;
  const s2 = (await gen.next()).value as ImportEntry; // no Open nor ack of s1 needed
  assertEquals([s1.pathname, s2.pathname], ["/s1", "/s2"]);
  let moved = false;
  const nextS3 = gen.next().then((r) => {
    moved = true;
    return r.value as ImportEntry;
  });
  await new Promise((r) => setTimeout(r, 50));
  assert(!moved, "a third small file went past the budget of two");
  assertEquals(await read(s1), "a".repeat(3000)); // its Open frees its share
  const s3 = await nextS3;
  await s2.release!();
  assertEquals(await read(s3), "c".repeat(3000));
  const big = (await gen.next()).value as ImportEntry;
  moved = false;
  const nextAfter = gen.next().then((r) => {
    moved = true;
    return r.value as ImportEntry;
  });
  await new Promise((r) => setTimeout(r, 50));
  assert(!moved, "the generator moved past a large file nobody consumed");
  assertEquals((await read(big)).length, 50_000);
  assertEquals(await read(await nextAfter), "end");
  assert((await gen.next()).done);
});

Deno.test("tarEntries() throws when the archive is cut short", async () => {
  const bytes = await makeTar([{ header: { name: "a" }, content: "x".repeat(10_000) }]);
  const err = await assertRejects(async () => {
    for await (const e of tarEntries(streamOf(bytes.subarray(0, 5000)), signal)) {
      if (e.open) await read(e).catch(() => {});
    }
  });
  assertMatch(err.message, /Unexpected end of data|ended inside/);
});

Deno.test("tarEntries() fails the open entry and the generator with the tool's error", async () => {
  const bytes = await makeTar([
    { header: { name: "a" }, content: "x".repeat(5000) },
    { header: { name: "b" }, content: "y".repeat(50_000) },
  ]);
  const seen: string[] = [];
  const err = await assertRejects(async () => {
    for await (const e of tarEntries(streamOf(bytes, 1000, 20_000), signal, PACED)) {
      if (!e.open) continue;
      try {
        await read(e);
        seen.push(`${e.pathname} ok`);
      } catch (x) {
        seen.push(`${e.pathname} ${(x as Error).message}`);
      }
    }
  });
  assertMatch(err.message, /^pg_basebackup of h:1 exited with status 1/);
  assertEquals(seen[0], "/a ok");
  assertMatch(seen[1], /^\/b pg_basebackup of h:1 exited with status 1/);
});

Deno.test("tarEntries() stops the producer when the consumer leaves early", async () => {
  const bytes = await makeTar([
    { header: { name: "a" }, content: "1" },
    { header: { name: "b" }, content: "2" },
  ]);
  let cancelled = false;
  const src = streamOf(bytes);
  const wrapped = new ReadableStream<Uint8Array>({
    async pull(c) {
      const r = await reader.read();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
    cancel() {
      cancelled = true;
    },
  });
  const reader = src.getReader();
  for await (const e of tarEntries(wrapped, signal)) {
    assertEquals(e.pathname, "/a");
    break;
  }
  assert(cancelled, "the tar stream was not cancelled");
});

Deno.test("tarEntries(): an entry opened only after the tar stream broke fails at once with the tool's error", async () => {
  const bytes = await makeTar([{ header: { name: "a" }, content: "x".repeat(50_000) }]);
  const gen = tarEntries(streamOf(bytes, 1000, 3000), signal, PACED);
  const a = (await gen.next()).value as ImportEntry;
  const rest = gen.next();
  rest.catch(() => {});
  await new Promise((r) => setTimeout(r, 30)); // the tool fails before plakar opens the file
  const err = await assertRejects(() => read(a));
  assertMatch(err.message, /^pg_basebackup of h:1 exited with status 1/);
  await assertRejects(() => rest);
});

Deno.test("tarEntries() reads a byte stream (a tool's stdout) into buffers of its own", async () => {
  const big = "0123456789abcdef".repeat(20_000);
  const bytes = await makeTar([
    { header: { name: "big" }, content: big },
    { header: { name: "small" }, content: "s" },
  ]);
  const got: [string, string][] = [];
  for await (const e of tarEntries(byteStream(bytes, 7000), signal)) {
    got.push([e.pathname, await read(e)]);
  }
  assertEquals(got, [["/big", big], ["/small", "s"]]);
});

Deno.test("tarEntries() peeks at every regular file as it is read, opened or not: small ones with their content", async () => {
  const bytes = await makeTar([
    { header: { name: "./", type: "directory" } },
    { header: { name: "./standby.signal" }, content: "" },
    { header: { name: "./postgresql.auto.conf" }, content: "port = 5432\n" },
    { header: { name: "./base/1/big" }, content: "x".repeat(5000) },
  ]);
  const seen: [string, string | undefined][] = [];
  const peek = (p: string, c: Uint8Array | undefined) =>
    seen.push([p, c && new TextDecoder().decode(c)]);
  // Every entry released unread, as plakar does with an unchanged file.
  for await (const e of tarEntries(streamOf(bytes), signal, { file: 4000, peek })) {
    await e.release?.();
  }
  assertEquals(seen, [
    ["/standby.signal", ""],
    ["/postgresql.auto.conf", "port = 5432\n"],
    ["/base/1/big", undefined],
  ]);
});
