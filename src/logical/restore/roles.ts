// Makes the role-creation statements of a pg_dumpall script idempotent, so
// that restoring globals into a cluster where a role already exists (the
// superuser, always) is not an error, even with exit_on_error, and leaves the
// role the restore connects as alone (its password and attributes from the
// source would lock the restore out of the target).

import { concatBytes } from "../../proc/bytes.ts";

const NEWLINE = new Uint8Array([0x0a]);

const IDENT = String.raw`("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const CREATE_ROLE = new RegExp(`^CREATE ROLE ${IDENT};$`);
const ALTER_ROLE_WITH = new RegExp(`^ALTER ROLE ${IDENT} WITH `);
const TAG = "$plakar_role$";

/** Rewrites one line: `CREATE ROLE x;` becomes a block that skips an existing role. */
export function idempotentRoleLine(line: string): string {
  const m = CREATE_ROLE.exec(line);
  if (!m || line.includes(TAG)) return line;
  return `DO ${TAG} BEGIN CREATE ROLE ${
    m[1]
  }; EXCEPTION WHEN duplicate_object THEN NULL; END ${TAG};`;
}

/** The role name an identifier as pg_dumpall writes it stands for (quotes removed). */
export function unquoteIdent(ident: string): string {
  return ident.startsWith('"') ? ident.slice(1, -1).replaceAll('""', '"') : ident;
}

/**
 * When `line` is pg_dumpall's `ALTER ROLE <role> WITH ...` for `keep`, returns
 * the comment that replaces it (the password and the LOGIN, SUPERUSER, VALID
 * UNTIL... attributes of the connected role are left as they are); otherwise
 * undefined.
 */
export function keptRoleLine(line: string, keep: string): string | undefined {
  const m = ALTER_ROLE_WITH.exec(line);
  if (!m || unquoteIdent(m[1]) !== keep) return undefined;
  return `-- ALTER ROLE ${m[1]} WITH ... skipped: the restore is connected as this role`;
}

export interface RoleOptions {
  /** The role the restore is connected as: its `ALTER ROLE ... WITH` is skipped. */
  keep?: string;
  /** Called once when that statement was skipped. */
  onKept?: (role: string) => void;
}

/**
 * A transform applying idempotentRoleLine (and keptRoleLine) to the roles
 * section of a pg_dumpall script. Lines are cut at newline bytes, so
 * multi-byte characters are never split. From the first `\connect` on
 * (database contents in a full cluster script) bytes pass through untouched.
 */
export function idempotentRoles(
  options: RoleOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  const dec = new TextDecoder();
  const enc = new TextEncoder();
  let partial = new Uint8Array(0);
  let passthrough = false;
  const rewrite = (line: Uint8Array): Uint8Array => {
    // Only lines starting with "CREATE ROLE" or "ALTER ROLE" (ASCII) can change.
    if ((line[0] !== 0x43 && line[0] !== 0x41) || line.length > 4096) return line;
    const text = dec.decode(line);
    if (options.keep !== undefined && line[0] === 0x41) {
      const kept = keptRoleLine(text.replace(/\r$/, ""), options.keep);
      if (kept !== undefined) {
        options.onKept?.(options.keep);
        return enc.encode(kept);
      }
      return line;
    }
    const out = idempotentRoleLine(text);
    return out === text ? line : enc.encode(out);
  };
  return new TransformStream({
    transform(chunk, controller) {
      if (passthrough) {
        controller.enqueue(chunk);
        return;
      }
      const data = partial.length ? concatBytes([partial, chunk]) : chunk;
      let start = 0;
      for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, start)) {
        const line = data.subarray(start, nl);
        if (line[0] === 0x5c && dec.decode(line.subarray(0, 8)) === "\\connect") {
          passthrough = true;
          controller.enqueue(data.subarray(start));
          partial = new Uint8Array(0);
          return;
        }
        controller.enqueue(rewrite(line));
        controller.enqueue(NEWLINE);
        start = nl + 1;
      }
      partial = data.slice(start);
    },
    flush(controller) {
      if (partial.length) controller.enqueue(passthrough ? partial : rewrite(partial));
    },
  });
}
