import { assertEquals, assertMatch } from "../../helpers/assert.ts";
import { segmentHeaderProblem } from "../../../src/physical/wal_header.ts";

const SYSID = 7716717040424260878n;
const SEG = 16 * 1024 * 1024;

/** A long page header as PostgreSQL 15 writes it at a segment's start. */
function header(
  o: { tli?: number; pageaddr?: bigint; sysid?: bigint; seg?: number; info?: number },
) {
  const b = new Uint8Array(40);
  const v = new DataView(b.buffer);
  v.setUint16(0, 0xd110, true);
  v.setUint16(2, o.info ?? 0x0002, true);
  v.setUint32(4, o.tli ?? 1, true);
  v.setBigUint64(8, o.pageaddr ?? 0x3000000n, true);
  v.setBigUint64(24, o.sysid ?? SYSID, true);
  v.setUint32(32, o.seg ?? SEG, true);
  v.setUint32(36, 8192, true);
  return b;
}

const EXPECT = { start: 0x3000000n, tli: 2, systemIdentifier: SYSID, segmentSize: SEG };

Deno.test("a segment whose header matches its name and the server passes", () => {
  assertEquals(segmentHeaderProblem(header({}), EXPECT), undefined);
  // The first segment of a timeline starts with its parent's pages.
  assertEquals(segmentHeaderProblem(header({ tli: 2 }), EXPECT), undefined);
});

Deno.test("a segment of another position, cluster, size or later timeline is named as such", () => {
  assertMatch(
    segmentHeaderProblem(header({ pageaddr: 0x4000000n }), EXPECT)!,
    /position 0\/4000000, not 0\/3000000/,
  );
  assertMatch(segmentHeaderProblem(header({ sysid: 1n }), EXPECT)!, /system identifier 1,/);
  assertMatch(segmentHeaderProblem(header({ seg: 1024 * 1024 }), EXPECT)!, /segment size/);
  assertMatch(segmentHeaderProblem(header({ tli: 3 }), EXPECT)!, /timeline 3/);
  assertMatch(segmentHeaderProblem(header({ info: 0 }), EXPECT)!, /no long page header/);
  assertMatch(segmentHeaderProblem(new Uint8Array(10), EXPECT)!, /shorter/);
});
