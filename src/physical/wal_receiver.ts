// WAL from one position to another, received with pg_receivewal into a
// directory and handed on file by file as each becomes final, so the disk
// holds about one segment more than the consumer has not taken yet.
//
// pg_receivewal decides where to start from the files already in its
// directory (the end of the newest complete segment, or the start of a
// .partial one), and falls back to the server's current position, or, on
// PostgreSQL 15 and later with --slot, the slot's. Starting from the guard
// slot's position on every server major is done the first way: the segment
// to start at is seeded as an empty .partial file of full size (sparse, no
// disk), which pg_receivewal then overwrites from its start. It runs without
// a slot, so its progress reports move nothing on the server (the guard
// slot keeps the WAL: src/physical/wal_slots.ts).

import { connArgs, toolOutput, type ToolSpec } from "../pg/tools.ts";
import type { ConnConfig } from "../pg/conn.ts";
import {
  formatLsn,
  isHistoryFileName,
  parseSegmentFileName,
  segmentFileName,
  segmentOf,
} from "./wal_names.ts";

/** One file pg_receivewal finished. */
export interface WalFile {
  name: string;
  path: string;
  kind: "segment" | "partial" | "history";
}

export interface ReceiveOptions {
  /** pg_receivewal's path. */
  bin: string;
  conn: ConnConfig;
  env: Record<string, string>;
  /** An empty directory of ours. */
  dir: string;
  /** The first position wanted, and the timeline it is on. */
  start: bigint;
  tli: number;
  /** The last position wanted (the server's flush position when the capture began). */
  end: bigint;
  segmentSize: number;
  spec: Pick<ToolSpec, "runtime" | "signal" | "secrets">;
}

/** How often the directory is looked at while pg_receivewal runs. */
const POLL_MS = 50;

/**
 * Receives WAL from `start` to at least `end`; yields each history file and
 * complete segment as it appears, in order, then the partial segments once
 * pg_receivewal has exited. Rejects with pg_receivewal's error.
 */
export async function* receiveWal(o: ReceiveOptions): AsyncGenerator<WalFile> {
  await seed(o);
  let exited = false;
  let failure: unknown;
  const done = toolOutput({
    ...o.spec,
    bin: o.bin,
    // --endpos stops once a position past it has arrived; the server sends
    // nothing past its flush position, so one byte before it is the last
    // that makes pg_receivewal wait for nothing (an idle server included).
    // --no-sync: the files are read back at once and removed; what makes
    // them durable is plakar's commit, and a crash fails the capture anyway.
    args: [
      ...connArgs(o.conn),
      "-D",
      o.dir,
      `--endpos=${formatLsn(o.end - 1n)}`,
      "--no-loop",
      "--no-sync",
    ],
    env: o.env,
    what: `from ${formatLsn(o.start)} to ${formatLsn(o.end)}`,
  }).then(() => {
    exited = true;
  }, (e) => {
    exited = true;
    failure = e;
  });
  const given = new Set<string>();
  while (true) {
    const finished = exited;
    const entries = await Array.fromAsync(Deno.readDir(o.dir));
    for (const file of ready(entries, given, finished, o.segmentSize)) {
      given.add(file.name);
      yield { ...file, path: `${o.dir}/${file.name}` };
    }
    if (finished) break;
    await Promise.race([done, new Promise((r) => setTimeout(r, POLL_MS))]);
  }
  if (failure !== undefined) throw failure;
}

/** The segment to start at, as a full-size empty .partial file (sparse). */
async function seed(o: ReceiveOptions): Promise<void> {
  const name = `${
    segmentFileName(o.tli, segmentOf(o.start, o.segmentSize), o.segmentSize)
  }.partial`;
  const file = await Deno.open(`${o.dir}/${name}`, { create: true, write: true });
  try {
    await file.truncate(o.segmentSize);
  } finally {
    file.close();
  }
}

/**
 * The files to hand on now, in order: history files first (a timeline's
 * history precedes its segments), then complete segments by position, and,
 * once pg_receivewal has exited, the partial ones.
 */
export function ready(
  entries: { name: string; isFile: boolean }[],
  given: ReadonlySet<string>,
  finished: boolean,
  segmentSize: number,
): Omit<WalFile, "path">[] {
  const fresh = entries.filter((e) => e.isFile && !given.has(e.name)).map((e) => e.name);
  const history = fresh.filter(isHistoryFileName).sort();
  const segments = fresh
    .map((name) => ({ name, parsed: parseSegmentFileName(name, segmentSize) }))
    .filter((s) => s.parsed !== undefined && (finished || !s.parsed.partial))
    .sort((a, b) => compareSegments(a.parsed!, b.parsed!));
  return [
    ...history.map((name) => ({ name, kind: "history" as const })),
    ...segments.map((s) => ({
      name: s.name,
      kind: s.parsed!.partial ? "partial" as const : "segment" as const,
    })),
  ];
}

function compareSegments(
  a: { segno: bigint; tli: number },
  b: { segno: bigint; tli: number },
): number {
  if (a.segno !== b.segno) return a.segno < b.segno ? -1 : 1;
  return a.tli - b.tli;
}
