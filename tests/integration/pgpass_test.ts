// libpq's password file on a server that requires a password (scram) and no
// password option: the catalog connection (npm:pg) and the tools (libpq)
// must take the same line of the same file, and a missing or wrong entry
// must fail with a message that says where the password was sought.

import { Cluster } from "../../harness/cluster.ts";
import { assert, assertEquals, assertMatch, assertRejects } from "../helpers/assert.ts";
import { exportAll, importAll, params } from "../helpers/connectors.ts";
import { makeAppDb, makeRoles } from "../../harness/fixtures.ts";
import { createLogicalImporter } from "../../src/logical/importer.ts";
import { createLogicalExporter } from "../../src/logical/restore/exporter.ts";
import { withEnv } from "../helpers/env.ts";

const PW = "Pgpass-s3cret!";

async function backup(config: Record<string, string>) {
  const imp = await createLogicalImporter(params("postgres", config));
  try {
    await imp.ping(new AbortController().signal);
    return await importAll(imp);
  } finally {
    await imp.close();
  }
}

async function writePgpass(path: string, lines: string[], mode = 0o600): Promise<string> {
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  await Deno.chmod(path, mode);
  return path;
}

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b ?? new Uint8Array());

Deno.test("the password file serves a scram server when no password is given", async (t) => {
  await using src = await Cluster.start({ password: PW });
  await makeRoles(src);
  await makeAppDb(src, "app");
  await makeAppDb(src, "billing");
  const dir = await Deno.makeTempDir({ prefix: "plakar-pgpass-" });
  const host = `127.0.0.1:${src.port}`;
  // No password anywhere but the file.
  const base = { location: `postgres://postgres@${host}/` };
  const noPassword = { PGPASSWORD: undefined, PGPASSFILE: undefined };
  try {
    await t.step("PGPASSFILE: catalog, pg_dumpall and pg_dump all connect", async () => {
      const file = await writePgpass(`${dir}/pgpass`, [
        "# comment lines and other servers are skipped",
        `127.0.0.1:1:*:postgres:not-this-one`,
        `127.0.0.1:${src.port}:*:postgres:${PW}`,
      ]);
      const result = await withEnv({ ...noPassword, PGPASSFILE: file }, () => backup(base));
      assertEquals(result.errors.size, 0, [...result.errors.values()].join());
      assert(text(result.files.get("/00000-globals.sql")).includes("CREATE ROLE app_owner"));
      assert(text(result.files.get("/00001-app.dump")).includes("customer 99"));
      assert(text(result.files.get("/00002-billing.dump")).includes("customer 99"));
    });

    await t.step("~/.pgpass under $HOME, PGPASSFILE unset", async () => {
      const home = `${dir}/home`;
      await Deno.mkdir(home);
      await writePgpass(`${home}/.pgpass`, [`*:${src.port}:*:postgres:${PW}`]);
      const r = await withEnv({ ...noPassword, HOME: home }, () => backup(base));
      assertEquals(r.errors.size, 0, [...r.errors.values()].join());
      assert(text(r.files.get("/00001-app.dump")).includes("customer 99"));
    });

    await t.step(
      "the line is chosen by database, the same for the catalog and pg_dump",
      async () => {
        const file = await writePgpass(`${dir}/per-db`, [
          `127.0.0.1:${src.port}:app:postgres:${PW}`,
          // libpq ends the password at an unescaped ':' (npm:pg's reader would not).
          `127.0.0.1:${src.port}:billing:postgres:${PW}:a trailing field`,
          `127.0.0.1:${src.port}:*:postgres:wrong-for-the-rest`,
        ]);
        await withEnv({ ...noPassword, PGPASSFILE: file }, async () => {
          for (const db of ["app", "billing"]) {
            const r = await backup({ ...base, database: db });
            assertEquals(r.errors.size, 0, [...r.errors.values()].join());
            assertEquals([...r.files.keys()].sort(), [
              "/00000-globals.sql",
              "/00001-" + db + ".dump",
              "/manifest.json",
            ]);
          }
          const e = await assertRejects(() => backup(base));
          assertMatch(e.message, /password authentication failed for user "postgres"/);
          assertMatch(e.message, new RegExp(`password file ${file}`));
          assert(!e.message.includes("wrong-for-the-rest"), "password leaked into the error");
        });
      },
    );

    await t.step("an empty PGPASSWORD does not hide the file (libpq's rule)", async () => {
      const file = await writePgpass(`${dir}/empty-env`, [`*:*:*:*:${PW}`]);
      const r = await withEnv(
        { PGPASSWORD: "", PGPASSFILE: file },
        () => backup({ ...base, database: "app" }),
      );
      assertEquals(r.errors.size, 0, [...r.errors.values()].join());
    });

    await t.step("a wrong entry fails with the server's reason and the file named", async () => {
      const file = await writePgpass(`${dir}/wrong`, [`*:*:*:*:not-the-password`]);
      const e = await withEnv(
        { ...noPassword, PGPASSFILE: file },
        () => assertRejects(() => backup(base)),
      );
      assertMatch(
        e.message,
        new RegExp(
          `^cannot connect to ${host} \\(database "postgres"\\) as user "postgres": password authentication failed for user "postgres" \\(the password came from the password file ${file}`,
        ),
      );
      assert(!e.message.includes("not-the-password"), "password leaked into the error");
      assert(!e.message.includes("\n"), "not one line");
    });

    await t.step("no matching line says which line to add", async () => {
      const file = await writePgpass(`${dir}/other`, [`other.example.com:5432:*:*:x`]);
      const e = await withEnv(
        { ...noPassword, PGPASSFILE: file },
        () => assertRejects(() => backup(base)),
      );
      assertMatch(e.message, /the server asks for a password and none was given: set password=/);
      assertMatch(
        e.message,
        new RegExp(
          `add the line 127\\.0\\.0\\.1:${src.port}:postgres:postgres:PASSWORD .*no line of the password file ${file} matches`,
        ),
      );
    });

    await t.step(
      "a file the group or others can read is ignored, and the error says why",
      async () => {
        const file = await writePgpass(`${dir}/open`, [`*:*:*:*:${PW}`], 0o644);
        const e = await withEnv(
          { ...noPassword, PGPASSFILE: file },
          () => assertRejects(() => backup(base)),
        );
        assertMatch(e.message, new RegExp(`password file ${file} was not used: .*chmod 0600`));
      },
    );

    await t.step("a restore (psql for globals, pg_restore) reads the same file", async () => {
      const file = await writePgpass(`${dir}/restore`, [`127.0.0.1:${src.port}:*:postgres:${PW}`]);
      await withEnv({ ...noPassword, PGPASSFILE: file }, async () => {
        const { files } = await backup({ ...base, database: "app" });
        await src.query("CREATE DATABASE app_copy OWNER app_owner");
        const exp = await createLogicalExporter(
          params("postgres", { ...base, database: "app_copy" }),
        );
        try {
          await exp.ping(new AbortController().signal);
          const r = await exportAll(exp, files);
          assertEquals(
            [r.errors.size, r.finishError],
            [0, undefined],
            [...r.errors.values()].join(),
          );
        } finally {
          await exp.close();
        }
        const rows = await src.query<{ n: string }>(
          "SELECT count(*) AS n FROM sales.customers",
          "app_copy",
        );
        assertEquals(rows[0].n, "100");
      });
    });

    await t.step("connect_timeout at its maximum connects (no timer overflow)", async () => {
      const file = await writePgpass(`${dir}/timeout`, [`*:*:*:*:${PW}`]);
      const r = await withEnv(
        { ...noPassword, PGPASSFILE: file },
        () => backup({ ...base, database: "app", connect_timeout: "86400" }),
      );
      assertEquals(r.errors.size, 0, [...r.errors.values()].join());
    });

    await t.step("password= wins over the file, as in libpq", async () => {
      const file = await writePgpass(`${dir}/ignored`, [`*:*:*:*:wrong`]);
      const r = await withEnv(
        { ...noPassword, PGPASSFILE: file },
        () => backup({ ...base, database: "app", password: PW }),
      );
      assertEquals(r.errors.size, 0, [...r.errors.values()].join());
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
