// `deno task build`: builds the package's three executables into dist/pkg,
// with the package manifest and its validators beside them.
//
// Two kinds of build, and the build always says which one it made (on stderr
// and in dist/pkg/BUILD_KIND):
// - compiled: `deno compile` self-contained executables, for the host or any
//   --target Deno can compile for. deno compile needs Deno's runtime base
//   binary (denort) for that target, which it downloads, or takes from
//   DENORT_BIN. Without it, --kind=compiled stops and says how to proceed.
// - launchers: where denort cannot be had (no network), one bundled module
//   (deno bundle) run by the Deno runtime shipped inside the package (an
//   extra file), behind three small `#!/bin/sh` launchers. Host target only.
// Both run with the same narrow permissions (harness/permissions.ts), not -A.
//
// Usage: deno task build [--kind=auto|compiled|launchers] [--target=TRIPLE]
// Prints the build folder on the last line of stdout. `deno task package`
// (harness/package.ts) then makes the .ptar.

import { parseArgs } from "node:util";
import { CONNECTORS, renderManifest } from "./package_manifest.ts";
import { writeSchemas } from "./schemas.ts";
import { permissionFlags } from "./permissions.ts";
import { plakarBin } from "./plakar.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** The output folder; PLAKAR_PG_DIST gives a build of its own (tests running side by side). */
const DIST = Deno.env.get("PLAKAR_PG_DIST") ?? `${ROOT}/dist`;
const PKG = `${DIST}/pkg`;

export type Kind = "auto" | "compiled" | "launchers";
export type Built = "compiled" | "launchers";

/** The targets `deno compile --target` accepts, with the GOOS/GOARCH plakar names packages by. */
export const TARGETS: Record<string, { goos: string; goarch: string }> = {
  "x86_64-unknown-linux-gnu": { goos: "linux", goarch: "amd64" },
  "aarch64-unknown-linux-gnu": { goos: "linux", goarch: "arm64" },
  "x86_64-apple-darwin": { goos: "darwin", goarch: "amd64" },
  "aarch64-apple-darwin": { goos: "darwin", goarch: "arm64" },
};

/**
 * The V8 flags both kinds run with: a small young generation keeps the RSS of
 * a long stream low, and gc() lets the protocol layer collect spent message
 * buffers (src/proc/memory.ts).
 */
const V8_FLAGS = "--v8-flags=--max-semi-space-size=2,--expose-gc";
/** The one bundled module of a launcher build. */
const BUNDLE = "postgresql.js";
/** The folder of a launcher build's modules: the bundle and the chunks it loads. */
const CHUNKS = "lib";

/** Thrown when a compiled build is asked for and deno compile has no runtime base. */
export class NoRuntimeBaseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NoRuntimeBaseError";
  }
}

async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ ok: boolean; out: string }> {
  const r = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd ?? ROOT,
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { ok: r.success, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

async function must(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (!r.ok) throw new Error(`${cmd} ${args.join(" ")} failed:\n${r.out}`);
  return r.out;
}

/** The package version: `v` + deno.json's version. */
export async function version(): Promise<string> {
  const cfg = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  return `v${cfg.version}`;
}

/** The target this Deno runs on. */
export function hostTarget(): string {
  return Deno.build.target;
}

/** deno prints an error line, then a backtrace: keeps the reason, on one line. */
function reason(out: string): string {
  // deno-lint-ignore no-control-regex
  const lines = out.replace(/\x1b\[[0-9;]*m/g, "").split("\n").map((l) => l.trim());
  const end = lines.findIndex((l) => l.startsWith("Stack backtrace"));
  const head = lines.slice(0, end < 0 ? undefined : end).filter((l) => l);
  // "Caused by: 0: Setting up base binary. 1: <the cause> 2: …": the first real cause.
  const causes = head.filter((l) => /^\d+: /.test(l)).map((l) => l.replace(/^\d+: /, ""));
  const cause = causes.find((l) => !/^Setting up base binary/.test(l));
  return cause ?? head.slice(-3).join(" ");
}

function noRuntimeBase(target: string, why: string): NoRuntimeBaseError {
  const v = Deno.version.deno;
  return new NoRuntimeBaseError(
    `cannot make compiled executables for ${target}: deno compile needs Deno's runtime base ` +
      `(denort ${v} for ${target}), which it downloads from dl.deno.land or takes from ` +
      `DENORT_BIN, and it has none here (${why}). To proceed: give it network access, or ` +
      `download denort-${target}.zip of Deno v${v} (github.com/denoland/deno/releases) ` +
      `elsewhere, unzip it and run DENORT_BIN=/path/to/denort deno task build --kind=compiled; ` +
      `or build the package that runs here, deno task build --kind=launchers (a bundled module ` +
      `and the Deno runtime inside the package, host target only).`,
  );
}

/** DENORT_BIN must name denort: Deno's CLI there would "compile" into a plain deno (a REPL). */
async function checkDenortBin(target: string): Promise<void> {
  const bin = Deno.env.get("DENORT_BIN");
  if (!bin) return;
  try {
    await Deno.stat(bin);
  } catch {
    throw noRuntimeBase(target, `DENORT_BIN=${bin} does not exist`);
  }
  const r = await run(bin, ["--version"]).catch(() => ({ ok: false, out: "" }));
  if (/^deno \d/.test(r.out)) {
    throw noRuntimeBase(
      target,
      `DENORT_BIN=${bin} is Deno's command-line program, not its runtime base denort: ` +
        `the result would be a plain deno, not this plugin`,
    );
  }
}

/** The `deno compile` arguments of one executable: the permissions are built into it. */
export function compileArgs(entry: string, target: string, output: string): string[] {
  return [
    "compile",
    "--no-check",
    "--no-prompt",
    ...permissionFlags(),
    V8_FLAGS,
    "--target",
    target,
    "--output",
    output,
    entry,
  ];
}

async function buildCompiled(target: string): Promise<void> {
  await checkDenortBin(target);
  for (const c of CONNECTORS) {
    const r = await run(Deno.execPath(), compileArgs(c.entry, target, `${PKG}/${c.executable}`));
    if (!r.ok) {
      const why = reason(r.out);
      if (/denort|dl\.deno\.land|dns error|download|lookup address/i.test(why)) {
        throw noRuntimeBase(target, why);
      }
      throw new Error(`deno compile could not build ${c.executable}: ${why}`);
    }
  }
}

/**
 * The dispatcher the one bundle starts from: each entry point's module is
 * copied with `import.meta.main` made true (the bundler turns it false in
 * every module but the entry) and its relative imports made absolute, then
 * imported on demand by executable name, so only the chosen one runs.
 */
async function writeDispatcher(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const cases: string[] = [];
  for (const c of CONNECTORS) {
    const src = `${ROOT}/${c.entry}`;
    const text = (await Deno.readTextFile(src))
      .replace(/(from\s+|import\s*\(\s*)(["'])(\.\.?\/[^"']+)\2/g, (_m, pre, q, spec) => {
        return `${pre}${q}${new URL(spec, `file://${src}`).href}${q}`;
      })
      .replaceAll("import.meta.main", "true");
    await Deno.writeTextFile(`${dir}/${c.executable}.ts`, text);
    cases.push(`  ${JSON.stringify(c.executable)}: () => import("./${c.executable}.ts"),`);
  }
  const main = [
    "// Generated by tasks/build.ts: runs the executable named by the first argument.",
    "const entries: Record<string, () => Promise<unknown>> = {",
    ...cases,
    "};",
    "const start = entries[Deno.args[0]];",
    "if (!start) {",
    "  console.error(`postgresql: unknown executable ${JSON.stringify(Deno.args[0])}`);",
    "  Deno.exit(2);",
    "}",
    "await start();",
    "",
  ].join("\n");
  await Deno.writeTextFile(`${dir}/main.ts`, main);
  return `${dir}/main.ts`;
}

/** The `#!/bin/sh` launcher of one executable: only sh, no other program, is needed to start it. */
export function launcherScript(executable: string): string {
  return [
    "#!/bin/sh",
    `# ${executable}: runs the bundled plugin module with the Deno runtime shipped in this package.`,
    'case "$0" in */*) here="${0%/*}" ;; *) here=. ;; esac',
    "export DENO_NO_UPDATE_CHECK=1",
    "export MALLOC_MMAP_THRESHOLD_=131072",
    `exec "$here/deno" run --no-prompt --no-config --no-lock --quiet ${
      permissionFlags().join(" ")
    } ${V8_FLAGS} "$here/${CHUNKS}/${BUNDLE}" ${executable} "$@"`,
    "",
  ].join("\n");
}

async function buildLaunchers(target: string): Promise<string[]> {
  if (target !== hostTarget()) {
    throw new Error(
      `launchers ship this Deno (${hostTarget()}): they cannot be built for ${target}; ` +
        `use --kind=compiled for another target`,
    );
  }
  await Deno.copyFile(Deno.execPath(), `${PKG}/deno`);
  await Deno.chmod(`${PKG}/deno`, 0o755);
  const work = `${DIST}/launch`;
  await Deno.remove(work, { recursive: true }).catch(() => {});
  // Code splitting: each executable loads only the modules it uses (the
  // exporter neither tar nor the AWS SDK), which measured 0.13 s and 55 MiB
  // at start against 0.18 s and 60 MiB for one file holding everything.
  const chunks: string[] = [];
  try {
    const entry = await writeDispatcher(work);
    const out = `${work}/out`;
    await must(Deno.execPath(), [
      "bundle",
      "--platform",
      "deno",
      "--config",
      `${ROOT}/deno.json`,
      "--code-splitting",
      "--outdir",
      out,
      entry,
    ]);
    await Deno.mkdir(`${PKG}/${CHUNKS}`, { recursive: true });
    for await (const e of Deno.readDir(out)) {
      if (e.name === "main.js") continue;
      if (!/^[A-Za-z0-9_-]+\.js$/.test(e.name) || e.name === BUNDLE) {
        throw new Error(`deno bundle wrote an unexpected file: ${e.name}`);
      }
      await Deno.copyFile(`${out}/${e.name}`, `${PKG}/${CHUNKS}/${e.name}`);
      chunks.push(e.name);
    }
    // The entry imports its chunks as ./<name>.js: beside it, under any name.
    await Deno.copyFile(`${out}/main.js`, `${PKG}/${CHUNKS}/${BUNDLE}`);
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  for (const c of CONNECTORS) {
    await Deno.writeTextFile(`${PKG}/${c.executable}`, launcherScript(c.executable), {
      mode: 0o755,
    });
    await Deno.chmod(`${PKG}/${c.executable}`, 0o755);
  }
  // plakar installs the files extra_files names (a folder arrives empty).
  return ["deno", `${CHUNKS}/${BUNDLE}`, ...chunks.sort().map((c) => `${CHUNKS}/${c}`)];
}

export interface BuildOptions {
  /** A `deno compile --target` triple. @default the host's */
  target?: string;
  /** The package version (`vX.Y.Z`). @default deno.json's */
  version?: string;
}

export interface BuildResult {
  kind: Built;
  target: string;
  /** The folder holding the executables and manifest.yaml. */
  dir: string;
  ptar?: string;
}

/**
 * Builds the executables into dist/pkg; with `makePackage`, also the .ptar
 * (plakar pkg create, named for the target's GOOS and GOARCH) into dist/.
 */
export async function build(
  kind: Kind = "auto",
  makePackage = true,
  opts: BuildOptions = {},
): Promise<BuildResult> {
  const target = opts.target ?? hostTarget();
  if (!TARGETS[target]) {
    throw new RangeError(
      `Cannot build for ${target}: targets are ${Object.keys(TARGETS).join(", ")}`,
    );
  }
  await Deno.remove(PKG, { recursive: true }).catch(() => {});
  await Deno.mkdir(PKG, { recursive: true });
  await writeSchemas(PKG);

  let built: Built;
  let extra: string[] = [];
  if (kind === "launchers") {
    extra = await buildLaunchers(target);
    built = "launchers";
  } else {
    try {
      await buildCompiled(target);
      built = "compiled";
    } catch (e) {
      if (kind === "compiled" || !(e instanceof NoRuntimeBaseError)) throw e;
      console.error(`build: ${e.message}`);
      console.error(
        "build: --kind=auto: falling back to launchers (a bundled module and the Deno runtime)",
      );
      extra = await buildLaunchers(target);
      built = "launchers";
    }
  }
  await Deno.writeTextFile(`${PKG}/manifest.yaml`, renderManifest(extra));
  await Deno.writeTextFile(`${PKG}/BUILD_KIND`, `${built}\n${target}\n`);
  console.error(
    built === "compiled"
      ? `build: compiled executables (deno compile) for ${target} in ${PKG}`
      : `build: launchers, NOT compiled: #!/bin/sh scripts running ${CHUNKS}/${BUNDLE} with the Deno ` +
        `runtime inside the package, for ${target}, in ${PKG}`,
  );
  const result: BuildResult = { kind: built, target, dir: PKG };
  if (!makePackage) return result;
  result.ptar = await createPackage(target, opts.version ?? await version());
  return result;
}

/** `plakar pkg create` of dist/pkg; moves the .ptar to dist/ and returns its path. */
export async function createPackage(target: string, v: string): Promise<string> {
  const plakar = await plakarBin();
  for (const f of Deno.readDirSync(PKG)) {
    if (f.name.endsWith(".ptar")) await Deno.remove(`${PKG}/${f.name}`);
  }
  const { goos, goarch } = TARGETS[target];
  // plakar names the file by GOOS and GOARCH, its own unless these are set.
  const r = await run(plakar, ["pkg", "create", "./manifest.yaml", v], {
    cwd: PKG,
    env: { GOOS: goos, GOARCH: goarch },
  });
  if (!r.ok) throw new Error(`plakar pkg create ./manifest.yaml ${v} failed:\n${r.out}`);
  const ptar = [...Deno.readDirSync(PKG)].find((f) => f.name.endsWith(".ptar"));
  if (!ptar) throw new Error("plakar pkg create wrote no .ptar");
  const out = `${DIST}/${ptar.name}`;
  await Deno.rename(`${PKG}/${ptar.name}`, out);
  return out;
}

/** Parses the options shared by build, package, install and reinstall. */
export function parseBuildArgs(args: string[]): { kind: Kind; target?: string; rest: string[] } {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { kind: { type: "string", default: "auto" }, target: { type: "string" } },
  });
  const kind = values.kind as Kind;
  if (!["auto", "compiled", "launchers"].includes(kind)) {
    throw new RangeError("--kind accepts auto, compiled or launchers");
  }
  return { kind, target: values.target, rest: positionals };
}

/** The command line of `deno task build` (tasks/build.ts). */
export async function main(args: string[]): Promise<void> {
  try {
    const { kind, target } = parseBuildArgs(args);
    const r = await build(kind, false, { target });
    console.log(r.dir);
  } catch (e) {
    console.error(`build: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
