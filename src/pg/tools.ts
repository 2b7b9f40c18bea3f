// Runs PostgreSQL's client tools (pg_dump, pg_dumpall, pg_restore, psql,
// pg_basebackup) with Deno.Command. The one place that builds their argv and
// environment: the password goes only through PGPASSWORD, `-w` so a tool never
// prompts, a database only ever as a quoted `dbname=` value (a name that
// contains `=` must never be read as a connection string), and a non-zero
// exit turns into an error carrying the tail of stderr, secrets removed.

import { CLIENT_CHECK_OPTION, clientCheckSupported, currentPassword } from "./client.ts";
import { passwordFilePath } from "./pgpass.ts";
import type { ConnConfig } from "./conn.ts";
import { type ErrorKind, oneLine, PluginError } from "../errors.ts";
import { widenChildPipe } from "../proc/pipes.ts";
import type { Runtime } from "../proc/runtime.ts";

/** A client tool failed: names the tool and what it was doing, with its stderr. */
export class ToolError extends PluginError {
  readonly tool: string;
  /** What the run was for ("of database \"shop\""). */
  readonly what: string;
  readonly exitCode: number | null;
  /** The statement that failed, from the tool's "Query was:" line, if it printed one. */
  readonly query?: string;
  constructor(tool: string, what: string, exitCode: number | null, detail: string) {
    const status = exitCode === null ? "was killed" : `exited with status ${exitCode}`;
    const failure = toolFailure(exitCode, detail);
    super(failure.kind, `${tool} ${what} ${status}${detail ? `: ${detail}` : ""}`, {
      sqlstate: failure.sqlstate,
    });
    this.name = "ToolError";
    this.tool = tool;
    this.what = what;
    this.exitCode = exitCode;
    // OutputTail joins the tool's lines with " | ".
    const query = /Query was: (.*?)(?: \| |$)/.exec(detail)?.[1];
    if (query !== undefined) this.query = query;
  }
}

/**
 * libpq's and the server's words in a tool's stderr, by the kind of failure
 * they mean. The tools print no SQLSTATE, so their text is all there is: it
 * is read here, once, and everything downstream looks at the kind.
 */
const TOOL_FAILURES: readonly [RegExp, ErrorKind, string?][] = [
  [
    /SSL error: certificate verify failed|server certificate for .* does not match host name|server does not support SSL/,
    "failed-precondition",
  ],
  [
    /connection to server .*failed: (?:Connection refused|timeout expired|No route to host|Network is unreachable|could not translate host name)|could not connect to server|server closed the connection unexpectedly/,
    "unavailable",
  ],
  [
    /password authentication failed|no pg_hba\.conf entry|PAM authentication failed|fe_sendauth: no password supplied/,
    "unauthenticated",
  ],
  [/could not obtain lock on|canceling statement due to lock timeout/, "aborted", "55P03"],
  // pg_dump --lock-wait-timeout is a statement_timeout around LOCK TABLE:
  // the lock was not available in time.
  [/canceling statement due to statement timeout[^]*Query was: LOCK TABLE/, "aborted", "55P03"],
  // pg_receivewal asked for WAL the server no longer has.
  [/requested WAL segment \S+ has already been removed/, "data-loss", "58P01"],
  // The lock table is full: max_locks_per_transaction (SQLSTATE out_of_memory).
  [/out of shared memory/, "resource-exhausted", "53200"],
  [
    /too many clients already|remaining connection slots|No space left on device|could not extend file/,
    "resource-exhausted",
  ],
  [/FATAL: {1,2}database ".*" does not exist/, "not-found", "3D000"],
  [/permission denied|must be superuser|must be owner/, "permission-denied", "42501"],
];

/**
 * The kind of a tool's failure, from how it ended and what it printed, and
 * the SQLSTATE its words stand for, when they do.
 */
function toolFailure(
  exitCode: number | null,
  detail: string,
): { kind: ErrorKind; sqlstate?: string } {
  if (exitCode === null) return { kind: "cancelled" };
  const hit = TOOL_FAILURES.find(([re]) => re.test(detail));
  return hit ? { kind: hit[1], sqlstate: hit[2] } : { kind: "unknown" };
}

/** Where a tool lives: in pg_bin_dir when set, else resolved through $PATH. */
export function toolPath(pgBinDir: string | undefined, name: string): string {
  return pgBinDir ? `${pgBinDir.replace(/\/+$/, "")}/${name}` : name;
}

/**
 * Quotes a database name as a libpq conninfo `dbname='...'` value. Passed to
 * `-d`, it can only ever be a database name: `host=evil dbname=x` stays one
 * literal name instead of redirecting the connection.
 */
export function dbnameArg(database: string): string {
  return `dbname='${database.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** Connection flags every tool shares: host, port, user, never prompt. */
export function connArgs(conn: ConnConfig): string[] {
  const args = ["-h", conn.host, "-p", String(conn.port), "-w"];
  if (conn.username) args.push("-U", conn.username);
  return args;
}

/** The environment for a tool: TLS and timeouts always, the password only here. */
export async function toolEnv(conn: ConnConfig): Promise<Record<string, string>> {
  const env: Record<string, string> = {
    PGSSLMODE: conn.sslMode,
    PGCONNECT_TIMEOUT: String(conn.connectTimeout),
    PGAPPNAME: "plakar-postgresql",
  };
  const password = await currentPassword(conn);
  if (password) env.PGPASSWORD = password;
  // Else libpq takes PGPASSWORD or the password file: name the file the
  // catalog connection reads, so both always agree (even without $HOME).
  else env.PGPASSFILE = passwordFilePath();
  if (conn.sslCert) env.PGSSLCERT = conn.sslCert;
  if (conn.sslKey) env.PGSSLKEY = conn.sslKey;
  if (conn.sslRootCert) env.PGSSLROOTCERT = conn.sslRootCert;
  // A tool's backend notices within seconds that the tool is gone (killed
  // because the host went away) even while it waits on a lock: see
  // CLIENT_CHECK_OPTION. Only once a catalog connection showed the server takes it.
  if (clientCheckSupported(conn)) {
    const user = Deno.env.get("PGOPTIONS");
    env.PGOPTIONS = user ? `${user} ${CLIENT_CHECK_OPTION}` : CLIENT_CHECK_OPTION;
  }
  return env;
}

/**
 * The environment for a tool acting as `role` (the exporter's role=) where
 * it has no --role (psql): the session's role is set at connection start
 * through PGOPTIONS (`-c role=NAME`, spaces and backslashes escaped as
 * libpq's options parser expects).
 */
export function withRole(env: Record<string, string>, role: string | undefined) {
  if (!role) return env;
  const option = `-c role=${role.replace(/[\\ ]/g, (c) => `\\${c}`)}`;
  return { ...env, PGOPTIONS: env.PGOPTIONS ? `${env.PGOPTIONS} ${option}` : option };
}

/** Keeps the head and tail of a tool's output, bounded, for error messages. */
export class OutputTail {
  #head = "";
  #tail = "";
  #dropped = false;
  readonly #limit: number;
  readonly #decoder = new TextDecoder();
  constructor(limit = 1000) {
    this.#limit = limit;
  }
  push(bytes: Uint8Array): void {
    const text = this.#decoder.decode(bytes, { stream: true });
    if (this.#head.length < this.#limit) {
      const take = this.#limit - this.#head.length;
      this.#head += text.slice(0, take);
      this.#tail += text.slice(take);
    } else {
      this.#tail += text;
    }
    if (this.#tail.length > this.#limit) {
      this.#tail = this.#tail.slice(-this.#limit);
      this.#dropped = true;
    }
  }
  /** The kept text on one line, with secrets replaced. */
  text(secrets: (string | undefined)[] = []): string {
    let s = this.#dropped ? `${this.#head} [...] ${this.#tail}` : this.#head + this.#tail;
    for (const secret of secrets) if (secret) s = s.split(secret).join("***");
    return oneLine(s);
  }
}

export interface ToolSpec {
  /** Executable path or name. */
  bin: string;
  args: string[];
  env: Record<string, string>;
  /** Short description for errors, e.g. `pg_dump of database "app"`. */
  what: string;
  /** Values to scrub from messages (the password). */
  secrets?: (string | undefined)[];
  /** Aborting stops the tool (SIGTERM); its failure is then reported as usual. */
  signal?: AbortSignal;
  /** Called once when the tool has exited, or could not start (frees a slot it held). */
  onExit?: () => void;
  /** Turns the tool's failure into a clearer error (a known cause said plainly). */
  explain?: (err: ToolError) => Error;
  /**
   * The process's runtime: the tool is stopped at shutdown, its pipes are
   * widened, the message buffers its input brings are given back.
   */
  runtime: Runtime;
}

/** A tool run for a small output; tracked (stopped at shutdown) when a runtime is given. */
export type ProbeSpec = Omit<ToolSpec, "runtime"> & { runtime?: Runtime };

/** The error for a failed tool, through the spec's `explain` when it has one. */
function failure(spec: ProbeSpec, exitCode: number | null, detail: string): Error {
  const err = new ToolError(toolName(spec.bin), spec.what, exitCode, detail);
  return spec.explain ? spec.explain(err) : err;
}

function toolName(bin: string): string {
  return bin.split("/").pop() ?? bin;
}

function spawn(spec: ProbeSpec, stdin: "piped" | "null", stdout: "piped" | "null") {
  try {
    spec.signal?.throwIfAborted();
    const spawned = new Deno.Command(spec.bin, {
      args: spec.args,
      env: spec.env,
      stdin,
      stdout,
      stderr: "piped",
    }).spawn();
    const child = spec.runtime ? spec.runtime.children.track(spawned) : spawned;
    const signal = spec.signal;
    const stop = () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
    };
    signal?.addEventListener("abort", stop);
    child.status.finally(() => {
      signal?.removeEventListener("abort", stop);
      spec.onExit?.();
    }).catch(() => {});
    return child;
  } catch (e) {
    spec.onExit?.();
    if (e instanceof Deno.errors.NotFound) {
      throw new ToolError(
        toolName(spec.bin),
        spec.what,
        null,
        `${spec.bin} not found: install the PostgreSQL client tools or set pg_bin_dir`,
      );
    }
    throw e;
  }
}

async function collect(stream: ReadableStream<Uint8Array>, tail: OutputTail): Promise<void> {
  for await (const chunk of stream) tail.push(chunk);
}

/**
 * Starts a tool and returns its stdout as a stream. The stream ends only when
 * the tool has exited successfully; a non-zero exit errors the stream with a
 * ToolError, so a failed dump can never look like a complete one. Cancelling
 * the stream kills the tool.
 */
export function toolStdout(spec: ToolSpec): ReadableStream<Uint8Array> {
  let child: Deno.ChildProcess | undefined;
  let reader: ReadableStreamBYOBReader | undefined;
  let stderrDone: Promise<void> | undefined;
  // With a wide pipe, a short read means the tool is ahead of nobody: let
  // its output gather for a moment so the next read takes more at once.
  let wide = false;
  let lastShort = false;
  const stderr = new OutputTail();
  const finish = async (controller: ReadableByteStreamController, last?: Uint8Array) => {
    const status = await child!.status;
    await stderrDone;
    if (status.success) {
      controller.close();
      // A pending read that brought its own buffer gets it back, empty.
      const request = controller.byobRequest;
      if (request && last) request.respondWithNewView(last.subarray(0, 0));
      else request?.respond(0);
    } else {
      controller.error(
        failure(spec, status.signal ? null : status.code, stderr.text(spec.secrets)),
      );
    }
  };
  // A byte stream: a reader that brings its own buffer (the protocol layer's
  // 1 MiB frames) gets the pipe's bytes read straight into it.
  return new ReadableStream({
    type: "bytes",
    start() {
      child = spawn(spec, "null", "piped");
      wide = widenChildPipe(spec.runtime.libc(), child.pid);
      reader = child.stdout.getReader({ mode: "byob" });
      stderrDone = collect(child.stderr, stderr);
    },
    async pull(controller) {
      if (wide && lastShort) await new Promise((r) => setTimeout(r, GATHER_MS));
      const request = controller.byobRequest;
      if (request?.view) {
        const view = request.view as Uint8Array;
        const { value, done } = await reader!.read(
          new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
        );
        if (done) return await finish(controller, value);
        lastShort = value.length < Math.min(view.byteLength, GATHER_BYTES);
        request.respondWithNewView(value);
        return;
      }
      const { value, done } = await reader!.read(new Uint8Array(256 * 1024));
      if (done) return await finish(controller);
      controller.enqueue(value);
    },
    async cancel() {
      try {
        child?.kill("SIGTERM");
      } catch { /* already exited */ }
      await reader?.cancel().catch(() => {});
      await child?.status;
      await stderrDone?.catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/** How long a read waits for output to gather after a short read, and what counts as short. */
const GATHER_MS = 1;
const GATHER_BYTES = 256 * 1024;

/** What a tool printed, for callers that inspect it (psql's ERROR lines). */
export interface ToolResult {
  output: string;
}

/**
 * Runs a tool with `input` piped to its stdin and waits for it. Rejects with a
 * ToolError on a non-zero exit. The input is always consumed or cancelled.
 */
export async function toolWithInput(
  spec: ToolSpec,
  input: ReadableStream<Uint8Array>,
  onOutputLine?: (line: string) => void,
): Promise<ToolResult> {
  const child = spawn(spec, "piped", "piped");
  // A wide pipe takes a whole 1 MiB chunk per write while the tool reads.
  widenChildPipe(spec.runtime.libc(), child.pid, 0);
  const tail = new OutputTail(2000);
  const watch = async (stream: ReadableStream<Uint8Array>) => {
    let partial = "";
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      tail.push(chunk);
      if (onOutputLine) {
        partial += dec.decode(chunk, { stream: true });
        const lines = partial.split("\n");
        partial = lines.pop()!;
        for (const line of lines) onOutputLine(line);
      }
    }
    if (onOutputLine && partial) onOutputLine(partial);
  };
  const outputs = Promise.all([watch(child.stdout), watch(child.stderr)]);
  // Fed by hand rather than with pipeTo, to tell the two failures apart. When
  // the input fails (the host went away mid-file, the content was cut), the
  // tool is stopped *before* its stdin closes: psql would otherwise take the
  // end of the pipe for the end of the script and commit what it read. When
  // the tool stops reading (it failed), its exit status says why.
  const reader = input.getReader();
  const writer = child.stdin.getWriter();
  let inputError: unknown;
  let toolClosed = false;
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        inputError = e;
        break;
      }
      if (chunk.done) break;
      try {
        await writer.write(chunk.value);
      } catch {
        toolClosed = true;
        break;
      }
      // Written out: a message buffer lent for exactly this chunk is reused.
      spec.runtime.buffers.giveBack(chunk.value);
    }
    if (inputError !== undefined) {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      await child.status;
    }
    if (toolClosed || inputError !== undefined) {
      await reader.cancel().catch(() => {});
      await writer.abort().catch(() => {});
    } else {
      await writer.close().catch(() => {});
    }
  } finally {
    reader.releaseLock();
  }
  const status = await child.status;
  await outputs;
  if (inputError !== undefined) throw inputError;
  if (!status.success) {
    throw failure(spec, status.signal ? null : status.code, tail.text(spec.secrets));
  }
  return { output: tail.text(spec.secrets) };
}

/** Runs a tool to completion and returns its stdout (small outputs: versions, checks). */
export async function toolOutput(spec: ProbeSpec): Promise<string> {
  const child = spawn(spec, "null", "piped");
  const stderr = new OutputTail();
  const [out] = await Promise.all([
    new Response(child.stdout).text(),
    collect(child.stderr, stderr),
  ]);
  const status = await child.status;
  if (!status.success) {
    throw failure(spec, status.signal ? null : status.code, stderr.text(spec.secrets));
  }
  return out;
}

/** The tool's `--version` line, e.g. "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)". */
export async function toolVersionLine(bin: string, runtime?: Runtime): Promise<string> {
  const out = await toolOutput({ bin, args: ["--version"], env: {}, what: "--version", runtime });
  return out.trim();
}
