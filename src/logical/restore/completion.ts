// Guards a pg_dump / pg_dumpall script against truncation: such scripts end
// with a completion line, and a script that lacks it must fail and, where it
// can run in one transaction, commit nothing.

import { concatBytes } from "../../proc/bytes.ts";

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
const NON_TRANSACTIONAL: readonly string[] = [
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
  const guard = new CompletionScanner(completion);
  const transform = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      const out = guard.push(chunk);
      if (out) controller.enqueue(out);
    },
    flush(controller) {
      for (const part of guard.end()) controller.enqueue(part);
    },
  });
  return { transform, result: () => guard.result() };
}

const dec = new TextDecoder("utf-8", { fatal: false });
const enc = new TextEncoder();

/** completionGuard's state, a line at a time across chunks. */
class CompletionScanner {
  readonly #completion: Completion;
  #carry = new Uint8Array(0); // an unterminated line start shorter than HEAD
  #inLongLine = false; // inside a line whose head was already decided
  #copyCandidate = false; // that long line began with "COPY "
  #tail = ""; // last bytes of that long line, for " FROM stdin;"
  #inCopy = false;
  #started = false;
  #atomic = true;
  #breaker: string | undefined;
  #seen = false;
  #ended = false;

  constructor(completion: Completion) {
    this.#completion = completion;
  }

  result(): GuardResult {
    return {
      ended: this.#ended,
      complete: this.#ended && this.#seen && !this.#inCopy,
      atomic: this.#atomic,
      breaker: this.#breaker,
    };
  }

  /** The bytes to pass on for `chunk` (undefined: none yet). */
  push(chunk: Uint8Array): Uint8Array | undefined {
    const out: Uint8Array[] = [];
    if (!this.#started) {
      this.#started = true;
      out.push(TX_BEGIN);
    }
    const data = this.#carry.length > 0 ? concatBytes([this.#carry, chunk]) : chunk;
    this.#carry = new Uint8Array(0);
    let span = 0; // start of the bytes not yet put out
    let pos = 0;
    while (pos < data.length) {
      if (this.#inLongLine) {
        pos = this.#skipLongLine(data, pos);
        continue;
      }
      const nl = data.indexOf(0x0a, pos);
      const end = nl < 0 ? data.length : nl;
      if (end - pos >= HEAD) {
        const { before } = this.#decide(data.subarray(pos, pos + HEAD), false);
        if (before) {
          out.push(data.subarray(span, pos), before);
          span = pos;
        }
        this.#inLongLine = true;
        if (this.#copyCandidate) {
          this.#tail = dec.decode(data.subarray(pos + HEAD - 32, pos + HEAD));
        }
        pos += HEAD;
        continue;
      }
      if (nl < 0) {
        // A line start cut by the chunk: decide it with the next chunk.
        out.push(data.subarray(span, pos));
        this.#carry = data.slice(pos);
        span = data.length;
        break;
      }
      const { before, replace } = this.#decide(data.subarray(pos, nl), true);
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
    if (parts.length === 1) return parts[0];
    if (parts.length > 1) return concatBytes(parts);
    return undefined;
  }

  /** The end of the script: its last line, and the COMMIT when it was complete. */
  end(): Uint8Array[] {
    const out: Uint8Array[] = [];
    if (this.#carry.length > 0) {
      const { before, replace } = this.#decide(this.#carry, true);
      if (before) out.push(before);
      out.push(replace ?? this.#carry);
      this.#carry = new Uint8Array(0);
    }
    if (this.#inLongLine) this.#seen = false;
    this.#ended = true;
    if (this.#seen && !this.#inCopy && this.#atomic && this.#started) out.push(TX_COMMIT_END);
    return out;
  }

  /**
   * The rest of a line whose head was decided: passed through, only its last
   * bytes kept when it may be `COPY ... FROM stdin;`. Returns where the scan
   * goes on (data.length when the line goes on in the next chunk).
   */
  #skipLongLine(data: Uint8Array, pos: number): number {
    const nl = data.indexOf(0x0a, pos);
    const end = nl < 0 ? data.length : nl;
    if (this.#copyCandidate) {
      this.#tail = (this.#tail + dec.decode(data.subarray(Math.max(pos, end - 32), end))).slice(
        -32,
      );
    }
    if (nl < 0) return data.length;
    if (this.#copyCandidate && this.#tail.replace(/\r$/, "").endsWith(COPY_FROM_STDIN)) {
      this.#inCopy = true;
    }
    this.#inLongLine = false;
    this.#copyCandidate = false;
    this.#tail = "";
    return nl + 1;
  }

  /**
   * Decides a line from its head (the whole line when `whole`). Returns what
   * to put before the line and what replaces it (undefined: keep).
   */
  #decide(head: Uint8Array, whole: boolean): { before?: Uint8Array; replace?: Uint8Array } {
    if (this.#inCopy) {
      // Data rows: only their end marker `\.` matters (bytes, no decoding).
      this.#seen = false;
      if (whole && isCopyEnd(head)) this.#inCopy = false;
      return {};
    }
    const text = dec.decode(head).replace(/\r$/, "");
    const trimmed = whole ? text.trim() : text;
    if (whole && trimmed === this.#completion.line) this.#seen = true;
    else if (
      !(whole && (trimmed === "" || trimmed === "--")) && !text.startsWith("\\unrestrict ")
    ) {
      this.#seen = false;
    }
    if (text.startsWith("COPY ")) {
      if (whole) this.#inCopy = text.endsWith(COPY_FROM_STDIN);
      else this.#copyCandidate = true;
    }
    if (!this.#atomic) return {};
    if (whole && (trimmed === "BEGIN;" || trimmed === "COMMIT;")) {
      return { replace: enc.encode(`-- ${trimmed} (the restore runs in one transaction)`) };
    }
    const breaks = NON_TRANSACTIONAL.find((p) => text.startsWith(p));
    if (breaks !== undefined) {
      this.#atomic = false;
      this.#breaker = breaks.trim();
      return { before: TX_COMMIT };
    }
    return {};
  }
}

/** `\.` (optionally with a carriage return): the end of COPY data. */
function isCopyEnd(line: Uint8Array): boolean {
  return line[0] === 0x5c && line[1] === 0x2e &&
    (line.length === 2 || (line.length === 3 && line[2] === 0x0d));
}
