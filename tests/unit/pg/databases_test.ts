// planDatabases(): which databases a full backup dumps and which it skips, and why.

import { assertEquals } from "../../helpers/assert.ts";
import { planDatabases } from "../../../src/pg/manifest.ts";
import { selectDatabases } from "../../../src/pg/databases.ts";

const CLUSTER = [
  { name: "app", allowConn: true },
  { name: "closed", allowConn: false },
  { name: "old", allowConn: false },
  { name: "postgres", allowConn: true },
  { name: "rdsadmin", allowConn: true },
  { name: "template0", allowConn: false },
  { name: "template1", allowConn: true },
];

Deno.test("planDatabases() dumps every database that allows connections, in the given order", () => {
  assertEquals(planDatabases(CLUSTER).dump, ["app", "postgres", "rdsadmin", "template1"]);
});

Deno.test("planDatabases() lists closed databases (template0 too) and excluded ones, with the reason", () => {
  const { dump, skipped } = planDatabases(CLUSTER, ["rdsadmin", "old", "missing"]);
  assertEquals(dump, ["app", "postgres", "template1"]);
  assertEquals(skipped, [
    { name: "closed", reason: "datallowconn=false" },
    // Excluded and closed: the user's exclusion is the reason given.
    { name: "old", reason: "excluded" },
    { name: "rdsadmin", reason: "excluded" },
    { name: "template0", reason: "datallowconn=false" },
  ]);
});

Deno.test("selectDatabases(): database= alone when it allows connections, else planDatabases'", () => {
  const names = (r: { dump: { name: string }[] }) => r.dump.map((d) => d.name);
  assertEquals(names(selectDatabases(CLUSTER, "app")), ["app"]);
  assertEquals(selectDatabases(CLUSTER, "app").skipped, undefined);
  assertEquals(names(selectDatabases(CLUSTER, "closed")), []);
  assertEquals(names(selectDatabases(CLUSTER, "nosuch")), []);
  const full = selectDatabases(CLUSTER, undefined, ["rdsadmin"]);
  const plan = planDatabases(CLUSTER, ["rdsadmin"]);
  assertEquals([names(full), full.skipped], [plan.dump, plan.skipped]);
});
