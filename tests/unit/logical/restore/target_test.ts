import { assertEquals } from "../../../helpers/assert.ts";
import { isTargetDown } from "../../../../src/logical/restore/target.ts";
import { IamTokenError } from "../../../../src/pg/iam.ts";
import { ToolError } from "../../../../src/pg/tools.ts";
import { PluginError } from "../../../../src/errors.ts";

const refused =
  'pg_restore: error: connection to server at "db" (10.0.0.1), port 5432 failed: Connection refused';

const tool = (stderr: string) => new ToolError("pg_restore", "of /x.dump", 1, stderr);

Deno.test("a file's failure means the target is down only when a tool could not reach it, never for a statement's timeout", () => {
  assertEquals(isTargetDown(tool(refused)), true);
  // Wrapped on its way up (the safe recreate's message): still the tool's failure.
  assertEquals(isTargetDown(new Error("restore into x failed", { cause: tool(refused) })), true);
  assertEquals(isTargetDown(tool("ERROR: canceling statement due to lock timeout")), false);
  assertEquals(isTargetDown(Object.assign(new Error("x"), { code: "ECONNREFUSED" })), false);
});

Deno.test("a connect failure means the target is down by its code, a timeout or a missing password", () => {
  const connecting = (e: unknown) => isTargetDown(e, true);
  assertEquals(connecting(Object.assign(new Error("x"), { code: "ECONNREFUSED" })), true);
  assertEquals(connecting(Object.assign(new Error("x"), { code: "28P01" })), true);
  assertEquals(connecting(new Error("Connection terminated due to connection timeout")), true);
  assertEquals(
    connecting(
      new PluginError("unauthenticated", "the server asks for a password and none was given"),
    ),
    true,
  );
  assertEquals(connecting(new IamTokenError("no AWS credentials")), true);
  assertEquals(connecting(new Error("permission denied for database app")), false);
});
