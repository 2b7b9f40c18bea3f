// A timeline's history file: one line per ancestor timeline, "<tli>\t<switch
// LSN>\t<reason>", the LSN being where the next timeline forked off it. A
// position belongs to the first listed timeline whose switch point is past
// it, else to the timeline the file describes.

import { parseLsn } from "./wal_names.ts";

export interface TimelineSwitch {
  tli: number;
  /** The first LSN that is no longer on `tli`. */
  switchpoint: bigint;
}

/** Parses a history file's text; comment and blank lines are skipped. */
export function parseHistory(text: string): TimelineSwitch[] {
  const out: TimelineSwitch[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [tli, lsn] = line.split(/\s+/);
    if (!/^\d+$/.test(tli ?? "") || lsn === undefined) {
      throw new SyntaxError(
        `Cannot parse timeline history line ${JSON.stringify(line.slice(0, 80))}`,
      );
    }
    out.push({ tli: Number(tli), switchpoint: parseLsn(lsn) });
  }
  return out;
}

/** The timeline `lsn` is on, given the history of timeline `current`. */
export function timelineOf(lsn: bigint, current: number, history: TimelineSwitch[]): number {
  for (const h of history) if (lsn < h.switchpoint) return h.tli;
  return current;
}
