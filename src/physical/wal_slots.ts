// The two persistent physical replication slots that hold a capture chain's
// WAL on the server. The rule they implement: no WAL is released until two
// captures that ran to their end both hold it, because the plugin is never
// told whether plakar committed a snapshot.
//
// - `<slot>` (the guard) is where the next capture starts: the server keeps
//   every segment from its restart point.
// - `<slot>_pending` marks the end of the last capture that ran to its end;
//   a chain whose first capture has not ended yet has none.
//
// After capture N ends, the guard moves to the pending mark (the end of
// capture N-1) and the mark to the end of N. So capture N+1 starts at the
// end of N-1 and holds again what N held: a capture whose snapshot plakar
// never committed leaves no gap as long as the next one commits. Nothing
// here uses the slots to stream (pg_receivewal runs without a slot, from a
// position the guard keeps): only these calls move them, so a cancelled or
// killed capture never advances them.

// @ts-types="@types/pg"
import type pg from "pg";
import { formatLsn, parseLsn } from "./wal_names.ts";

/** The slots of one capture chain. */
export interface SlotPair {
  guard: string;
  pending: string;
}

/** The slots a `slot=` name stands for. */
export function slotPair(name: string): SlotPair {
  return { guard: name, pending: `${name}_pending` };
}

/** One slot as pg_replication_slots shows it. */
export interface SlotState {
  /** undefined once the server invalidated the slot (its WAL is gone). */
  restartLsn?: bigint;
  /** reserved, extended, unreserved or lost (PostgreSQL 13+). */
  walStatus?: string;
  slotType: string;
}

/** Both slots, each undefined when it does not exist. */
export async function readSlots(
  client: pg.Client,
  pair: SlotPair,
): Promise<{ guard?: SlotState; pending?: SlotState }> {
  const r = await client.query<{
    slot_name: string;
    slot_type: string;
    restart_lsn: string | null;
    wal_status: string | null;
  }>(
    `SELECT slot_name, slot_type, restart_lsn::text, wal_status
       FROM pg_catalog.pg_replication_slots WHERE slot_name IN ($1, $2)`,
    [pair.guard, pair.pending],
  );
  const state = (name: string): SlotState | undefined => {
    const row = r.rows.find((x) => x.slot_name === name);
    if (!row) return undefined;
    return {
      restartLsn: row.restart_lsn === null ? undefined : parseLsn(row.restart_lsn),
      walStatus: row.wal_status ?? undefined,
      slotType: row.slot_type,
    };
  };
  return { guard: state(pair.guard), pending: state(pair.pending) };
}

/** Creates the guard at the current WAL position, reserving it at once; returns that position. */
export async function createGuard(client: pg.Client, pair: SlotPair): Promise<bigint> {
  const r = await client.query<{ lsn: string }>(
    "SELECT (pg_catalog.pg_create_physical_replication_slot($1, true)).lsn::text AS lsn",
    [pair.guard],
  );
  return parseLsn(r.rows[0].lsn);
}

/** Drops whichever of the two slots exist. */
export async function dropSlots(client: pg.Client, pair: SlotPair): Promise<void> {
  await client.query(
    `SELECT pg_catalog.pg_drop_replication_slot(slot_name)
       FROM pg_catalog.pg_replication_slots WHERE slot_name IN ($1, $2)`,
    [pair.guard, pair.pending],
  );
}

/**
 * After a capture ran to its end at `end`: the guard moves to the previous
 * capture's end (the pending mark), then the mark to `end`. The first capture
 * of a chain has no mark yet: it is made as a copy of the guard (a slot can
 * be created only at the current position, and only moved forward), then
 * moved to `end`, and the guard stays. Moving a slot is not transactional,
 * hence the order: if the second step fails, the guard and the mark are
 * equal, which only keeps more WAL; no failure leaves the guard past WAL that
 * two captures hold.
 */
export async function advanceSlots(
  client: pg.Client,
  pair: SlotPair,
  end: bigint,
  hasMark: boolean,
): Promise<void> {
  if (hasMark) {
    await client.query(
      `SELECT pg_catalog.pg_replication_slot_advance($1, restart_lsn)
         FROM pg_catalog.pg_replication_slots WHERE slot_name = $2`,
      [pair.guard, pair.pending],
    );
  } else {
    await client.query("SELECT pg_catalog.pg_copy_physical_replication_slot($1, $2)", [
      pair.guard,
      pair.pending,
    ]);
  }
  await client.query("SELECT pg_catalog.pg_replication_slot_advance($1, $2::pg_lsn)", [
    pair.pending,
    formatLsn(end),
  ]);
}

/**
 * Takes the session-level advisory lock that makes captures of one chain
 * run one at a time; false when another capture holds it.
 */
export async function lockChain(client: pg.Client, pair: SlotPair): Promise<boolean> {
  const r = await client.query<{ ok: boolean }>(
    "SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext('plakar-postgresql wal ' || $1)) AS ok",
    [pair.guard],
  );
  return r.rows[0].ok;
}
