// The warning for exclude_databases names that match no database: a typo
// would otherwise back up the database the user meant to skip.

import { assertEquals } from "../../helpers/assert.ts";
import { unmatchedExclusionsWarning } from "../../../src/logical/importer.ts";

const CLUSTER = ["a", "a,b", "b2", "postgres", "template0", "template1"];

Deno.test("unmatchedExclusionsWarning() is silent when every name matches a database", () => {
  assertEquals(unmatchedExclusionsWarning([], CLUSTER), undefined);
  assertEquals(unmatchedExclusionsWarning(["a,b", "template0"], CLUSTER), undefined);
});

Deno.test("unmatchedExclusionsWarning() names each name that matches nothing, once", () => {
  assertEquals(
    unmatchedExclusionsWarning(["nosuch", "b2", "nosuch"], CLUSTER),
    'exclude_databases: no database named "nosuch" on this server, nothing excluded for it (names are exact and case-sensitive)',
  );
  assertEquals(
    unmatchedExclusionsWarning(["B2", "x y"], CLUSTER),
    'exclude_databases: no database named "B2", "x y" on this server, nothing excluded for them (names are exact and case-sensitive)',
  );
});

Deno.test("unmatchedExclusionsWarning() points at a database whose name the unquoted list split", () => {
  // exclude_databases=a,b meant for the database "a,b": "a" exists, "b" does not.
  assertEquals(
    unmatchedExclusionsWarning(["a", "b"], CLUSTER),
    'exclude_databases: no database named "b" on this server, nothing excluded for it (names are exact and case-sensitive); to exclude "a,b", write the name in double quotes: exclude_databases="a,b"',
  );
  // Pieces that all exist on their own are not a mistake to point at.
  assertEquals(unmatchedExclusionsWarning(["a", "b2"], [...CLUSTER, "a,b2"]), undefined);
});
