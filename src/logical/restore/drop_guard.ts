// A guard that drops a work database (the temporary copy of a recreate=true
// restore) if this process dies before it is done with it.
//
// plakar ends its plugins with SIGKILL when it is interrupted (Ctrl-C,
// `systemctl stop`, a job's time-out: plakar cancels its context and Go's
// exec.CommandContext kills the plugin), and a group-wide SIGINT or SIGTERM
// reaches our tools too. No cleanup that runs in this process can be relied
// on then, so the drop is handed, before the work database exists, to a
// process that outlives us: a psql in a session of its own (no group signal
// reaches it), connected to the maintenance database, whose stdin we hold.
//
// The guard relies on one psql rule: at the end of its input, psql sends
// what is left in its query buffer, a statement without its semicolon. We
// write `DROP DATABASE IF EXISTS <work> WITH (FORCE)` without one, so it
// waits in the buffer; if this process dies, its end of the pipe closes and
// psql runs the drop. FORCE (PostgreSQL 13+) ends the sessions in the work
// database first (a pg_restore that outlived us); on older servers the drop
// is plain and fails while one remains. `\r` empties the buffer: `rearm`
// puts another name in it, `disarm` empties it and lets psql quit.

import type { ExportOptions } from "../../pg/config.ts";
import { warn } from "../../log.ts";
import { toolEnv, toolPath, withRole } from "../../pg/tools.ts";
import { psqlArgv } from "./psql_argv.ts";

const enc = new TextEncoder();

/** The statement the guard holds for `database` (an ASCII work name of ours). */
function dropStatement(database: string): string {
  return `DROP DATABASE IF EXISTS "${database}" :plakar_force\n`;
}

/** What the guard's psql runs first: picks FORCE by server version, then says it is ready. */
const PRELUDE = [
  // A notice (nothing to drop) must not reach a stderr nobody reads.
  "SET client_min_messages = error;",
  "SELECT pg_catalog.current_setting('server_version_num')::int >= 130000 AS plakar_has_force \\gset",
  "\\if :plakar_has_force",
  "\\set plakar_force 'WITH (FORCE)'",
  "\\else",
  "\\set plakar_force ''",
  "\\endif",
  "\\echo plakar: armed",
  // Nothing more is printed: a closed stdout must not stop the drop.
  "\\o /dev/null",
  "",
].join("\n");

/** A drop of a work database, held by a process that outlives this one. */
export class DropGuard {
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #child: Deno.ChildProcess | undefined;

  private constructor() {}

  /**
   * Starts the guard holding the drop of `database`. When psql cannot start
   * or connect, warns and returns a guard that does nothing: the restore
   * still cleans up after itself on every path this process lives through.
   * psql is run from `binDir` (the restore's chosen tools), else from PATH.
   */
  static async arm(
    opts: ExportOptions,
    binDir: string | undefined,
    database: string,
  ): Promise<DropGuard> {
    const guard = new DropGuard();
    try {
      await guard.#start(opts, binDir, database);
    } catch (e) {
      guard.#kill();
      await guard.#stop();
      warn(
        `could not start the guard that drops ${database} if this restore is killed (${
          (e as Error).message
        }); going on without it`,
      );
    }
    return guard;
  }

  async #start(opts: ExportOptions, binDir: string | undefined, database: string): Promise<void> {
    this.#child = new Deno.Command(toolPath(binDir, "psql"), {
      args: psqlArgv(opts.conn, "postgres", "continue"),
      env: withRole(await toolEnv(opts.conn), opts.role),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      // A session of its own: the signals sent to plakar's process group
      // (Ctrl-C, systemctl stop) do not reach it.
      detached: true,
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    await this.#writer.write(enc.encode(PRELUDE + dropStatement(database)));
    // Bounded: a psql that never answers must not hold up the restore.
    const timeout = (opts.conn.connectTimeout + 5) * 1000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ready = await Promise.race([
      firstLine(this.#child.stdout),
      new Promise<string>((r) => timer = setTimeout(() => r("(no answer)"), timeout)),
    ]).finally(() => clearTimeout(timer));
    if (ready === "(no answer)") throw new Error(`psql did not answer within ${timeout} ms`);
    if (ready !== "plakar: armed") {
      const detail = (await new Response(this.#child.stderr).text()).trim().split("\n")[0];
      throw new Error(detail || "psql exited before it was ready");
    }
    // Its stderr goes unread from now on: psql prints nothing there unless
    // the drop itself fails, and the pipe holds far more than that.
    this.#child.stderr.cancel().catch(() => {});
  }

  /** Holds the drop of `database` instead of the one held so far. */
  async rearm(database: string): Promise<void> {
    if (!this.#writer) return;
    await this.#writer.write(enc.encode(`\\r\n${dropStatement(database)}`)).catch(() => {});
  }

  /** Empties the held drop and lets psql quit; resolves once it has. */
  async disarm(): Promise<void> {
    if (!this.#writer) return;
    await this.#writer.write(enc.encode("\\r\n\\q\n")).catch(() => {});
    await this.#stop();
  }

  #kill(): void {
    try {
      this.#child?.kill("SIGKILL");
    } catch { /* already exited */ }
  }

  async #stop(): Promise<void> {
    await this.#writer?.close().catch(() => {});
    this.#writer = undefined;
    await this.#child?.status.catch(() => {});
    this.#child = undefined;
  }
}

/** The first line of `stream` (then the stream is cancelled), or "" at its end. */
async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return text;
      text += value;
      const nl = text.indexOf("\n");
      if (nl >= 0) return text.slice(0, nl);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
