import { assertEquals, assertMatch } from "../../helpers/assert.ts";
import {
  requirementProblems,
  type ServerFacts,
  versionProblem,
} from "../../../src/physical/requirements.ts";
import { serverMajor } from "../../../src/pg/tool_search.ts";
import { pgBasebackupArgs } from "../../../src/physical/importer.ts";
import { parsePhysicalImportConfig } from "../../../src/pg/config.ts";

const READY: ServerFacts = {
  serverVersionNum: 150004,
  walLevel: "replica",
  user: "backup",
  superuser: false,
  replication: true,
  maxWalSenders: 10,
  usedWalSenders: 2,
  tablespaces: [],
};

Deno.test("requirementProblems() finds nothing on a server ready for pg_basebackup", () => {
  assertEquals(requirementProblems(READY), []);
  assertEquals(requirementProblems({ ...READY, walLevel: "logical", superuser: true }), []);
});

Deno.test("requirementProblems() names the setting to change for each missing requirement", () => {
  const p = requirementProblems({
    ...READY,
    walLevel: "minimal",
    user: "Bob",
    replication: false,
    maxWalSenders: 2,
    usedWalSenders: 2,
    tablespaces: ["fast", "slow"],
  });
  assertEquals(p.length, 4);
  assertMatch(p[0], /^wal_level is minimal: set wal_level = replica/);
  assertMatch(p[1], /^user "Bob" lacks the REPLICATION attribute: ALTER ROLE "Bob" REPLICATION$/);
  assertMatch(p[2], /^no free WAL sender \(max_wal_senders = 2, 2 in use\)/);
  assertMatch(p[3], /\("fast", "slow"\).*logical backup \(postgres:\/\/\) instead$/);
});

Deno.test("versionProblem() refuses a pg_basebackup older than the server, not a newer one", () => {
  assertEquals(versionProblem(15, "pg_basebackup (PostgreSQL) 15.18", 130023), undefined);
  assertEquals(versionProblem(15, "pg_basebackup (PostgreSQL) 15.18", 150018), undefined);
  assertMatch(
    versionProblem(15, "pg_basebackup (PostgreSQL) 15.18", 170002)!,
    /^pg_basebackup \(PostgreSQL\) 15\.18 cannot copy a PostgreSQL 17 server: .*pg_bin_dir$/,
  );
  assertEquals([serverMajor(90624), serverMajor(140011)], [9.6, 14]);
});

Deno.test("pgBasebackupArgs() copies the whole cluster as one tar on stdout with the WAL fetched, never prompting", () => {
  const opts = parsePhysicalImportConfig({ location: "postgres+bin://rep:pw@db:5433" });
  const args = pgBasebackupArgs(opts);
  assertEquals(args.slice(0, 7), ["-h", "db", "-p", "5433", "-w", "-U", "rep"]);
  assertEquals(args.slice(7, 13), ["-D", "-", "-F", "tar", "-X", "fetch"]);
  assertEquals(args.includes("pw"), false);
});
