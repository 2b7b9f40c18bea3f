// gRPC on top of our HTTP/2 connection: length-prefixed messages in both
// directions, statuses in trailers, a router by method path, and the server
// on this process's stdin/stdout (plakar is the client). Protobuf encoding
// stays with the services, which know their message types.

import { fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import { H2Connection, type H2Stream, type Transport } from "./h2/connection.ts";
import { Code, KlosetError } from "./errors.ts";
import type { BufferPool } from "../proc/buffer_pool.ts";
import type { GcPacer } from "../proc/memory.ts";
import type { Runtime } from "../proc/runtime.ts";

/**
 * Bytes of one message whose flow-control credit is held until it is read:
 * plakar's chunks (1 MiB and a few bytes of framing) fit, well inside the
 * 4 MiB stream window.
 */
const HOLD_LIMIT = 1024 * 1024 + 64 * 1024;

/** Request messages at least this large are assembled in pooled buffers. */
const POOLED_FROM = 64 * 1024;

/** Largest request message accepted. */
const MAX_MESSAGE = 64 * 1024 * 1024;

/**
 * Where large request messages are assembled: the process's pool of message
 * buffers, and the pacing of young collections for the buffers it allocates
 * (src/proc/runtime.ts has both).
 */
export interface MessageMemory {
  readonly buffers: BufferPool;
  readonly gc: GcPacer;
}

/** One call: request messages in, response messages and a status out. */
export class Call {
  readonly #stream: H2Stream;
  readonly #memory: MessageMemory | undefined;
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
  /** Bytes of the message being assembled whose credit is still held. */
  #bodyHeld = 0;
  #error: KlosetError | undefined;

  /** @param memory where large messages are assembled; without it, each gets a new buffer */
  constructor(stream: H2Stream, memory?: MessageMemory) {
    this.#stream = stream;
    this.#memory = memory;
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
    if (this.#error) return; // refused: what still arrives is dropped
    if (this.#finished) {
      // The call is over: nothing will read this, so it is credited at once.
      this.#stream.release(p.length);
      return;
    }
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
        this.#body = this.#allocate(len);
        this.#bodyLen = 0;
        this.#bodyHeld = 0;
      }
      const body = this.#body;
      const n = Math.min(body.length - this.#bodyLen, p.length - off);
      body.set(p.subarray(off, off + n), this.#bodyLen);
      this.#bodyLen += n;
      off += n;
      // A message's bytes are credited back when the reader takes it, so a
      // slow reader (pg_restore) holds the client back and what waits here is
      // bounded by the stream window. Only a message larger than HOLD_LIMIT
      // is credited as it arrives past that limit: it could not fit in the
      // window and would never complete.
      this.#bodyHeld += n;
      if (this.#bodyHeld > HOLD_LIMIT) {
        this.#stream.release(this.#bodyHeld);
        this.#bodyHeld = 0;
      }
      if (this.#bodyLen === body.length) {
        this.#messages.push({ body, held: this.#bodyHeld });
        this.#body = undefined;
        this.#prefixLen = 0;
        this.#wake();
      }
    }
  }

  /** A buffer for a message of `len` bytes. */
  #allocate(len: number): Uint8Array {
    const memory = this.#memory;
    if (!memory) return new Uint8Array(len);
    const { buffers, gc } = memory;
    // Data-path messages come from the pool (see src/proc/buffer_pool.ts).
    if (len >= POOLED_FROM && len <= buffers.size) {
      // A new buffer (none free): where buffers are not given back (a
      // transform cut them, plakar cancelled the file), they are garbage
      // and must still be collected young.
      if (buffers.idle === 0) gc.shortLived(buffers.size);
      return buffers.take(len);
    }
    gc.shortLived(len);
    return new Uint8Array(len);
  }

  /**
   * Refuses the request: the trailers with INVALID_ARGUMENT go out first
   * (after any response headers already queued, in place of queued data),
   * then RST_STREAM NO_ERROR so that the client stops sending; a reset alone
   * would drop the trailers and grpc-go would only see "Canceled".
   */
  #protocolError(message: string): void {
    this.#error = new KlosetError(Code.INVALID_ARGUMENT, message);
    this.#finish(this.#error.code, this.#error.message, true);
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

  #finish(code: number, message: string, reject = false): void {
    if (this.#finished) return; // a refusal after the end: the end stands
    this.#finished = true;
    const trailers: [string, string][] = [];
    if (!this.#headersSent) {
      this.#headersSent = true;
      trailers.push([":status", "200"], ["content-type", "application/grpc"]);
    }
    trailers.push(["grpc-status", String(code)]);
    if (message) trailers.push(["grpc-message", percentEncode(message)]);
    if (reject) this.#stream.reject(trailers);
    else this.#stream.sendHeaders(trailers, true);
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
export const STDIO: Readonly<Transport> = {
  read: (buf) => Deno.stdin.read(buf),
  write: (buf) => Deno.stdout.write(buf),
};

/** How long the shutdown path waits for the connector to close and the last frames to go out. */
const SHUTDOWN_GRACE_MS = 3000;

/** Resolves after `ms`, or with `p` if it settles first (never rejects). */
function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.then(() => {}, () => {}),
    new Promise<void>((r) => (timer = setTimeout(r, ms))),
  ]).finally(() => clearTimeout(timer));
}

/** What the process gives a service to serve with (src/main/process.ts). */
export type PluginOptions = Omit<ServeOptions, "onClose" | "memory"> & {
  /** The process's runtime: the connector's factory gets it, messages use its buffers. */
  runtime: Runtime;
};

/** How serving ends, and what runs then. */
export interface ServeOptions {
  /** The host's end. @default STDIO */
  transport?: Transport;
  /** Where large request messages are assembled; without it, each gets a new buffer. */
  memory?: MessageMemory;
  /**
   * Aborted when the process must stop (a signal arrived): serving ends as
   * when the host goes away, its reason saying why.
   */
  hostGone?: AbortSignal;
  /** Called as soon as serving ends, before anything is closed. */
  onEnd?: (end: ServeEnd) => void;
  /** Closes what the calls opened (the connector); bounded in time. */
  onClose: () => Promise<void>;
  /**
   * Then, before the last frames go out: stops what the process started
   * (its child tools, its temporary files).
   */
  onShutdown?: () => Promise<void>;
}

/** How serving ended. */
export interface ServeEnd {
  /** The host closed the connection with no call in progress. */
  clean: boolean;
  /** Why it ended: "input closed", "output closed (...)", a protocol error, the abort's reason. */
  why: string;
}

/**
 * Serves `routes` (method path → handler) until the host goes away: its
 * input ends (plakar exited, or was killed: stdin reaches EOF), its output
 * breaks (EPIPE), or `hostGone` is aborted (a signal). Then `onEnd` is told,
 * `onClose` runs (it aborts every call and closes the connector),
 * `onShutdown` stops what the process started, and the last frames are let
 * out, `onClose` and the flush each bounded in time, so the process can exit
 * within seconds and leaves nothing running on the server.
 */
export async function serve(
  routes: Record<string, Handler>,
  options: ServeOptions,
): Promise<ServeEnd> {
  const { transport = STDIO, memory, hostGone: stop } = options;
  let hostGone!: (why: string) => void;
  const gone = new Promise<string>((r) => (hostGone = r));
  const watched: Transport = {
    read: transport.read.bind(transport),
    write: async (buf) => {
      try {
        return await transport.write(buf);
      } catch (e) {
        hostGone(`output closed (${(e as Error).message})`);
        throw e;
      }
    },
  };
  const onStop = () => hostGone(String(stop!.reason));
  if (stop?.aborted) onStop();
  else stop?.addEventListener("abort", onStop, { once: true });
  let active = 0;
  const conn = new H2Connection(watched, (stream) => {
    const call = new Call(stream, memory);
    const handler = routes[call.path];
    if (!handler) {
      call.fail(new KlosetError(Code.UNIMPLEMENTED, `unknown method ${call.path}`));
      return;
    }
    active++;
    Promise.resolve()
      .then(() => handler(call))
      .catch((e) => call.fail(e))
      .finally(() => active--);
  });
  const end: ServeEnd = { clean: false, why: "" };
  try {
    const served = conn.serve().then(
      () => ({ why: "input closed", protocolError: false }),
      (e) => ({ why: `protocol error: ${(e as Error).message}`, protocolError: true }),
    );
    const { why, protocolError } = await Promise.race([
      served,
      gone.then((why) => ({ why, protocolError: false })),
    ]);
    // plakar closes both pipes once it is done, so a broken output with no
    // call in progress is a normal end; with calls in progress it is not.
    end.clean = active === 0 && !protocolError;
    end.why = why;
    if (!end.clean) {
      console.error(
        `postgresql: host connection ended (${why}) with ${active} call(s) in progress; stopping`,
      );
    }
  } finally {
    stop?.removeEventListener("abort", onStop);
    options.onEnd?.(end);
    await within(options.onClose(), SHUTDOWN_GRACE_MS);
    await options.onShutdown?.();
    await within(conn.flushed(), SHUTDOWN_GRACE_MS);
  }
  return end;
}
