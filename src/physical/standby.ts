// A physical copy of a standby is a standby: pg_basebackup copies its
// standby.signal and the configuration files that hold its primary_conninfo,
// password included, so the restored directory starts streaming from the
// original primary. The importer tells the user so, and records it in the
// manifest, from what the copy itself holds: the configuration files are read
// as they pass through the tar stream. The server's running value is no
// substitute: primary_conninfo is readable only by superusers and members of
// pg_read_all_settings (not by a REPLICATION role), and ALTER SYSTEM writes
// the file without changing the running value until a reload. Only whether a
// password is there is kept, never the password or the connection string.

/** Configuration files of the data directory that may set primary_conninfo (recovery.conf: PostgreSQL 11 and older). */
export const CONF_FILES: readonly string[] = [
  "/postgresql.conf",
  "/postgresql.auto.conf",
  "/recovery.conf",
];

/** What the copy holds that makes it a standby. */
export interface StandbyFacts {
  /** The copy holds standby.signal: restored, it starts as a standby. */
  standbySignal: boolean;
  /** The copy's files (names, without the slash) that set a non-empty primary_conninfo. */
  primaryConninfoFiles: string[];
  /**
   * A primary_conninfo in the copy carries a password, counting every
   * setting of it, even one a later line overrides: the secret is in the copy
   * either way. Undefined when a configuration file was too large to read.
   */
  primaryConninfoHasPassword: boolean | undefined;
}

/** Collects StandbyFacts from the tar members as they are read (see tarEntries' peek). */
export class StandbyFactsReader {
  #signal = false;
  #files: string[] = [];
  #password = false;
  #unread = false;

  /** One regular file of the copy; `content` is undefined when the file was too large to hold. */
  see(pathname: string, content: Uint8Array | undefined): void {
    if (pathname === "/standby.signal") this.#signal = true;
    if (!CONF_FILES.includes(pathname)) return;
    if (!content) {
      this.#unread = true;
      return;
    }
    const values = confSettings(new TextDecoder().decode(content), "primary_conninfo");
    if (values.some((v) => v.trim() !== "")) this.#files.push(pathname.slice(1));
    if (values.some(conninfoHasPassword)) this.#password = true;
  }

  facts(): StandbyFacts {
    return {
      standbySignal: this.#signal,
      primaryConninfoFiles: [...this.#files],
      primaryConninfoHasPassword: this.#password ? true : this.#unread ? undefined : false,
    };
  }
}

/**
 * Every value `name` is set to in a postgresql.conf-style file, in order (the
 * server keeps the last). Names compare case-insensitively, as GUC names do;
 * `include` directives are not followed. Quoted values are unescaped as the
 * server's configuration lexer does ('' and backslash escapes).
 */
export function confSettings(text: string, name: string): string[] {
  const values: string[] = [];
  const line =
    /^[ \t\r]*([A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*(?:\.[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*)?)[ \t\r]*=?[ \t\r]*('(?:[^'\\\n]|\\.|'')*'|[^\s#']+)/;
  const want = name.toLowerCase();
  for (const l of text.split("\n")) {
    const m = line.exec(l);
    if (!m || m[1].toLowerCase() !== want) continue;
    values.push(m[2].startsWith("'") ? unquoteConf(m[2]) : m[2]);
  }
  return values;
}

/** A quoted configuration value's text: the server's GUC_scanstr. */
function unquoteConf(quoted: string): string {
  const s = quoted.slice(1, -1);
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'" && s[i + 1] === "'") {
      out += "'";
      i++;
    } else if (c === "\\" && i + 1 < s.length) {
      const n = s[++i];
      const simple: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (n in simple) out += simple[n];
      else if (n >= "0" && n <= "7") {
        let oct = n;
        while (oct.length < 3 && s[i + 1] >= "0" && s[i + 1] <= "7") oct += s[++i];
        out += String.fromCharCode(parseInt(oct, 8) & 0xff);
      } else out += n;
    } else out += c;
  }
  return out;
}

/**
 * Whether a libpq connection string sets a non-empty password (libpq treats
 * an empty one as none): `password=` in the key/value form (quoted values
 * with \' escapes), or in a postgres:// URI's user information or query.
 * Never throws: a malformed string is read as far as libpq would read it.
 */
export function conninfoHasPassword(conninfo: string): boolean {
  const uri = /^postgres(?:ql)?:\/\//.exec(conninfo);
  return uri ? uriHasPassword(conninfo.slice(uri[0].length)) : keywordHasPassword(conninfo);
}

function keywordHasPassword(s: string): boolean {
  const space = (c: string | undefined) => c !== undefined && /\s/.test(c);
  let i = 0;
  for (;;) {
    while (space(s[i])) i++;
    if (i >= s.length) return false;
    let key = "";
    while (i < s.length && s[i] !== "=" && !space(s[i])) key += s[i++];
    while (space(s[i])) i++;
    if (s[i] !== "=") return false; // libpq refuses the string here
    i++;
    while (space(s[i])) i++;
    let value = "";
    if (s[i] === "'") {
      i++;
      while (i < s.length && s[i] !== "'") {
        if (s[i] === "\\") i++;
        if (i < s.length) value += s[i++];
      }
      i++;
    } else {
      while (i < s.length && !space(s[i])) {
        if (s[i] === "\\") i++;
        if (i < s.length) value += s[i++];
      }
    }
    if (key === "password" && value !== "") return true;
  }
}

function uriHasPassword(rest: string): boolean {
  const decode = (v: string) => {
    try {
      return decodeURIComponent(v);
    } catch {
      return v; // libpq refuses it; a non-empty raw value still counts
    }
  };
  const authority = rest.split(/[/?]/, 1)[0];
  const at = authority.lastIndexOf("@");
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(":");
    if (colon >= 0 && decode(userinfo.slice(colon + 1)) !== "") return true;
  }
  const q = rest.indexOf("?");
  if (q < 0) return false;
  return rest.slice(q + 1).split("&").some((p) => {
    const eq = p.indexOf("=");
    return eq > 0 && decode(p.slice(0, eq)) === "password" && decode(p.slice(eq + 1)) !== "";
  });
}

/**
 * The one warning line for a copy of a server in recovery (or one holding
 * standby.signal), or undefined for a copy of a primary.
 */
export function standbyWarning(
  where: string,
  inRecovery: boolean,
  f: StandbyFacts,
): string | undefined {
  if (!inRecovery && !f.standbySignal) return undefined;
  const see = `(README, "A copy of a standby")`;
  if (!f.standbySignal) {
    return `${where} is in recovery but the copy holds no standby.signal: check its recovery settings before starting it ${see}`;
  }
  if (f.primaryConninfoFiles.length === 0) {
    return `${where} is a standby: the copy holds standby.signal but no primary_conninfo (set outside the data directory); restored, it starts as a standby with no primary to stream from. To start it as a primary, remove standby.signal first ${see}`;
  }
  const password = f.primaryConninfoHasPassword === true
    ? ", password included,"
    : f.primaryConninfoHasPassword === false
    ? " (no password)"
    : " (whether with a password could not be read)";
  return `${where} is a standby: the copy holds standby.signal and its primary_conninfo${password} in ${
    f.primaryConninfoFiles.join(" and ")
  }; restored, it starts as a standby of that primary. To start it as a primary, remove standby.signal and primary_conninfo first ${see}`;
}
