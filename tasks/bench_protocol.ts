// Benchmark helpers: run the packaged plugin executables under the protocol
// test host, read or feed data as fast as possible, and meter the plugin
// process itself (peak RSS, CPU seconds) from /proc.

import { build } from "../harness/build.ts";
import { fileChunks, PluginHost, runExport, runImport } from "../harness/protocol_host.ts";

const PKG = new URL("../dist/pkg/", import.meta.url).pathname;
let built: Promise<unknown> | undefined;

/** Peak RSS and CPU time of one process, sampled from /proc while it runs. */
export class ProcessMeter {
  peakRssBytes = 0;
  cpuSeconds = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #ticks = 100; // USER_HZ on Linux

  constructor(readonly pid: number) {}

  sample(): void {
    try {
      const status = Deno.readTextFileSync(`/proc/${this.pid}/status`);
      const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
      if (hwm) this.peakRssBytes = Math.max(this.peakRssBytes, Number(hwm[1]) * 1024);
      const stat = Deno.readTextFileSync(`/proc/${this.pid}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      this.cpuSeconds = (Number(fields[11]) + Number(fields[12])) / this.#ticks;
    } catch { /* exited */ }
  }

  start(): this {
    this.#timer = setInterval(() => this.sample(), 25);
    return this;
  }

  stop(): void {
    this.sample();
    clearInterval(this.#timer);
  }
}

async function executable(name: string): Promise<string> {
  built ??= build("launchers", false);
  await built;
  return `${PKG}${name}`;
}

const READER_SRC = new URL("./bench_reader/", import.meta.url).pathname;
let readerBuilt: Promise<string | null> | undefined;

/**
 * Builds tasks/bench_reader (Go) once: a reader that speaks plakar's side of
 * the protocol natively, so the test host is not what limits the figure.
 * Null when Go is not installed.
 */
export function goReader(): Promise<string | null> {
  readerBuilt ??= (async () => {
    const home = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`;
    const out = `${home}/plakar-postgresql/bench_reader`;
    try {
      const r = await new Deno.Command("go", {
        args: ["build", "-o", out, "."],
        cwd: READER_SRC,
        env: { GOFLAGS: "-mod=mod" },
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      return r.success ? out : null;
    } catch {
      return null; // no Go
    }
  })();
  return readerBuilt;
}

export interface ReaderFigures {
  seconds: number;
  bytes: number;
  peakRssBytes: number;
  cpuSeconds: number;
}

/**
 * Backs up `uri` through the importer plugin read by the Go reader: `lean`
 * is a minimal HTTP/2 client that only counts bytes (the plugin's own
 * throughput); otherwise plakar's own client code (grpc-go and
 * integration-grpc's importer) reads into io.Discard.
 */
export async function serveDumpToGoReader(
  reader: string,
  uri: string,
  lean: boolean,
  plugin = "postgresqlImporter",
  proto = "postgres",
): Promise<ReaderFigures> {
  const r = await new Deno.Command(reader, {
    args: [
      ...(lean ? ["-lean"] : []),
      "-plugin",
      await executable(plugin),
      "-proto",
      proto,
      `location=${uri}`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!r.success) throw new Error("bench_reader failed");
  return JSON.parse(new TextDecoder().decode(r.stdout));
}

/** Backs up `uri` through the importer plugin, reading every file as fast as possible. */
export async function serveDumpOverProtocol(uri: string): Promise<ProcessMeter> {
  await using host = new PluginHost(await executable("postgresqlImporter"));
  const meter = new ProcessMeter(host.pid).start();
  let bytes = 0;
  try {
    // Close is sent by runImport; sample before the process exits.
    const { errors } = await runImport(host, "postgres", { location: uri }, (_p, c) => {
      bytes += c.length;
      if (bytes % (64 * 1024 * 1024) < c.length) meter.sample();
    });
    if (errors.size) throw new Error([...errors.values()].join("; "));
  } finally {
    meter.stop();
  }
  return meter;
}

/** Restores `file` as `pathname` through the exporter plugin into `uri`. */
export async function serveRestoreOverProtocol(
  uri: string,
  file: string,
  pathname: string,
): Promise<ProcessMeter> {
  await using host = new PluginHost(await executable("postgresqlExporter"));
  const meter = new ProcessMeter(host.pid).start();
  try {
    const results = await runExport(host, "postgres", { location: uri, no_owner: "true" }, [
      { pathname: "/" },
      { pathname, content: fileChunks(file) },
    ]);
    const failed = [...results.entries()].filter(([, e]) => e);
    if (failed.length) throw new Error(failed.map(([p, e]) => `${p}: ${e}`).join("; "));
  } finally {
    meter.stop();
  }
  return meter;
}
