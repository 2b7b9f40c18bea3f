// gRPC glue shared by both services: method definitions from protobuf-es
// schemas, the server on stdin/stdout, and errors turned into statuses.

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import { fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import { KlosetError } from "./errors.ts";

function asBuffer(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

export function serializer<T extends Message>(schema: GenMessage<T>): (m: T) => Buffer {
  return (m) => asBuffer(toBinary(schema, m));
}

export function deserializer<T extends Message>(schema: GenMessage<T>): (b: Buffer) => T {
  return (b) => fromBinary(schema, b);
}

export interface MethodSpec<Req, Res> {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize: (b: Buffer) => Req;
  responseSerialize: (m: Res) => Buffer;
}

/** A grpc-js method definition (server side only needs these halves). */
export function method<Req extends Message, Res extends Message>(
  path: string,
  req: GenMessage<Req>,
  res: GenMessage<Res>,
  streams: { requestStream?: boolean; responseStream?: boolean } = {},
  responseSerialize?: (m: Res) => Buffer,
): grpc.MethodDefinition<Req, Res> {
  return {
    path,
    requestStream: streams.requestStream ?? false,
    responseStream: streams.responseStream ?? false,
    requestSerialize: serializer(req),
    requestDeserialize: deserializer(req),
    responseSerialize: responseSerialize ?? serializer(res),
    responseDeserialize: deserializer(res),
  };
}

/** The status object grpc-js sends for an error. */
export function toStatus(err: unknown): Partial<grpc.StatusObject> {
  const e = KlosetError.from(err);
  // gRPC status messages travel in a header: keep them bounded.
  const details = e.message.length > 4000 ? e.message.slice(0, 4000) + " [...]" : e.message;
  return { code: e.code as number as grpc.status, details };
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** A unary handler from an async function; a rejection becomes the call's status. */
export function unary<Req, Res>(fn: (req: Req) => Promise<Res>) {
  return (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
    fn(call.request).then((r) => cb(null, r), (e) => cb(toStatus(e)));
  };
}

/**
 * This process's stdin and stdout as one Node duplex for the HTTP/2 session.
 * Writes reach the stdout fd within the same turn of the event loop, so the
 * last frames of a call are never left waiting for more traffic.
 */
function stdioDuplex(): Duplex {
  const reader = Deno.stdin.readable.getReader();
  // HTTP/2 frames (16 KiB of data at most) are gathered and written to the
  // pipe once per turn of the event loop, synchronously: an async write per
  // frame costs more CPU than the data itself. A full pipe blocks until
  // plakar reads, which it always does on its own goroutine.
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const flush = () => {
    const out = pending.length === 1 ? pending[0] : concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    let off = 0;
    while (off < out.length) off += Deno.stdout.writeSync(out.subarray(off));
  };
  let reading = false;
  return new Duplex({
    read() {
      if (reading) return;
      reading = true;
      (async () => {
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) {
              this.push(null);
              return;
            }
            if (!this.push(value)) break;
          }
        } catch (e) {
          this.destroy(e as Error);
        } finally {
          reading = false;
        }
      })();
    },
    write(chunk: Uint8Array, _enc, cb) {
      if (pending.length === 0) {
        queueMicrotask(() => {
          try {
            if (pending.length) flush();
          } catch (e) {
            this.destroy(e as Error);
          }
        });
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= 4 * 1024 * 1024) flush();
      cb();
    },
  });
}

/**
 * Serves `service` on this process's stdin/stdout (HTTP/2 with prior
 * knowledge; plakar is the client). Resolves when the host closes the
 * stream, after `onClose` has run.
 */
export function serveStdio(
  service: grpc.ServiceDefinition,
  impl: grpc.UntypedServiceImplementation,
  onClose: () => Promise<void>,
): Promise<void> {
  // stdout carries HTTP/2 frames only: any stray log goes to stderr.
  console.log = console.error;
  console.info = console.error;
  const server = new grpc.Server({
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    "grpc.max_send_message_length": 64 * 1024 * 1024,
  });
  server.addService(service, impl);
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const stdio = stdioDuplex();
  return new Promise((resolve) => {
    let done = false;
    const finish = async () => {
      if (done) return;
      done = true;
      try {
        await onClose();
      } finally {
        server.forceShutdown();
        resolve();
      }
    };
    stdio.on("end", finish);
    stdio.on("error", finish);
    injector.injectConnection(stdio);
  });
}
