// `recreate=true` without destroying the target first. pg_restore -C --clean
// drops the database before it has read a byte of data, so a damaged dump
// leaves an empty database behind. Here the archive is restored into
// a fresh temporary database; only when that has fully succeeded is the old
// database renamed away, the new one renamed into place, and the old one
// dropped. A failure drops the temporary database and leaves the target as
// it was.
//
// Design, and why not the obvious alternatives:
// - `pg_restore -C` cannot restore under another name, and renaming the old
//   database aside first would leave a half-restored database under the real
//   name (visible to clients, and left there if we are killed).
// - So pg_restore runs without -C into a database we create. -C would have
//   taken the encoding and locale from the archive's CREATE DATABASE and
//   applied the database-level properties (owner, comment, security label,
//   ACL, connection limit, ALTER DATABASE/ROLE ... SET); without -C
//   pg_restore skips all of those. The input is a one-pass stream, but pg_dump
//   writes the TOC first: we read it (src/pg/archive_toc.ts), keep those bytes,
//   and replay them to pg_restore. The CREATE DATABASE statement is the
//   archive's own with only the name changed; the property statements are
//   the archive's own, run after the rename so they name the right database.
// - The swap (rename old away, rename new in, apply properties) is one
//   transaction: ALTER DATABASE ... RENAME and those statements are
//   transactional, so clients see either the old database or the complete
//   new one. Only DROP DATABASE of the old one runs after the commit.
// - Everything goes through psql with client_encoding set to the server's
//   own encoding, so no conversion happens: database names, comments and
//   role names live in shared catalogs as raw bytes (pg_dump reads them
//   unconverted from inside the dumped database, and libpq passes a dbname
//   unconverted), and must reach them as the archive holds them. Converting
//   from the archive's encoding would rename a non-ASCII database of a
//   LATIN1 dump into mojibake (pg_restore -C's own CREATE DATABASE does).
// - The database replaced is the one the user selected: the file's name
//   (or database=), never the name recorded inside the archive, which a
//   renamed or hand-made snapshot can make another live database. When the
//   two differ, the archive's CREATE DATABASE and property statements are
//   applied under the selected name.
// - The temporary copy is guarded by a process that outlives this one
//   (src/logical/restore/drop_guard.ts): plakar SIGKILLs its plugins when it is
//   interrupted, and no cleanup of ours would run then.
// Cost: the server holds both databases until the swap (twice the disk);
// `atomic=false` restores the old drop-first behaviour for when disk is short.

import type { ExportOptions } from "../../pg/config.ts";
import {
  ArchiveFormatError,
  type ArchiveToc,
  asciiText,
  readArchiveToc,
} from "../../pg/archive_toc.ts";
import { error as logError, warn } from "../../log.ts";
import { DropGuard } from "./drop_guard.ts";
import { scriptGuard, ScriptRefusedError } from "./psql_guard.ts";
import { toolEnv, toolPath, toolWithInput, withRole } from "../../pg/tools.ts";
import { psqlArgv } from "./psql_argv.ts";
import { concatBytes } from "../../proc/bytes.ts";
import type { Runtime } from "../../proc/runtime.ts";

/**
 * Databases every cluster has, never dropped or swapped: recreate=true
 * restores them in place, with clean=true's drops of their objects.
 */
export const ALWAYS_PRESENT: readonly string[] = ["postgres", "template1"];

const enc = new TextEncoder();

function concat(parts: (Uint8Array | string)[]): Uint8Array {
  return concatBytes(parts.map((p) => typeof p === "string" ? enc.encode(p) : p));
}

/** Doubles every `quote` byte and wraps the bytes in it (identifier or literal quoting). */
function quoteBytes(bytes: Uint8Array, quote: '"' | "'"): Uint8Array {
  const q = quote.charCodeAt(0);
  const out: number[] = [q];
  for (const b of bytes) {
    out.push(b);
    if (b === q) out.push(q);
  }
  out.push(q);
  return new Uint8Array(out);
}

const ident = (name: Uint8Array | string) =>
  quoteBytes(typeof name === "string" ? enc.encode(name) : name, '"');
const literal = (name: Uint8Array | string) =>
  quoteBytes(typeof name === "string" ? enc.encode(name) : name, "'");

/**
 * The temporary and set-aside names for `database`: an ASCII hint of the
 * original name plus a random suffix, always within PostgreSQL's 63 bytes.
 */
export function workNames(database: string): { temporary: string; old: string } {
  const hint = database.toLowerCase().replace(/[^a-z0-9_]/g, "").slice(0, 30) || "db";
  const random = crypto.getRandomValues(new Uint8Array(4));
  const suffix = [...random].map((b) => b.toString(16).padStart(2, "0")).join("");
  return {
    temporary: `${hint}__plakar_restore_${suffix}`,
    old: `${hint}__plakar_old_${suffix}`,
  };
}

/**
 * The archive's CREATE DATABASE statement with the database renamed to
 * `name`; throws when the statement is not the shape pg_dump writes.
 */
export function renamedCreateDatabase(defn: Uint8Array, name: string): Uint8Array {
  const prefix = enc.encode("CREATE DATABASE ");
  if (!prefix.every((b, i) => defn[i] === b)) {
    throw new SyntaxError(
      "Cannot recreate the database safely: the archive's DATABASE entry is not a CREATE DATABASE statement",
    );
  }
  let i = prefix.length;
  if (defn[i] === 0x22) {
    // A quoted identifier ends at a quote that is not doubled.
    i++;
    while (i < defn.length) {
      if (defn[i] === 0x22 && defn[i + 1] === 0x22) i += 2;
      else if (defn[i] === 0x22) break;
      else i++;
    }
    i++;
  } else {
    while (i < defn.length && ![0x20, 0x3b, 0x0a, 0x09].includes(defn[i])) i++;
  }
  if (i > defn.length) {
    throw new SyntaxError(
      "Cannot recreate the database safely: unterminated name in the archive's CREATE DATABASE",
    );
  }
  return concat([prefix, ident(name), defn.subarray(i)]);
}

/** What the archive says about its database, ready to run. */
interface DatabaseMeta {
  /** The archive's database name, raw bytes in the archive's encoding. */
  name: Uint8Array;
  /** The same, decoded for messages. */
  display: string;
  createDefn?: Uint8Array;
  owner?: Uint8Array;
  /** DATABASE PROPERTIES, then COMMENT, SECURITY LABEL and ACL on the database. */
  properties: Uint8Array[];
}

const decodeName = (b: Uint8Array) => new TextDecoder("utf-8", { fatal: false }).decode(b);

/** The name of the database an archive was dumped from, decoded for messages; undefined if unknown. */
export function archiveDatabase(toc: ArchiveToc): string | undefined {
  const name = toc.entries.find((e) => e.desc === "DATABASE")?.tag ?? toc.dbname;
  return name ? decodeName(name) : undefined;
}

function databaseMeta(toc: ArchiveToc, target: string): DatabaseMeta {
  const db = toc.entries.find((e) => e.desc === "DATABASE");
  const name = db?.tag ?? enc.encode(target);
  const onDatabase = (e: { tag: Uint8Array | null }) =>
    e.tag !== null && asciiText(e.tag.subarray(0, 9)) === "DATABASE ";
  const properties = [
    ...toc.entries.filter((e) => e.desc === "DATABASE PROPERTIES"),
    ...toc.entries.filter((e) => e.desc === "COMMENT" && onDatabase(e)),
    ...toc.entries.filter((e) => e.desc === "SECURITY LABEL" && onDatabase(e)),
    ...toc.entries.filter((e) => e.desc === "ACL" && onDatabase(e)),
  ].flatMap((e) => e.defn && e.defn.length > 0 ? [e.defn] : []);
  return {
    name,
    display: decodeName(name),
    createDefn: db?.defn ?? undefined,
    owner: db?.owner ?? undefined,
    properties,
  };
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * pg_dump's property statements name the database as `DATABASE <name>`,
 * the name quoted only when it must be; this renames the first such mention
 * in each statement (`ALTER DATABASE x SET`, `ALTER ROLE r IN DATABASE x
 * SET`, `COMMENT ON DATABASE x`, `GRANT ... ON DATABASE x`) to `to`.
 */
export function retargetStatements(defn: Uint8Array, from: Uint8Array, to: string): Uint8Array {
  const forms = [concat(["DATABASE ", ident(from)]), concat(["DATABASE ", from])];
  const delimiters = [0x20, 0x3b, 0x0a, 0x09];
  const out: (Uint8Array | string)[] = [];
  let start = 0;
  while (start < defn.length) {
    const end = indexOfBytes(defn, enc.encode(";\n"), start);
    const stop = end < 0 ? defn.length : end + 2;
    const statement = defn.subarray(start, stop);
    let replaced = false;
    for (const form of forms) {
      const at = indexOfBytes(statement, form, 0);
      if (at < 0) continue;
      const after = statement[at + form.length];
      if (form !== forms[0] && after !== undefined && !delimiters.includes(after)) continue;
      out.push(
        statement.subarray(0, at),
        "DATABASE ",
        ident(to),
        statement.subarray(at + form.length),
      );
      replaced = true;
      break;
    }
    if (!replaced) out.push(statement);
    start = stop;
  }
  return concat(out);
}

export interface SafeRecreate {
  opts: ExportOptions;
  /** Where the restore's psql runs from (its chosen tools); undefined: PATH. */
  binDir: string | undefined;
  /** The process's runtime, where psql is tracked. */
  runtime: Runtime;
  /** The database the user selected (database=, or the file's name): the one replaced. */
  target: string;
  /** The snapshot file, for messages. */
  pathname: string;
  /** Restores the archive stream into an existing, empty database (pg_restore without -C). */
  restoreInto: (database: string, input: ReadableStream<Uint8Array>) => Promise<void>;
}

/** Reads the archive's TOC, saying what to do when this reader does not know its format. */
async function readToc(input: ReadableStream<Uint8Array>) {
  try {
    return await readArchiveToc(input);
  } catch (e) {
    // Only a format this reader does not know is a reason to fall back: a
    // damaged file would fail pg_restore -C too, after it dropped the target.
    if (!(e instanceof ArchiveFormatError)) throw e;
    throw new Error(
      `${e.message}; to restore it with pg_restore -C (dropping the database first), set atomic=false`,
      { cause: e },
    );
  }
}

/**
 * The archive's own statements that go through psql here (its CREATE
 * DATABASE and database properties) must be plain SQL: a snapshot is data,
 * never a program, and a psql meta-command in them would run on this host.
 * Throws, naming `what`, when psql_guard finds any meta-command at all (not
 * even the \connect a script may carry), or anything psql could read as one.
 */
export async function assertPlainSql(bytes: Uint8Array, what: string): Promise<void> {
  // Strict (no key): also refuses what a psql could read differently. Keyed:
  // any allowed meta-command line shows, wrapped, in the output.
  const key = "plain";
  const strict = await guarded(bytes, undefined, what);
  const keyed = await guarded(bytes, key, what);
  const expected = concat([`\\restrict ${key}\n`, bytes]);
  const same = (a: Uint8Array, b: Uint8Array) =>
    a.length === b.length && a.every((x, i) => x === b[i]);
  if (!same(strict, bytes) || !same(keyed, expected)) {
    throw new Error(`${what}: holds a psql meta-command line, refused; nothing was changed`);
  }
}

/** `bytes` through psql_guard's scriptGuard; a refusal becomes an error naming `what`. */
async function guarded(bytes: Uint8Array, restrictKey: string | undefined, what: string) {
  const chunks: Uint8Array[] = [];
  try {
    const out = ReadableStream.from([bytes]).pipeThrough(scriptGuard({ restrictKey }).transform);
    for await (const c of out) chunks.push(c);
  } catch (e) {
    if (!(e instanceof ScriptRefusedError)) throw e;
    throw new Error(`${what}: ${e.detail}; nothing was changed`, { cause: e });
  }
  return concatBytes(chunks);
}

/** The one line said when the archive was dumped from another database than the one it replaces. */
export function renamedNote(pathname: string, archive: string, target: string): string {
  return `${pathname} holds a dump of database ${JSON.stringify(archive)}; it replaces ${
    JSON.stringify(target)
  }, the database the file names (${JSON.stringify(archive)} is not touched)`;
}

/**
 * Restores a custom-format archive as `pg_restore -C --clean` would, but
 * through a temporary database swapped in only on success: a failure leaves
 * the existing database untouched.
 */
export async function recreateViaTemporary(
  input: ReadableStream<Uint8Array>,
  spec: SafeRecreate,
): Promise<void> {
  const { stream, meta, name, properties } = await readArchiveDatabase(input, spec);
  const sql = new SqlRunner(spec.opts, spec.binDir, spec.runtime);
  const names = workNames(spec.target);
  const head = enc.encode(RAW_BYTES);
  const kept = `${JSON.stringify(spec.target)} was left as it was`;
  // Armed before the temporary database exists: from then on, whatever
  // ends this process, it is dropped.
  const guard = await DropGuard.arm(spec.opts, spec.binDir, names.temporary);
  try {
    await createTemporary(sql, head, meta.createDefn, names.temporary, stream);
    try {
      try {
        await spec.restoreInto(names.temporary, stream);
      } catch (e) {
        throw new Error(
          `restore into the temporary database ${names.temporary} failed; ${kept}: ${
            (e as Error).message
          }`,
          { cause: e },
        );
      }
      await warnSessions(sql, head, name, spec.target);
      await swap(sql, { head, name, owner: meta.owner, properties, names, guard }, spec, kept);
    } catch (e) {
      await sql.run(dropScript(names.temporary), `dropping ${names.temporary}`).catch((d) => {
        logError(
          `could not drop the temporary database ${names.temporary}: ${(d as Error).message}`,
        );
      });
      throw e;
    }
  } finally {
    await guard.disarm();
  }
}

/**
 * The archive's database, read from its TOC, and its statements for the
 * target's name. Refuses a database that is never dropped, and statements of
 * the archive's own that are not plain SQL.
 */
async function readArchiveDatabase(input: ReadableStream<Uint8Array>, spec: SafeRecreate) {
  if (ALWAYS_PRESENT.includes(spec.target)) {
    await input.cancel().catch(() => {});
    throw new Error(
      `database ${JSON.stringify(spec.target)} is never dropped: restore it with clean=true`,
    );
  }
  const { toc, stream } = await readToc(input);
  const meta = databaseMeta(toc, spec.target);
  const renamed = meta.display !== spec.target;
  if (renamed) warn(renamedNote(spec.pathname, meta.display, spec.target));
  const properties = renamed
    ? meta.properties.map((p) => retargetStatements(p, meta.name, spec.target))
    : meta.properties;
  // The same bytes as the archive's when the names agree (see the header).
  const name = renamed ? enc.encode(spec.target) : meta.name;
  const own = `${spec.pathname}: the archive's database properties`;
  for (const statement of [meta.createDefn, ...properties]) {
    if (statement) await assertPlainSql(statement, own);
  }
  return { stream, meta, name, properties };
}

/**
 * Creates the temporary database as the archive's CREATE DATABASE says, under
 * the temporary name; on failure the archive is not read further.
 */
async function createTemporary(
  sql: SqlRunner,
  head: Uint8Array,
  createDefn: Uint8Array | undefined,
  temporary: string,
  stream: ReadableStream<Uint8Array>,
): Promise<void> {
  try {
    const create = createDefn
      ? renamedCreateDatabase(createDefn, temporary)
      : enc.encode(`CREATE DATABASE ${asText(ident(temporary))} TEMPLATE template0;\n`);
    await sql.run(concat([head, create]), `creating ${temporary}`);
  } catch (e) {
    await stream.cancel().catch(() => {});
    throw e;
  }
}

/** What the swap needs. */
interface SwapPlan {
  head: Uint8Array;
  /** The target's name, as bytes for the server. */
  name: Uint8Array;
  owner?: Uint8Array;
  properties: Uint8Array[];
  names: { temporary: string; old: string };
  guard: DropGuard;
}

/**
 * Swaps the restored copy in and drops the replaced one, in one psql
 * session (one process and connection fewer); a line printed between the
 * two tells which of them a failure was.
 */
async function swap(sql: SqlRunner, plan: SwapPlan, spec: SafeRecreate, kept: string) {
  let swapped = false;
  try {
    await sql.run(
      concat([
        swapScript(plan, spec.opts.noOwner),
        `\\echo ${SWAPPED}\n`,
        dropScript(plan.names.old),
      ]),
      "swapping databases",
      (line) => {
        if (line !== SWAPPED) return;
        swapped = true;
        // From now on the copy to drop, if we die, is the replaced one.
        plan.guard.rearm(plan.names.old);
      },
    );
  } catch (e) {
    if (!swapped) {
      throw new Error(
        `the restored copy ${plan.names.temporary} could not replace ${
          JSON.stringify(spec.target)
        }; ${kept}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    // The restore itself succeeded; the replaced copy only takes disk.
    logError(
      `${spec.target} was restored, but its previous copy ${plan.names.old} could not be dropped: ${
        (e as Error).message
      }`,
    );
  }
}

/** What psql prints for each session connected to the target (tab-separated). */
const SESSION = "plakar-session";

/**
 * Says, before the swap ends them, which sessions are connected to the
 * database being replaced: their work (an open transaction included) is
 * lost. Best effort: a failure to list them does not stop the restore.
 */
async function warnSessions(sql: SqlRunner, head: Uint8Array, name: Uint8Array, target: string) {
  const sessions: string[] = [];
  await sql.run(
    concat([
      head,
      "\\pset format unaligned\n\\pset tuples_only on\n\\pset fieldsep '\\t'\n",
      `SELECT '${SESSION}', usename, coalesce(nullif(application_name, ''), '-'), `,
      "state LIKE 'idle in transaction%' OR (state = 'active' AND xact_start IS NOT NULL) ",
      "FROM pg_catalog.pg_stat_activity WHERE datname = ",
      literal(name),
      " AND pid <> pg_catalog.pg_backend_pid();\n",
    ]),
    "listing sessions",
    (line) => {
      if (line.startsWith(`${SESSION}\t`)) sessions.push(line);
    },
  ).catch(() => {});
  const note = sessionsNote(target, sessions.map((l) => l.split("\t").slice(1)));
  if (note) warn(note);
}

/**
 * `recreate=true ends 2 session(s) connected to "app" before replacing it:
 * alice (psql, in a transaction), bob (api)`; undefined when there are none.
 * Each session is [user, application, whether it is in a transaction].
 */
export function sessionsNote(target: string, sessions: string[][]): string | undefined {
  if (sessions.length === 0) return undefined;
  const counts = new Map<string, number>();
  for (const [user, app, inTx] of sessions) {
    const key = `${user} (${app}${inTx === "t" ? ", in a transaction" : ""})`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const who = [...counts].map(([k, n]) => n > 1 ? `${n}× ${k}` : k).join(", ");
  return `recreate=true ends ${sessions.length} session(s) connected to ${
    JSON.stringify(target)
  } before replacing it (their uncommitted work is lost): ${who}`;
}

/** What psql prints once the swap has committed. */
const SWAPPED = "plakar: swapped";

const asText = (b: Uint8Array) => new TextDecoder().decode(b);

/** Makes the session take the script's bytes as they are (see the header comment). */
const RAW_BYTES = [
  "SELECT pg_catalog.current_setting('server_encoding') AS plakar_server_encoding \\gset",
  "SET client_encoding = :'plakar_server_encoding';",
  "SET standard_conforming_strings = on;",
  "",
].join("\n");

/**
 * One transaction: end other sessions on the target, rename it aside (when
 * it exists), rename the restored copy into place, apply the archive's
 * database-level properties. psql's ON_ERROR_STOP makes any error abort it.
 */
function swapScript(plan: SwapPlan, noOwner: boolean): Uint8Array {
  const { head, name, names } = plan;
  const parts: (Uint8Array | string)[] = [
    head,
    "SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = ",
    literal(name),
    ") AS plakar_target_exists \\gset\n",
    "SELECT count(pg_catalog.pg_terminate_backend(pid)) AS n FROM pg_catalog.pg_stat_activity WHERE datname = ",
    literal(name),
    " AND pid <> pg_catalog.pg_backend_pid() \\gset plakar_ended_\n",
    "BEGIN;\n",
    "\\if :plakar_target_exists\n",
    "ALTER DATABASE ",
    ident(name),
    " RENAME TO ",
    ident(names.old),
    ";\n",
    "\\endif\n",
    "ALTER DATABASE ",
    ident(names.temporary),
    " RENAME TO ",
    ident(name),
    ";\n",
  ];
  if (plan.owner && plan.owner.length > 0 && !noOwner) {
    parts.push("ALTER DATABASE ", ident(name), " OWNER TO ", ident(plan.owner), ";\n");
  }
  for (const p of plan.properties) parts.push(p, "\n");
  parts.push("COMMIT;\n");
  return concat(parts);
}

/** Drops a database we made (ASCII name), if it exists, even when marked as a template. */
function dropScript(name: string): Uint8Array {
  return enc.encode(
    [
      `SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = '${name}') AS plakar_drop_exists \\gset`,
      "\\if :plakar_drop_exists",
      `ALTER DATABASE "${name}" IS_TEMPLATE = false;`,
      `SELECT count(pg_catalog.pg_terminate_backend(pid)) AS n FROM pg_catalog.pg_stat_activity WHERE datname = '${name}' \\gset plakar_ended_`,
      `DROP DATABASE "${name}";`,
      "\\endif",
      "",
    ].join("\n"),
  );
}

/** Runs SQL scripts through psql on the maintenance database, stopping at the first error. */
class SqlRunner {
  constructor(
    readonly opts: ExportOptions,
    readonly binDir: string | undefined,
    readonly runtime: Runtime,
  ) {}

  async run(
    script: Uint8Array,
    what: string,
    onOutputLine?: (line: string) => void,
  ): Promise<void> {
    const opts = this.opts;
    await toolWithInput(
      {
        bin: toolPath(this.binDir, "psql"),
        args: psqlArgv(opts.conn, "postgres", "stop"),
        env: withRole(await toolEnv(opts.conn), opts.role),
        what: `(${what})`,
        secrets: [opts.conn.password],
        runtime: this.runtime,
      },
      new ReadableStream({
        start(controller) {
          controller.enqueue(script);
          controller.close();
        },
      }),
      onOutputLine,
    );
  }
}
