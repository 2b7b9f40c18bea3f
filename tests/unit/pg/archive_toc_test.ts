import { assertEquals, assertRejects } from "../../helpers/assert.ts";
import { ArchiveFormatError, readArchiveToc } from "../../../src/pg/archive_toc.ts";

/** "PGDMP" and the three version bytes of a custom-format archive, nothing after them. */
const header = (major: number, minor: number) =>
  ReadableStream.from([new Uint8Array([0x50, 0x47, 0x44, 0x4d, 0x50, major, minor, 0])]);

Deno.test("an archive format this reader does not know is an ArchiveFormatError", async () => {
  const e = await assertRejects(() => readArchiveToc(header(1, 99)), ArchiveFormatError);
  assertEquals([e.major, e.minor], [1, 99]);
});

Deno.test("an archive of a known format that ends early is not an ArchiveFormatError", async () => {
  const e = await assertRejects(() => readArchiveToc(header(1, 14)), SyntaxError);
  assertEquals(e instanceof ArchiveFormatError, false);
});
