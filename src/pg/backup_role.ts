// What the backup role is, for the warning printed when it cannot read
// pg_authid (so role passwords stay out of the globals dump): an ordinary
// role (a database owner backing up its own database) and a managed
// service's restricted administrator (RDS's rds_superuser and the like) call
// for different remedies, and the warning must not call the first a superuser.

// @ts-types="@types/pg"
import type pg from "pg";

/** Administrator roles of managed services that stand in for a superuser. */
export const MANAGED_ADMIN_ROLES: Readonly<Record<string, string>> = {
  rds_superuser: "Amazon RDS or Aurora",
  cloudsqlsuperuser: "Google Cloud SQL",
  azure_pg_admin: "Azure Database for PostgreSQL",
};

/** The backup role as the server sees it. */
export interface BackupRole {
  name: string;
  superuser: boolean;
  /** The managed-service administrator roles it is a member of. */
  managedAdmin: string[];
}

/** Asks the server who the connected role is; undefined when it cannot be told. */
export async function describeBackupRole(client: pg.Client): Promise<BackupRole | undefined> {
  try {
    const r = await client.query<{ name: string; superuser: boolean; admin: string[] | null }>(
      `SELECT current_user AS name,
              r.rolsuper AS superuser,
              ARRAY(SELECT a.rolname::text FROM pg_roles a
                     WHERE a.rolname = ANY($1::text[])
                       AND pg_has_role(current_user, a.oid, 'MEMBER')
                     ORDER BY a.rolname) AS admin
         FROM pg_roles r WHERE r.rolname = current_user`,
      [Object.keys(MANAGED_ADMIN_ROLES)],
    );
    const row = r.rows[0];
    if (!row) return undefined;
    return { name: row.name, superuser: row.superuser, managedAdmin: row.admin ?? [] };
  } catch {
    return undefined;
  }
}

/** The one-line warning for a backup role that cannot read pg_authid. */
export function rolePasswordsWarning(role: BackupRole | undefined): string {
  const effect =
    "role passwords are left out of /00000-globals.sql; restored roles will have no password";
  if (!role) return `the backup role cannot read pg_authid: ${effect}`;
  const who = `the backup role ${JSON.stringify(role.name)}`;
  if (role.managedAdmin.length > 0) {
    const admin = role.managedAdmin[0];
    return `${who} is a restricted superuser (member of ${admin}, as on ${
      MANAGED_ADMIN_ROLES[admin]
    }) and cannot read pg_authid: ${effect}`;
  }
  if (!role.superuser) {
    return `${who} is not a superuser (cannot read pg_authid): ${effect} (back up as a superuser to keep them)`;
  }
  return `${who} cannot read pg_authid: ${effect}`;
}
