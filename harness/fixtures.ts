// A source cluster with something worth backing up (several databases, one
// with an awkward name, roles with passwords, memberships, grants and
// ownership), and the comparisons that prove a restore reproduced it.

// @ts-types="@types/pg"
import pg from "pg";
import type { Cluster } from "./cluster.ts";

export const AWKWARD_DB = `we"ird-db 名前 %41/x=y`;

/** Creates an application database with two tables owned by `owner`. */
export async function makeAppDb(
  c: Cluster,
  db: string,
  owner = "app_owner",
  rows = 100,
): Promise<void> {
  await c.query(`CREATE DATABASE ${ident(db)} OWNER ${ident(owner)}`);
  await c.psql(
    `SET ROLE ${ident(owner)};
     CREATE SCHEMA sales;
     CREATE TABLE sales.customers (id int PRIMARY KEY, name text NOT NULL, note text);
     CREATE TABLE public.items (id serial PRIMARY KEY, label text, payload bytea);
     INSERT INTO sales.customers SELECT g, 'customer ' || g, repeat('x', g % 7) FROM generate_series(1, ${rows}) g;
     INSERT INTO public.items (label, payload) SELECT 'item-' || g || ' ${
      db.replace(/'/g, "''")
    }', decode(md5(g::text), 'hex') FROM generate_series(1, ${rows}) g;
     RESET ROLE;
     GRANT SELECT ON sales.customers TO app_reader;
     GRANT USAGE ON SCHEMA sales TO app_reader;`,
    db,
  );
}

/** Roles used by the fixture: an owner with a password, a reader, a group. */
export async function makeRoles(c: Cluster): Promise<void> {
  await c.psql(
    `CREATE ROLE app_group NOLOGIN;
     CREATE ROLE app_owner LOGIN PASSWORD 'owner-pass-123' CREATEDB;
     CREATE ROLE app_reader LOGIN PASSWORD 'reader-pass-456' CONNECTION LIMIT 5 VALID UNTIL '2099-01-01';
     GRANT app_group TO app_reader;`,
  );
}

/** Three databases, one with an awkward name. */
export async function makeSource(c: Cluster): Promise<string[]> {
  await makeRoles(c);
  const dbs = ["app", "billing", AWKWARD_DB];
  for (const db of dbs) await makeAppDb(c, db);
  return dbs;
}

export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Everything a restore must reproduce for one database, as comparable rows. */
export async function snapshotDb(c: Cluster, db: string): Promise<unknown> {
  const tables = await c.query(
    `SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner) AS owner, c.relacl::text AS acl
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r','S','v','m','p') AND n.nspname NOT IN ('pg_catalog','information_schema')
        AND n.nspname NOT LIKE 'pg_toast%'
      ORDER BY 1, 2`,
    db,
  );
  const contents = await c.query(
    `SELECT (SELECT string_agg(md5(t::text), ',' ORDER BY id) FROM sales.customers t) AS customers,
            (SELECT string_agg(md5(t::text), ',' ORDER BY id) FROM public.items t) AS items`,
    db,
  );
  const dbOwner = await c.query(
    `SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1`,
    "postgres",
    [db],
  );
  return { tables, contents, dbOwner };
}

/** Roles, attributes, memberships and password hashes' presence. */
export async function snapshotRoles(c: Cluster): Promise<unknown> {
  return await c.query(
    `SELECT r.rolname, r.rolsuper, r.rolcanlogin, r.rolcreatedb, r.rolconnlimit, r.rolvaliduntil::text,
            (a.rolpassword IS NOT NULL) AS has_password,
            ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
                   WHERE m.member = r.oid ORDER BY 1) AS member_of
       FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid
      WHERE r.rolname NOT LIKE 'pg\\_%'
      ORDER BY 1`,
  );
}

/** A password-verifying login: proves the role's password hash was restored. */
export async function canLogin(c: Cluster, user: string, password: string): Promise<boolean> {
  const client = new pg.Client({
    host: c.host,
    port: c.port,
    user,
    password,
    database: "postgres",
  });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}
