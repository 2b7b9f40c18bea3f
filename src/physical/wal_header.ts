// The long page header that opens every WAL segment (XLogLongPageHeaderData in
// access/xlog_internal.h): magic, info flags, timeline, the page's own LSN,
// then the cluster's system identifier, the segment size and the block size.
// Checking it before a segment is stored catches a file from another
// cluster, another position or a damaged start; what follows the first page
// is checked by PostgreSQL's own CRCs when the WAL is replayed.

import { formatLsn } from "./wal_names.ts";

/** Bytes of the long page header that are checked. */
const LONG_HEADER_SIZE = 40;

/** XLP_LONG_HEADER: the page opens a segment. */
const XLP_LONG_HEADER = 0x0002;

export interface SegmentExpectation {
  /** The LSN the segment starts at. */
  start: bigint;
  /** The timeline of the file's name: a page may come from an ancestor, never a later one. */
  tli: number;
  systemIdentifier: bigint;
  segmentSize: number;
}

/** What is wrong with a segment's first bytes; undefined when they are what `expect` says. */
export function segmentHeaderProblem(
  head: Uint8Array,
  expect: SegmentExpectation,
): string | undefined {
  if (head.length < LONG_HEADER_SIZE) return `shorter than a page header (${head.length} bytes)`;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const info = view.getUint16(2, true);
  const tli = view.getUint32(4, true);
  const pageaddr = view.getBigUint64(8, true);
  const sysid = view.getBigUint64(24, true);
  const segSize = view.getUint32(32, true);
  if ((info & XLP_LONG_HEADER) === 0) return "no long page header at its start";
  if (pageaddr !== expect.start) {
    return `its first page is for position ${formatLsn(pageaddr)}, not ${formatLsn(expect.start)}`;
  }
  if (sysid !== expect.systemIdentifier) {
    return `it belongs to the cluster with system identifier ${sysid}, not ${expect.systemIdentifier}`;
  }
  if (segSize !== expect.segmentSize) {
    return `its segment size is ${segSize} bytes, not the server's ${expect.segmentSize}`;
  }
  if (tli === 0 || tli > expect.tli) {
    return `its first page is on timeline ${tli}, after the file's ${expect.tli}`;
  }
  return undefined;
}
