// planDatabases(): which databases a full backup dumps and which it skips, and why.

import { assertEquals } from "../../helpers/assert.ts";
import { planDatabases } from "../../../src/pg/manifest.ts";

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
