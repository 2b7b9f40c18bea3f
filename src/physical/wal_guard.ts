// Keeps the WAL a copy needs for as long as the copy runs. With `-X fetch`,
// pg_basebackup collects the WAL at the end, and a busy server may have
// recycled it by then ("requested WAL segment ... has already been removed").
// pg_basebackup's own --slot works only with `-X stream`, which cannot write
// to stdout in tar format, so the importer holds a temporary physical
// replication slot, reserved at once, on a session of its own: the server
// keeps every segment from the slot's restart point while the session lives,
// and drops the slot when the session ends (even if we crash).

// @ts-types="@types/pg"
import type pg from "pg";
import { connect } from "../pg/client.ts";
import type { ConnConfig } from "../pg/conn.ts";
import { oneLine } from "../errors.ts";

/** A held slot; dispose to release it (the session ends, the slot goes). */
export interface WalGuard extends AsyncDisposable {
  /** The slot's name, or undefined when none could be made (the backup runs unprotected). */
  readonly slot: string | undefined;
}

/** A slot name unique to this process and moment. */
export function slotName(pid = Deno.pid, now = Date.now()): string {
  return `plakar_basebackup_${pid}_${now.toString(36)}`;
}

/**
 * Creates the slot; on failure (no free slot, no privilege) `warn` is
 * called with the reason and the backup continues without protection.
 */
export async function holdWal(
  conn: ConnConfig,
  warn: (line: string) => void,
): Promise<WalGuard> {
  let client: pg.Client | undefined;
  const name = slotName();
  try {
    client = await connect(conn, "postgres");
    await client.query("SELECT pg_create_physical_replication_slot($1, true, true)", [name]);
    const c = client;
    return {
      slot: name,
      async [Symbol.asyncDispose]() {
        // Ending the session drops the temporary slot.
        await c.end().catch(() => {});
      },
    };
  } catch (e) {
    await client?.end().catch(() => {});
    warn(
      `cannot reserve the WAL for the copy with a temporary replication slot (${
        oneLine((e as Error).message)
      }): the backup runs unprotected, and a busy server may recycle WAL it needs; free a slot or raise max_replication_slots`,
    );
    return { slot: undefined, async [Symbol.asyncDispose]() {} };
  }
}
