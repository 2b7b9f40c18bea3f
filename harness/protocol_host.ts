// A protocol test host: starts a plugin executable and speaks plakar's side
// of the protocol to it (gRPC over HTTP/2 with prior knowledge on the child's
// stdin/stdout), so tests and the benchmark can drive an importer or an
// exporter without plakar and measure the plugin process itself.

import * as http2 from "node:http2";
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import { create, fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import * as imp from "../src/kloset/gen/importer_pb.ts";
import * as exp from "../src/kloset/gen/exporter_pb.ts";
import { type Record as PbRecord, RecordSchema } from "../src/kloset/gen/connectors_pb.ts";
import { fileInfoToPb } from "../src/kloset/convert.ts";

/** A gRPC error returned by the plugin. */
export class StatusError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

function frame(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

/** Splits a byte stream of gRPC length-prefixed messages. */
async function* messages(stream: AsyncIterable<Buffer>): AsyncGenerator<Uint8Array> {
  let buf: Buffer = Buffer.alloc(0);
  for await (const chunk of stream) {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (buf.length < 5 + len) break;
      yield buf.subarray(5, 5 + len);
      buf = buf.subarray(5 + len);
    }
  }
}

export interface Call {
  send(bytes: Uint8Array): Promise<void>;
  closeSend(): void;
  responses(): AsyncGenerator<Uint8Array>;
  /** Resolves with the status when trailers arrive; rejects with StatusError on a non-OK status. */
  status: Promise<void>;
}

/** A running plugin process and an HTTP/2 session to it. */
export class PluginHost implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly #session: http2.ClientHttp2Session;
  stderr = "";

  constructor(executable: string, args: string[] = [], env?: Record<string, string>) {
    const child = new Deno.Command(executable, {
      args,
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child = child;
    (async () => {
      const dec = new TextDecoder();
      for await (const c of child.stderr) this.stderr += dec.decode(c, { stream: true });
    })();
    const writer = this.child.stdin.getWriter();
    const reader = this.child.stdout.getReader();
    const duplex = new Duplex({
      read() {
        reader.read().then(({ value, done }) => this.push(done ? null : Buffer.from(value)));
      },
      write(chunk, _enc, cb) {
        writer.write(chunk).then(() => cb(), cb);
      },
      final(cb) {
        writer.close().then(() => cb(), () => cb());
      },
    });
    this.#session = http2.connect("http://plugin", { createConnection: () => duplex as never });
    this.#session.on("error", () => {});
  }

  get pid(): number {
    return this.child.pid;
  }

  call(path: string): Call {
    const req = this.#session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    let resolveStatus!: () => void;
    let rejectStatus!: (e: Error) => void;
    const status = new Promise<void>((res, rej) => {
      resolveStatus = res;
      rejectStatus = rej;
    });
    status.catch(() => {});
    const onHeaders = (h: http2.IncomingHttpHeaders) => {
      const code = h["grpc-status"];
      if (code === undefined) return;
      if (String(code) === "0") resolveStatus();
      else {rejectStatus(
          new StatusError(Number(code), decodeURIComponent(String(h["grpc-message"] ?? ""))),
        );}
    };
    req.on("response", onHeaders);
    req.on("trailers", onHeaders);
    req.on("error", (e) => rejectStatus(e));
    req.on("close", () => rejectStatus(new Error("stream closed without a status")));
    return {
      send: (bytes) =>
        new Promise((resolve, reject) =>
          req.write(frame(bytes), (e) => (e ? reject(e) : resolve()))
        ),
      closeSend: () => req.end(),
      // Leaving a loop over responses early must not destroy the stream.
      responses: () =>
        messages(
          (req as unknown as {
            iterator(o: { destroyOnReturn: boolean }): AsyncIterable<Buffer>;
          }).iterator({ destroyOnReturn: false }),
        ),
      status,
    };
  }

  async unary<Req extends Message, Res extends Message>(
    path: string,
    reqSchema: GenMessage<Req>,
    req: Req,
    resSchema: GenMessage<Res>,
  ): Promise<Res> {
    const c = this.call(path);
    await c.send(toBinary(reqSchema, req));
    c.closeSend();
    let out: Res | undefined;
    for await (const m of c.responses()) out = fromBinary(resSchema, m);
    await c.status;
    return out ?? create(resSchema);
  }

  async close(): Promise<void> {
    this.#session.close();
    await this.child.status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill();
    } catch { /* exited */ }
    this.#session.destroy();
    await this.child.status.catch(() => {});
  }
}

const OPTIONS = { hostname: "test", os: "linux", arch: "amd64", cwd: "/", maxconcurrency: 1n };

/** Drives an importer: Init, Import (acking each record), Open every file through `onFile`. */
export async function runImport(
  host: PluginHost,
  proto: string,
  config: Record<string, string>,
  onChunk: (path: string, chunk: Uint8Array) => void = () => {},
): Promise<{ records: PbRecord[]; errors: Map<string, string> }> {
  await host.unary(
    "/importer.Importer/Init",
    imp.InitRequestSchema,
    create(imp.InitRequestSchema, { options: OPTIONS, proto, config }),
    imp.InitResponseSchema,
  );
  const call = host.call("/importer.Importer/Import");
  const records: PbRecord[] = [];
  const errors = new Map<string, string>();
  for await (const m of call.responses()) {
    const res = fromBinary(imp.ImportResponseSchema, m);
    if (res.finished) break;
    const rec = res.record!;
    records.push(rec);
    if (rec.hasReader) {
      const open = host.call("/importer.Importer/Open");
      await open.send(
        toBinary(imp.OpenRequestSchema, create(imp.OpenRequestSchema, { record: rec })),
      );
      open.closeSend();
      for await (const c of open.responses()) {
        onChunk(rec.pathname, fromBinary(imp.OpenResponseSchema, c).chunk);
      }
      try {
        await open.status;
      } catch (e) {
        errors.set(rec.pathname, (e as Error).message);
      }
    }
    await call.send(toBinary(
      imp.ImportRequestSchema,
      create(imp.ImportRequestSchema, {
        result: { header: rec, error: errors.get(rec.pathname) ?? "" },
      }),
    ));
  }
  call.closeSend();
  for await (const _ of call.responses()) { /* drain */ }
  await call.status;
  await host.unary(
    "/importer.Importer/Close",
    imp.CloseRequestSchema,
    create(imp.CloseRequestSchema),
    imp.CloseResponseSchema,
  );
  return { records, errors };
}

/** One file to export: its path and its content as a stream of chunks. */
export interface ExportFile {
  pathname: string;
  content?: AsyncIterable<Uint8Array>;
}

/** Drives an exporter: Init, Export each file (1 MiB chunks, empty chunk at the end), Close. */
export async function runExport(
  host: PluginHost,
  proto: string,
  config: Record<string, string>,
  files: ExportFile[],
): Promise<Map<string, string>> {
  await host.unary(
    "/plakar.exporter.Exporter/Init",
    exp.InitRequestSchema,
    create(exp.InitRequestSchema, { options: OPTIONS, proto, config }),
    exp.InitResponseSchema,
  );
  const call = host.call("/plakar.exporter.Exporter/Export");
  const results = new Map<string, string>();
  const reading = (async () => {
    for await (const m of call.responses()) {
      const r = fromBinary(exp.ExportResponseSchema, m).result!;
      results.set(r.header!.pathname, r.error);
    }
  })();
  const send = (packet: exp.ExportRequest["packet"]) =>
    call.send(toBinary(exp.ExportRequestSchema, create(exp.ExportRequestSchema, { packet })));
  for (const f of files) {
    const record = create(RecordSchema, {
      pathname: f.pathname,
      hasReader: f.content !== undefined,
      fileInfo: fileInfoToPb({
        name: f.pathname.split("/").pop()!,
        size: 0,
        mode: 0o444,
        modTime: new Date(),
      }),
    });
    await send({ case: "record", value: record });
    if (f.content) {
      for await (const chunk of f.content) await send({ case: "chunk", value: chunk });
      await send({ case: "chunk", value: new Uint8Array(0) });
    }
  }
  call.closeSend();
  await reading;
  let status: Error | undefined;
  await call.status.catch((e) => (status = e));
  await host.unary(
    "/plakar.exporter.Exporter/Close",
    exp.CloseRequestSchema,
    create(exp.CloseRequestSchema),
    exp.CloseResponseSchema,
  );
  if (status) results.set("(status)", status.message);
  return results;
}

/** Reads a file as 1 MiB chunks, as plakar sends content. */
export async function* fileChunks(path: string, size = 1024 * 1024): AsyncGenerator<Uint8Array> {
  using f = await Deno.open(path);
  for (;;) {
    const buf = new Uint8Array(size);
    let n = 0;
    while (n < size) {
      const r = await f.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    if (n === 0) return;
    yield buf.subarray(0, n);
    if (n < size) return;
  }
}
