// The Deno permissions the three executables run with, in both kinds of
// build (the flags of `deno compile`, and of `deno run` in the launchers):
// never -A. Each entry says why it is needed; docs/packaging.md lists the same.
//
// Most of them cannot be scoped to a list fixed at build time, because the
// paths, hosts and programs involved are named by the user in the connector's
// configuration, which arrives over the protocol after the process starts.

export interface Permission {
  flag: string;
  why: string;
}

export const PERMISSIONS: Permission[] = [
  {
    flag: "--allow-read",
    why: "PEM files (ssl_cert, ssl_key, ssl_root_cert) for the catalog connection, the password " +
      "file (PGPASSFILE or ~/.pgpass), ~/.aws/config and credentials, and Unix-socket " +
      "directories (host=/run/postgresql), spool_dir: all user-given paths",
  },
  {
    flag: "--allow-write",
    why: "0600 temporary files for inline PEM (ssl_*_data) under the temp directory, dumps " +
      "spooled for jobs=N under spool_dir (a user-given directory, default the temp " +
      "directory), and connecting to a Unix socket, which Deno checks as a write to the " +
      "socket's path (a user-given directory)",
  },
  {
    flag: "--allow-run",
    why: "pg_dump, pg_dumpall, pg_restore, psql and pg_basebackup, from PATH or from " +
      "pg_bin_dir (a user-given directory), so no list of programs can be fixed in advance",
  },
  {
    flag: "--allow-net",
    why: "catalog queries (npm:pg) to the user-given server, and for postgres+aws:// the AWS " +
      "credential endpoints (STS, SSO, the EC2 and ECS metadata services)",
  },
  {
    flag: "--allow-env",
    why: "libpq's PG* variables, HOME, and the AWS SDK's credential chain, which reads AWS_* and " +
      "other variables by name (a name left out fails at run time, not at start)",
  },
  {
    flag: "--allow-sys=uid,gid,userInfo,homedir,osRelease,statfs",
    why: "the operating-system user and home (libpq's default user and ~/.pgpass), the " +
      "AWS SDK's home directory and user agent, and the free space of spool_dir (statfs) " +
      "before a dump is spooled there for jobs=N",
  },
  {
    flag: "--allow-ffi",
    why: "libc's fcntl(F_SETPIPE_SZ) and readlink to widen a tool's output pipe to 1 MiB " +
      "(src/proc/pipes.ts; Deno refuses /proc/*/fd to anything short of -A). Deno resolves a " +
      "scoped --allow-ffi=libc.so.6 against the working directory, so it cannot be scoped to " +
      "the library the dynamic loader finds",
  },
];

/** The flags, in order. */
export function permissionFlags(): string[] {
  return PERMISSIONS.map((p) => p.flag);
}
