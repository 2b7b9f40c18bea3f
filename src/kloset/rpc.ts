// gRPC on top of our HTTP/2 connection: length-prefixed messages in both
// directions, statuses in trailers, a router by method path, and the server
// on this process's stdin/stdout (plakar is the client). Protobuf encoding
// stays with the services, which know their message types.

import { fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import { H2Connection, type H2Stream, type Transport } from "./h2/connection.ts";
import { Code, KlosetError } from "./errors.ts";

/** Largest request message accepted. */
const MAX_MESSAGE = 64 * 1024 * 1024;

/** One call: request messages in, response messages and a status out. */
export class Call {
  readonly #stream: H2Stream;
  readonly #messages: { body: Uint8Array; held: number }[] = [];
  #waiter: (() => void) | undefined;
  #ended = false;
  #headersSent = false;
  #finished = false;
  // The message being assembled from DATA frames.
  readonly #prefix = new Uint8Array(5);
  #prefixLen = 0;
  #body: Uint8Array | undefined;
  #bodyLen = 0;
  #error: KlosetError | undefined;

  constructor(stream: H2Stream) {
    this.#stream = stream;
    stream.onData = (p) => this.#onData(p);
    stream.onEnd = () => {
      this.#ended = true;
      this.#wake();
    };
  }

  get path(): string {
    return this.#stream.headers.get(":path") ?? "";
  }

  /** Aborted when the host cancels the call or goes away. */
  get signal(): AbortSignal {
    return this.#stream.signal;
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  #onData(p: Uint8Array): void {
    if (this.#error) return; // reset: what still arrives is dropped
    let off = 0;
    while (off < p.length) {
      if (this.#body === undefined) {
        const n = Math.min(5 - this.#prefixLen, p.length - off);
        this.#prefix.set(p.subarray(off, off + n), this.#prefixLen);
        this.#prefixLen += n;
        off += n;
        this.#stream.release(n);
        if (this.#prefixLen < 5) return;
        const len = new DataView(this.#prefix.buffer).getUint32(1);
        if (this.#prefix[0] !== 0) {
          this.#protocolError("compressed messages are not supported");
          return;
        }
        if (len > MAX_MESSAGE) {
          this.#protocolError(`message of ${len} bytes is larger than ${MAX_MESSAGE}`);
          return;
        }
        this.#body = new Uint8Array(len);
        this.#bodyLen = 0;
      }
      const body = this.#body;
      const n = Math.min(body.length - this.#bodyLen, p.length - off);
      body.set(p.subarray(off, off + n), this.#bodyLen);
      this.#bodyLen += n;
      off += n;
      if (this.#bodyLen === body.length) {
        // A whole message waits for the reader: its bytes are credited back
        // when it is read, so a slow reader holds the client back.
        this.#messages.push({ body, held: n });
        this.#body = undefined;
        this.#prefixLen = 0;
        this.#wake();
      } else {
        // Part of a message: credited at once (a message may exceed a window).
        this.#stream.release(n);
      }
    }
  }

  #protocolError(message: string): void {
    this.#error = new KlosetError(Code.INVALID_ARGUMENT, message);
    this.fail(this.#error);
    this.#stream.reset();
  }

  /** The next request message, or null once the host has finished sending. */
  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const m = this.#messages.shift();
      if (m) {
        // Credit back the part of the message that was held.
        this.#stream.release(m.held);
        return m.body;
      }
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((r) => (this.#waiter = r));
    }
  }

  /** Request messages decoded with `schema`, until the host half-closes. */
  async *messages<T extends Message>(schema: GenMessage<T>): AsyncGenerator<T> {
    for (;;) {
      const m = await this.read();
      if (m === null) return;
      yield fromBinary(schema, m);
    }
  }

  #sendHeaders(): void {
    if (this.#headersSent) return;
    this.#headersSent = true;
    this.#stream.sendHeaders([[":status", "200"], ["content-type", "application/grpc"]], false);
  }

  /**
   * Sends one message made of `parts` (concatenated); resolves when its bytes
   * have been copied out, so their memory can be reused.
   */
  send(...parts: Uint8Array[]): Promise<void> {
    if (this.#finished) return Promise.resolve();
    this.#sendHeaders();
    const total = parts.reduce((n, p) => n + p.length, 0);
    const prefix = new Uint8Array(5);
    new DataView(prefix.buffer).setUint32(1, total);
    return this.#stream.sendData([prefix, ...parts]);
  }

  sendMessage<T extends Message>(schema: GenMessage<T>, m: T): Promise<void> {
    return this.send(toBinary(schema, m));
  }

  /** Ends the call with status OK. */
  end(): void {
    this.#finish(0, "");
  }

  /** Ends the call with `err` as its status. */
  fail(err: unknown): void {
    const e = KlosetError.from(err);
    // gRPC status messages travel in a header: keep them bounded.
    const details = e.message.length > 4000 ? e.message.slice(0, 4000) + " [...]" : e.message;
    this.#finish(e.code, details);
  }

  #finish(code: number, message: string): void {
    if (this.#finished) return;
    this.#finished = true;
    const trailers: [string, string][] = [];
    if (!this.#headersSent) {
      this.#headersSent = true;
      trailers.push([":status", "200"], ["content-type", "application/grpc"]);
    }
    trailers.push(["grpc-status", String(code)]);
    if (message) trailers.push(["grpc-message", percentEncode(message)]);
    this.#stream.sendHeaders(trailers, true);
  }
}

/** grpc-message is percent-encoded UTF-8 (printable ASCII except '%' as is). */
export function percentEncode(s: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(s)) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25
      ? String.fromCharCode(b)
      : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

export type Handler = (call: Call) => void | Promise<void>;

/** A unary method: one request, one response; a rejection becomes the status. */
export function unary<Req extends Message, Res extends Message>(
  req: GenMessage<Req>,
  res: GenMessage<Res>,
  fn: (r: Req) => Promise<Res>,
): Handler {
  return async (call) => {
    try {
      const m = await call.read();
      if (m === null) throw new KlosetError(Code.INVALID_ARGUMENT, "missing request message");
      const out = await fn(fromBinary(req, m));
      await call.sendMessage(res, out);
      call.end();
    } catch (e) {
      call.fail(e);
    }
  };
}

/** This process's stdin and stdout. */
export const STDIO: Transport = {
  read: (buf) => Deno.stdin.read(buf),
  write: (buf) => Deno.stdout.write(buf),
};

/**
 * Serves `routes` (method path → handler) on `transport` until the host
 * closes its side; then runs `onClose` and lets the last frames go out.
 */
export async function serve(
  routes: Record<string, Handler>,
  onClose: () => Promise<void>,
  transport: Transport = STDIO,
): Promise<void> {
  // stdout carries HTTP/2 frames only: any stray log goes to stderr.
  console.log = console.error;
  console.info = console.error;
  const conn = new H2Connection(transport, (stream) => {
    const call = new Call(stream);
    const handler = routes[call.path];
    if (!handler) {
      call.fail(new KlosetError(Code.UNIMPLEMENTED, `unknown method ${call.path}`));
      return;
    }
    Promise.resolve()
      .then(() => handler(call))
      .catch((e) => call.fail(e));
  });
  try {
    await conn.serve();
  } catch (e) {
    console.error(`postgresql: protocol error: ${(e as Error).message}`);
  } finally {
    try {
      await onClose();
    } finally {
      await conn.flushed();
    }
  }
}
