// The Importer service: adapts an ImporterConnector to plakar's protocol.
// It owns what the connector should not have to know: one record per entry
// then `finished`, acknowledgements read until the host half-closes, each
// entry's content held until Open takes it or its ack releases it, content
// streamed in 1 MiB chunks with backpressure, and the failure policy (a failed
// Open also fails the Import call, so plakar commits no snapshot).

import { create, fromBinary } from "@bufbuild/protobuf";
import {
  CloseRequestSchema,
  CloseResponseSchema,
  ImportRequestSchema,
  ImportResponseSchema,
  type InitRequest,
  InitRequestSchema,
  type InitResponse,
  InitResponseSchema,
  OpenRequestSchema,
  PingRequestSchema,
  PingResponseSchema,
} from "./gen/importer_pb.ts";
import type { EntryContent, ImportEntry, ImporterConnector, ImporterFactory } from "./connector.ts";
import { entryToRecord } from "./convert.ts";
import { ConnectorSlot } from "./slot.ts";
import { Code, KlosetError } from "./errors.ts";
// plakar shows a failed Import only as "EOF": the reason goes to stderr.
import { error as report } from "../log.ts";
import { type Call, type Handler, type PluginOptions, serve, type ServeEnd, unary } from "./rpc.ts";
import { BufferPool } from "../proc/buffer_pool.ts";
import type { Runtime } from "../proc/runtime.ts";

/** Bytes of content per Open message, as plakar's SDK sends them. */
export const CHUNK_SIZE = 1024 * 1024;
/** Chunks read ahead of the connection, at most. */
const IN_FLIGHT = 3;

/** The protobuf header of OpenResponse{chunk} for a chunk of `len` bytes (field 1, bytes). */
export function chunkHeader(len: number): Uint8Array {
  const out = [0x0a];
  while (len > 0x7f) {
    out.push((len & 0x7f) | 0x80);
    len = Math.floor(len / 128);
  }
  out.push(len);
  return Uint8Array.from(out);
}

/**
 * Reads a stream in chunks of `chunkSize` bytes (the last may be shorter),
 * each a view of a whole buffer from `pool` (of `chunkSize`-byte buffers) to
 * recycle once sent. A byte stream
 * (a tool's stdout) is read straight into the buffer; any other is copied.
 * A stream left before its end (the consumer stopped, or `signal` aborted
 * while a read waits on a silent producer) is cancelled, never just
 * unlocked: cancelling is what stops the producer (kills pg_dump).
 */
export async function* chunks(
  stream: ReadableStream<Uint8Array>,
  chunkSize = CHUNK_SIZE,
  pool = new BufferPool(chunkSize, IN_FLIGHT + 1),
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  // A buffer is taken only when bytes are about to land in it, and one left
  // unused is given back: a cluster's thousands of small files would
  // otherwise each cost a spare buffer to the collector.
  let buf: Uint8Array | undefined;
  let len = 0;
  const seal = () => {
    const chunk = buf!.subarray(0, len);
    buf = undefined;
    len = 0;
    return chunk;
  };
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch { /* not a byte stream */ }
  const reader = byob ?? stream.getReader();
  let finished = false;
  const onAbort = () => void reader.cancel(signal?.reason).catch(() => {});
  signal?.addEventListener("abort", onAbort);
  try {
    if (signal?.aborted) return;
    if (byob) {
      for (;;) {
        buf ??= pool.take(chunkSize);
        const { value, done } = await byob.read(new Uint8Array(buf.buffer, len, chunkSize - len));
        // The read hands the same memory back in a new ArrayBuffer.
        if (value) buf = new Uint8Array(value.buffer);
        if (done) break;
        len += value.length;
        if (len === chunkSize) yield seal();
      }
    } else {
      const plain = reader as ReadableStreamDefaultReader<Uint8Array>;
      for (;;) {
        const { value, done } = await plain.read();
        if (done) break;
        let off = 0;
        while (off < value.length) {
          buf ??= pool.take(chunkSize);
          const n = Math.min(chunkSize - len, value.length - off);
          buf.set(value.subarray(off, off + n), len);
          len += n;
          off += n;
          if (len === chunkSize) yield seal();
        }
      }
    }
    finished = true;
    if (len > 0) yield seal();
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (buf && len === 0) pool.recycle(buf);
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

const PATH = "/importer.Importer/";

/** The service state for one plugin process (one Init). */
export class ImporterService {
  readonly #slot: ConnectorSlot<ImporterConnector>;
  readonly #held = new Map<string, ImportEntry>();
  readonly #abort = new AbortController();
  /** One pool for every Open: a physical backup opens thousands of files. */
  readonly #pool = new BufferPool(CHUNK_SIZE, 4 * IN_FLIGHT);
  #failImport: ((err: KlosetError) => void) | undefined;
  #openFailure: KlosetError | undefined;

  constructor(factory: ImporterFactory, runtime: Runtime) {
    this.#slot = new ConnectorSlot(factory, runtime);
  }

  #need(): ImporterConnector {
    return this.#slot.get();
  }

  async init(req: InitRequest): Promise<InitResponse> {
    return create(InitResponseSchema, (await this.#slot.init(req)).info());
  }

  async ping(): Promise<void> {
    await this.#need().ping(this.#abort.signal);
  }

  /** The Import call: records out, acks in. */
  async import(call: Call): Promise<void> {
    const connector = this.#need();
    let ended = false;
    let produced = false;
    let hostDone = false;
    const fail = (err: KlosetError) => {
      if (ended) return;
      ended = true;
      call.fail(err);
    };
    this.#failImport = fail;
    if (this.#openFailure) fail(this.#openFailure);
    const maybeEnd = () => {
      if (!ended && produced && hostDone) {
        ended = true;
        call.end();
      }
    };
    call.signal.addEventListener("abort", () => {
      ended = true;
      this.#abort.abort();
    });

    // Acks, read until the host half-closes.
    (async () => {
      try {
        for await (const req of call.messages(ImportRequestSchema)) {
          const header = req.result?.header;
          if (!header) continue;
          if (req.result!.error) {
            report(`plakar could not store ${header.pathname}: ${req.result!.error}`);
          }
          // The ack releases a reader the host never opened.
          const held = this.#held.get(header.pathname);
          if (held) {
            this.#held.delete(header.pathname);
            Promise.resolve(held.release?.()).catch(() => {});
          }
        }
        hostDone = true;
        maybeEnd();
      } catch (e) {
        fail(KlosetError.from(e));
      }
    })();

    try {
      for await (const entry of connector.entries(this.#abort.signal)) {
        if (ended) return;
        if (entry.open && !entry.error) this.#held.set(entry.pathname, entry);
        await call.sendMessage(
          ImportResponseSchema,
          create(ImportResponseSchema, { record: entryToRecord(entry) }),
        );
      }
      if (ended) return;
      await call.sendMessage(
        ImportResponseSchema,
        create(ImportResponseSchema, { finished: true }),
      );
      produced = true;
      maybeEnd();
    } catch (e) {
      const err = KlosetError.from(e);
      // A failed Open has said it already (the same tool's failure ends both).
      if (!this.#openFailure) report(err.message);
      fail(err);
    }
  }

  /** The Open call: the held entry's content as chunks. */
  async open(call: Call): Promise<void> {
    const connector = this.#need();
    const req = await call.read();
    const pathname = req ? fromBinary(OpenRequestSchema, req).record?.pathname ?? "" : "";
    const entry = this.#held.get(pathname);
    if (!entry?.open) {
      call.fail(new KlosetError(Code.NOT_FOUND, `no such file to open: ${pathname}`));
      return;
    }
    this.#held.delete(pathname);
    let stream: EntryContent;
    try {
      stream = await entry.open();
    } catch (e) {
      const err = KlosetError.from(e);
      report(`${pathname}: ${err.message}`);
      call.fail(err);
      this.#failWhole(connector, pathname, err);
      return;
    }
    if (stream instanceof Uint8Array) {
      // In memory already: sent as it is, a chunk's size at a time.
      for (let off = 0; off < stream.length; off += CHUNK_SIZE) {
        const chunk = stream.subarray(off, off + CHUNK_SIZE);
        await call.send(chunkHeader(chunk.length), chunk);
      }
      call.end();
      return;
    }
    try {
      // At most IN_FLIGHT chunks are read ahead of the connection: memory
      // stays flat whatever the file's size, and the producer (pg_dump) is
      // paced by plakar's reading.
      const inFlight: Promise<void>[] = [];
      const pool = this.#pool;
      for await (const chunk of chunks(stream, CHUNK_SIZE, pool, call.signal)) {
        if (call.signal.aborted) return;
        inFlight.push(
          call.send(chunkHeader(chunk.length), chunk).then(() => {
            pool.recycle(chunk);
          }),
        );
        if (inFlight.length >= IN_FLIGHT) await inFlight.shift();
      }
      await Promise.all(inFlight);
      call.end();
    } catch (e) {
      // chunks() has cancelled the stream (the tool is stopped) before this.
      if (call.signal.aborted) return;
      const err = KlosetError.from(e);
      report(`${pathname}: ${err.message}`);
      call.fail(err);
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
    await this.#slot.close();
  }

  /** The service's methods by path. */
  routes(): Record<string, Handler> {
    return {
      [PATH + "Init"]: unary(InitRequestSchema, InitResponseSchema, (r) => this.init(r)),
      [PATH + "Ping"]: unary(PingRequestSchema, PingResponseSchema, async () => {
        await this.ping();
        return create(PingResponseSchema, {});
      }),
      [PATH + "Import"]: (call) => this.import(call),
      [PATH + "Open"]: (call) => this.open(call),
      [PATH + "Close"]: unary(CloseRequestSchema, CloseResponseSchema, async () => {
        await this.close();
        return create(CloseResponseSchema, {});
      }),
    };
  }
}

/** Runs an importer plugin until the host closes the stream; resolves to how it ended. */
export function serveImporter(factory: ImporterFactory, options: PluginOptions): Promise<ServeEnd> {
  const service = new ImporterService(factory, options.runtime);
  return serve(service.routes(), {
    ...options,
    memory: options.runtime,
    onClose: () => service.close(),
  });
}
