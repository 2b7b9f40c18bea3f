// The build task: what it refuses and says, and the permissions both kinds of
// executable run with.

import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { compileArgs, launcherScript, TARGETS } from "../../harness/build.ts";
import { permissionFlags, PERMISSIONS } from "../../harness/permissions.ts";
import { CONNECTORS } from "../../harness/package_manifest.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** Runs `deno run -A tasks/<task>` in the repository with a build folder of its own. */
async function task(
  file: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string }> {
  const dist = await Deno.makeTempDir({ prefix: "plakar-pg-build-test-" });
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `tasks/${file}`, ...args],
      cwd: ROOT,
      env: { PLAKAR_PG_DIST: dist, NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  } finally {
    await Deno.remove(dist, { recursive: true }).catch(() => {});
  }
}

Deno.test("--kind=compiled without a runtime base stops and says how to proceed", async () => {
  // A download that cannot happen: every request goes to a closed port.
  const r = await task("build.ts", ["--kind=compiled"], {
    HTTPS_PROXY: "http://127.0.0.1:9",
    https_proxy: "http://127.0.0.1:9",
  });
  assertEquals(r.code, 1, r.out);
  assertStringIncludes(r.out, "cannot make compiled executables");
  assertStringIncludes(r.out, "runtime base (denort");
  assertStringIncludes(r.out, "DENORT_BIN=/path/to/denort deno task build --kind=compiled");
  assertStringIncludes(r.out, "deno task build --kind=launchers");
  assert(!r.out.includes("Stack backtrace"), r.out);
});

Deno.test("--kind=compiled refuses a DENORT_BIN that is missing or is the deno CLI", async () => {
  const missing = await task("build.ts", ["--kind=compiled"], {
    DENORT_BIN: "/nonexistent/denort",
  });
  assertEquals(missing.code, 1, missing.out);
  assertStringIncludes(missing.out, "DENORT_BIN=/nonexistent/denort does not exist");
  // deno compile would take the CLI and make a plain deno (a REPL), not the plugin.
  const cli = await task("build.ts", ["--kind=compiled"], { DENORT_BIN: Deno.execPath() });
  assertEquals(cli.code, 1, cli.out);
  assertStringIncludes(cli.out, "is Deno's command-line program, not its runtime base denort");
});

Deno.test("a target deno compile does not know is refused, naming the four it does", async () => {
  const r = await task("build.ts", ["--target=riscv64-unknown-linux-gnu"]);
  assertEquals(r.code, 1, r.out);
  for (const t of Object.keys(TARGETS)) assertStringIncludes(r.out, t);
});

Deno.test("launchers are refused for another target (they ship this Deno)", async () => {
  const other = Object.keys(TARGETS).find((t) => t !== Deno.build.target)!;
  const r = await task("build.ts", ["--kind=launchers", `--target=${other}`]);
  assertEquals(r.code, 1, r.out);
  assertStringIncludes(r.out, "use --kind=compiled for another target");
});

Deno.test("both kinds run with the listed permissions, never -A", () => {
  const flags = permissionFlags();
  assert(!flags.some((f) => f === "-A" || f.startsWith("--allow-all")), flags.join(" "));
  for (const p of PERMISSIONS) assert(p.why.length > 20, `${p.flag} says why`);
  const compile = compileArgs("src/main/importer.ts", "x86_64-unknown-linux-gnu", "/tmp/x");
  assert(!compile.includes("-A"));
  for (const f of flags) assert(compile.includes(f), `deno compile lacks ${f}`);
  for (const c of CONNECTORS) {
    const sh = launcherScript(c.executable);
    assertMatch(sh, /^#!\/bin\/sh\n/);
    assert(!/ -A /.test(sh), sh);
    assertStringIncludes(sh, ` ${flags.join(" ")} `);
    assertStringIncludes(sh, `postgresql.js" ${c.executable} "$@"`);
    // Only sh runs it: no dirname, no deno or node from PATH.
    assert(!/dirname|\bnode\b|exec deno/.test(sh), sh);
  }
});

Deno.test("a compiled executable carries exactly the listed permissions", async () => {
  // DENORT_BIN=the deno CLI compiles (into something that would not run as
  // the plugin), which is enough to read the permissions deno compile embeds.
  const out = await Deno.makeTempDir({ prefix: "plakar-pg-compile-test-" });
  try {
    const exe = `${out}/postgresqlImporter`;
    const r = await new Deno.Command(Deno.execPath(), {
      args: compileArgs("src/main/importer.ts", Deno.build.target, exe),
      cwd: ROOT,
      env: { DENORT_BIN: Deno.execPath() },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(r.success, new TextDecoder().decode(r.stderr));
    const bytes = await Deno.readFile(exe);
    const text = new TextDecoder("latin1").decode(bytes.subarray(bytes.length - 64 * 1024 * 1024));
    const m = /"permissions":(\{"allow_env".*?"prompt":(?:true|false)\})/.exec(text);
    assert(m, "no permissions in the compiled executable");
    const p = JSON.parse(m[1]);
    assertEquals(p.allow_all, undefined);
    for (const k of ["allow_read", "allow_write", "allow_run", "allow_net", "allow_env"]) {
      assertEquals(p[k], [], `${k} granted unscoped`);
    }
    assertEquals(p.allow_ffi, []);
    const sys = permissionFlags().find((f) => f.startsWith("--allow-sys="))!;
    assertEquals(p.allow_sys, sys.slice("--allow-sys=".length).split(","));
    assertEquals(p.prompt, false);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("the listed permissions are enough to widen a tool's output pipe", async () => {
  const probe = [
    `import { widenChildPipe } from "${ROOT}/src/proc/pipes.ts";`,
    `import { loadLibc } from "${ROOT}/src/proc/libc.ts";`,
    `const c = new Deno.Command("sh", { args: ["-c", "sleep 0.3; head -c 786432 /dev/zero"],`,
    `  stdout: "piped", stderr: "null" }).spawn();`,
    `console.log(widenChildPipe(loadLibc(), c.pid));`,
    `for await (const _ of c.stdout) { /* drain */ }`,
    `await c.status;`,
  ].join("\n");
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, probe);
    const run = async (flags: string[]) => {
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-prompt", "--no-config", "--no-lock", ...flags, file],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return new TextDecoder().decode(r.stdout).trim() + new TextDecoder().decode(r.stderr);
    };
    assertEquals(await run(permissionFlags()), "true");
    // Without FFI the pipe keeps its size, and nothing fails.
    assertEquals(await run(permissionFlags().filter((f) => f !== "--allow-ffi")), "false");
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("docs/packaging.md lists every permission the executables run with", async () => {
  const readme = await Deno.readTextFile(`${ROOT}/docs/packaging.md`);
  const table = readme.slice(readme.indexOf("## Permissions"));
  for (const f of permissionFlags()) assertStringIncludes(table, `| \`${f}\``);
  const rows = table.split("\n").filter((l) => /^\| `--allow-/.test(l));
  assertEquals(rows.length, PERMISSIONS.length, "the docs list a permission the build does not");
});
