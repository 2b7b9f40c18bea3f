// The Exporter service: adapts an ExporterConnector to plakar's protocol.
// Records and their content arrive on one stream (a record, then chunks, then
// an empty chunk); each entry is handed to the connector in order with its
// content as a ReadableStream fed with backpressure, left-over content is
// drained to its empty chunk, every record gets one result, and a connector
// whose finish() rejects fails the Export call.

import { create } from "@bufbuild/protobuf";
import {
  CloseRequestSchema,
  CloseResponseSchema,
  ExportRequestSchema,
  ExportResponseSchema,
  type InitRequest,
  InitRequestSchema,
  type InitResponse,
  InitResponseSchema,
  PingRequestSchema,
  PingResponseSchema,
} from "./gen/exporter_pb.ts";
import { type Record as PbRecord, ResultSchema } from "./gen/connectors_pb.ts";
import type { ExporterConnector, ExporterFactory } from "./connector.ts";
import { recordToEntry } from "./convert.ts";
import { ConnectorSlot } from "./slot.ts";
import { KlosetError } from "./errors.ts";
import { type Call, type Handler, type PluginOptions, serve, type ServeEnd, unary } from "./rpc.ts";
import type { BufferPool } from "../proc/buffer_pool.ts";
import type { Runtime } from "../proc/runtime.ts";

const PATH = "/plakar.exporter.Exporter/";

/** Bytes of content queued ahead of the connector before the call is paused. */
const QUEUE_BYTES = 4 * 1024 * 1024;

/** One file's content, fed from the call with backpressure. */
class ContentFeed {
  readonly stream: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #cancelled = false;
  #pulled: (() => void) | undefined;

  constructor() {
    this.stream = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.#controller = c;
      },
      pull: () => {
        this.#pulled?.();
        this.#pulled = undefined;
      },
      cancel: () => {
        this.#cancelled = true;
        this.#pulled?.();
        this.#pulled = undefined;
      },
    }, { highWaterMark: QUEUE_BYTES, size: (c) => c.byteLength });
  }

  /** Queues a chunk; resolves when there is room for more. */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.#cancelled) return; // the consumer is done: drain
    this.#controller.enqueue(chunk);
    if ((this.#controller.desiredSize ?? 1) <= 0) {
      await new Promise<void>((resolve) => (this.#pulled = resolve));
    }
  }

  /** The consumer is finished (resolved or failed): what still comes is drained. */
  drain(): void {
    this.#cancelled = true;
    this.#pulled?.();
    this.#pulled = undefined;
  }

  end(): void {
    if (!this.#cancelled) {
      try {
        this.#controller.close();
      } catch { /* already closed */ }
    }
  }

  fail(err: Error): void {
    if (!this.#cancelled) {
      try {
        this.#controller.error(err);
      } catch { /* already closed */ }
    }
  }
}

export class ExporterService {
  readonly #slot: ConnectorSlot<ExporterConnector>;
  readonly #abort = new AbortController();
  /** Restores under way: close() lets them finish their cleanup after the abort. */
  readonly #inFlight = new Set<Promise<unknown>>();
  /** The pool request messages come from: each chunk is lent to the connector. */
  readonly #buffers: BufferPool;

  constructor(factory: ExporterFactory, runtime: Runtime) {
    this.#slot = new ConnectorSlot(factory, runtime);
    this.#buffers = runtime.buffers;
  }

  #need(): ExporterConnector {
    return this.#slot.get();
  }

  async init(req: InitRequest): Promise<InitResponse> {
    return create(InitResponseSchema, (await this.#slot.init(req)).info());
  }

  async export(call: Call): Promise<void> {
    const connector = this.#need();
    const signal = this.#abort.signal;
    call.signal.addEventListener("abort", () => this.#abort.abort());
    const respond = async (record: PbRecord, err?: unknown) => {
      const result = create(ResultSchema, {
        header: record,
        error: err === undefined ? "" : KlosetError.from(err).message,
      });
      await call.sendMessage(ExportResponseSchema, create(ExportResponseSchema, { result }));
    };

    let current: { record: PbRecord; feed: ContentFeed; done: Promise<unknown> } | undefined;
    try {
      for await (const req of call.messages(ExportRequestSchema)) {
        const packet = req.packet;
        if (packet.case === "record") {
          if (current) {
            // A new record before the empty chunk: the content ended early.
            current.feed.fail(new Error("the host sent the next record before this file's end"));
            await respond(current.record, await current.done);
            current = undefined;
          }
          const record = packet.value;
          const entry = recordToEntry(record);
          if (record.hasReader) {
            const feed = new ContentFeed();
            const done = this.#track(
              connector.restore(entry, feed.stream, signal).then(
                () => undefined,
                (e) => e ?? new Error("restore failed"),
              ).finally(() => feed.drain()),
            );
            current = { record, feed, done };
          } else {
            const err = await this.#track(
              connector.restore(entry, null, signal).then(
                () => undefined,
                (e) => e,
              ),
            );
            await respond(record, err);
          }
        } else if (packet.case === "chunk") {
          if (!current) continue; // content for nothing: ignore
          if (packet.value.length === 0) {
            current.feed.end();
            const err = await current.done;
            await respond(current.record, err);
            current = undefined;
          } else {
            // The chunk is the one use of its message buffer from here on.
            this.#buffers.lend(packet.value);
            await current.feed.push(packet.value);
          }
        }
      }
      if (current) {
        current.feed.fail(new Error("the host closed the stream in the middle of a file"));
        await respond(current.record, await current.done);
      }
      await connector.finish(signal);
      call.end();
    } catch (e) {
      call.fail(e);
    }
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#inFlight.add(p);
    p.finally(() => this.#inFlight.delete(p)).catch(() => {});
    return p;
  }

  async close(): Promise<void> {
    this.#abort.abort();
    // An aborted restore still cleans up after itself (a recreate drops its
    // temporary database); the host being gone must not cut that short.
    // serve() bounds this wait.
    await Promise.allSettled([...this.#inFlight]);
    await this.#slot.close();
  }

  /** The service's methods by path. */
  routes(): Record<string, Handler> {
    return {
      [PATH + "Init"]: unary(InitRequestSchema, InitResponseSchema, (r) => this.init(r)),
      [PATH + "Ping"]: unary(PingRequestSchema, PingResponseSchema, async () => {
        await this.#need().ping(this.#abort.signal);
        return create(PingResponseSchema, {});
      }),
      [PATH + "Export"]: (call) => this.export(call),
      [PATH + "Close"]: unary(CloseRequestSchema, CloseResponseSchema, async () => {
        await this.close();
        return create(CloseResponseSchema, {});
      }),
    };
  }
}

/** Runs an exporter plugin until the host closes the stream; resolves to how it ended. */
export function serveExporter(factory: ExporterFactory, options: PluginOptions): Promise<ServeEnd> {
  const service = new ExporterService(factory, options.runtime);
  return serve(service.routes(), {
    ...options,
    memory: options.runtime,
    onClose: () => service.close(),
  });
}
