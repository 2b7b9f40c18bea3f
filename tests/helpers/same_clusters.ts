// The end-of-restore check shared by the logical tests: the target cluster
// reproduces the source's roles and databases (snapshots: harness/fixtures.ts).

import type { Cluster } from "../../harness/cluster.ts";
import { snapshotDb, snapshotRoles } from "../../harness/fixtures.ts";
import { assertEquals } from "./assert.ts";

/** Asserts the target reproduces the source's roles and each database. */
export async function assertSameClusters(src: Cluster, dst: Cluster, dbs: string[]): Promise<void> {
  assertEquals(await snapshotRoles(dst), await snapshotRoles(src), "roles differ");
  for (const db of dbs) {
    assertEquals(await snapshotDb(dst, db), await snapshotDb(src, db), `database ${db} differs`);
  }
}
