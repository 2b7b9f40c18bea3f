// `recreate=true` without destroying the target first. pg_restore -C --clean
// drops the database before it has read a byte of data, so a damaged dump
// used to leave an empty database behind. Here the archive is restored into
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
// Cost: the server holds both databases until the swap (twice the disk);
// `atomic=false` restores the old drop-first behaviour for when disk is short.

import type { ExportOptions } from "../pg/config.ts";
import { type ArchiveToc, asciiText, readArchiveToc } from "../pg/archive_toc.ts";
import { error as logError } from "../pg/log.ts";
import { connArgs, dbnameArg, toolEnv, toolPath, toolWithInput, withRole } from "../pg/tools.ts";
import { concatBytes } from "../proc/bytes.ts";

/** Databases that are never dropped or swapped (restored in place instead). */
const ALWAYS_PRESENT = ["postgres", "template1"];

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
  /** The database name, raw bytes in the archive's encoding. */
  name: Uint8Array;
  /** The same, decoded for messages and the ALWAYS_PRESENT check. */
  display: string;
  createDefn?: Uint8Array;
  owner?: Uint8Array;
  /** DATABASE PROPERTIES, then COMMENT, SECURITY LABEL and ACL on the database. */
  properties: Uint8Array[];
}

function databaseMeta(toc: ArchiveToc, fileDatabase: string): DatabaseMeta {
  const db = toc.entries.find((e) => e.desc === "DATABASE");
  const name = db?.tag ?? enc.encode(fileDatabase);
  const display = new TextDecoder("utf-8", { fatal: false }).decode(name);
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
    display,
    createDefn: db?.defn ?? undefined,
    owner: db?.owner ?? undefined,
    properties,
  };
}

export interface SafeRecreate {
  opts: ExportOptions;
  /** The database named by the file, used when the archive has no DATABASE entry. */
  fileDatabase: string;
  /** Restores the archive stream into an existing, empty database (pg_restore without -C). */
  restoreInto: (database: string, input: ReadableStream<Uint8Array>) => Promise<void>;
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
  let read;
  try {
    read = await readArchiveToc(input);
  } catch (e) {
    const message = (e as Error).message;
    // Only a format this reader does not know is a reason to fall back: a
    // damaged file would fail pg_restore -C too, after it dropped the target.
    if (!/not one this reader knows/.test(message)) throw e;
    throw new Error(
      `${message}; to restore it with pg_restore -C (dropping the database first), set atomic=false`,
      { cause: e },
    );
  }
  const { toc, stream } = read;
  const meta = databaseMeta(toc, spec.fileDatabase);
  if (ALWAYS_PRESENT.includes(meta.display)) {
    await stream.cancel();
    throw new Error(
      `the archive holds database ${
        JSON.stringify(meta.display)
      }, which is never dropped: restore it with clean=true`,
    );
  }
  const sql = new SqlRunner(spec.opts);
  const names = workNames(meta.display);
  const head = enc.encode(RAW_BYTES);
  const kept = `${JSON.stringify(meta.display)} was left as it was`;

  try {
    const create = meta.createDefn
      ? renamedCreateDatabase(meta.createDefn, names.temporary)
      : enc.encode(`CREATE DATABASE ${asText(ident(names.temporary))} TEMPLATE template0;\n`);
    await sql.run(concat([head, create]), `creating ${names.temporary}`);
  } catch (e) {
    await stream.cancel().catch(() => {});
    throw e;
  }
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
    // The swap and the drop of the replaced copy run in one psql session (one
    // process and connection fewer); a line printed between them tells which
    // of the two a failure was.
    let swapped = false;
    try {
      await sql.run(
        concat([
          swapScript(head, meta, names, spec.opts.noOwner),
          `\\echo ${SWAPPED}\n`,
          dropScript(names.old),
        ]),
        "swapping databases",
        (line) => {
          if (line === SWAPPED) swapped = true;
        },
      );
    } catch (e) {
      if (!swapped) {
        throw new Error(
          `the restored copy ${names.temporary} could not replace ${
            JSON.stringify(meta.display)
          }; ${kept}: ${(e as Error).message}`,
          { cause: e },
        );
      }
      // The restore itself succeeded; the replaced copy only takes disk.
      logError(
        `${meta.display} was restored, but its previous copy ${names.old} could not be dropped: ${
          (e as Error).message
        }`,
      );
    }
  } catch (e) {
    await sql.run(dropScript(names.temporary), `dropping ${names.temporary}`).catch((d) => {
      logError(
        `could not drop the temporary database ${names.temporary}: ${(d as Error).message}`,
      );
    });
    throw e;
  }
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
function swapScript(
  head: Uint8Array,
  meta: DatabaseMeta,
  names: { temporary: string; old: string },
  noOwner: boolean,
): Uint8Array {
  const parts: (Uint8Array | string)[] = [
    head,
    "SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = ",
    literal(meta.name),
    ") AS plakar_target_exists \\gset\n",
    "SELECT count(pg_catalog.pg_terminate_backend(pid)) AS n FROM pg_catalog.pg_stat_activity WHERE datname = ",
    literal(meta.name),
    " AND pid <> pg_catalog.pg_backend_pid() \\gset plakar_ended_\n",
    "BEGIN;\n",
    "\\if :plakar_target_exists\n",
    "ALTER DATABASE ",
    ident(meta.name),
    " RENAME TO ",
    ident(names.old),
    ";\n",
    "\\endif\n",
    "ALTER DATABASE ",
    ident(names.temporary),
    " RENAME TO ",
    ident(meta.name),
    ";\n",
  ];
  if (meta.owner && meta.owner.length > 0 && !noOwner) {
    parts.push("ALTER DATABASE ", ident(meta.name), " OWNER TO ", ident(meta.owner), ";\n");
  }
  for (const p of meta.properties) parts.push(p, "\n");
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
  constructor(readonly opts: ExportOptions) {}

  async run(
    script: Uint8Array,
    what: string,
    onOutputLine?: (line: string) => void,
  ): Promise<void> {
    const opts = this.opts;
    await toolWithInput(
      {
        bin: toolPath(opts.pgBinDir, "psql"),
        args: [
          ...connArgs(opts.conn),
          "-X",
          "-q",
          "-v",
          "ON_ERROR_STOP=1",
          "-d",
          dbnameArg("postgres"),
        ],
        env: withRole(await toolEnv(opts.conn), opts.role),
        what: `(${what})`,
        secrets: [opts.conn.password],
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
