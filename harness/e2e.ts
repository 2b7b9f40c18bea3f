// End-to-end harness: our package built once per test run (launchers, the
// kind that builds without network), and a plakar "user" per test: its own
// HOME with the package installed and a plaintext store.

import { build } from "./build.ts";
import { installPackage } from "./install.ts";
import { plakarBin } from "./plakar.ts";

let built: Promise<string> | undefined;

/** The .ptar of this tree, built on first use. */
export function packagePath(): Promise<string> {
  built ??= build("launchers").then((r) => r.ptar!);
  return built;
}

export interface PlakarResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A plakar user: a HOME with our package installed and a store at `store`. */
export class PlakarUser implements AsyncDisposable {
  private constructor(readonly home: string, readonly store: string, readonly bin: string) {}

  /** A new user with `ptar` installed (default: this tree's package). */
  static async create(ptar?: string): Promise<PlakarUser> {
    const home = await Deno.makeTempDir({ prefix: "plakar-e2e-home-" });
    const bin = await plakarBin();
    const user = new PlakarUser(home, `${home}/store`, bin);
    await user.run(["-disable-security-check"]); // no update checks from tests
    await installPackage(ptar ?? await packagePath(), user.env());
    const r = await user.run(["at", user.store, "create", "-plaintext"]);
    if (r.code !== 0) throw new Error(`plakar create failed: ${r.stderr}`);
    return user;
  }

  env(): Record<string, string> {
    return { HOME: this.home, XDG_CACHE_HOME: `${this.home}/.cache`, PLAKAR_PASSPHRASE: "" };
  }

  /** Runs plakar with this user's HOME; `stdin` is piped in when given. */
  async run(args: string[], stdin?: Uint8Array): Promise<PlakarResult> {
    const child = new Deno.Command(this.bin, {
      args,
      env: this.env(),
      cwd: this.home,
      stdin: stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (stdin) {
      const w = child.stdin.getWriter();
      await w.write(stdin);
      await w.close();
    }
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  }

  /** `plakar at STORE <args>`. */
  at(...args: string[]): Promise<PlakarResult> {
    return this.run(["at", this.store, ...args]);
  }

  /** Snapshot ids in the store, newest first. */
  async snapshots(): Promise<string[]> {
    const r = await this.at("ls");
    if (r.code !== 0) throw new Error(`plakar ls failed: ${r.stderr}`);
    return r.stdout.split("\n").filter((l) => l.trim()).map((l) => l.trim().split(/\s+/)[1]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Deno.remove(this.home, { recursive: true }).catch(() => {});
  }
}

/** Fails with plakar's output when a command did not succeed. */
export function ok(r: PlakarResult, what: string): PlakarResult {
  if (r.code !== 0) {
    throw new Error(`${what} exited with ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r;
}
