// A stand-in for RDS IAM authentication, for tests without AWS. It checks an
// RDS IAM token the way RDS does (a SigV4 presigned "connect" request for one
// host, port, user and region, signed with a known secret, not expired) by
// recomputing its signature with a maintained signer (@smithy/signature-v4,
// fed our own node:crypto hashes), and it fronts a real PostgreSQL server:
//
//   client ──▶ IamProxy (127.0.0.1) ──▶ real server (trust for 127.0.0.1)
//
// Per connection: an SSLRequest or GSSENCRequest is answered 'N'; the
// StartupMessage is read; the client is asked for a cleartext password
// (AuthenticationCleartextPassword); the password must be a valid token for
// the startup's user, else the client gets RDS's own refusal (FATAL 28P01
// "PAM authentication failed for user ..."). A valid token opens a
// connection to the real server with the same StartupMessage (the real
// server trusts 127.0.0.1, so it answers AuthenticationOk) and the two
// sockets are relayed byte for byte. Every token seen is recorded.

import { createHash, createHmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";

/** The static test identity the tests sign with. */
export interface TestCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** What a token must be for. */
export interface TokenExpectation {
  host: string;
  port: number;
  user: string;
  region: string;
  credentials: TestCredentials;
  /** When the token is checked. @default new Date() */
  now?: Date;
  /**
   * Refuse tokens signed longer ago than this many seconds, to model expiry
   * on a test's time scale; the token's own X-Amz-Expires (900) always applies.
   */
  maxAgeSeconds?: number;
}

/** A parsed token: the presigned request's parts. */
export interface ParsedToken {
  host: string;
  port: number;
  action: string;
  user: string;
  algorithm: string;
  credential: string;
  accessKeyId: string;
  scopeDate: string;
  region: string;
  service: string;
  date: Date;
  amzDate: string;
  expires: number;
  signedHeaders: string;
  signature: string;
  securityToken?: string;
}

/** Parses `host:port/?Action=connect&DBUser=…&X-Amz-…` (throws SyntaxError when it is not one). */
export function parseToken(token: string): ParsedToken {
  const m = /^([^/:?]+):(\d+)\/\?(.*)$/.exec(token);
  if (!m) throw new SyntaxError("Cannot parse token: not host:port/?query");
  const q = new URLSearchParams(m[3]);
  const get = (k: string) => {
    const v = q.get(k);
    if (v === null) throw new SyntaxError(`Cannot parse token: no ${k}`);
    return v;
  };
  const credential = get("X-Amz-Credential");
  const [accessKeyId, scopeDate, region, service, terminator] = credential.split("/");
  if (terminator !== "aws4_request") {
    throw new SyntaxError("Cannot parse token: bad credential scope");
  }
  const amzDate = get("X-Amz-Date");
  const d = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!d) throw new SyntaxError("Cannot parse token: bad X-Amz-Date");
  const date = new Date(Date.UTC(+d[1], +d[2] - 1, +d[3], +d[4], +d[5], +d[6]));
  return {
    host: m[1],
    port: Number(m[2]),
    action: get("Action"),
    user: get("DBUser"),
    algorithm: get("X-Amz-Algorithm"),
    credential,
    accessKeyId,
    scopeDate,
    region,
    service,
    date,
    amzDate,
    expires: Number(get("X-Amz-Expires")),
    signedHeaders: get("X-Amz-SignedHeaders"),
    signature: get("X-Amz-Signature"),
    securityToken: q.get("X-Amz-Security-Token") ?? undefined,
  };
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytes(d: SourceData): Uint8Array | string {
  if (typeof d === "string") return d;
  if (d instanceof ArrayBuffer) return new Uint8Array(d);
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** SHA-256 and HMAC-SHA-256 from node:crypto, in the shape SignatureV4 takes. */
class NodeSha256 {
  #data: (Uint8Array | string)[] = [];
  readonly #secret?: Uint8Array | string;
  constructor(secret?: SourceData) {
    this.#secret = secret === undefined ? undefined : bytes(secret);
  }
  update(data: SourceData): void {
    this.#data.push(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    const h = this.#secret === undefined
      ? createHash("sha256")
      : createHmac("sha256", this.#secret);
    for (const d of this.#data) h.update(d);
    return Promise.resolve(new Uint8Array(h.digest()));
  }
  reset(): void {
    this.#data = [];
  }
}

/** Why a token is not valid for `expect`; undefined when it is. */
export async function tokenProblem(
  token: string,
  expect: TokenExpectation,
): Promise<string | undefined> {
  let t: ParsedToken;
  try {
    t = parseToken(token);
  } catch (e) {
    return (e as Error).message;
  }
  const now = expect.now ?? new Date();
  const checks: [boolean, string][] = [
    [t.host === expect.host, `host ${t.host}, expected ${expect.host}`],
    [t.port === expect.port, `port ${t.port}, expected ${expect.port}`],
    [t.user === expect.user, `user ${t.user}, expected ${expect.user}`],
    [t.region === expect.region, `region ${t.region}, expected ${expect.region}`],
    [t.service === "rds-db", `service ${t.service}`],
    [t.action === "connect", `action ${t.action}`],
    [t.algorithm === "AWS4-HMAC-SHA256", `algorithm ${t.algorithm}`],
    [t.expires === 900, `X-Amz-Expires ${t.expires}, expected 900`],
    [t.signedHeaders === "host", `signed headers ${t.signedHeaders}`],
    [t.scopeDate === t.amzDate.slice(0, 8), "scope date differs from X-Amz-Date"],
    [
      t.accessKeyId === expect.credentials.accessKeyId,
      `access key ${t.accessKeyId}, expected ${expect.credentials.accessKeyId}`,
    ],
    [
      t.securityToken === expect.credentials.sessionToken,
      t.securityToken === undefined ? "no session token" : "unexpected session token",
    ],
    [t.date.getTime() <= now.getTime() + 5000, "signed in the future"],
    [now.getTime() < t.date.getTime() + t.expires * 1000, "expired"],
    [
      expect.maxAgeSeconds === undefined ||
      now.getTime() - t.date.getTime() <= expect.maxAgeSeconds * 1000,
      `older than ${expect.maxAgeSeconds}s`,
    ],
  ];
  for (const [ok, why] of checks) if (!ok) return why;
  const signer = new SignatureV4({
    service: "rds-db",
    region: expect.region,
    credentials: expect.credentials,
    sha256: NodeSha256,
  });
  const again = await signer.presign({
    method: "GET",
    protocol: "https:",
    hostname: expect.host,
    port: expect.port,
    path: "/",
    query: { Action: "connect", DBUser: expect.user },
    headers: { host: `${expect.host}:${expect.port}` },
  }, { expiresIn: 900, signingDate: t.date });
  if (again.query?.["X-Amz-Signature"] !== t.signature) return "signature mismatch";
  return undefined;
}

/** One authentication attempt through the proxy. */
export interface Authentication {
  user: string;
  database: string;
  token: string;
  /** When the password arrived. */
  at: Date;
  /** The access key id the token names. */
  keyId?: string;
  /** Undefined when accepted. */
  refused?: string;
  /** The process on the other end (Linux /proc), e.g. { pid: 1234, program: "pg_dump" }. */
  client?: { pid: number; program: string };
}

/**
 * The process that owns the loopback TCP socket whose local port is
 * `clientPort` (connected to `serverPort`), read from /proc; undefined when
 * it cannot be told (not Linux, or the process is gone).
 */
export async function peerProcess(
  clientPort: number,
  serverPort: number,
): Promise<{ pid: number; program: string } | undefined> {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, "0");
  let inode: string | undefined;
  try {
    for (const line of (await Deno.readTextFile("/proc/net/tcp")).split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (
        f.length > 9 && f[1].endsWith(`:${hex(clientPort)}`) && f[2].endsWith(`:${hex(serverPort)}`)
      ) {
        inode = f[9];
        break;
      }
    }
  } catch {
    return undefined;
  }
  if (!inode) return undefined;
  const target = `socket:[${inode}]`;
  for await (const p of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(p.name)) continue;
    try {
      for await (const fd of Deno.readDir(`/proc/${p.name}/fd`)) {
        if (await Deno.readLink(`/proc/${p.name}/fd/${fd.name}`).catch(() => "") === target) {
          const program = (await Deno.readTextFile(`/proc/${p.name}/comm`)).trim();
          return { pid: Number(p.name), program };
        }
      }
    } catch { /* gone, or not ours to read */ }
  }
  return undefined;
}

export interface IamProxyOptions {
  /** The real server (trusting 127.0.0.1 connections). */
  backendPort: number;
  region: string;
  /** The AWS identities allowed to connect (each token names its access key). */
  identities: TestCredentials[];
  /** The host name clients connect with (and sign for). @default "127.0.0.1" */
  host?: string;
  maxAgeSeconds?: number;
  /** Held before relaying an accepted connection (spreads tool starts over seconds). */
  acceptDelayMs?: number;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

/** Reads exact byte counts from a connection. */
class Reader {
  #buf = new Uint8Array(0);
  constructor(private readonly conn: Deno.Conn) {}
  async exactly(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(64 * 1024);
      const got = await this.conn.read(chunk);
      if (got === null) throw new Error("connection closed");
      const merged = new Uint8Array(this.#buf.length + got);
      merged.set(this.#buf);
      merged.set(chunk.subarray(0, got), this.#buf.length);
      this.#buf = merged;
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }
  /** What was read beyond the last exact read. */
  rest(): Uint8Array {
    return this.#buf;
  }
}

function int32(b: Uint8Array, at = 0): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getInt32(at);
}

function message(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}

/** A FATAL ErrorResponse as RDS sends it for a refused token. */
function refusal(user: string): Uint8Array {
  const fields = [
    ["S", "FATAL"],
    ["V", "FATAL"],
    ["C", "28P01"],
    ["M", `PAM authentication failed for user "${user}"`],
  ];
  const parts = fields.map(([k, v]) => `${k}${v}\0`).join("") + "\0";
  return message("E", new TextEncoder().encode(parts));
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** The proxy. Dispose to stop listening and close every relayed connection. */
export class IamProxy implements AsyncDisposable {
  readonly authentications: Authentication[] = [];
  readonly host: string;
  readonly port: number;
  readonly #listener: Deno.Listener;
  readonly #open = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;

  constructor(readonly options: IamProxyOptions) {
    this.host = options.host ?? "127.0.0.1";
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accepting = this.#accept();
  }

  /** Tokens that were accepted, in order. */
  accepted(): Authentication[] {
    return this.authentications.filter((a) => a.refused === undefined);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // closed
      }
      this.#open.add(conn);
      const task = this.#serve(conn).catch(() => {}).finally(() => {
        this.#open.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
        this.#tasks.delete(task);
      });
      this.#tasks.add(task);
    }
  }

  async #serve(client: Deno.Conn): Promise<void> {
    const r = new Reader(client);
    let startup: Uint8Array;
    for (;;) {
      const len = int32(await r.exactly(4));
      const body = await r.exactly(len - 4);
      const code = int32(body);
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        await writeAll(client, new TextEncoder().encode("N"));
        continue;
      }
      const whole = new Uint8Array(len);
      new DataView(whole.buffer).setInt32(0, len);
      whole.set(body, 4);
      if (code === CANCEL_REQUEST) {
        // Cancel keys are the real server's: pass the request on.
        const backend = await Deno.connect({
          hostname: "127.0.0.1",
          port: this.options.backendPort,
        });
        await writeAll(backend, whole);
        backend.close();
        return;
      }
      startup = whole;
      break;
    }
    // Parameters: key\0value\0 ... \0 after the protocol version.
    const params = new TextDecoder().decode(startup.subarray(8)).split("\0");
    const p: Record<string, string> = {};
    for (let i = 0; i + 1 < params.length; i += 2) if (params[i]) p[params[i]] = params[i + 1];
    const user = p.user ?? "";
    const database = p.database ?? user;

    // AuthenticationCleartextPassword, then the PasswordMessage.
    const ask = new Uint8Array(4);
    new DataView(ask.buffer).setInt32(0, 3);
    await writeAll(client, message("R", ask));
    const type = String.fromCharCode((await r.exactly(1))[0]);
    const plen = int32(await r.exactly(4));
    const pbody = await r.exactly(plen - 4);
    if (type !== "p") throw new Error(`expected a password message, got ${type}`);
    const token = new TextDecoder().decode(pbody).replace(/\0$/, "");
    const at = new Date();
    const peer = await peerProcess((client.remoteAddr as Deno.NetAddr).port, this.port);
    let keyId: string | undefined;
    let session: string | undefined;
    try {
      ({ accessKeyId: keyId, securityToken: session } = parseToken(token));
    } catch { /* tokenProblem says why */ }
    // The identity the token names: its access key (and session token, when
    // identities share a key); valid when valid for one of them.
    const named = this.options.identities.filter((i) => i.accessKeyId === keyId);
    const exact = named.filter((i) => i.sessionToken === session);
    let refused: string | undefined = `unknown access key ${keyId ?? "(not a token)"}`;
    for (const identity of exact.length > 0 ? exact : named) {
      refused = await tokenProblem(token, {
        host: this.host,
        port: this.port,
        user,
        region: this.options.region,
        credentials: identity,
        now: at,
        maxAgeSeconds: this.options.maxAgeSeconds,
      });
      if (refused === undefined) break;
    }
    this.authentications.push({ user, database, token, at, keyId, refused, client: peer });
    if (refused) {
      await writeAll(client, refusal(user));
      return;
    }
    if (this.options.acceptDelayMs) {
      await new Promise((res) => setTimeout(res, this.options.acceptDelayMs));
    }
    const backend = await Deno.connect({ hostname: "127.0.0.1", port: this.options.backendPort });
    this.#open.add(backend);
    try {
      await writeAll(backend, startup);
      const rest = r.rest();
      if (rest.length > 0) await writeAll(backend, rest);
      const pump = async (from: Deno.Conn, to: Deno.Conn) => {
        try {
          await from.readable.pipeTo(to.writable, { preventClose: false });
        } catch { /* either side went away */ }
      };
      // The first side to finish ends the session for both.
      await Promise.race([pump(client, backend), pump(backend, client)]);
    } finally {
      this.#open.delete(backend);
      try {
        backend.close();
      } catch { /* closed */ }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const c of this.#open) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await Promise.allSettled([...this.#tasks]);
  }
}
