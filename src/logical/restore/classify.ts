// What a snapshot file is, decided by content first and name second, so
// snapshots made by either integration or by hand (plakar's pg_dump guide)
// restore alike.

/** What a snapshot file is, decided from its first bytes and its name. */
export type FileKind =
  | { kind: "custom" } // pg_dump -Fc
  | { kind: "globals" } // pg_dumpall --globals-only
  | { kind: "cluster" } // pg_dumpall (every database)
  | { kind: "sql" } // pg_dump -Fp (one database)
  | { kind: "manifest" }
  | { kind: "unknown" };

const MAGIC_CUSTOM = [0x50, 0x47, 0x44, 0x4d, 0x50]; // "PGDMP"

/** Classifies a snapshot file by content first, name second. */
export function classify(pathname: string, head: Uint8Array): FileKind {
  const base = pathname.slice(pathname.lastIndexOf("/") + 1);
  if (base === "manifest.json") return { kind: "manifest" };
  if (MAGIC_CUSTOM.every((b, i) => head[i] === b)) return { kind: "custom" };
  const text = new TextDecoder("utf-8", { fatal: false }).decode(head);
  // deno-lint-ignore no-control-regex
  const binary = /[\x00-\x08\x0e-\x1a]/.test(text);
  if (binary) return { kind: "unknown" };
  const isSqlName = /\.sql$/i.test(base);
  const clusterHeader = /PostgreSQL database cluster dump/.test(text);
  const dbHeader = /PostgreSQL database dump/.test(text);
  if (/(^|[-_.])globals\.sql$/i.test(base)) return { kind: "globals" };
  if (clusterHeader) return { kind: "cluster" };
  if (isSqlName || dbHeader) return { kind: "sql" };
  return { kind: "unknown" };
}
