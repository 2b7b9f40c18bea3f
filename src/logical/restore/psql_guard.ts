// A snapshot is data, never a program. A `.sql` record restored through the
// postgres:// exporter is fed to psql, and psql's backslash meta-commands run
// on the restoring host as the restoring user: `\!` and `\o |cmd` start
// programs, `\i` and `\copy` read and write local files, backticks in any
// meta-command's argument run a shell. Anyone who can write into the store
// would then run commands wherever restores run.
//
// This stream guard follows psql's lexer (psqlscan.l: string literals, E''
// escapes, dollar quotes, quoted identifiers, `--` and nested `/* */`
// comments, the statement end psql sends at, COPY ... FROM stdin data up to
// its `\.` line) to find every meta-command psql would run, and refuses the
// script at the first one a dump does not need, before that line reaches psql.
// What dumps need: pg_dumpall's `\connect DBNAME` between databases (with the
// `\encoding SQL_ASCII` pg_dump writes before an unusual name), and pg_dump's
// own `\restrict KEY` / `\unrestrict KEY` (CVE-2025-8714), which are dropped.
//
// In depth, when psql has a restricted mode (13.22, 14.19, 15.14, 16.10, 17.6,
// 18 and later), the guarded script starts with `\restrict` and a random key
// of ours, and each allowed `\connect` runs between `\unrestrict` and
// `\restrict` with it: whatever this lexer might miss, psql itself refuses.
// Without a restricted mode the guard is alone, and also refuses what psql
// could read differently from it (a string whose end depends on
// standard_conforming_strings, bytes an unsafe client encoding would merge).
//
// Bytes pass through as they come; only a meta-command's own line (at most
// META_LINE_MAX bytes) and a dollar quote's tag are held, so memory does not
// depend on the script's size.

import { PluginError } from "../../errors.ts";

/** The first problem found in a script: psql never got the line it is on. */
export class ScriptRefusedError extends PluginError {
  constructor(
    /** 1-based line of the refused text in the script. */
    readonly line: number,
    /** Why, one line, e.g. `psql meta-command \! is not allowed in a restored script (...)`. */
    readonly detail: string,
    /** The meta-command or variable concerned (`\!`, `:LAST_ERROR_MESSAGE`), when there is one. */
    readonly command?: string,
  ) {
    super("invalid-argument", `line ${line}: ${detail}`);
    this.name = "ScriptRefusedError";
  }
}

export interface ScriptGuardOptions {
  /**
   * psql's restricted-mode key: the output starts with `\restrict KEY` and
   * each allowed meta-command line runs between `\unrestrict KEY` and
   * `\restrict KEY`. Undefined for a psql without `\restrict`: the guard is
   * then alone and also refuses what psql could read differently.
   */
  restrictKey?: string;
  /**
   * Major version of the psql that reads the script, for the lexer rules that
   * changed: 14 counts `BEGIN ... END` of SQL-standard function bodies, 15
   * reads `1end` as one token. @default 18
   */
  psqlMajor?: number;
  /**
   * The script's whole lines `BEGIN;` and `COMMIT;` are folded into a
   * transaction downstream (completionGuard): only other transaction ends
   * count in result().transactionEnd. @default false
   */
  foldsTransactionLines?: boolean;
}

/** What the guard saw so far, for messages about what psql applied. */
export interface ScriptGuardResult {
  /**
   * Statements (ended by `;`) passed on to psql: 0 means psql applied
   * nothing. After a refusal, those of the chunks passed on whole before it
   * (nothing of the chunk holding the refused line is).
   */
  statements: number;
  /** The first statement of the script's own that ends a transaction (COMMIT, ROLLBACK...). */
  transactionEnd?: { line: number; statement: string };
}

/** Longest line of an allowed meta-command (`\connect` with an escaped database name). */
const META_LINE_MAX = 4096;
/** Bytes of a word kept: the longest word looked at is "transaction". */
const WORD_MAX = 16;
/** The words looked at: psql's function-body heuristic's, COPY's, transaction ends'. */
const KEYWORDS: readonly string[] = [
  "create",
  "function",
  "procedure",
  "or",
  "replace",
  "begin",
  "case",
  "end",
  "copy",
  "from",
  "stdin",
  "commit",
  "abort",
  "rollback",
  "prepare",
  "prepared",
  "to",
  "transaction",
];
/** Length and first letter of each, to skip the others without making a string. */
const KEYWORD_SHAPES: ReadonlySet<number> = new Set(
  KEYWORDS.map((w) => (w.length << 8) | w.charCodeAt(0)),
);
/** Longest dollar-quote tag followed (psql has no limit; a longer one is refused). */
const TAG_MAX = 1024;

/** Meta-commands a dump needs psql to run, on a line of their own between statements. */
const RUN: ReadonlySet<string> = new Set(["connect", "c", "encoding"]);
/** pg_dump's own restricted-mode lines: ours already holds, so they are dropped. */
const DROP: ReadonlySet<string> = new Set(["restrict", "unrestrict"]);

const UNQUOTED_DB = String.raw`[A-Za-z0-9_.$\u0080-\u{10FFFF}][A-Za-z0-9_.$\-\u0080-\u{10FFFF}]*`;
const QUOTED_DB = String.raw`"(?:[^"\x00-\x1f]|"")+"`;
/** `\connect db`, `\c "Db"`: one database name, as pg_dump writes a simple one. */
const CONNECT_SIMPLE = new RegExp(
  String.raw`^\\(?:connect|c)[ \t]+(${UNQUOTED_DB}|${QUOTED_DB})[ \t\r]*$`,
  "u",
);
/** `\connect -reuse-previous=on "dbname='we\'ird'"`: pg_dump's form for any other name. */
const CONNECT_DBNAME = /^\\(?:connect|c)[ \t]+-reuse-previous=on[ \t]+"((?:[^"]|"")*)"[ \t\r]*$/;
/** The connection string inside it: the dbname keyword alone (`\\` and `\'` escapes only). */
// deno-lint-ignore no-control-regex
const DBNAME_ONLY = /^dbname='(?:[^'\\\x00-\x1f]|\\[\\'])*'$/;
const ENCODING = /^\\encoding[ \t]+[A-Za-z0-9_-]+[ \t\r]*$/;
const RESTRICT_LINE = /^\\(?:un)?restrict[ \t]+[A-Za-z0-9]+[ \t\r]*$/;

/**
 * The one psql variable whose value the script can choose (the text of an
 * error it raises) and psql would read as script when written `:NAME`: with
 * it, a script could make psql run a meta-command built on the server. It is
 * refused wherever it appears, even in strings, comments and COPY data, which
 * psql reads as script when it reads them differently from this guard.
 */
const LAST_ERROR = new TextEncoder().encode(":LAST_ERROR_MESSAGE");

const WHERE_PSQL_HAS_RESTRICT = "13.22, 14.19, 15.14, 16.10, 17.6, 18 or later";

// Lexer states (psqlscan.l's start conditions, plus the partial tokens a
// chunk boundary can cut).
const INITIAL = 0;
const DASH = 1; // "-": an operator or a comment's start
const SLASH = 2; // "/": an operator or a comment's start
const LINE_COMMENT = 3; // "--" to the end of the line (or a carriage return)
const BLOCK_COMMENT = 4; // "/* */", nested
const XQ = 5; // '...' (standard_conforming_strings on)
const XRAW = 6; // U&'...': no backslash escapes either way
const XBIT = 23; // B'...', X'...': as XRAW, but a quote right after the end opens a new string
const XE = 7; // E'...'
const XQS = 8; // after a string's quote: a doubled quote, a continuation, or the end
const XD = 9; // "identifier"
const XD_END = 10; // after an identifier's quote: doubled, or the end
const DOLLAR = 11; // "$": a parameter, a dollar quote's opening tag, or a lone "$"
const XDOLQ = 12; // inside $tag$...$tag$
const IDENT = 13; // an identifier or keyword
const UAMP = 14; // "u&": a Unicode string or identifier, or "u" then "&"
const NUMBER = 15;
const COLON = 16; // ":": a cast, a variable, or itself
const COLON_NAME = 17; // ":name"
const COLON_SQ = 18; // ":'name'" or ":" then a string
const COLON_DQ = 19; // ':"name"' or ":" then an identifier
const BACKSLASH = 20; // "\": "\;", "\:" or a meta-command
const META_NAME = 21;
const META_LINE = 22;

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x27;
const DQUOTE = 0x22;
const BACKSLASH_BYTE = 0x5c;

const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isLetter = (b: number) => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
/** psql's ident_start (and dolq_start): letters, "_", bytes of non-ASCII characters. */
const isIdentStart = (b: number) => isLetter(b) || b === 0x5f || b >= 0x80;
/** dolq_cont, and variable_char. */
const isWordChar = (b: number) => isIdentStart(b) || isDigit(b);
/** ident_cont: a word character or "$". */
const isIdentCont = (b: number) => isWordChar(b) || b === 0x24;
/** psql's space (16 and later add \v; reading it as space everywhere is harmless). */
const isSpace = (b: number) =>
  b === 0x20 || b === 0x09 || b === LF || b === CR || b === 0x0c || b === 0x0b;

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: false });

/**
 * psql's own refusals of a meta-command, as it reports them reading a script
 * on stdin: its restricted mode, a command it does not know, a bad key.
 */
export const PSQL_REFUSED =
  /^(?:psql:\S*: (?:error: )?)?(?:backslash commands are restricted|invalid command \\|\\(?:un)?restrict: )/;

/**
 * The one-line error for a refused script: `what` (e.g. `SQL script /x.sql`),
 * the line, why, and what psql may have applied before it was stopped:
 * nothing when no statement was sent yet, or when the script ran in the one
 * transaction completionGuard opens (`transaction`) and nothing ended it.
 */
export function refusalMessage(
  what: string,
  e: ScriptRefusedError,
  seen: ScriptGuardResult,
  transaction?: { atomic: boolean; breaker?: string },
): string {
  const before = `the part before line ${e.line}`;
  let applied: string;
  if (seen.statements === 0 || (transaction?.atomic && seen.transactionEnd === undefined)) {
    applied = "nothing of this file was applied";
  } else if (transaction && !transaction.atomic) {
    applied =
      `${before} was applied (after ${transaction.breaker} it cannot run in one transaction): check the target`;
  } else if (transaction && seen.transactionEnd) {
    const end = seen.transactionEnd;
    applied =
      `${before} may have been applied (its own ${end.statement} at line ${end.line} ended the transaction): check the target`;
  } else {
    applied =
      `the statements before line ${e.line} may have been applied (a script without pg_dump's header runs statement by statement): check the target`;
  }
  return `${what} line ${e.line}: ${e.detail}; ${applied}`;
}

/** Whether `version` (a `psql --version` line) has the restricted mode (`\restrict`). */
export function restrictSupported(version: string): boolean {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+)|(beta|rc)(\d+)|devel)?/.exec(version);
  if (!m) return false;
  const major = Number(m[1]);
  if (major >= 19) return true;
  if (major === 18) return m[3] !== "beta" || Number(m[4]) >= 3;
  const minor = m[2] === undefined ? -1 : Number(m[2]);
  const first: Record<number, number> = { 13: 22, 14: 19, 15: 14, 16: 10, 17: 6 };
  return first[major] !== undefined && minor >= first[major];
}

/** A fresh key for psql's restricted mode: 48 letters and digits, never written anywhere. */
export function newRestrictKey(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(48));
  // 62 does not divide 256: the slight bias left is irrelevant at 48 characters.
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

/**
 * The guard as a transform: bytes in, the same bytes out (meta-command lines
 * rewritten as described above), or an error (ScriptRefusedError) before the
 * refused line is passed on. `result()` tells how far psql could have got.
 */
export function scriptGuard(
  options: ScriptGuardOptions = {},
): { transform: TransformStream<Uint8Array, Uint8Array>; result: () => ScriptGuardResult } {
  const scanner = new Scanner(options);
  const transform = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      for (const part of scanner.push(chunk)) controller.enqueue(part);
    },
    flush(controller) {
      for (const part of scanner.end()) controller.enqueue(part);
    },
  });
  return { transform, result: () => scanner.result() };
}

/** One psql statement as the server will see it (psql's `\;` separates several). */
interface Statement {
  /** Its first two words, lowercased ("" when not a word). */
  first: string;
  second: string;
  /** Its first word exactly as written (for `COMMIT;` lines folded downstream). */
  firstRaw: string;
  words: number;
  tokens: number;
  /** The first word was the first thing on its line. */
  firstLeads: boolean;
  /** COPY: after a top-level FROM, waiting for STDIN. */
  afterFrom: boolean;
  /** COPY ... FROM STDIN: psql reads data lines after it is sent. */
  copyIn: boolean;
}

const newStatement = (): Statement => ({
  first: "",
  second: "",
  firstRaw: "",
  words: 0,
  tokens: 0,
  firstLeads: false,
  afterFrom: false,
  copyIn: false,
});

class Scanner {
  readonly #key: string | undefined;
  readonly #strict: boolean;
  readonly #major: number;
  readonly #folds: boolean;

  // Where we are.
  #line = 1;
  #prev = LF; // the previous byte of the script (LF at its start)
  #lineHasText = false; // a non-space byte on this line already
  #started = false;

  // psql's lexer state.
  #mode: number = INITIAL;
  #parenDepth = 0;
  #beginDepth = 0;
  #identifierCount = 0;
  #identifiers = [0, 0, 0, 0];
  #pending = false; // psql's query buffer holds something
  #xcDepth = 0;
  #xcStar = false;
  #xcSlash = false;
  #escape = false; // XE: the next byte is escaped
  #backslashes = 0; // XQ: backslashes just before this byte
  #qsPrev: number = XQ;
  #qsConsumed = false;
  #qsCrossed = false;
  #qsNewline = false;
  #qsComment = false;
  #qsDash = false;
  #tag: number[] = [];
  #openTag = new Uint8Array(0);
  #dolMatch = -1;
  #dolOk = false;
  #word = new Uint8Array(WORD_MAX); // the first bytes of the current word
  #wordLen = 0;
  #wordLeads = false;
  #numberJunk = false; // 15+: inside a junk token; 14: past the decimal point or exponent
  #numberTail: number[] = [];
  #varName: number[] = [];

  // The meta-command being read, held back until decided.
  #held: number[] = [];
  #metaName = "";
  #metaLine = 0;
  #metaAtStart = false;
  #metaPending = false;

  // Statements and COPY data.
  #stmt = newStatement();
  #statements = 0;
  #passedOn = 0; // #statements when the last chunk was passed on
  #copiesSent = 0; // COPY ... FROM STDIN statements sent on this line
  #inData = false;
  #copiesLeft = 0;
  #dataPos = 0; // 0 line start, 1 "\", 2 "\.", 3 "\.\r", -1 a data row
  #foldLine = 0; // a whole-line "COMMIT;" candidate ended on this line
  #foldSpoiled = false;
  #transactionEnd: { line: number; statement: string } | undefined;

  // :LAST_ERROR_MESSAGE across chunk boundaries.
  #tail = new Uint8Array(0);

  /** Per byte value, its next position in this chunk at or after the scan (found lazily). */
  readonly #next = new Int32Array(256);

  /** The next `b` in `data` at or after `i` (data.length when none), each found once per chunk. */
  #nextOf(b: number, data: Uint8Array, i: number): number {
    let at = this.#next[b];
    if (at < i) {
      at = data.indexOf(b, i);
      if (at < 0) at = data.length;
      this.#next[b] = at;
    }
    return at;
  }

  // Output of the current push().
  #out: Uint8Array[] = [];
  #segStart = 0;

  constructor(options: ScriptGuardOptions) {
    this.#key = options.restrictKey;
    this.#strict = options.restrictKey === undefined;
    this.#major = options.psqlMajor ?? 18;
    this.#folds = options.foldsTransactionLines ?? false;
  }

  result(): ScriptGuardResult {
    return { statements: this.#passedOn, transactionEnd: this.#transactionEnd };
  }

  push(data: Uint8Array): Uint8Array[] {
    this.#out = [];
    this.#begin();
    // The variable is refused wherever it is, but only once every line before
    // it has been looked at: the first problem is the one reported.
    const found = this.#findLastError(data);
    this.#segStart = 0;
    this.#next.fill(-1);
    this.#scan(data, found < 0 ? data.length : found);
    if (found >= 0) this.#refuseVariable(":LAST_ERROR_MESSAGE");
    if (!this.#holding() && this.#segStart < data.length) {
      this.#out.push(this.#segStart === 0 ? data : data.subarray(this.#segStart));
    }
    this.#passedOn = this.#statements;
    return this.#out;
  }

  end(): Uint8Array[] {
    this.#out = [];
    this.#begin();
    switch (this.#mode) {
      case BACKSLASH:
        this.#mode = META_NAME;
        this.#decideName();
        break;
      case META_NAME:
        this.#decideName(); // refuses, or goes on to the (complete) line
        this.#finishMeta();
        break;
      case META_LINE:
        this.#finishMeta();
        break;
      case COLON_NAME:
        this.#checkVariable();
        break;
    }
    if (this.#foldLine !== 0 && this.#foldSpoiled) {
      this.#noteTransactionEnd(this.#foldLine, "COMMIT");
    }
    this.#passedOn = this.#statements;
    return this.#out;
  }

  /** The script's first bytes: our restricted mode, before anything of the script's. */
  #begin() {
    if (this.#started) return;
    this.#started = true;
    if (this.#key !== undefined) this.#out.push(enc.encode(`\\restrict ${this.#key}\n`));
  }

  #holding(): boolean {
    return this.#mode === BACKSLASH || this.#mode === META_NAME || this.#mode === META_LINE;
  }

  /** Position of :LAST_ERROR_MESSAGE in `data` (0 when it began in an earlier chunk), or -1. */
  #findLastError(data: Uint8Array): number {
    const n = LAST_ERROR.length;
    let found = -1;
    if (this.#tail.length > 0) {
      const joined = new Uint8Array(this.#tail.length + Math.min(data.length, n - 1));
      joined.set(this.#tail);
      joined.set(data.subarray(0, n - 1), this.#tail.length);
      const at = indexOfBytes(joined, LAST_ERROR, 0);
      if (at >= 0) found = Math.max(0, at - this.#tail.length);
    }
    if (found < 0) found = indexOfBytes(data, LAST_ERROR, 0);
    const keep = Math.min(n - 1, this.#tail.length + data.length);
    const tail = new Uint8Array(keep);
    const fromData = Math.min(keep, data.length);
    tail.set(this.#tail.subarray(this.#tail.length - (keep - fromData)), 0);
    tail.set(data.subarray(data.length - fromData), keep - fromData);
    this.#tail = tail;
    return found;
  }

  #scan(data: Uint8Array, limit: number) {
    let i = 0;
    while (i < limit) {
      if (this.#inData) {
        i = this.#scanData(data, i, limit);
        continue;
      }
      if (this.#mode !== INITIAL) {
        const skipped = this.#skipInside(data, i, limit);
        if (skipped > i) {
          i = skipped;
          continue;
        }
      }
      const b = data[i];
      if (b === 0) this.#refuseNul();
      // Checked before the byte is lexed: the ";" that makes a candidate is not after it.
      if (this.#foldLine !== 0 && !isSpace(b)) this.#foldSpoiled = true;
      this.#step(b, data, i);
      if (b === LF) this.#newline();
      else if (!isSpace(b)) this.#lineHasText = true;
      this.#prev = b;
      i++;
    }
  }

  /**
   * Inside a literal or a comment, most bytes change nothing: skips to the
   * next one that may (its end, a backslash, a line end), within the line.
   * Returns `i` when the byte at `i` needs a look.
   */
  #skipInside(data: Uint8Array, i: number, limit: number): number {
    let a = -1, b = -1;
    switch (this.#mode) {
      case IDENT: {
        // The rest of a word (its first two bytes decide E'', U&'' and the like).
        let j = i;
        while (j < limit && isIdentCont(data[j])) this.#addToWord(data[j++]);
        if (j > i) this.#prev = data[j - 1];
        return j;
      }

      case XQ:
        if (this.#strict) return i; // backslash runs before the quote count there
        a = QUOTE;
        break;
      case XRAW:
      case XBIT:
        a = QUOTE;
        break;
      case XE:
        if (this.#escape) return i;
        a = QUOTE;
        b = BACKSLASH_BYTE;
        break;
      case XD:
        a = DQUOTE;
        break;
      case XDOLQ:
        if (this.#dolMatch >= 0) return i;
        a = 0x24;
        break;
      case LINE_COMMENT:
        a = CR;
        break;
      case BLOCK_COMMENT:
        if (this.#xcStar || this.#xcSlash) return i;
        a = 0x2a;
        b = 0x2f;
        break;
      default:
        return i;
    }
    let end = Math.min(limit, this.#nextOf(LF, data, i), this.#nextOf(a, data, i));
    if (b >= 0) end = Math.min(end, this.#nextOf(b, data, i));
    if (end === i) return i;
    const nul = this.#nextOf(0, data, i);
    if (nul < end) return nul; // looked at, and refused, one byte at a time
    this.#prev = data[end - 1];
    this.#lineHasText = true; // a literal or comment is on this line already
    return end;
  }

  /** COPY data: only a line `\.` matters, which ends it; rows are skipped a line at a time. */
  #scanData(data: Uint8Array, i: number, limit: number): number {
    while (i < limit) {
      if (this.#dataPos === -1) {
        const nl = data.indexOf(LF, i);
        if (nl < 0 || nl >= limit) {
          this.#prev = data[limit - 1];
          return limit;
        }
        i = nl;
      }
      const b = data[i];
      if (b === LF) {
        this.#line++;
        this.#prev = LF;
        i++;
        if (this.#dataPos === 2 || this.#dataPos === 3) {
          if (--this.#copiesLeft === 0) {
            this.#inData = false;
            this.#lineHasText = false;
            return i;
          }
        }
        this.#dataPos = 0;
        continue;
      }
      if (this.#dataPos === 0) this.#dataPos = b === BACKSLASH_BYTE ? 1 : -1;
      else if (this.#dataPos === 1) this.#dataPos = b === 0x2e ? 2 : -1;
      else if (this.#dataPos === 2) this.#dataPos = b === CR ? 3 : -1;
      else this.#dataPos = -1;
      this.#prev = b;
      i++;
    }
    return i;
  }

  /** The end of a line (psql reads its input a line at a time). */
  #newline() {
    if (this.#foldLine !== 0) {
      if (this.#foldSpoiled) this.#noteTransactionEnd(this.#foldLine, "COMMIT");
      this.#foldLine = 0;
    }
    this.#line++;
    this.#lineHasText = false;
    if (this.#copiesSent > 0) {
      this.#inData = true;
      this.#copiesLeft = this.#copiesSent;
      this.#copiesSent = 0;
      this.#dataPos = 0;
    }
  }

  /**
   * One byte in the current lexer state. Each state's method returns whether
   * it took the byte; when it did not, it has left its state and the byte is
   * read again in the next one (psql's yyless).
   */
  #step(b: number, data: Uint8Array, i: number) {
    for (;;) {
      switch (this.#mode) {
        case INITIAL:
          this.#initial(b, data, i);
          return;
        case DASH:
        case SLASH:
          if (this.#stepCommentStart(b)) return;
          break;
        case LINE_COMMENT:
        case BLOCK_COMMENT:
          if (this.#stepComment(b)) return;
          break;
        case XQ:
        case XRAW:
        case XBIT:
        case XE:
          this.#stepString(b);
          return;
        case XQS:
          if (this.#afterQuote(b)) return;
          this.#mode = INITIAL;
          break;
        case XD:
        case XD_END:
          if (this.#stepQuotedIdentifier(b)) return;
          break;
        case DOLLAR:
          if (this.#dollar(b)) return;
          break;
        case XDOLQ:
          this.#insideDollarQuote(b);
          return;
        case IDENT:
          if (this.#identifier(b)) return;
          break;
        case UAMP:
          if (this.#unicodeAmpersand(b)) return;
          break;
        case NUMBER:
          if (this.#number(b, data, i)) return;
          if (this.#mode === NUMBER) this.#mode = INITIAL;
          break;
        case COLON:
        case COLON_NAME:
        case COLON_SQ:
        case COLON_DQ:
          if (this.#stepVariable(b)) return;
          break;
        case BACKSLASH:
        case META_NAME:
        case META_LINE:
          if (this.#stepMeta(b, i)) return;
          break;
      }
    }
  }

  /** After "-" or "/": a comment's start, or an operator (false: reprocess `b` in INITIAL). */
  #stepCommentStart(b: number): boolean {
    if (this.#mode === DASH) {
      if (b === 0x2d) {
        this.#mode = LINE_COMMENT;
        return true;
      }
      this.#pending = true;
    } else if (b === 0x2a) {
      this.#mode = BLOCK_COMMENT;
      this.#xcDepth = 1;
      this.#xcStar = this.#xcSlash = false;
      return true;
    }
    this.#token();
    this.#mode = INITIAL;
    return false;
  }

  /** Inside a line or block comment; false: a line comment ended, reprocess `b` in INITIAL. */
  #stepComment(b: number): boolean {
    if (this.#mode === LINE_COMMENT) {
      // psql's comment ends at a carriage return too.
      if (b !== LF && b !== CR) return true;
      this.#mode = INITIAL;
      return false;
    }
    if (b === LF) {
      this.#xcStar = this.#xcSlash = false;
    } else if (this.#xcStar && b === 0x2f) {
      this.#xcStar = false;
      if (--this.#xcDepth === 0) this.#mode = INITIAL;
    } else if (this.#xcSlash && b === 0x2a) {
      this.#xcDepth++;
      this.#xcStar = this.#xcSlash = false;
    } else {
      this.#xcStar = b === 0x2a;
      this.#xcSlash = b === 0x2f;
    }
    return true;
  }

  /** Inside a string literal of any kind: every byte is the string's, up to its closing quote. */
  #stepString(b: number) {
    switch (this.#mode) {
      case XQ:
        if (b === QUOTE) {
          if (this.#strict && this.#backslashes % 2 === 1) this.#refuseAmbiguousString();
          this.#closeQuote(XQ);
        } else if (b === BACKSLASH_BYTE) {
          this.#backslashes++;
        } else {
          this.#backslashes = 0;
        }
        return;
      case XE:
        if (this.#escape) {
          this.#escape = false;
        } else if (b === BACKSLASH_BYTE) {
          // In SJIS, BIG5, GBK... a backslash byte can end a character.
          if (this.#strict && this.#prev >= 0x80) this.#refuseEncoding();
          this.#escape = true;
        } else if (b === QUOTE) {
          this.#closeQuote(XE);
        }
        return;
      default: // XRAW, XBIT
        if (b === QUOTE) this.#closeQuote(this.#mode);
    }
  }

  /** Inside a "quoted identifier"; false: it ended, reprocess `b` in INITIAL. */
  #stepQuotedIdentifier(b: number): boolean {
    if (this.#mode === XD) {
      if (b === DQUOTE) this.#mode = XD_END;
      return true;
    }
    if (b === DQUOTE) { // a doubled quote
      this.#mode = XD;
      return true;
    }
    this.#mode = INITIAL;
    return false;
  }

  /** After "u&": a Unicode string or identifier; false: "u" then "&", reprocess `b` in INITIAL. */
  #unicodeAmpersand(b: number): boolean {
    if (b === QUOTE) {
      this.#startString(XRAW);
      return true;
    }
    if (b === DQUOTE) {
      this.#token();
      this.#mode = XD;
      return true;
    }
    this.#token(); // "u" and "&"
    this.#mode = INITIAL;
    return false;
  }

  /**
   * After ":": a cast, a psql variable (checked when its name ends), or a
   * lone colon; false: reprocess `b` in the mode left (INITIAL, or the
   * string or identifier the colon was followed by).
   */
  #stepVariable(b: number): boolean {
    switch (this.#mode) {
      case COLON:
        if (b === 0x3a) { // "::", a cast
          this.#token();
          this.#mode = INITIAL;
          return true;
        }
        if (isWordChar(b)) {
          this.#varName = [b];
          this.#mode = COLON_NAME;
          return true;
        }
        if (b === QUOTE || b === DQUOTE) {
          this.#varName = [];
          this.#mode = b === QUOTE ? COLON_SQ : COLON_DQ;
          return true;
        }
        this.#token();
        this.#mode = INITIAL;
        return false;
      case COLON_NAME:
        if (isWordChar(b)) {
          if (this.#varName.length <= 64) this.#varName.push(b);
          return true;
        }
        this.#checkVariable();
        this.#mode = INITIAL;
        return false;
    }
    // COLON_SQ, COLON_DQ
    const close = this.#mode === COLON_SQ ? QUOTE : DQUOTE;
    if (isWordChar(b)) {
      this.#varName.push(b);
      return true;
    }
    // :'name' and :"name" are quoted values, never read as script.
    if (b === close && this.#varName.length > 0) {
      this.#token();
      this.#mode = INITIAL;
      return true;
    }
    // Not a variable: ":" then a string or identifier holding the name.
    this.#token();
    if (close === QUOTE) {
      this.#mode = XQ;
      this.#backslashes = 0;
    } else {
      this.#mode = XD;
    }
    return false;
  }

  /**
   * After "\": `\;` or `\:`, or a meta-command, held back (with its line)
   * until decided; false: reprocess `b` in the mode left.
   */
  #stepMeta(b: number, i: number): boolean {
    switch (this.#mode) {
      case BACKSLASH:
        if (b === 0x3b || b === 0x3a) {
          // "\;" and "\:" put the character itself into the query.
          if (b === 0x3b) {
            this.#endStatement(false);
            this.#identifierCount = 0;
          }
          this.#pending = true;
          this.#mode = INITIAL;
          this.#held.push(b);
          this.#release();
          this.#segStart = i + 1;
          return true;
        }
        this.#mode = META_NAME;
        return false;
      case META_NAME:
        // psql: the command name ends at whitespace or a backslash.
        if (!isSpace(b) && b !== BACKSLASH_BYTE) {
          if (this.#held.length > 64) this.#refuseMeta();
          this.#held.push(b);
          return true;
        }
        this.#decideName();
        return false;
    }
    // META_LINE
    if (b === LF) {
      this.#finishMeta();
      this.#segStart = i;
      this.#mode = INITIAL;
      return true;
    }
    if (this.#held.length >= META_LINE_MAX) {
      this.#refuse(
        `psql meta-command \\${this.#metaName} is not allowed on a line this long in a restored script`,
        `\\${this.#metaName}`,
      );
    }
    this.#held.push(b);
    return true;
  }

  /** INITIAL: one switch on the byte that starts a token, psqlscan.l's INITIAL rules side by side. */
  #initial(b: number, data: Uint8Array, i: number) {
    if (isSpace(b)) return;
    if (this.#strict && this.#prev >= 0x80 && (b === 0x3b || b === 0x3a)) this.#refuseEncoding();
    switch (b) {
      case 0x2d: // "-"
        this.#mode = DASH;
        return;
      case 0x2f: // "/"
        this.#mode = SLASH;
        this.#pending = true;
        return;
      case BACKSLASH_BYTE:
        if (this.#segStart < i) this.#out.push(data.subarray(this.#segStart, i));
        this.#held = [b];
        this.#metaLine = this.#line;
        this.#metaAtStart = this.#prev === LF;
        this.#metaPending = this.#pending;
        this.#mode = BACKSLASH;
        return;
    }
    this.#pending = true;
    switch (b) {
      case QUOTE:
        this.#startString(XQ);
        return;
      case DQUOTE:
        this.#token();
        this.#mode = XD;
        return;
      case 0x24: // "$"
        this.#tag = [];
        this.#mode = DOLLAR;
        return;
      case 0x3a: // ":"
        this.#mode = COLON;
        return;
      case 0x3b: // ";"
        if (this.#parenDepth === 0 && this.#beginDepth === 0) {
          this.#sendStatement();
        } else {
          this.#token();
        }
        return;
      case 0x28: // "("
        this.#parenDepth++;
        this.#token();
        return;
      case 0x29: // ")"
        if (this.#parenDepth > 0) this.#parenDepth--;
        this.#token();
        return;
    }
    if (isDigit(b)) {
      this.#token();
      this.#numberJunk = false;
      this.#numberTail = [];
      this.#mode = NUMBER;
      return;
    }
    if (isIdentStart(b)) {
      this.#wordLen = 0;
      this.#addToWord(b);
      this.#wordLeads = !this.#lineHasText;
      this.#mode = IDENT;
      return;
    }
    this.#token(); // an operator or punctuation
  }

  #startString(kind: number) {
    this.#token();
    this.#mode = kind;
    this.#backslashes = 0;
    this.#escape = false;
  }

  #closeQuote(kind: number) {
    this.#mode = XQS;
    this.#qsPrev = kind;
    this.#qsConsumed = this.#qsCrossed = this.#qsNewline = false;
    this.#qsComment = this.#qsDash = false;
  }

  /**
   * After a string's closing quote, psql looks ahead: a quote right after it
   * is a doubled quote; whitespace holding a newline (within psql's line, so
   * a carriage return) then a quote continues the string in the same kind.
   * True while that may still happen; false: the string ended.
   */
  #afterQuote(b: number): boolean {
    if (b === QUOTE && !this.#qsConsumed && !this.#qsCrossed) {
      if (this.#qsPrev === XBIT) return false; // psql's bit strings have no doubled quote
      this.#mode = this.#qsPrev;
      this.#backslashes = 0;
      return true;
    }
    if (b === LF) {
      // The end of psql's line: nothing looked at yet, the look-ahead goes on
      // into the next line; otherwise it failed where it started.
      if (this.#qsConsumed) return false;
      this.#qsCrossed = true;
      return true;
    }
    if (this.#qsComment) {
      if (b === CR) {
        this.#qsComment = false;
        this.#qsNewline = true;
      }
      return true;
    }
    if (this.#qsDash) {
      if (b !== 0x2d) return false;
      this.#qsDash = false;
      this.#qsComment = true;
      return true;
    }
    if (b === 0x20 || b === 0x09 || b === 0x0c || b === CR) {
      this.#qsConsumed = true;
      if (b === CR) this.#qsNewline = true;
      return true;
    }
    if (b === 0x2d) {
      this.#qsConsumed = this.#qsDash = true;
      return true;
    }
    if (b === QUOTE && this.#qsNewline) {
      this.#mode = this.#qsPrev;
      this.#backslashes = 0;
      this.#escape = false;
      return true;
    }
    return false;
  }

  /** After "$" in INITIAL; false: reprocess `b` in INITIAL. */
  #dollar(b: number): boolean {
    const tag = this.#tag;
    if (b === 0x24) {
      this.#token();
      this.#openTag = Uint8Array.from(tag);
      this.#dolMatch = -1;
      this.#mode = XDOLQ;
      return true;
    }
    if (tag.length === 0 && isDigit(b)) { // $1, a parameter
      this.#token();
      this.#numberJunk = this.#major < 15; // no decimal point in a parameter
      this.#numberTail = [];
      this.#mode = NUMBER;
      return true;
    }
    if (tag.length === 0 ? isIdentStart(b) : isWordChar(b)) {
      if (tag.length >= TAG_MAX) {
        this.#refuse(`a dollar-quote tag longer than ${TAG_MAX} bytes`);
      }
      tag.push(b);
      return true;
    }
    // A lone "$": what followed it is lexed again, as a word (psql's yyless).
    this.#token();
    if (tag.length > 0) {
      this.#wordLen = 0;
      for (const t of tag) this.#addToWord(t);
      this.#wordLeads = false;
      this.#mode = IDENT;
    } else {
      this.#mode = INITIAL;
    }
    return false;
  }

  #insideDollarQuote(b: number) {
    const tag = this.#openTag;
    if (b === 0x24) {
      if (this.#dolMatch >= 0 && this.#dolOk && this.#dolMatch === tag.length) {
        this.#mode = INITIAL;
        return;
      }
      // Not the closing tag: this "$" may open the next candidate.
      this.#dolMatch = 0;
      this.#dolOk = true;
      return;
    }
    if (this.#dolMatch < 0) return;
    if (this.#dolMatch === 0 ? isIdentStart(b) : isWordChar(b)) {
      this.#dolOk = this.#dolOk && this.#dolMatch < tag.length && tag[this.#dolMatch] === b;
      this.#dolMatch++;
    } else {
      this.#dolMatch = -1;
    }
  }

  #addToWord(b: number) {
    if (this.#wordLen < WORD_MAX) this.#word[this.#wordLen] = b;
    this.#wordLen++;
  }

  /** Inside an identifier; false: it ended, reprocess `b` in INITIAL. */
  #identifier(b: number): boolean {
    if (this.#wordLen === 1) {
      const c = this.#word[0] | 0x20;
      if (b === QUOTE) {
        if (c === 0x65) { // E'...'
          this.#startString(XE);
          return true;
        }
        if (c === 0x62 || c === 0x78) { // B'...', X'...'
          this.#startString(XBIT);
          return true;
        }
        if (c === 0x6e) { // N'...': a plain string
          this.#startString(XQ);
          return true;
        }
      }
      if (c === 0x75 && b === 0x26) { // U&
        this.#mode = UAMP;
        return true;
      }
    }
    if (isIdentCont(b)) {
      this.#addToWord(b);
      return true;
    }
    this.#endIdentifier();
    this.#mode = INITIAL;
    return false;
  }

  /** A number (or a parameter); false: it ended, reprocess `b` in the mode left. */
  #number(b: number, data: Uint8Array, i: number): boolean {
    if (this.#major >= 15) {
      // 15 and later read "1end" as one (junk) token.
      if (this.#numberJunk) return isIdentCont(b);
      if (isDigit(b) || b === 0x2e || b === 0x5f) return true;
      if (!isIdentStart(b)) return false;
      this.#numberJunk = true;
      return true;
    }
    // 14 and before: digits, a decimal point, an exponent; "1end" is 1 then end.
    const tail = this.#numberTail;
    if (tail.length === 0) {
      if (isDigit(b) || (b === 0x2e && !this.#numberJunk)) return true;
      if ((b === 0x65 || b === 0x45) && !this.#numberJunk) {
        tail.push(b);
        return true;
      }
      return false;
    }
    if (isDigit(b)) { // the exponent's digits
      this.#numberTail = [];
      this.#numberJunk = true;
      return true;
    }
    if (tail.length === 1 && (b === 0x2b || b === 0x2d)) {
      tail.push(b);
      return true;
    }
    // Not an exponent after all: "e" (and its sign) are lexed again (psql's yyless).
    this.#numberTail = [];
    this.#mode = INITIAL;
    for (const t of tail) this.#step(t, data, i);
    return false;
  }

  /**
   * An identifier or keyword: psql's heuristic for SQL-standard function
   * bodies (14 and later), where BEGIN ... END holds semicolons that do not
   * end the statement, and the words this guard needs (COPY ... FROM STDIN,
   * transaction ends).
   */
  #endIdentifier() {
    const s = this.#stmt;
    // Only short words matter; a longer one is read as "".
    const n = this.#wordLen <= WORD_MAX ? this.#wordLen : 0;
    let word = "";
    // Most words are none of those looked at: their length and first letter say so.
    if (n > 0 && KEYWORD_SHAPES.has((n << 8) | (this.#word[0] | 0x20))) {
      for (let k = 0; k < n; k++) {
        const c = this.#word[k];
        word += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
      }
    }
    const ids = this.#identifiers;
    if (this.#identifierCount === 0) ids.fill(0);
    if (
      (word === "create" || word === "function" || word === "procedure" || word === "or" ||
        word === "replace") && this.#identifierCount < 4
    ) {
      ids[this.#identifierCount] = word.charCodeAt(0);
    }
    this.#identifierCount++;
    const c = 0x63, f = 0x66, p = 0x70, o = 0x6f, r = 0x72;
    if (
      this.#major >= 14 && ids[0] === c &&
      (ids[1] === f || ids[1] === p ||
        (ids[1] === o && ids[2] === r && (ids[3] === f || ids[3] === p))) &&
      this.#parenDepth === 0
    ) {
      if (word === "begin") this.#beginDepth++;
      else if (word === "case") {
        if (this.#beginDepth >= 1) this.#beginDepth++;
      } else if (word === "end") {
        if (this.#beginDepth > 0) this.#beginDepth--;
      }
    }
    if (s.words === 0 && s.tokens === 0) {
      s.first = word;
      s.firstRaw = String.fromCharCode(...this.#word.subarray(0, n));
      s.firstLeads = this.#wordLeads;
    } else if (s.words === 1 && s.tokens === 1) {
      s.second = word;
    }
    if (s.first === "copy" && this.#parenDepth === 0) {
      if (s.afterFrom && word === "stdin") s.copyIn = true;
      s.afterFrom = word === "from";
    } else {
      s.afterFrom = false;
    }
    s.words++;
    s.tokens++;
  }

  /** Any token but a word: it ends a pending COPY ... FROM. */
  #token() {
    this.#stmt.tokens++;
    this.#stmt.afterFrom = false;
  }

  /** A top-level ";": psql sends the query buffer. */
  #sendStatement() {
    const hadContent = this.#stmt.tokens > 0 || this.#statementSeenBefore;
    this.#endStatement(true);
    this.#identifierCount = 0;
    if (hadContent) this.#statements++;
    this.#statementSeenBefore = false;
    this.#pending = false;
  }

  /** Set when `\;` ended a statement still to be sent. */
  #statementSeenBefore = false;

  /** The end of one server statement: at `;`, or `\;` inside a psql query. */
  #endStatement(atSemicolon: boolean) {
    const s = this.#stmt;
    if (s.tokens > 0) this.#statementSeenBefore = true;
    if (s.copyIn) this.#copiesSent++;
    const ends = (s.first === "commit" || s.first === "end" || s.first === "abort")
      ? s.second !== "prepared"
      : s.first === "rollback"
      ? s.second !== "to" && s.second !== "prepared"
      : s.first === "prepare" && s.second === "transaction";
    if (ends) {
      // completionGuard turns a line that is exactly "COMMIT;" into a comment.
      if (
        this.#folds && atSemicolon && s.firstRaw === "COMMIT" && s.tokens === 1 && s.firstLeads
      ) {
        this.#foldLine = this.#line;
        this.#foldSpoiled = false;
      } else {
        this.#noteTransactionEnd(this.#line, s.first.toUpperCase());
      }
    }
    this.#stmt = newStatement();
  }

  #noteTransactionEnd(line: number, statement: string) {
    this.#transactionEnd ??= { line, statement };
  }

  #checkVariable() {
    this.#token();
    const name = String.fromCharCode(...this.#varName.slice(0, 64));
    // psql sets only upper-case variables here (nothing runs \set): a
    // lower-case :name stays as written; an upper-case one is read as script.
    if (/^[A-Z][A-Z0-9_]+$/.test(name)) this.#refuseVariable(`:${name}`);
  }

  /** The command name is complete: refuse it, or go on reading its line. */
  #decideName() {
    const name = dec.decode(Uint8Array.from(this.#held.slice(1)));
    this.#metaName = name;
    if (!RUN.has(name) && !DROP.has(name)) this.#refuseMeta();
    if (!this.#metaAtStart || this.#metaPending) this.#refuseForm();
    this.#mode = META_LINE;
  }

  /** A whole line of an allowed meta-command: check its form, then pass it on. */
  #finishMeta() {
    const bytes = Uint8Array.from(this.#held);
    const text = dec.decode(bytes);
    this.#held = [];
    if (DROP.has(this.#metaName)) {
      if (!RESTRICT_LINE.test(text)) this.#refuseForm();
      return; // ours already holds; the line's newline still passes
    }
    const ok = this.#metaName === "encoding" ? ENCODING.test(text) : connectAllowed(text);
    if (!ok) this.#refuseForm();
    if (this.#key === undefined) {
      this.#out.push(bytes);
      return;
    }
    this.#out.push(
      enc.encode(`\\unrestrict ${this.#key}\n`),
      bytes,
      enc.encode(`\n\\restrict ${this.#key}`),
    );
  }

  /** Passes on held bytes that were not a meta-command after all. */
  #release() {
    this.#out.push(Uint8Array.from(this.#held));
    this.#held = [];
  }

  #refuseNul(): never {
    this.#refuse(
      "a NUL byte: psql would read this line differently from what follows it (a snapshot is data, never a program)",
    );
  }

  #refuseMeta(): never {
    const name = this.#metaName || dec.decode(Uint8Array.from(this.#held.slice(1, 33)));
    const shown = `\\${printable(name)}`;
    this.#refuse(
      `psql meta-command ${shown} is not allowed in a restored script (a snapshot is data, never a program)`,
      shown,
      this.#metaLine,
    );
  }

  #refuseForm(): never {
    const shown = `\\${printable(this.#metaName)}`;
    const how = DROP.has(this.#metaName)
      ? `${shown} KEY (letters and digits), as pg_dump writes it`
      : this.#metaName === "encoding"
      ? `${shown} NAME`
      : `${shown} DBNAME as pg_dump and pg_dumpall write it`;
    this.#refuse(
      `psql meta-command ${shown} is allowed in a restored script only as ${how}, on a line of its own between statements`,
      shown,
      this.#metaLine,
    );
  }

  #refuseVariable(name: string): never {
    this.#refuse(
      `psql variable ${name} is not allowed in a restored script: psql would read its value as commands (a snapshot is data, never a program)`,
      name,
    );
  }

  #refuseAmbiguousString(): never {
    this.#refuse(
      `a string literal ends with a backslash before its closing quote, which a psql without restricted mode (\\restrict) could read as part of the string: restore with psql ${WHERE_PSQL_HAS_RESTRICT}`,
    );
  }

  #refuseEncoding(): never {
    this.#refuse(
      `a non-ASCII character is followed by a backslash, ";" or ":", which a psql without restricted mode (\\restrict) could read as part of it: restore with psql ${WHERE_PSQL_HAS_RESTRICT}`,
    );
  }

  #refuse(detail: string, command?: string, line = this.#line): never {
    throw new ScriptRefusedError(line, detail, command);
  }
}

/** Whether a `\connect` line only switches to another database of the same server. */
function connectAllowed(text: string): boolean {
  const simple = CONNECT_SIMPLE.exec(text);
  if (simple) {
    const name = simple[1].startsWith('"')
      ? simple[1].slice(1, -1).replaceAll('""', '"')
      : simple[1];
    // psql takes a name with "=" or a URI prefix for a connection string.
    return !name.includes("=") && !/^postgres(?:ql)?:\/\//.test(name);
  }
  const full = CONNECT_DBNAME.exec(text);
  return full !== null && DBNAME_ONLY.test(full[1].replaceAll('""', '"'));
}

/** `name` with control characters shown as `?`, cut to 32 characters, for one-line messages. */
function printable(name: string): string {
  // deno-lint-ignore no-control-regex
  const shown = name.replace(/[\x00-\x1f\x7f]/g, "?");
  return shown.length > 32 ? `${shown.slice(0, 32)}...` : shown;
}

/** First index of `needle` in `hay` from `from`, or -1. */
function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  for (let i = hay.indexOf(first, from); i >= 0; i = hay.indexOf(first, i + 1)) {
    if (i + needle.length > hay.length) return -1;
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}
