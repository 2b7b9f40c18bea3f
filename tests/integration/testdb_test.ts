// deno task testdb: a throwaway server that prints the restore commands,
// serves them, and goes away on Ctrl-C; --docker says clearly when there is no
// Docker engine.

import { assert, assertEquals, assertStringIncludes } from "../helpers/assert.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const dec = new TextDecoder();

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("testdb serves the printed restore commands until Ctrl-C, then removes itself", async () => {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tasks/testdb.ts", `--port=${port}`],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let out = "";
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    while (!out.includes("Ctrl-C")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    reader.releaseLock();
    assertStringIncludes(
      out,
      `plakar destination add mydb postgres://postgres@127.0.0.1:${port} password=postgres`,
    );
    assertStringIncludes(out, "plakar restore -to @mydb <snapid>");
    const dir = /data in ([^)\s]+)\)/.exec(out)?.[1];
    assert(dir, out);
    const psql = await new Deno.Command("/usr/lib/postgresql/15/bin/psql", {
      args: ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-Atc", "SELECT 42"],
      env: { PGPASSWORD: "postgres" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(dec.decode(psql.stdout).trim(), "42", dec.decode(psql.stderr));

    child.kill("SIGINT");
    const status = await child.status;
    assertEquals(status.code, 0, await stderr);
    let gone = false;
    await Deno.stat(dir).catch(() => gone = true);
    assert(gone, `${dir} is still there`);
    let refused = false;
    await Deno.connect({ hostname: "127.0.0.1", port }).then(
      (c) => c.close(),
      () => refused = true,
    );
    assert(refused, "the server still answers");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await stderr;
  }
});

Deno.test("testdb --docker without a Docker engine says so and how to go on", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tasks/testdb.ts", "--docker", `--port=${freePort()}`],
    cwd: ROOT,
    env: { NO_COLOR: "1", DOCKER_HOST: "unix:///nonexistent/docker.sock" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = dec.decode(r.stderr);
  assertEquals(r.code, 1, err);
  assertStringIncludes(err, "--docker needs a running Docker engine, and there is none here");
  assertStringIncludes(err, "DOCKER_HOST=unix:///nonexistent/docker.sock does not answer");
  assertStringIncludes(err, "run deno task testdb without --docker");
});

Deno.test({
  name: "testdb --docker with no DOCKER_HOST names the sockets it looked at",
  ignore: (() => {
    try {
      Deno.statSync("/var/run/docker.sock");
      return true; // an engine may be there: nothing to prove
    } catch {
      return false;
    }
  })(),
  fn: async () => {
    const home = await Deno.makeTempDir();
    try {
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "tasks/testdb.ts", "--docker", `--port=${freePort()}`],
        cwd: ROOT,
        clearEnv: true,
        env: {
          NO_COLOR: "1",
          HOME: home,
          PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
          DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = dec.decode(r.stderr);
      assertEquals(r.code, 1, err);
      assertStringIncludes(err, "DOCKER_HOST is unset and nothing listens on /var/run/docker.sock");
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});
