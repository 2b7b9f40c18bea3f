// WAL positions and file names, as PostgreSQL writes them: an LSN is
// "hi/lo" in hexadecimal, a segment file is named by its timeline and
// segment number (24 hex digits: timeline, then the segment number split at
// 2^32 / segment size), a timeline's history file is "<tli>.history".

/** An LSN as a bigint ("0/3000148" → 0x3000148n). */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) {
    throw new SyntaxError(`Cannot parse LSN ${JSON.stringify(text)}: expected X/X in hexadecimal`);
  }
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** An LSN as PostgreSQL prints it. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${
    (lsn & 0xffffffffn).toString(16).toUpperCase()
  }`;
}

/** The segment an LSN falls in. */
export function segmentOf(lsn: bigint, segmentSize: number): bigint {
  return lsn / BigInt(segmentSize);
}

/** The first LSN of a segment. */
export function segmentStart(segno: bigint, segmentSize: number): bigint {
  return segno * BigInt(segmentSize);
}

function hex8(n: bigint | number): string {
  return n.toString(16).toUpperCase().padStart(8, "0");
}

/** The file name of a segment on a timeline (pg_walfile_name's form). */
export function segmentFileName(tli: number, segno: bigint, segmentSize: number): string {
  const perId = 0x100000000n / BigInt(segmentSize);
  return `${hex8(tli)}${hex8(segno / perId)}${hex8(segno % perId)}`;
}

/** A segment file name's timeline and segment number; undefined for another name. */
export function parseSegmentFileName(
  name: string,
  segmentSize: number,
): { tli: number; segno: bigint; partial: boolean } | undefined {
  const m = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$/.exec(name);
  if (!m) return undefined;
  const perId = 0x100000000n / BigInt(segmentSize);
  return {
    tli: parseInt(m[1], 16),
    segno: BigInt(`0x${m[2]}`) * perId + BigInt(`0x${m[3]}`),
    partial: m[4] !== undefined,
  };
}

/** The name of a timeline's history file. */
export function historyFileName(tli: number): string {
  return `${hex8(tli)}.history`;
}

/** Whether a name is a timeline history file's. */
export function isHistoryFileName(name: string): boolean {
  return /^[0-9A-F]{8}\.history$/.test(name);
}
