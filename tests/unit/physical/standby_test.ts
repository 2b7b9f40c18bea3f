import { assert, assertEquals, assertMatch } from "../../helpers/assert.ts";
import {
  confSettings,
  conninfoHasPassword,
  StandbyFactsReader,
  standbyWarning,
} from "../../../src/physical/standby.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("confSettings() reads every setting of a name as the server's lexer does: quotes, '' and backslash escapes, comments, case", () => {
  const text = [
    "# primary_conninfo = 'commented out'",
    "port = 5432",
    "primary_conninfo = 'user=postgres password=''s3cr\\\\''et'' host=a' # trailing comment",
    "  PRIMARY_CONNINFO   'host=b#notacomment'",
    "primary_conninfo=host=c",
    "primary_conninfo_x = 'other setting'",
    "primary_conninfo = 'tab\\there \\101'",
  ].join("\n");
  assertEquals(confSettings(text, "primary_conninfo"), [
    "user=postgres password='s3cr\\'et' host=a",
    "host=b#notacomment",
    "host=c",
    "tab\there A",
  ]);
  assertEquals(confSettings(text, "port"), ["5432"]);
  assertEquals(confSettings("", "primary_conninfo"), []);
});

Deno.test("conninfoHasPassword() finds a non-empty password in libpq's key/value and URI forms", () => {
  // What pg_basebackup -R writes, as ALTER SYSTEM unescapes it.
  assert(conninfoHasPassword("user=postgres password='s3cr\\'et' channel_binding=prefer host=h"));
  assert(conninfoHasPassword("host=h password = x"));
  assert(conninfoHasPassword("host=h password=a\\ b"));
  assert(!conninfoHasPassword("host=h user=postgres"));
  assert(!conninfoHasPassword("host=h password=''"));
  assert(!conninfoHasPassword("host=h passwordx=y"));
  // A quoted value that mentions password= is not the key.
  assert(!conninfoHasPassword("host=h application_name='password=x'"));
  assert(conninfoHasPassword("postgresql://rep:pw@h:5432/db"));
  assert(conninfoHasPassword("postgres://rep@h/?sslmode=require&password=p%20w"));
  assert(!conninfoHasPassword("postgresql://rep@h:5432/db?sslmode=require"));
  assert(!conninfoHasPassword("postgresql://rep:@h"));
  assert(!conninfoHasPassword(""));
});

Deno.test("StandbyFactsReader reads standby.signal and primary_conninfo from the copy's files, never keeping the password", () => {
  const r = new StandbyFactsReader();
  r.see("/standby.signal", enc(""));
  r.see("/postgresql.conf", enc("primary_conninfo = ''\n"));
  r.see("/postgresql.auto.conf", enc("primary_conninfo = 'host=p password=hunter2'\n"));
  r.see("/base/1/postgresql.auto.conf", enc("primary_conninfo = 'x'\n"));
  const f = r.facts();
  assertEquals(f, {
    standbySignal: true,
    primaryConninfoFiles: ["postgresql.auto.conf"],
    primaryConninfoHasPassword: true,
  });
  assert(!JSON.stringify(f).includes("hunter2"));

  const primary = new StandbyFactsReader();
  primary.see("/postgresql.auto.conf", enc("port = 5432\n"));
  assertEquals(primary.facts(), {
    standbySignal: false,
    primaryConninfoFiles: [],
    primaryConninfoHasPassword: false,
  });

  // A configuration file too large to read: unknown, not "no password".
  const big = new StandbyFactsReader();
  big.see("/postgresql.conf", undefined);
  assertEquals(big.facts().primaryConninfoHasPassword, undefined);
});

Deno.test("standbyWarning() says a standby's copy starts as a standby of its primary, and says nothing for a primary", () => {
  const facts = {
    standbySignal: true,
    primaryConninfoFiles: ["postgresql.auto.conf"],
    primaryConninfoHasPassword: true,
  };
  assertEquals(
    standbyWarning("h:5432", false, { ...facts, standbySignal: false, primaryConninfoFiles: [] }),
    undefined,
  );
  const line = standbyWarning("h:5432", true, facts)!;
  assertMatch(
    line,
    /^h:5432 is a standby: the copy holds standby\.signal and its primary_conninfo, password included, in postgresql\.auto\.conf; restored, it starts as a standby of that primary\. To start it as a primary, remove standby\.signal and primary_conninfo/,
  );
  assert(!line.includes("\n"));
  assertMatch(
    standbyWarning("h:5432", true, { ...facts, primaryConninfoHasPassword: false })!,
    /primary_conninfo \(no password\) in/,
  );
  assertMatch(
    standbyWarning("h:5432", true, { ...facts, primaryConninfoFiles: [] })!,
    /no primary_conninfo \(set outside the data directory\)/,
  );
  assertMatch(
    standbyWarning("h:5432", true, { ...facts, standbySignal: false })!,
    /in recovery but the copy holds no standby\.signal/,
  );
});
