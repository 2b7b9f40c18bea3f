// Byte-stream helpers for restore: look at a file's first bytes without
// losing them; make the role-creation statements of a pg_dumpall script
// idempotent, so that restoring globals into a cluster where a role already
// exists (the superuser, always) is not an error, even with exit_on_error,
// and leave the role the restore connects as alone (its password and
// attributes from the source would lock the restore out of the target); and
// guard a pg_dump / pg_dumpall script against truncation: such scripts end
// with a completion line, and a script that lacks it must fail and, where it
// can run in one transaction, commit nothing.

import { concatBytes } from "../proc/bytes.ts";

/** Reads at least `n` bytes (or to EOF) and returns them with a stream that still yields everything. */
export async function peek(
  stream: ReadableStream<Uint8Array>,
  n: number,
): Promise<{ head: Uint8Array; stream: ReadableStream<Uint8Array> }> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let ended = false;
  while (size < n) {
    const { value, done } = await reader.read();
    if (done) {
      ended = true;
      break;
    }
    chunks.push(value);
    size += value.length;
  }
  const head = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    head.set(c, off);
    off += c.length;
  }
  let replayed = false;
  const rest = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!replayed) {
        replayed = true;
        if (size > 0) {
          controller.enqueue(head);
          return;
        }
      }
      if (ended) {
        controller.close();
        return;
      }
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason) {
      await reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { head, stream: rest };
}

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

const NEWLINE = new Uint8Array([0x0a]);

/** The first lines pg_dump and pg_dumpall write, and the line each ends its script with. */
const SCRIPT_KINDS = [
  { header: "--\n-- PostgreSQL database cluster dump\n", tool: "pg_dumpall" },
  { header: "--\n-- PostgreSQL database dump\n", tool: "pg_dump" },
] as const;

/** What a tool-made script must end with; see expectedCompletion(). */
export interface Completion {
  /** The tool that wrote the script. */
  tool: "pg_dump" | "pg_dumpall";
  /** Its last significant line, e.g. `-- PostgreSQL database dump complete`. */
  line: string;
}

/**
 * The completion line a script must end with, decided by its header: scripts
 * written by pg_dump or pg_dumpall begin with `--` and their name line and end
 * with `-- PostgreSQL database [cluster ]dump complete`. Undefined for a script
 * without that header (hand-written SQL), which is not checked.
 */
export function expectedCompletion(head: Uint8Array): Completion | undefined {
  const text = new TextDecoder().decode(head.subarray(0, 64)).replace(/\r\n/g, "\n");
  for (const k of SCRIPT_KINDS) {
    if (text.startsWith(k.header)) {
      return { tool: k.tool, line: `${k.header.slice(3, -1)} complete` };
    }
  }
  return undefined;
}

/** How a guarded script ended. */
export interface GuardResult {
  /** The completion line was the script's last significant line. */
  complete: boolean;
  /**
   * The whole script ran in the one transaction the guard opened: when it is
   * not complete, nothing of it was committed. False once a statement that
   * cannot run in a transaction (CREATE DATABASE, \connect, ...) ended it.
   */
  atomic: boolean;
  /** The statement that ended the transaction early, for messages. */
  breaker?: string;
  /** The whole input went through (false when psql stopped reading first). */
  ended: boolean;
}

/** Longest line start the guard looks at (the rest of a line passes through). */
const HEAD = 128;
/** Statements that cannot run inside a transaction block, as the tools write them. */
const NON_TRANSACTIONAL = [
  "CREATE DATABASE ",
  "DROP DATABASE ",
  "CREATE TABLESPACE ",
  "DROP TABLESPACE ",
  "\\connect ",
  "\\c ",
];
const COPY_FROM_STDIN = " FROM stdin;";
const TX_BEGIN = new TextEncoder().encode("BEGIN;\n");
const TX_COMMIT = new TextEncoder().encode("COMMIT;\n");
const TX_COMMIT_END = new TextEncoder().encode("\nCOMMIT;\n");

/**
 * Guards a pg_dump or pg_dumpall script on its way to psql. The script runs
 * in one transaction that the guard opens before the first byte and commits
 * after the last only when the script ended with `completion.line`: a
 * truncated script leaves the transaction open, and psql's end of input rolls
 * it back. The script's own `BEGIN;` / `COMMIT;` lines (around large objects)
 * become comments inside that transaction. A statement that cannot run in a
 * transaction (CREATE DATABASE, CREATE TABLESPACE, \connect) commits it just
 * before and the rest runs as written (`result().atomic` is then false).
 *
 * Bytes pass through as they come: at most the first HEAD bytes of a line
 * are held while it is read, and COPY data is only scanned for its `\.` end,
 * so memory does not depend on the script's size or its longest line.
 */
export function completionGuard(
  completion: Completion,
): { transform: TransformStream<Uint8Array, Uint8Array>; result: () => GuardResult } {
  const dec = new TextDecoder("utf-8", { fatal: false });
  const enc = new TextEncoder();
  let carry = new Uint8Array(0); // an unterminated line start shorter than HEAD
  let inLongLine = false; // inside a line whose head was already decided
  let copyCandidate = false; // that long line began with "COPY "
  let tail = ""; // last bytes of that long line, for " FROM stdin;"
  let inCopy = false;
  let started = false;
  let atomic = true;
  let breaker: string | undefined;
  let seen = false;
  let ended = false;

  // Decides a line from its head (the whole line when `whole`). Returns what
  // to put before the line and what replaces it (undefined: keep).
  const decide = (
    head: Uint8Array,
    whole: boolean,
  ): { before?: Uint8Array; replace?: Uint8Array } => {
    if (inCopy) {
      // Data rows: only their end marker `\.` matters (bytes, no decoding).
      seen = false;
      if (whole && isCopyEnd(head)) inCopy = false;
      return {};
    }
    const text = dec.decode(head).replace(/\r$/, "");
    const trimmed = whole ? text.trim() : text;
    if (whole && trimmed === completion.line) seen = true;
    else if (
      !(whole && (trimmed === "" || trimmed === "--")) && !text.startsWith("\\unrestrict ")
    ) {
      seen = false;
    }
    if (text.startsWith("COPY ")) {
      if (whole) inCopy = text.endsWith(COPY_FROM_STDIN);
      else copyCandidate = true;
    }
    if (!atomic) return {};
    if (whole && (trimmed === "BEGIN;" || trimmed === "COMMIT;")) {
      return { replace: enc.encode(`-- ${trimmed} (the restore runs in one transaction)`) };
    }
    const breaks = NON_TRANSACTIONAL.find((p) => text.startsWith(p));
    if (breaks !== undefined) {
      atomic = false;
      breaker = breaks.trim();
      return { before: TX_COMMIT };
    }
    return {};
  };

  const transform = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      const out: Uint8Array[] = [];
      if (!started) {
        started = true;
        out.push(TX_BEGIN);
      }
      const data = carry.length > 0 ? concatBytes([carry, chunk]) : chunk;
      carry = new Uint8Array(0);
      let span = 0; // start of the bytes not yet put out
      let pos = 0;
      while (pos < data.length) {
        if (inLongLine) {
          const nl = data.indexOf(0x0a, pos);
          const end = nl < 0 ? data.length : nl;
          if (copyCandidate) {
            tail = (tail + dec.decode(data.subarray(Math.max(pos, end - 32), end))).slice(-32);
          }
          if (nl < 0) break;
          if (copyCandidate && tail.replace(/\r$/, "").endsWith(COPY_FROM_STDIN)) inCopy = true;
          inLongLine = false;
          copyCandidate = false;
          tail = "";
          pos = nl + 1;
          continue;
        }
        const nl = data.indexOf(0x0a, pos);
        const end = nl < 0 ? data.length : nl;
        if (end - pos >= HEAD) {
          const { before } = decide(data.subarray(pos, pos + HEAD), false);
          if (before) {
            out.push(data.subarray(span, pos), before);
            span = pos;
          }
          inLongLine = true;
          if (copyCandidate) tail = dec.decode(data.subarray(pos + HEAD - 32, pos + HEAD));
          pos += HEAD;
          continue;
        }
        if (nl < 0) {
          // A line start cut by the chunk: decide it with the next chunk.
          out.push(data.subarray(span, pos));
          carry = data.slice(pos);
          span = data.length;
          break;
        }
        const { before, replace } = decide(data.subarray(pos, nl), true);
        if (before || replace) {
          out.push(data.subarray(span, pos));
          if (before) out.push(before);
          if (replace) {
            out.push(replace);
            span = nl;
          } else {
            span = pos;
          }
        }
        pos = nl + 1;
      }
      if (span < data.length) out.push(data.subarray(span));
      const parts = out.filter((p) => p.length > 0);
      if (parts.length === 1) controller.enqueue(parts[0]);
      else if (parts.length > 1) controller.enqueue(concatBytes(parts));
    },
    flush(controller) {
      if (carry.length > 0) {
        const { before, replace } = decide(carry, true);
        if (before) controller.enqueue(before);
        controller.enqueue(replace ?? carry);
        carry = new Uint8Array(0);
      }
      if (inLongLine) seen = false;
      ended = true;
      if (seen && !inCopy && atomic && started) controller.enqueue(TX_COMMIT_END);
    },
  });
  return {
    transform,
    result: () => ({ ended, complete: ended && seen && !inCopy, atomic, breaker }),
  };
}

/** `\.` (optionally with a carriage return): the end of COPY data. */
function isCopyEnd(line: Uint8Array): boolean {
  return line[0] === 0x5c && line[1] === 0x2e &&
    (line.length === 2 || (line.length === 3 && line[2] === 0x0d));
}
