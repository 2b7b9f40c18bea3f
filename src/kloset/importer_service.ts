// The Importer service: adapts an ImporterConnector to plakar's protocol.
// It owns what the connector should not have to know: one record per entry
// then `finished`, acknowledgements read until the host half-closes, each
// entry's content held until Open takes it or its ack releases it, content
// streamed in 1 MiB chunks with backpressure, and the failure policy (a failed
// Open also fails the Import call, so plakar commits no snapshot).

import type * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { once } from "node:events";
import { create } from "@bufbuild/protobuf";
import {
  CloseRequestSchema,
  CloseResponseSchema,
  type ImportRequest,
  ImportRequestSchema,
  type ImportResponse,
  ImportResponseSchema,
  type InitRequest,
  InitRequestSchema,
  type InitResponse,
  InitResponseSchema,
  type OpenRequest,
  OpenRequestSchema,
  type OpenResponse,
  OpenResponseSchema,
  PingRequestSchema,
  PingResponseSchema,
} from "./gen/importer_pb.ts";
import type { ImportEntry, ImporterConnector, ImporterFactory } from "./connector.ts";
import { entryToRecord, hostOptions } from "./convert.ts";
import { Code, KlosetError, oneLine } from "./errors.ts";
import { method, serveStdio, toStatus, unary } from "./grpc.ts";

/** Bytes of content per Open message, as plakar's SDK sends them. */
export const CHUNK_SIZE = 1024 * 1024;
/** Chunks handed to gRPC and not yet written out, at most. */
const IN_FLIGHT = 3;
/** Room for the protobuf tag and length before a chunk (tag + varint of 2^20). */
const HEADER_ROOM = 4;

/**
 * OpenResponse{chunk} encoded in place: the chunk is copied once, into a
 * buffer that already has room for the field header, instead of being copied
 * again by a generic encoder.
 */
export class EncodedChunk {
  /** `buffer` is the whole frame buffer, to hand back to the pool once written. */
  constructor(readonly frame: Buffer, readonly buffer: Buffer) {}
}

/** Frame buffers reused once gRPC has copied them out, so memory does not churn. */
export class FramePool {
  readonly #free: Buffer[] = [];
  constructor(readonly size: number) {}
  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }
  give(b: Buffer): void {
    if (this.#free.length < IN_FLIGHT + 1) this.#free.push(b);
  }
}

function encodeOpenResponse(m: OpenResponse | EncodedChunk): Buffer {
  if (m instanceof EncodedChunk) return m.frame;
  const b = m.chunk;
  const header = [0x0a, ...varint(b.length)];
  const out = Buffer.allocUnsafe(header.length + b.length);
  out.set(header, 0);
  out.set(b, header.length);
  return out;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/**
 * Fills 1 MiB frames from a byte stream and yields them encoded as
 * OpenResponse. A byte stream (a tool's stdout) is read straight into the
 * frame buffer; any other stream is copied into it.
 */
export async function* frames(
  stream: ReadableStream<Uint8Array>,
  chunkSize = CHUNK_SIZE,
  pool = new FramePool(HEADER_ROOM + chunkSize),
): AsyncGenerator<EncodedChunk> {
  let buf = pool.take();
  let len = 0;
  const seal = () => {
    const h = varint(len);
    const start = HEADER_ROOM - h.length - 1;
    buf[start] = 0x0a;
    buf.set(h, start + 1);
    const frame = new EncodedChunk(buf.subarray(start, HEADER_ROOM + len), buf);
    buf = pool.take();
    len = 0;
    return frame;
  };
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch { /* not a byte stream */ }
  if (byob) {
    try {
      for (;;) {
        const view = new Uint8Array(buf.buffer, HEADER_ROOM + len, chunkSize - len);
        const { value, done } = await byob.read(view);
        // The read hands the same memory back in a new ArrayBuffer.
        if (value) buf = Buffer.from(value.buffer, 0, HEADER_ROOM + chunkSize);
        if (done) break;
        len += value.length;
        if (len === chunkSize) yield seal();
      }
      if (len > 0) yield seal();
    } finally {
      byob.releaseLock();
    }
    return;
  }
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      let off = 0;
      while (off < value.length) {
        const n = Math.min(chunkSize - len, value.length - off);
        buf.set(value.subarray(off, off + n), HEADER_ROOM + len);
        len += n;
        off += n;
        if (len === chunkSize) yield seal();
      }
    }
    if (len > 0) yield seal();
  } finally {
    reader.releaseLock();
  }
}

export const IMPORTER_SERVICE: grpc.ServiceDefinition = {
  Init: method("/importer.Importer/Init", InitRequestSchema, InitResponseSchema),
  Ping: method("/importer.Importer/Ping", PingRequestSchema, PingResponseSchema),
  Import: method("/importer.Importer/Import", ImportRequestSchema, ImportResponseSchema, {
    requestStream: true,
    responseStream: true,
  }),
  Open: method(
    "/importer.Importer/Open",
    OpenRequestSchema,
    OpenResponseSchema,
    { responseStream: true },
    encodeOpenResponse as (m: OpenResponse) => Buffer,
  ),
  Close: method("/importer.Importer/Close", CloseRequestSchema, CloseResponseSchema),
};

/** One line on stderr: plakar shows a failed Import only as "EOF". */
function report(line: string): void {
  console.error(`postgresql: error: ${oneLine(line)}`);
}

/** The service state for one plugin process (one Init). */
export class ImporterService {
  readonly #factory: ImporterFactory;
  #connector: ImporterConnector | undefined;
  readonly #held = new Map<string, ImportEntry>();
  readonly #abort = new AbortController();
  #failImport: ((err: KlosetError) => void) | undefined;
  #openFailure: KlosetError | undefined;

  constructor(factory: ImporterFactory) {
    this.#factory = factory;
  }

  #need(): ImporterConnector {
    if (!this.#connector) throw new KlosetError(Code.FAILED_PRECONDITION, "Init was not called");
    return this.#connector;
  }

  async init(req: InitRequest): Promise<InitResponse> {
    this.#connector = await this.#factory({
      proto: req.proto,
      config: { ...req.config },
      options: hostOptions(req.options),
    });
    const info = this.#connector.info();
    return create(InitResponseSchema, info);
  }

  async ping(): Promise<void> {
    await this.#need().ping(this.#abort.signal);
  }

  /** The Import call: records out, acks in. */
  import(call: grpc.ServerDuplexStream<ImportRequest, ImportResponse>): void {
    const connector = this.#need();
    let ended = false;
    let produced = false;
    let hostDone = false;
    const fail = (err: KlosetError) => {
      if (ended) return;
      ended = true;
      call.emit("error", toStatus(err));
    };
    this.#failImport = fail;
    if (this.#openFailure) fail(this.#openFailure);
    const maybeEnd = () => {
      if (!ended && produced && hostDone) {
        ended = true;
        call.end();
      }
    };
    call.on("data", (req: ImportRequest) => {
      const header = req.result?.header;
      if (!header) return;
      if (req.result!.error) {
        report(`plakar could not store ${header.pathname}: ${req.result!.error}`);
      }
      // The ack releases a reader the host never opened.
      const held = this.#held.get(header.pathname);
      if (held) {
        this.#held.delete(header.pathname);
        Promise.resolve(held.release?.()).catch(() => {});
      }
    });
    call.on("end", () => {
      hostDone = true;
      maybeEnd();
    });
    call.on("cancelled", () => {
      ended = true;
      this.#abort.abort();
    });
    call.on("error", () => {});

    (async () => {
      try {
        for await (const entry of connector.entries(this.#abort.signal)) {
          if (ended) return;
          if (entry.open && !entry.error) this.#held.set(entry.pathname, entry);
          const msg = create(ImportResponseSchema, { record: entryToRecord(entry) });
          if (!call.write(msg)) await once(call, "drain");
        }
        if (ended) return;
        call.write(create(ImportResponseSchema, { finished: true }));
        produced = true;
        maybeEnd();
      } catch (e) {
        const err = KlosetError.from(e);
        report(err.message);
        fail(err);
      }
    })();
  }

  /** The Open call: the held entry's content as chunks. */
  async open(call: grpc.ServerWritableStream<OpenRequest, OpenResponse>): Promise<void> {
    const connector = this.#need();
    const pathname = call.request.record?.pathname ?? "";
    const entry = this.#held.get(pathname);
    if (!entry?.open) {
      call.emit(
        "error",
        toStatus(new KlosetError(Code.NOT_FOUND, `no such file to open: ${pathname}`)),
      );
      return;
    }
    this.#held.delete(pathname);
    let stream: ReadableStream<Uint8Array>;
    try {
      stream = await entry.open();
    } catch (e) {
      const err = KlosetError.from(e);
      report(`${pathname}: ${err.message}`);
      call.emit("error", toStatus(err));
      this.#failWhole(connector, pathname, err);
      return;
    }
    let cancelled = false;
    call.on("cancelled", () => {
      cancelled = true;
      stream.cancel().catch(() => {});
    });
    call.on("error", () => {});
    try {
      // At most IN_FLIGHT chunks wait in gRPC's buffers: memory stays flat
      // whatever the file's size, and the producer (pg_dump) is paced by
      // plakar's reading.
      const inFlight: Promise<void>[] = [];
      const pool = new FramePool(HEADER_ROOM + CHUNK_SIZE);
      for await (const frame of frames(stream, CHUNK_SIZE, pool)) {
        if (cancelled) return;
        inFlight.push(
          new Promise<void>((resolve) =>
            call.write(frame as unknown as OpenResponse, () => {
              pool.give(frame.buffer);
              resolve();
            })
          ),
        );
        if (inFlight.length >= IN_FLIGHT) await inFlight.shift();
      }
      await Promise.all(inFlight);
      call.end();
    } catch (e) {
      await stream.cancel().catch(() => {});
      if (cancelled) return;
      const err = KlosetError.from(e);
      report(`${pathname}: ${err.message}`);
      call.emit("error", toStatus(err));
      this.#failWhole(connector, pathname, err);
    }
  }

  /** plakar would otherwise commit a snapshot with this file empty and exit 0. */
  #failWhole(connector: ImporterConnector, pathname: string, err: KlosetError): void {
    if (!connector.policy().failImportOnOpenError) return;
    const whole = new KlosetError(
      Code.ABORTED,
      `backup aborted: ${pathname} failed: ${err.message}`,
    );
    this.#openFailure ??= whole;
    this.#failImport?.(whole);
  }

  async close(): Promise<void> {
    this.#abort.abort();
    for (const held of this.#held.values()) await Promise.resolve(held.release?.()).catch(() => {});
    this.#held.clear();
    await this.#connector?.close();
    this.#connector = undefined;
  }

  /** grpc-js handlers. */
  handlers(): grpc.UntypedServiceImplementation {
    return {
      Init: unary((req: InitRequest) => this.init(req)),
      Ping: unary(async () => {
        await this.ping();
        return create(PingResponseSchema, {});
      }),
      Import: (call: grpc.ServerDuplexStream<ImportRequest, ImportResponse>) => this.import(call),
      Open: (call: grpc.ServerWritableStream<OpenRequest, OpenResponse>) => {
        this.open(call).catch((e) => call.emit("error", toStatus(e)));
      },
      Close: unary(async () => {
        await this.close();
        return create(CloseResponseSchema, {});
      }),
    };
  }
}

/** Runs an importer plugin on stdin/stdout until the host closes the stream. */
export async function serveImporter(factory: ImporterFactory): Promise<void> {
  const service = new ImporterService(factory);
  await serveStdio(IMPORTER_SERVICE, service.handlers(), () => service.close());
}
