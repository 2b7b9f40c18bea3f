// Database names in snapshot paths. The layout is the reference's
// (/00000-globals.sql, /NNNNN-<db>.dump), so a name goes into the file name as
// is, except the characters that cannot stand in a path component or would be
// ambiguous (`/`, `%`, control characters): those are percent-encoded and
// decoded on restore.

/** Encodes a database name for a snapshot file name. */
export function encodeDbName(name: string): string {
  return name.replace(
    // deno-lint-ignore no-control-regex
    /[%/\x00-\x1f\x7f]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0"),
  );
}

/** Decodes a name written by encodeDbName (malformed escapes are kept literally). */
export function decodeDbName(encoded: string): string {
  return encoded.replace(/%([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
}

/** The dump path of the n-th database (1-based). */
export function dumpPath(index: number, database: string): string {
  return `/${String(index).padStart(5, "0")}-${encodeDbName(database)}.dump`;
}

export const GLOBALS_PATH = "/00000-globals.sql";
export const MANIFEST_PATH = "/manifest.json";

/**
 * The database a snapshot file restores into, from its name: "/00001-app.dump"
 * and "/app.dump" both give "app" (the numbered prefix is digits then "-").
 */
export function databaseFromPath(pathname: string): string {
  const base = pathname.slice(pathname.lastIndexOf("/") + 1);
  const stem = base.replace(/\.(dump|sql|tar|backup|pgdump)$/i, "");
  const m = /^\d+-(.*)$/s.exec(stem);
  return decodeDbName(m ? m[1] : stem);
}
