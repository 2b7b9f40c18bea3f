// Preflight checks for `plakar source ping` and `plakar destination ping`, in
// the spirit of `pgbackrest check` and `barman check`: what would make a
// backup or a restore fail is found before one runs. Each finding is one
// line: a problem (the operation would fail) fails the Ping, a warning (it
// would succeed with less than asked, or might fail depending on the
// snapshot) is printed and the Ping succeeds.

import type { ExportOptions, ImportOptions } from "../pg/config.ts";
import { connect, connectExplained, serverVersionNum, withClient } from "../pg/client.ts";
import { ServerError } from "../pg/errors.ts";
import { canReadAuthid, listDatabases, selectDatabases } from "../pg/databases.ts";
import { error as logError, warn } from "../log.ts";
import { type FittedTool, toolFinding as fitFinding } from "../pg/tool_fit.ts";
import { checkSpoolSpace, systemTempDir } from "./restore/spool.ts";

export interface Findings {
  problems: string[];
  warnings: string[];
}

/** Prints the findings, one line each; rejects with the problems when there are any. */
export function report(findings: Findings): void {
  for (const w of findings.warnings) warn(`preflight: ${w}`);
  for (const p of findings.problems) logError(`preflight: ${p}`);
  if (findings.problems.length > 0) {
    throw new ServerError(
      `preflight found ${findings.problems.length} problem(s): ${findings.problems.join("; ")}`,
      { kind: "failed-precondition" },
    );
  }
}

/** How many unreadable tables a finding names before "and N more". */
const NAMED = 3;

/** The client tool against the server's major (the rule: src/pg/tool_fit.ts). */
async function toolFinding(
  tool: FittedTool,
  versionNum: number,
  opts: ImportOptions | ExportOptions,
  f: Findings,
): Promise<void> {
  const { problem, warning } = await fitFinding(tool, versionNum, opts);
  if (problem) f.problems.push(problem);
  if (warning) f.warnings.push(warning);
}

/** Checks a backup's source: tools, role passwords, tables the user cannot dump. */
export async function backupPreflight(opts: ImportOptions): Promise<Findings> {
  const f: Findings = { problems: [], warnings: [] };
  const maintenance = opts.database ?? "postgres";
  const databases = await withClient(opts.conn, maintenance, async (client) => {
    await toolFinding("pg_dump", await serverVersionNum(client), opts, f);
    const listed = selectDatabases(
      await listDatabases(client),
      opts.database,
      opts.excludeDatabases,
    ).dump;
    if (opts.database !== undefined && listed.length === 0) {
      f.problems.push(
        `database ${JSON.stringify(opts.database)} does not exist or does not allow connections`,
      );
    }
    for (const d of listed.filter((d) => !d.canConnect)) {
      f.problems.push(
        `no CONNECT privilege on database ${
          JSON.stringify(d.name)
        }: its pg_dump would fail (exclude it with exclude_databases=)`,
      );
    }
    if (!opts.dataOnly && !await canReadAuthid(client)) {
      f.warnings.push(
        "pg_authid is not readable (not a superuser): role passwords will not be in the backup (pg_dumpall --no-role-passwords)",
      );
    }
    return listed.filter((d) => d.canConnect).map((d) => d.name);
  });
  for (const db of databases) {
    let c;
    try {
      c = await connect(opts.conn, db);
    } catch (e) {
      f.problems.push(`cannot connect to database ${JSON.stringify(db)}: ${(e as Error).message}`);
      continue;
    }
    try {
      const r = await c.query<{ name: string; why: string }>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS name,
                CASE WHEN NOT has_schema_privilege(n.oid, 'USAGE') THEN 'no USAGE on its schema'
                     WHEN NOT has_table_privilege(c.oid, 'SELECT') THEN 'no SELECT'
                     ELSE 'row-level security applies' END AS why
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'm', 'S')
            AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
            AND (NOT has_schema_privilege(n.oid, 'USAGE')
                 OR NOT has_table_privilege(c.oid, 'SELECT')
                 OR (c.relrowsecurity AND NOT pg_has_role(c.relowner, 'USAGE')
                     AND NOT (SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user)))
          ORDER BY 1`,
      );
      if (r.rows.length > 0) {
        const named = r.rows.slice(0, NAMED).map((t) => `${t.name} (${t.why})`).join(", ");
        const more = r.rows.length > NAMED ? ` and ${r.rows.length - NAMED} more` : "";
        f.problems.push(`database ${JSON.stringify(db)}: pg_dump cannot read ${named}${more}`);
      }
    } finally {
      await c.end().catch(() => {});
    }
  }
  return f;
}

/** Reads the rows of a catalog query (an npm:pg client's shape, kept loose for the callers' clients). */
interface Queryable {
  query<R>(sql: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

/**
 * Work databases left by a recreate that was killed before it could clean up
 * (the plugin SIGKILLed, the machine lost): `<name>__plakar_restore_<hex>`
 * (a partial copy) and `<name>__plakar_old_<hex>` (a replaced copy whose
 * drop did not run). Those with a session on them are not listed: a restore
 * may be using them right now.
 */
export async function leftoverWorkDatabases(client: Queryable): Promise<string[]> {
  const r = await client.query<{ datname: string; size: string }>(
    `SELECT d.datname, pg_size_pretty(pg_database_size(d.oid)) AS size
       FROM pg_database d
      WHERE d.datname ~ '__plakar_(restore|old)_[0-9a-f]{8}$'
        AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.datname = d.datname)
      ORDER BY 1`,
  );
  return r.rows.map((row) => `${row.datname} (${row.size})`);
}

/** The one-line warning for leftover work databases, or undefined when there are none. */
export function leftoverWarning(names: string[]): string | undefined {
  if (names.length === 0) return undefined;
  return `work database(s) left by an interrupted recreate=true restore: ${
    names.join(", ")
  }; nothing uses them: drop them (DROP DATABASE) to free their disk`;
}

/** The databases a recreate would replace, when the options name them (else: any). */
function recreateTargets(opts: ExportOptions): string[] | undefined {
  if (opts.database !== undefined) return [opts.database];
  return opts.databases.length > 0 ? opts.databases : undefined;
}

/**
 * Databases with sessions other than ours, among `names` (every database
 * but the templates and the maintenance database when undefined), as
 * `"app" (3 sessions)`.
 */
export async function busyDatabases(
  client: Queryable,
  names: string[] | undefined,
): Promise<string[]> {
  const r = await client.query<{ datname: string; n: number }>(
    `SELECT datname, count(*)::int AS n FROM pg_stat_activity
      WHERE pid <> pg_backend_pid() AND datname IS NOT NULL
        AND datname NOT IN ('postgres', 'template0', 'template1')
        AND datname !~ '__plakar_(restore|old)_[0-9a-f]{8}$'
        AND ($1::text[] IS NULL OR datname = ANY ($1::text[]))
      GROUP BY 1 ORDER BY 1`,
    [names ?? null],
  );
  return r.rows.map((row) => `${JSON.stringify(row.datname)} (${row.n} session(s))`);
}

/** The one-line warning for busy databases a recreate would replace, or undefined. */
export function busyWarning(busy: string[]): string | undefined {
  if (busy.length === 0) return undefined;
  return `recreate=true ends the sessions connected to each database it replaces, uncommitted work included; connected now: ${
    busy.join(", ")
  }`;
}

/** Who the restore connects as, and what that role may do. */
interface Me {
  v: string;
  rolsuper: boolean;
  rolcreatedb: boolean;
  rolcreaterole: boolean;
  me: string;
}

/** Checks a restore's target: tools, the right to create databases and roles, the target database. */
export async function restorePreflight(opts: ExportOptions): Promise<Findings> {
  const f: Findings = { problems: [], warnings: [] };
  const client = await connectTarget(opts, f);
  try {
    const r = await client.query<Me>(
      `SELECT current_setting('server_version_num') AS v, rolsuper, rolcreatedb, rolcreaterole,
              current_user AS me
         FROM pg_roles WHERE rolname = current_user`,
    );
    const me = r.rows[0];
    await toolFinding("pg_restore", Number(me.v), opts, f);
    await privilegeFindings(client, opts, me, f);
    await workDatabaseFindings(client, opts, f);
    if (!opts.noGlobals && !me.rolsuper && !me.rolcreaterole) {
      f.warnings.push(
        `${me.me} has neither CREATEROLE nor SUPERUSER: a snapshot's globals (roles) would fail to restore; set no_globals=true to skip them`,
      );
    }
  } finally {
    await client.end().catch(() => {});
  }
  if (opts.jobs > 1) await spoolFinding(opts, f);
  return f;
}

/** Connects to the target database, or, when that is what is missing, to the maintenance one. */
function connectTarget(opts: ExportOptions, f: Findings) {
  return connectExplained(opts.conn, opts.database ?? "postgres").catch(async (e) => {
    if (opts.database === undefined) throw e;
    const c = await connectExplained(opts.conn, "postgres");
    f.problems.push(`target database ${JSON.stringify(opts.database)}: ${(e as Error).message}`);
    return c;
  });
}

/** role= must be a role we can SET ROLE to; recreate=true needs CREATEDB. */
async function privilegeFindings(
  client: Queryable,
  opts: ExportOptions,
  me: Me,
  f: Findings,
): Promise<void> {
  if (opts.role) {
    const ok = await client.query<{ ok: boolean }>(
      `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)
              AND pg_has_role(current_user, $1, 'MEMBER') AS ok`,
      [opts.role],
    );
    if (!ok.rows[0].ok) {
      f.problems.push(
        `role=${opts.role}: ${me.me} cannot SET ROLE to it (no such role, or not a member)`,
      );
    }
  }
  if (opts.recreate && !me.rolsuper && !me.rolcreatedb) {
    f.problems.push(
      `recreate=true creates databases, and ${me.me} has neither CREATEDB nor SUPERUSER`,
    );
  }
}

/** Work databases an interrupted recreate left, and sessions an atomic recreate would end. */
async function workDatabaseFindings(
  client: Queryable,
  opts: ExportOptions,
  f: Findings,
): Promise<void> {
  const leftover = leftoverWarning(await leftoverWorkDatabases(client));
  if (leftover) f.warnings.push(leftover);
  if (opts.recreate && opts.atomic) {
    const busy = busyWarning(await busyDatabases(client, recreateTargets(opts)));
    if (busy) f.warnings.push(busy);
  }
}

/** jobs=N spools each archive to spool_dir: it must be a directory with room. */
async function spoolFinding(opts: ExportOptions, f: Findings): Promise<void> {
  try {
    const dir = opts.spoolDir ?? systemTempDir();
    const st = await Deno.stat(dir);
    if (!st.isDirectory) throw new Error(`${dir} is not a directory`);
    await checkSpoolSpace(dir, 0);
  } catch (e) {
    f.problems.push(`jobs=${opts.jobs} spools to spool_dir: ${(e as Error).message}`);
  }
}
