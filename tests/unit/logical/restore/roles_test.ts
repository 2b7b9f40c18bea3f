import { assertEquals } from "../../../helpers/assert.ts";
import { chunked, collectText } from "../../../helpers/streams.ts";
import {
  idempotentRoleLine,
  idempotentRoles,
  keptRoleLine,
} from "../../../../src/logical/restore/roles.ts";

Deno.test("idempotentRoleLine() wraps CREATE ROLE so an existing role is skipped", () => {
  assertEquals(
    idempotentRoleLine("CREATE ROLE app_owner;"),
    "DO $plakar_role$ BEGIN CREATE ROLE app_owner; EXCEPTION WHEN duplicate_object THEN NULL; END $plakar_role$;",
  );
  assertEquals(
    idempotentRoleLine(`CREATE ROLE "we""ird";`).includes(`CREATE ROLE "we""ird";`),
    true,
  );
  assertEquals(idempotentRoleLine("ALTER ROLE x WITH LOGIN;"), "ALTER ROLE x WITH LOGIN;");
  assertEquals(idempotentRoleLine("CREATE ROLE x WITH LOGIN;"), "CREATE ROLE x WITH LOGIN;");
});

Deno.test("idempotentRoles() rewrites whole lines across chunk boundaries and stops at \\connect", async () => {
  const script =
    'SET a;\nCREATE ROLE r1;\nCREATE ROLE "名前";\n\\connect app\nCREATE ROLE notouch;\n';
  for (const size of [1, 3, 1000]) {
    const out = await collectText(chunked(script, size).pipeThrough(idempotentRoles()));
    assertEquals(out.split("\n").length, script.split("\n").length);
    assertEquals(out.includes("DO $plakar_role$ BEGIN CREATE ROLE r1;"), true);
    assertEquals(out.includes(`DO $plakar_role$ BEGIN CREATE ROLE "名前";`), true);
    assertEquals(out.endsWith("\\connect app\nCREATE ROLE notouch;\n"), true);
  }
});

Deno.test("idempotentRoles() skips the connected role's ALTER ROLE ... WITH, quoted or not, and only that", async () => {
  const script = [
    "CREATE ROLE app;",
    "ALTER ROLE app WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$4096:a$b:c';",
    "CREATE ROLE postgres;",
    "ALTER ROLE postgres WITH SUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:x$y:z';",
    "ALTER ROLE postgres SET work_mem TO '8MB';",
    'ALTER ROLE "Admin ""x""" WITH NOLOGIN PASSWORD \'md5abc\';',
    "",
  ].join("\n");
  for (const size of [1, 5, 4096]) {
    let kept = 0;
    const out = await collectText(
      chunked(script, size).pipeThrough(
        idempotentRoles({ keep: "postgres", onKept: () => kept++ }),
      ),
    );
    assertEquals(kept, 1);
    assertEquals(out.includes("ALTER ROLE postgres WITH SUPERUSER"), false);
    assertEquals(out.includes("x$y:z"), false);
    assertEquals(out.includes("ALTER ROLE app WITH NOSUPERUSER LOGIN PASSWORD"), true);
    assertEquals(out.includes("ALTER ROLE postgres SET work_mem TO '8MB';"), true);
    assertEquals(out.split("\n").length, script.split("\n").length);
  }
  assertEquals(
    keptRoleLine('ALTER ROLE "Admin ""x""" WITH NOLOGIN;', 'Admin "x"')?.startsWith("-- "),
    true,
  );
  assertEquals(keptRoleLine("ALTER ROLE admin WITH NOLOGIN;", "Admin"), undefined);
  assertEquals(keptRoleLine("ALTER ROLE postgresx WITH LOGIN;", "postgres"), undefined);
});
