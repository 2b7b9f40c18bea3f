// A server-side HTTP/2 connection (RFC 9113) with prior knowledge, as plakar
// opens it on a plugin's stdin/stdout. It does what a gRPC server needs and no
// more: streams opened by the client, header blocks, DATA in both directions
// with flow control, PING, SETTINGS, RST_STREAM and GOAWAY.
//
// Output is gathered into one batch buffer: control frames first, then each
// stream's queued headers and data cut into frames the peer's windows allow,
// and the batch goes out in one write while the caller keeps reading its own
// sources. Queued data costs one copy, into the batch.

import { encodeHeaders, HpackDecoder } from "./hpack.ts";

export interface Transport {
  /** Reads into `buf`; null at end of input. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Writes some of `buf`; returns how many bytes. */
  write(buf: Uint8Array): Promise<number>;
}

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

const enum FrameType {
  DATA = 0,
  HEADERS = 1,
  PRIORITY = 2,
  RST_STREAM = 3,
  SETTINGS = 4,
  PUSH_PROMISE = 5,
  PING = 6,
  GOAWAY = 7,
  WINDOW_UPDATE = 8,
  CONTINUATION = 9,
}

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

const SETTINGS_HEADER_TABLE_SIZE = 1;
const SETTINGS_MAX_CONCURRENT_STREAMS = 3;
const SETTINGS_INITIAL_WINDOW_SIZE = 4;
const SETTINGS_MAX_FRAME_SIZE = 5;

/** RST_STREAM / GOAWAY codes used here. */
export const H2_PROTOCOL_ERROR = 1;
export const H2_FLOW_CONTROL_ERROR = 3;
export const H2_CANCEL = 8;

/** What we let the client send ahead on one stream before it is read. */
const STREAM_WINDOW = 4 * 1024 * 1024;
/** And on the whole connection (credited as frames arrive). */
const CONNECTION_WINDOW = 32 * 1024 * 1024;
/** Bytes gathered per write. */
const BATCH = 1024 * 1024;
const MAX_WINDOW = 2 ** 31 - 1;

export class H2Error extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

type Outgoing =
  | { kind: "headers"; block: Uint8Array; end: boolean }
  | { kind: "data"; bytes: Uint8Array; off: number; done?: () => void }
  | { kind: "reset"; code: number };

/** One stream, as the layer above sees it. */
export class H2Stream {
  /** Aborted when the client resets the stream or the connection ends. */
  readonly signal: AbortSignal;
  readonly #abort = new AbortController();
  /** Called with each DATA payload (a view valid only during the call) and at the end of input. */
  onData: (payload: Uint8Array) => void = () => {};
  onEnd: () => void = () => {};
  sendWindow: number;
  readonly queue: Outgoing[] = [];
  localClosed = false;
  remoteClosed = false;
  #credit = 0;

  constructor(
    readonly id: number,
    readonly headers: Map<string, string>,
    readonly conn: H2Connection,
    initialWindow: number,
  ) {
    this.signal = this.#abort.signal;
    this.sendWindow = initialWindow;
  }

  /** Queues a header block; `end` closes our side (trailers). */
  sendHeaders(headers: [string, string][], end: boolean): void {
    if (this.localClosed || this.signal.aborted) return;
    this.queue.push({ kind: "headers", block: encodeHeaders(headers), end });
    if (end) this.localClosed = true;
    this.conn.kick(this);
  }

  /** Queues data; resolves once it has been copied out (its memory can then be reused). */
  sendData(parts: Uint8Array[]): Promise<void> {
    if (this.localClosed || this.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      for (let i = 0; i < parts.length; i++) {
        const last = i === parts.length - 1;
        this.queue.push({
          kind: "data",
          bytes: parts[i],
          off: 0,
          done: last ? resolve : undefined,
        });
      }
      this.conn.kick(this);
    });
  }

  /** Abandons the stream with RST_STREAM. */
  reset(code = H2_CANCEL): void {
    if (this.signal.aborted) return;
    this.#release();
    this.queue.push({ kind: "reset", code });
    this.localClosed = true;
    this.conn.kick(this);
    this.#abort.abort(new H2Error(code, "stream reset"));
  }

  /** The layer above has consumed `n` bytes of DATA: let the client send as many more. */
  release(n: number): void {
    this.#credit += n;
    if (this.#credit >= STREAM_WINDOW / 4 && !this.remoteClosed) {
      this.conn.windowUpdate(this.id, this.#credit);
      this.#credit = 0;
    }
  }

  /** Resolves every pending data promise (after a reset or the connection's end). */
  #release(): void {
    for (const item of this.queue) if (item.kind === "data") item.done?.();
    this.queue.length = 0;
  }

  /** Called by the connection. */
  cancelled(reason: H2Error): void {
    if (this.signal.aborted) return;
    this.#release();
    this.localClosed = this.remoteClosed = true;
    this.#abort.abort(reason);
    this.onEnd();
  }
}

export class H2Connection {
  readonly streams = new Map<number, H2Stream>();
  readonly #decoder = new HpackDecoder();
  readonly #control: Uint8Array[] = [];
  #ready: H2Stream[] = [];
  #sendWindow = 65535;
  #peerInitialWindow = 65535;
  #peerMaxFrame = 16384;
  #connCredit = 0;
  #writing = false;
  #closed = false;
  #lastStream = 0;
  #headerBlock: { id: number; end: boolean; parts: Uint8Array[] } | undefined;
  #batch = new Uint8Array(BATCH + 64 * 1024);
  #idle: (() => void)[] = [];

  constructor(
    readonly transport: Transport,
    readonly onStream: (s: H2Stream) => void,
  ) {}

  /** Runs the connection until the client's input ends. */
  async serve(): Promise<void> {
    const settings = new Uint8Array(18);
    const dv = new DataView(settings.buffer);
    dv.setUint16(0, SETTINGS_INITIAL_WINDOW_SIZE);
    dv.setUint32(2, STREAM_WINDOW);
    dv.setUint16(6, SETTINGS_MAX_CONCURRENT_STREAMS);
    dv.setUint32(8, 1000);
    dv.setUint16(12, SETTINGS_HEADER_TABLE_SIZE);
    dv.setUint32(14, 4096);
    this.#frame(FrameType.SETTINGS, 0, 0, settings);
    this.windowUpdate(0, CONNECTION_WINDOW - 65535);
    try {
      await this.#readLoop();
    } finally {
      this.#closed = true;
      for (const s of this.streams.values()) {
        s.cancelled(new H2Error(H2_CANCEL, "connection closed"));
      }
      this.streams.clear();
    }
  }

  /**
   * Resolves when nothing more can be written: all that was queued is out, or
   * waits for window the client does not give, or the output is closed. (The
   * write loop runs whenever something can be sent.)
   */
  flushed(): Promise<void> {
    if (!this.#writing) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #readLoop(): Promise<void> {
    let buf = new Uint8Array(256 * 1024);
    let start = 0;
    let end = 0;
    let prefaceSeen = false;
    for (;;) {
      if (end === buf.length) {
        if (start > 0) {
          buf.copyWithin(0, start, end);
          end -= start;
          start = 0;
        } else {
          const bigger = new Uint8Array(buf.length * 2);
          bigger.set(buf);
          buf = bigger;
        }
      }
      const n = await this.transport.read(buf.subarray(end));
      if (n === null) return;
      end += n;
      if (!prefaceSeen) {
        if (end - start < PREFACE.length) continue;
        for (let i = 0; i < PREFACE.length; i++) {
          if (buf[start + i] !== PREFACE[i]) throw new H2Error(H2_PROTOCOL_ERROR, "bad preface");
        }
        start += PREFACE.length;
        prefaceSeen = true;
      }
      while (end - start >= 9) {
        const len = (buf[start] << 16) | (buf[start + 1] << 8) | buf[start + 2];
        if (end - start < 9 + len) {
          if (9 + len > buf.length) {
            const bigger = new Uint8Array(9 + len);
            bigger.set(buf.subarray(start, end));
            end -= start;
            start = 0;
            buf = bigger;
          }
          break;
        }
        const type = buf[start + 3];
        const flags = buf[start + 4];
        const id = ((buf[start + 5] & 0x7f) << 24 | (buf[start + 6] << 16) | (buf[start + 7] << 8) |
          buf[start + 8]) >>> 0;
        const payload = buf.subarray(start + 9, start + 9 + len);
        start += 9 + len;
        this.#onFrame(type, flags, id, payload);
      }
      if (start === end) start = end = 0;
    }
  }

  #onFrame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.#headerBlock && type !== FrameType.CONTINUATION) {
      throw new H2Error(H2_PROTOCOL_ERROR, "expected CONTINUATION");
    }
    switch (type) {
      case FrameType.DATA: {
        this.#creditConnection(payload.length);
        const data = unpad(payload, flags);
        const s = this.streams.get(id);
        if (!s || s.remoteClosed) return;
        if (data.length) s.onData(data);
        if (flags & END_STREAM) this.#remoteEnd(s);
        return;
      }
      case FrameType.HEADERS: {
        let block = unpad(payload, flags);
        if (flags & PRIORITY_FLAG) block = block.subarray(5);
        const parts = [block];
        if (flags & END_HEADERS) this.#headers(id, flags & END_STREAM, parts);
        else this.#headerBlock = { id, end: (flags & END_STREAM) !== 0, parts: [block.slice()] };
        return;
      }
      case FrameType.CONTINUATION: {
        const hb = this.#headerBlock;
        if (!hb || hb.id !== id) throw new H2Error(H2_PROTOCOL_ERROR, "unexpected CONTINUATION");
        hb.parts.push(payload.slice());
        if (flags & END_HEADERS) {
          this.#headerBlock = undefined;
          this.#headers(id, hb.end ? END_STREAM : 0, hb.parts);
        }
        return;
      }
      case FrameType.RST_STREAM: {
        const s = this.streams.get(id);
        if (s) {
          this.streams.delete(id);
          const code = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
          s.cancelled(new H2Error(code, "stream reset by the client"));
        }
        return;
      }
      case FrameType.SETTINGS: {
        if (flags & ACK) return;
        const dv = new DataView(payload.buffer, payload.byteOffset, payload.length);
        for (let off = 0; off + 6 <= payload.length; off += 6) {
          const key = dv.getUint16(off);
          const value = dv.getUint32(off + 2);
          if (key === SETTINGS_INITIAL_WINDOW_SIZE) {
            const delta = value - this.#peerInitialWindow;
            this.#peerInitialWindow = value;
            for (const s of this.streams.values()) s.sendWindow += delta;
          } else if (key === SETTINGS_MAX_FRAME_SIZE) {
            this.#peerMaxFrame = value;
          }
        }
        this.#frame(FrameType.SETTINGS, ACK, 0, new Uint8Array(0));
        this.#kickAll();
        return;
      }
      case FrameType.PING: {
        if (!(flags & ACK)) this.#frame(FrameType.PING, ACK, 0, payload.slice());
        return;
      }
      case FrameType.GOAWAY:
        return; // existing streams finish; the input ends after them
      case FrameType.WINDOW_UPDATE: {
        const inc = new DataView(payload.buffer, payload.byteOffset).getUint32(0) & 0x7fffffff;
        if (id === 0) {
          this.#sendWindow += inc;
          if (this.#sendWindow > MAX_WINDOW) {
            throw new H2Error(H2_FLOW_CONTROL_ERROR, "connection window overflow");
          }
          this.#kickAll();
        } else {
          const s = this.streams.get(id);
          if (s) {
            s.sendWindow += inc;
            this.kick(s);
          }
        }
        return;
      }
      default:
        return; // PRIORITY, PUSH_PROMISE (never from a client) and unknown types
    }
  }

  #headers(id: number, endStream: number, parts: Uint8Array[]): void {
    const block = parts.length === 1 ? parts[0] : concat(parts);
    const list = this.#decoder.decode(block); // always, to keep the table in step
    const existing = this.streams.get(id);
    if (existing) {
      if (endStream) this.#remoteEnd(existing); // trailers from the client
      return;
    }
    if (id <= this.#lastStream || id % 2 === 0) return;
    this.#lastStream = id;
    const s = new H2Stream(id, new Map(list), this, this.#peerInitialWindow);
    this.streams.set(id, s);
    this.onStream(s);
    if (endStream) this.#remoteEnd(s);
  }

  #remoteEnd(s: H2Stream): void {
    if (s.remoteClosed) return;
    s.remoteClosed = true;
    s.onEnd();
    this.#maybeForget(s);
  }

  #maybeForget(s: H2Stream): void {
    if (s.remoteClosed && s.localClosed && s.queue.length === 0) this.streams.delete(s.id);
  }

  #creditConnection(n: number): void {
    this.#connCredit += n;
    if (this.#connCredit >= CONNECTION_WINDOW / 4) {
      this.windowUpdate(0, this.#connCredit);
      this.#connCredit = 0;
    }
  }

  windowUpdate(id: number, inc: number): void {
    const p = new Uint8Array(4);
    new DataView(p.buffer).setUint32(0, inc);
    this.#frame(FrameType.WINDOW_UPDATE, 0, id, p);
  }

  #frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    const f = new Uint8Array(9 + payload.length);
    writeHeader(f, 0, payload.length, type, flags, id);
    f.set(payload, 9);
    this.#control.push(f);
    this.#pump();
  }

  kick(s: H2Stream): void {
    if (!this.#ready.includes(s)) this.#ready.push(s);
    this.#pump();
  }

  #kickAll(): void {
    for (const s of this.streams.values()) {
      if (s.queue.length && !this.#ready.includes(s)) this.#ready.push(s);
    }
    this.#pump();
  }

  #pump(): void {
    if (this.#writing || this.#closed) return;
    this.#writing = true;
    // Start on a later turn so that frames queued in this one share the write.
    queueMicrotask(() => this.#writeLoop());
  }

  async #writeLoop(): Promise<void> {
    try {
      for (;;) {
        const batch = this.#collect();
        if (!batch) break;
        let off = 0;
        while (off < batch.length) off += await this.transport.write(batch.subarray(off));
      }
    } catch {
      // The host is gone: nothing more can be sent.
      this.#closed = true;
      for (const s of this.streams.values()) s.cancelled(new H2Error(H2_CANCEL, "output closed"));
    } finally {
      this.#writing = false;
      if (!this.#closed && this.#hasSendable()) this.#pump();
      else for (const f of this.#idle.splice(0)) f();
    }
  }

  #hasSendable(): boolean {
    if (this.#control.length) return true;
    return this.#ready.some((s) => {
      const head = s.queue[0];
      return head && (head.kind !== "data" || (s.sendWindow > 0 && this.#sendWindow > 0));
    });
  }

  /** Fills the batch buffer from control frames and ready streams; null when nothing can go. */
  #collect(): Uint8Array | null {
    let out = this.#batch;
    let len = 0;
    const ensure = (n: number) => {
      if (len + n <= out.length) return;
      const bigger = new Uint8Array(Math.max(out.length * 2, len + n));
      bigger.set(out.subarray(0, len));
      out = bigger;
    };
    while (this.#control.length) {
      const f = this.#control.shift()!;
      ensure(f.length);
      out.set(f, len);
      len += f.length;
    }
    const maxFrame = this.#peerMaxFrame;
    const blocked: H2Stream[] = [];
    while (this.#ready.length && len < BATCH) {
      const s = this.#ready.shift()!;
      let stalled = false;
      while (s.queue.length && len < BATCH) {
        const item = s.queue[0];
        if (item.kind === "headers") {
          let block = item.block;
          let type = FrameType.HEADERS;
          for (;;) {
            const piece = block.subarray(0, maxFrame);
            block = block.subarray(piece.length);
            const last = block.length === 0;
            const flags = (last ? END_HEADERS : 0) |
              (type === FrameType.HEADERS && item.end ? END_STREAM : 0);
            ensure(9 + piece.length);
            writeHeader(out, len, piece.length, type, flags, s.id);
            out.set(piece, len + 9);
            len += 9 + piece.length;
            if (last) break;
            type = FrameType.CONTINUATION;
          }
          s.queue.shift();
        } else if (item.kind === "reset") {
          ensure(13);
          writeHeader(out, len, 4, FrameType.RST_STREAM, 0, s.id);
          new DataView(out.buffer, out.byteOffset).setUint32(len + 9, item.code);
          len += 13;
          s.queue.shift();
          this.streams.delete(s.id);
        } else {
          while (item.off < item.bytes.length && len < BATCH) {
            const n = Math.min(
              item.bytes.length - item.off,
              maxFrame,
              s.sendWindow,
              this.#sendWindow,
            );
            if (n <= 0) {
              stalled = true;
              break;
            }
            ensure(9 + n);
            writeHeader(out, len, n, FrameType.DATA, 0, s.id);
            out.set(item.bytes.subarray(item.off, item.off + n), len + 9);
            len += 9 + n;
            item.off += n;
            s.sendWindow -= n;
            this.#sendWindow -= n;
          }
          if (item.off < item.bytes.length) break;
          s.queue.shift();
          item.done?.();
          break; // one data item per stream per round keeps streams fair
        }
      }
      if (s.queue.length) (stalled ? blocked : this.#ready).push(s);
      else this.#maybeForget(s);
      if (stalled && this.#sendWindow <= 0) break;
    }
    for (const s of blocked) if (!this.#ready.includes(s)) this.#ready.push(s);
    if (len === 0) return null;
    if (out !== this.#batch && out.length <= 4 * BATCH) this.#batch = out;
    return out.subarray(0, len);
  }
}

function writeHeader(
  out: Uint8Array,
  at: number,
  len: number,
  type: number,
  flags: number,
  id: number,
): void {
  out[at] = len >>> 16;
  out[at + 1] = (len >>> 8) & 0xff;
  out[at + 2] = len & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out[at + 5] = (id >>> 24) & 0x7f;
  out[at + 6] = (id >>> 16) & 0xff;
  out[at + 7] = (id >>> 8) & 0xff;
  out[at + 8] = id & 0xff;
}

function unpad(payload: Uint8Array, flags: number): Uint8Array {
  if (!(flags & PADDED)) return payload;
  const pad = payload[0];
  if (pad >= payload.length) throw new H2Error(H2_PROTOCOL_ERROR, "bad padding");
  return payload.subarray(1, payload.length - pad);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
