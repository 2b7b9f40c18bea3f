import { assertEquals, assertThrows } from "../../helpers/assert.ts";
import {
  formatLsn,
  historyFileName,
  isHistoryFileName,
  parseLsn,
  parseSegmentFileName,
  segmentFileName,
  segmentOf,
  segmentStart,
} from "../../../src/physical/wal_names.ts";

const MiB16 = 16 * 1024 * 1024;

Deno.test("an LSN reads and prints as PostgreSQL writes it", () => {
  assertEquals(parseLsn("0/3000148"), 0x3000148n);
  assertEquals(parseLsn("1A/FF"), (0x1an << 32n) | 0xffn);
  assertEquals(formatLsn(0x3000148n), "0/3000148");
  assertEquals(formatLsn((0x1an << 32n) | 0xffn), "1A/FF");
  assertThrows(() => parseLsn("3000148"), SyntaxError);
});

Deno.test("a segment's file name is pg_walfile_name's, for 16 MiB and other segment sizes", () => {
  // pg_walfile_name('0/3000148') on timeline 1 with 16 MiB segments.
  assertEquals(segmentFileName(1, segmentOf(0x3000148n, MiB16), MiB16), "000000010000000000000003");
  // 256 segments per 4 GiB: the 257th is in the second "log id".
  assertEquals(segmentFileName(2, 256n, MiB16), "000000020000000100000000");
  // 64 MiB segments: 64 per 4 GiB.
  assertEquals(segmentFileName(1, 65n, 64 * 1024 * 1024), "000000010000000100000001");
});

Deno.test("a segment file name reads back to its timeline and number, .partial noted", () => {
  assertEquals(parseSegmentFileName("000000020000000100000000", MiB16), {
    tli: 2,
    segno: 256n,
    partial: false,
  });
  assertEquals(parseSegmentFileName("000000010000000000000003.partial", MiB16)?.partial, true);
  assertEquals(parseSegmentFileName("00000002.history", MiB16), undefined);
  assertEquals(segmentStart(3n, MiB16), 0x3000000n);
});

Deno.test("a history file's name is the timeline in 8 hex digits", () => {
  assertEquals(historyFileName(10), "0000000A.history");
  assertEquals(isHistoryFileName("0000000A.history"), true);
  assertEquals(isHistoryFileName("000000010000000000000003"), false);
});
