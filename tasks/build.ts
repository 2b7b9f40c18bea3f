// `deno task build`: builds the package's executables into dist/pkg and
// writes the plakar package (dist/postgresql_vX.Y.Z_linux_amd64.ptar).
//
// Two kinds of build:
// - compiled: `deno compile` self-contained executables. deno compile needs
//   Deno's runtime base binary (denort), which it downloads, or takes from
//   DENORT_BIN.
// - launchers: where denort cannot be had (no network), each executable is a
//   `#!/bin/sh` launcher that runs one bundled module (deno bundle) with the
//   Deno runtime shipped inside the package as an extra file.
//
// Usage: deno task build [--kind=auto|compiled|launchers] [--no-package]
// Prints the .ptar path on the last line of stdout.

import { parseArgs } from "node:util";
import { CONNECTORS, renderManifest } from "./package_manifest.ts";
import { acceptedKeys } from "../src/pg/config.ts";
import { plakarBin } from "../tests/helpers/plakar.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const DIST = `${ROOT}/dist`;
const PKG = `${DIST}/pkg`;

async function run(cmd: string, args: string[], cwd = ROOT): Promise<{ ok: boolean; out: string }> {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { ok: r.success, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

async function must(cmd: string, args: string[], cwd = ROOT): Promise<string> {
  const r = await run(cmd, args, cwd);
  if (!r.ok) throw new Error(`${cmd} ${args.join(" ")} failed:\n${r.out}`);
  return r.out;
}

export async function version(): Promise<string> {
  const cfg = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  return `v${cfg.version}`;
}

/** JSON Schemas for plakar's validator field (plakar v1.1 packages them; it does not enforce them). */
function schema(role: "importer" | "exporter"): string {
  const booleans = new Set([
    "compress",
    "schema_only",
    "data_only",
    "allow_partial",
    "clean",
    "recreate",
    "no_globals",
    "no_owner",
    "exit_on_error",
  ]);
  const keys = [...new Set([...acceptedKeys("logical", role), ...acceptedKeys("aws", role)])]
    .sort();
  const properties: Record<string, unknown> = {};
  for (const k of keys) properties[k] = booleans.has(k) ? { type: "boolean" } : { type: "string" };
  return JSON.stringify(
    {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      title: `plakar PostgreSQL ${role}`,
      type: "object",
      additionalProperties: false,
      properties,
    },
    null,
    2,
  ) + "\n";
}

async function buildCompiled(): Promise<void> {
  for (const c of CONNECTORS) {
    const r = await run(Deno.execPath(), [
      "compile",
      "-A",
      "--no-check",
      "--output",
      `${PKG}/${c.executable}`,
      c.entry,
    ]);
    if (!r.ok) {
      // deno prints an error line, then a backtrace: keep the reason.
      // deno-lint-ignore no-control-regex
      const lines = r.out.replace(/\x1b\[[0-9;]*m/g, "").split("\n").map((l) => l.trim());
      const end = lines.findIndex((l) => l.startsWith("Stack backtrace"));
      const why = lines.slice(0, end < 0 ? undefined : end).filter((l) => l).slice(-2).join(" ");
      throw new Error(
        `deno compile could not build ${c.executable}: it needs Deno's runtime base binary, which it downloads or takes from DENORT_BIN (unset here or unreachable). ${why}`,
      );
    }
  }
}

async function buildLaunchers(): Promise<string[]> {
  const extra: string[] = ["deno"];
  await Deno.copyFile(Deno.execPath(), `${PKG}/deno`);
  await Deno.chmod(`${PKG}/deno`, 0o755);
  for (const c of CONNECTORS) {
    const bundle = `${c.executable}.js`;
    await must(Deno.execPath(), [
      "bundle",
      "--platform",
      "deno",
      "-o",
      `${PKG}/${bundle}`,
      c.entry,
    ]);
    extra.push(bundle);
    const launcher = [
      "#!/bin/sh",
      "# Runs the bundled plugin module with the Deno runtime shipped in this package.",
      'here="$(cd "$(dirname "$0")" && pwd)"',
      "export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1",
      `exec "$here/deno" run -A --no-config --no-lock --quiet --v8-flags=--max-semi-space-size=2 "$here/${bundle}" "$@"`,
      "",
    ].join("\n");
    await Deno.writeTextFile(`${PKG}/${c.executable}`, launcher, { mode: 0o755 });
    await Deno.chmod(`${PKG}/${c.executable}`, 0o755);
  }
  return extra;
}

export async function build(
  kind: "auto" | "compiled" | "launchers",
  makePackage = true,
): Promise<{ kind: "compiled" | "launchers"; ptar?: string }> {
  await Deno.remove(PKG, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${PKG}/schemas`, { recursive: true });
  await Deno.writeTextFile(`${PKG}/schemas/importer.json`, schema("importer"));
  await Deno.writeTextFile(`${PKG}/schemas/exporter.json`, schema("exporter"));

  let built: "compiled" | "launchers";
  let extra: string[] = [];
  if (kind === "launchers") {
    extra = await buildLaunchers();
    built = "launchers";
  } else {
    try {
      await buildCompiled();
      built = "compiled";
    } catch (e) {
      if (kind === "compiled") throw e;
      console.error(`build: ${(e as Error).message}`);
      console.error(
        "build: falling back to #!/bin/sh launchers with the Deno runtime inside the package",
      );
      extra = await buildLaunchers();
      built = "launchers";
    }
  }
  await Deno.writeTextFile(`${PKG}/manifest.yaml`, renderManifest(extra));
  await Deno.writeTextFile(`${PKG}/BUILD_KIND`, built + "\n");
  console.error(`build: ${built} executables in ${PKG}`);
  if (!makePackage) return { kind: built };

  const v = await version();
  const plakar = await plakarBin();
  for (const f of Deno.readDirSync(PKG)) {
    if (f.name.endsWith(".ptar")) await Deno.remove(`${PKG}/${f.name}`);
  }
  // plakar needs a HOME it can write its cache to; pkg create does not touch user config.
  await must(plakar, ["pkg", "create", "./manifest.yaml", v], PKG);
  const ptar = [...Deno.readDirSync(PKG)].find((f) => f.name.endsWith(".ptar"));
  if (!ptar) throw new Error("plakar pkg create wrote no .ptar");
  const out = `${DIST}/${ptar.name}`;
  await Deno.rename(`${PKG}/${ptar.name}`, out);
  return { kind: built, ptar: out };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { kind: { type: "string", default: "auto" }, "no-package": { type: "boolean" } },
  });
  const kind = values.kind as "auto" | "compiled" | "launchers";
  if (!["auto", "compiled", "launchers"].includes(kind)) {
    console.error("build: --kind accepts auto, compiled or launchers");
    Deno.exit(2);
  }
  try {
    const r = await build(kind, !values["no-package"]);
    console.log(r.ptar ?? PKG);
  } catch (e) {
    console.error(`build: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
