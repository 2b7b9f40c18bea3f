// A server-side HTTP/2 connection (RFC 9113) with prior knowledge, as plakar
// opens it on a plugin's stdin/stdout. It does what a gRPC server needs and no
// more: streams opened by the client, header blocks, DATA in both directions
// with flow control, PING, SETTINGS, RST_STREAM and GOAWAY.
//
// Output is gathered into one batch buffer: control frames first, then each
// stream's queued headers and data cut into frames the peer's windows allow,
// and the batch goes out in one write while the caller keeps reading its own
// sources. Queued data costs one copy, into the batch.
//
// Whatever the peer sends, every buffer stays bounded: a frame is at most our
// (default) SETTINGS_MAX_FRAME_SIZE, a header block at most MAX_HEADER_BLOCK,
// queued control frames at most MAX_CONTROL, open streams at most
// MAX_STREAMS. A connection error sends GOAWAY (last stream, code, reason)
// and ends serve() with an H2Error; a stream error sends RST_STREAM.
//
// Left out on purpose (none is a MUST a client can make us break, and the
// only client is plakar's grpc-go on a private pipe):
// - priorities are parsed and checked, never used for scheduling;
// - no SETTINGS timeout: we never wait on the client's ACK of our SETTINGS;
// - no rate limit on reset or refused streams (CVE-2023-44487 "rapid
//   reset"): each costs one HPACK decode and one small handler start, and at
//   most MAX_STREAMS are live at once;
// - closed streams are remembered (to drop what arrives after our
//   RST_STREAM, and to tell closed from idle) for the last CLOSED_MEMORY
//   only: a frame for an older one gets the stream error STREAM_CLOSED;
// - a CONNECT request (no :scheme or :path) is refused as malformed, and
//   :authority is not checked against host: a gRPC server needs neither;
// - a header list above MAX_HEADER_LIST is refused with a stream error
//   rather than an HTTP 431 response;
// - when the client's input ends we send no GOAWAY: the client has gone.

import { encodeHeaders, HpackDecoder, HpackError } from "./hpack.ts";
import { concatBytes } from "../../proc/bytes.ts";

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
const SETTINGS_ENABLE_PUSH = 2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 3;
const SETTINGS_INITIAL_WINDOW_SIZE = 4;
const SETTINGS_MAX_FRAME_SIZE = 5;
const SETTINGS_MAX_HEADER_LIST_SIZE = 6;

/** Error codes (RFC 9113 §7) used here. */
export const H2_NO_ERROR = 0;
export const H2_PROTOCOL_ERROR = 1;
export const H2_INTERNAL_ERROR = 2;
export const H2_FLOW_CONTROL_ERROR = 3;
export const H2_STREAM_CLOSED = 5;
export const H2_FRAME_SIZE_ERROR = 6;
export const H2_REFUSED_STREAM = 7;
export const H2_CANCEL = 8;
export const H2_COMPRESSION_ERROR = 9;
export const H2_ENHANCE_YOUR_CALM = 11;

/** What we let the client send ahead on one stream before it is read. */
const STREAM_WINDOW = 4 * 1024 * 1024;
/** And on the whole connection (credited as frames arrive). */
const CONNECTION_WINDOW = 32 * 1024 * 1024;
/** Bytes gathered per write. */
const BATCH = 1024 * 1024;
const MAX_WINDOW = 2 ** 31 - 1;
/** Our SETTINGS_MAX_FRAME_SIZE: the default, which we do not change. */
const MAX_FRAME = 16384;
/** Advertised SETTINGS_MAX_CONCURRENT_STREAMS, and enforced. */
export const MAX_STREAMS = 1000;
/** Largest header block (HEADERS + CONTINUATION fragments, compressed). */
export const MAX_HEADER_BLOCK = 256 * 1024;
/** Most CONTINUATION frames in one header block. */
const MAX_CONTINUATIONS = 1024;
/** Advertised SETTINGS_MAX_HEADER_LIST_SIZE (decoded); larger lists are refused. */
const MAX_HEADER_LIST = 1024 * 1024;
/** Control frames (acks, resets, window updates) queued but not written. */
export const MAX_CONTROL = 1024 * 1024;
/** Closed streams remembered, to tell "closed" from "never opened". */
const CLOSED_MEMORY = 1024;
/** How long a GOAWAY may take to go out before serve() gives up on it. */
const GOAWAY_FLUSH_MS = 2000;
/** Bytes read at a time; a whole frame always fits. */
const READ_BUFFER = 256 * 1024;

export class H2Error extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** How a stream we no longer track was closed. */
const enum Closed {
  /** We sent RST_STREAM: what still arrives for it is dropped. */
  BY_US,
  /** The client sent RST_STREAM. */
  BY_PEER,
  /** Both sides ended it. */
  DONE,
}

type Outgoing =
  | { kind: "headers"; block: Uint8Array; end: boolean }
  | { kind: "data"; bytes: Uint8Array; off: number; done?: () => void }
  | { kind: "reset"; code: number; afterEnd?: boolean };

/** One stream, as the layer above sees it. */
export class H2Stream {
  /** Aborted when the stream is reset (by either side) or the connection ends. */
  readonly signal: AbortSignal;
  readonly #abort = new AbortController();
  /** Called with each DATA payload (a view valid only during the call) and at the end of input. */
  onData: (payload: Uint8Array) => void = () => {};
  onEnd: () => void = () => {};
  sendWindow: number;
  /** What the client may still send before we credit more. */
  recvWindow = STREAM_WINDOW;
  readonly queue: Outgoing[] = [];
  localClosed = false;
  remoteClosed = false;
  /** The connection no longer tracks the stream: nothing more is sent for it. */
  gone = false;
  /** From content-length, if given; checked against the DATA received. */
  expectedLength = -1;
  receivedLength = 0;
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

  /**
   * Queues a header block; `end` closes our side (trailers). The client may
   * go on sending after that (grpc-go does not: it resets the stream itself).
   */
  sendHeaders(headers: [string, string][], end: boolean): void {
    if (this.localClosed || this.signal.aborted) return;
    this.queue.push({ kind: "headers", block: encodeHeaders(headers), end });
    if (end) this.localClosed = true;
    this.conn.kick(this);
  }

  /**
   * Ends the stream with `trailers` because the client's request is refused:
   * queued data is dropped, queued headers and then the trailers go out, then
   * RST_STREAM NO_ERROR if the client is still sending; the signal aborts now.
   */
  reject(trailers: [string, string][]): void {
    if (this.signal.aborted) return;
    this.#dropData();
    if (!this.localClosed) {
      this.queue.push({ kind: "headers", block: encodeHeaders(trailers), end: true });
      this.localClosed = true;
    }
    if (!this.remoteClosed) this.queue.push({ kind: "reset", code: H2_NO_ERROR, afterEnd: true });
    this.conn.kick(this);
    this.#abort.abort(new H2Error(H2_CANCEL, "request rejected"));
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
    if (
      this.#credit >= STREAM_WINDOW / 4 && !this.remoteClosed && !this.gone && !this.signal.aborted
    ) {
      this.recvWindow += this.#credit;
      this.conn.windowUpdate(this.id, this.#credit);
      this.#credit = 0;
    }
  }

  /** Resolves every pending data promise and empties the queue. */
  #release(): void {
    for (const item of this.queue) if (item.kind === "data") item.done?.();
    this.queue.length = 0;
  }

  /** Drops queued data, keeping queued header blocks. */
  #dropData(): void {
    let keep = 0;
    for (const item of this.queue) {
      if (item.kind === "data") item.done?.();
      else this.queue[keep++] = item;
    }
    this.queue.length = keep;
  }

  /** Called by the connection when it stops tracking the stream: nothing more goes out. */
  cancelled(reason: H2Error): void {
    this.gone = true;
    this.#release();
    if (this.signal.aborted && this.remoteClosed) return;
    const wasOpen = !this.remoteClosed;
    this.localClosed = this.remoteClosed = true;
    if (!this.signal.aborted) this.#abort.abort(reason);
    if (wasOpen) this.onEnd();
  }
}

export class H2Connection {
  readonly streams = new Map<number, H2Stream>();
  readonly #decoder = new HpackDecoder(4096, MAX_HEADER_LIST);
  readonly #control: Uint8Array[] = [];
  #controlBytes = 0;
  #ready: H2Stream[] = [];
  #sendWindow = 65535;
  #recvWindow = 65535;
  #peerInitialWindow = 65535;
  #peerMaxFrame = 16384;
  #connCredit = 0;
  #writing = false;
  #closed = false;
  #goingAway = false;
  #settingsSeen = false;
  #lastStream = 0;
  readonly #closedStreams = new Map<number, Closed>();
  #headerBlock:
    | { id: number; end: boolean; dep: number; parts: Uint8Array[]; size: number }
    | undefined;
  readonly #batch = new Batch();
  #idle: (() => void)[] = [];

  constructor(
    readonly transport: Transport,
    readonly onStream: (s: H2Stream) => void,
  ) {}

  /** Bytes of control frames waiting to be written (for tests). */
  get queuedControlBytes(): number {
    return this.#controlBytes;
  }

  /**
   * Runs the connection until the client's input ends. A protocol violation
   * by the client sends GOAWAY and rejects with an H2Error (its code is the
   * GOAWAY's); a failure to read rejects with that failure.
   */
  async serve(): Promise<void> {
    const settings = new Uint8Array(24);
    const dv = new DataView(settings.buffer);
    dv.setUint16(0, SETTINGS_INITIAL_WINDOW_SIZE);
    dv.setUint32(2, STREAM_WINDOW);
    dv.setUint16(6, SETTINGS_MAX_CONCURRENT_STREAMS);
    dv.setUint32(8, MAX_STREAMS);
    dv.setUint16(12, SETTINGS_HEADER_TABLE_SIZE);
    dv.setUint32(14, 4096);
    dv.setUint16(18, SETTINGS_MAX_HEADER_LIST_SIZE);
    dv.setUint32(20, MAX_HEADER_LIST);
    this.#frame(FrameType.SETTINGS, 0, 0, settings);
    this.windowUpdate(0, CONNECTION_WINDOW - 65535);
    this.#recvWindow = CONNECTION_WINDOW;
    try {
      await this.#readLoop();
    } catch (e) {
      if (e instanceof ReadError) throw e.cause;
      const err = e instanceof H2Error ? e : new H2Error(
        e instanceof HpackError ? H2_COMPRESSION_ERROR : H2_INTERNAL_ERROR,
        (e as Error)?.message ?? String(e),
      );
      await this.#goAway(err);
      throw err;
    } finally {
      this.#closed = true;
      for (const s of this.streams.values()) {
        s.cancelled(new H2Error(H2_CANCEL, "connection closed"));
      }
      this.streams.clear();
      this.#ready = [];
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

  /** Sends GOAWAY for a connection error, with nothing after it, and waits (bounded) for it to go. */
  async #goAway(err: H2Error): Promise<void> {
    this.#goingAway = true;
    for (const s of this.streams.values()) s.cancelled(err);
    this.streams.clear();
    this.#ready = [];
    const debug = new TextEncoder().encode(err.message.slice(0, 256));
    const p = new Uint8Array(8 + debug.length);
    const dv = new DataView(p.buffer);
    dv.setUint32(0, this.#lastStream);
    dv.setUint32(4, err.code);
    p.set(debug, 8);
    this.#frame(FrameType.GOAWAY, 0, 0, p);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.flushed(),
      new Promise<void>((r) => (timer = setTimeout(r, GOAWAY_FLUSH_MS))),
    ]);
    clearTimeout(timer);
    this.#closed = true;
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(READ_BUFFER);
    let start = 0;
    let end = 0;
    let prefaceSeen = false;
    for (;;) {
      if (end === buf.length || (start > 0 && buf.length - start < 9 + MAX_FRAME)) {
        buf.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
      let n: number | null;
      try {
        n = await this.transport.read(buf.subarray(end));
      } catch (e) {
        throw new ReadError(e);
      }
      if (n === null) return;
      end += n;
      if (!prefaceSeen) {
        const have = Math.min(end - start, PREFACE.length);
        for (let i = 0; i < have; i++) {
          if (buf[start + i] !== PREFACE[i]) throw new H2Error(H2_PROTOCOL_ERROR, "bad preface");
        }
        if (have < PREFACE.length) continue;
        start += PREFACE.length;
        prefaceSeen = true;
      }
      while (end - start >= 9) {
        const len = (buf[start] << 16) | (buf[start + 1] << 8) | buf[start + 2];
        if (len > MAX_FRAME) {
          throw new H2Error(H2_FRAME_SIZE_ERROR, `frame of ${len} bytes exceeds ${MAX_FRAME}`);
        }
        if (end - start < 9 + len) break;
        const type = buf[start + 3];
        const flags = buf[start + 4];
        const id = ((buf[start + 5] & 0x7f) << 24 | (buf[start + 6] << 16) | (buf[start + 7] << 8) |
          buf[start + 8]) >>> 0;
        const payload = buf.subarray(start + 9, start + 9 + len);
        start += 9 + len;
        this.#onFrame(type, flags, id, payload);
        if (this.#controlBytes > MAX_CONTROL) {
          throw new H2Error(
            H2_ENHANCE_YOUR_CALM,
            `${this.#controlBytes} bytes of control frames unread by the peer`,
          );
        }
      }
      if (start === end) start = end = 0;
    }
  }

  /** An idle stream: not opened yet (our own, even, ids are never opened). */
  #idleStream(id: number): boolean {
    return id % 2 === 0 || id > this.#lastStream;
  }

  #onFrame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.#headerBlock && (type !== FrameType.CONTINUATION || id !== this.#headerBlock.id)) {
      throw new H2Error(H2_PROTOCOL_ERROR, "expected CONTINUATION");
    }
    if (!this.#settingsSeen) {
      if (type !== FrameType.SETTINGS || flags & ACK) {
        throw new H2Error(H2_PROTOCOL_ERROR, "the preface must be followed by SETTINGS");
      }
      this.#settingsSeen = true;
    }
    switch (type) {
      case FrameType.DATA:
        return this.#onData(flags, id, payload);
      case FrameType.HEADERS:
        return this.#onHeaders(flags, id, payload);
      case FrameType.CONTINUATION:
        return this.#onContinuation(flags, id, payload);
      case FrameType.PRIORITY:
        return this.#onPriority(id, payload);
      case FrameType.RST_STREAM:
        return this.#onRstStream(id, payload);
      case FrameType.SETTINGS:
        return this.#onSettings(flags, id, payload);
      case FrameType.PUSH_PROMISE:
        throw new H2Error(H2_PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      case FrameType.PING:
        return this.#onPing(flags, id, payload);
      case FrameType.GOAWAY:
        if (id !== 0) throw new H2Error(H2_PROTOCOL_ERROR, "GOAWAY on a stream");
        if (payload.length < 8) throw new H2Error(H2_FRAME_SIZE_ERROR, "GOAWAY length");
        return; // existing streams finish; the input ends after them
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(id, payload);
      default:
        return; // unknown types are ignored (RFC 9113 §5.5)
    }
  }

  /** A request's headers: decoded now when the block is whole, else held for its CONTINUATIONs. */
  #onHeaders(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw new H2Error(H2_PROTOCOL_ERROR, "HEADERS on stream 0");
    if (id % 2 === 0) throw new H2Error(H2_PROTOCOL_ERROR, `stream id ${id} is even`);
    let block = unpad(payload, flags);
    let dep = -1;
    if (flags & PRIORITY_FLAG) {
      if (block.length < 5) throw new H2Error(H2_FRAME_SIZE_ERROR, "short HEADERS priority");
      dep = new DataView(block.buffer, block.byteOffset).getUint32(0) & 0x7fffffff;
      block = block.subarray(5);
    }
    const end = (flags & END_STREAM) !== 0;
    if (flags & END_HEADERS) this.#headers(id, end, dep, block);
    else {
      this.#headerBlock = { id, end, dep, parts: [block.slice()], size: block.length };
      this.#checkBlockSize(this.#headerBlock.size);
    }
  }

  /** The rest of a header block, within its size and frame count limits. */
  #onContinuation(flags: number, id: number, payload: Uint8Array): void {
    const hb = this.#headerBlock;
    if (!hb) throw new H2Error(H2_PROTOCOL_ERROR, "unexpected CONTINUATION");
    hb.size += payload.length;
    this.#checkBlockSize(hb.size);
    if (hb.parts.length > MAX_CONTINUATIONS) {
      throw new H2Error(H2_ENHANCE_YOUR_CALM, "too many CONTINUATION frames");
    }
    hb.parts.push(payload.slice());
    if (flags & END_HEADERS) {
      this.#headerBlock = undefined;
      this.#headers(id, hb.end, hb.dep, concatBytes(hb.parts));
    }
  }

  #onPriority(id: number, payload: Uint8Array): void {
    if (id === 0) throw new H2Error(H2_PROTOCOL_ERROR, "PRIORITY on stream 0");
    if (payload.length !== 5) {
      return this.#streamError(id, H2_FRAME_SIZE_ERROR, "PRIORITY of length other than 5");
    }
    const dep = new DataView(payload.buffer, payload.byteOffset).getUint32(0) & 0x7fffffff;
    if (dep === id) return this.#streamError(id, H2_PROTOCOL_ERROR, "stream depends on itself");
    // Priorities are advisory: we do not use them.
  }

  #onRstStream(id: number, payload: Uint8Array): void {
    if (id === 0) throw new H2Error(H2_PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (payload.length !== 4) throw new H2Error(H2_FRAME_SIZE_ERROR, "RST_STREAM length");
    if (this.#idleStream(id)) throw new H2Error(H2_PROTOCOL_ERROR, "RST_STREAM on idle stream");
    const s = this.streams.get(id);
    if (s) {
      this.#forget(s, Closed.BY_PEER);
      const code = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
      s.cancelled(new H2Error(code, "stream reset by the client"));
    }
  }

  #onPing(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) throw new H2Error(H2_PROTOCOL_ERROR, "PING on a stream");
    if (payload.length !== 8) throw new H2Error(H2_FRAME_SIZE_ERROR, "PING length");
    if (!(flags & ACK)) this.#frame(FrameType.PING, ACK, 0, payload.slice());
  }

  #checkBlockSize(size: number): void {
    if (size > MAX_HEADER_BLOCK) {
      throw new H2Error(H2_ENHANCE_YOUR_CALM, `header block above ${MAX_HEADER_BLOCK} bytes`);
    }
  }

  #onData(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw new H2Error(H2_PROTOCOL_ERROR, "DATA on stream 0");
    const len = payload.length;
    if (len > this.#recvWindow) {
      throw new H2Error(H2_FLOW_CONTROL_ERROR, "DATA beyond the connection window");
    }
    // The connection window is credited as frames arrive, padding included.
    this.#recvWindow -= len;
    this.#creditConnection(len);
    const data = unpad(payload, flags);
    const s = this.streams.get(id);
    if (!s) {
      if (this.#idleStream(id)) throw new H2Error(H2_PROTOCOL_ERROR, "DATA on idle stream");
      // Dropped silently after our RST_STREAM (RFC 9113 §5.1 closed).
      if (this.#closedStreams.get(id) === Closed.BY_US) return;
      return this.#streamError(id, H2_STREAM_CLOSED, "DATA on a closed stream");
    }
    if (s.remoteClosed) {
      return this.#streamError(id, H2_STREAM_CLOSED, "DATA after END_STREAM");
    }
    if (len > s.recvWindow) {
      return this.#streamError(id, H2_FLOW_CONTROL_ERROR, "DATA beyond the stream window");
    }
    s.recvWindow -= len;
    // Padding counts against flow control but is never read: credit it now.
    if (len > data.length) s.release(len - data.length);
    s.receivedLength += data.length;
    if (s.expectedLength >= 0 && s.receivedLength > s.expectedLength) {
      return this.#streamError(id, H2_PROTOCOL_ERROR, "more DATA than content-length");
    }
    if (data.length) s.onData(data);
    if (flags & END_STREAM && !s.gone) {
      if (s.expectedLength >= 0 && s.receivedLength !== s.expectedLength) {
        return this.#streamError(id, H2_PROTOCOL_ERROR, "less DATA than content-length");
      }
      this.#remoteEnd(s);
    }
  }

  #onSettings(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) throw new H2Error(H2_PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & ACK) {
      if (payload.length) throw new H2Error(H2_FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (payload.length % 6) throw new H2Error(H2_FRAME_SIZE_ERROR, "SETTINGS length");
    const dv = new DataView(payload.buffer, payload.byteOffset, payload.length);
    for (let off = 0; off < payload.length; off += 6) {
      const key = dv.getUint16(off);
      const value = dv.getUint32(off + 2);
      if (key === SETTINGS_ENABLE_PUSH) {
        if (value > 1) throw new H2Error(H2_PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value}`);
      } else if (key === SETTINGS_INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) {
          throw new H2Error(H2_FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value}`);
        }
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const s of this.streams.values()) {
          s.sendWindow += delta;
          if (s.sendWindow > MAX_WINDOW) {
            throw new H2Error(H2_FLOW_CONTROL_ERROR, `stream ${s.id} window overflow`);
          }
        }
      } else if (key === SETTINGS_MAX_FRAME_SIZE) {
        if (value < 16384 || value > 2 ** 24 - 1) {
          throw new H2Error(H2_PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
        }
        this.#peerMaxFrame = value;
      }
      // HEADER_TABLE_SIZE: our encoder never indexes. Others: nothing to do.
    }
    this.#frame(FrameType.SETTINGS, ACK, 0, new Uint8Array(0));
    this.#kickAll();
  }

  #onWindowUpdate(id: number, payload: Uint8Array): void {
    if (payload.length !== 4) throw new H2Error(H2_FRAME_SIZE_ERROR, "WINDOW_UPDATE length");
    const inc = new DataView(payload.buffer, payload.byteOffset).getUint32(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new H2Error(H2_PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.#sendWindow += inc;
      if (this.#sendWindow > MAX_WINDOW) {
        throw new H2Error(H2_FLOW_CONTROL_ERROR, "connection window overflow");
      }
      this.#kickAll();
      return;
    }
    const s = this.streams.get(id);
    if (!s) {
      if (this.#idleStream(id)) {
        throw new H2Error(H2_PROTOCOL_ERROR, "WINDOW_UPDATE on idle stream");
      }
      return; // closed: may still arrive for a while
    }
    if (inc === 0) return this.#streamError(id, H2_PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) {
      return this.#streamError(id, H2_FLOW_CONTROL_ERROR, "stream window overflow");
    }
    this.kick(s);
  }

  /** A complete header block. */
  #headers(id: number, endStream: boolean, dep: number, block: Uint8Array): void {
    // Always decoded, to keep the table in step; a decoding error is a
    // connection error (COMPRESSION_ERROR) from serve().
    const list = this.#decoder.decode(block);
    const tooLarge = this.#decoder.tooLarge;
    const existing = this.streams.get(id);
    if (existing) {
      if (dep === id) return this.#streamError(id, H2_PROTOCOL_ERROR, "stream depends on itself");
      if (existing.remoteClosed) {
        return this.#streamError(id, H2_STREAM_CLOSED, "HEADERS after END_STREAM");
      }
      // Trailers from the client: they end the stream and carry no pseudo-header.
      if (!endStream) {
        return this.#streamError(id, H2_PROTOCOL_ERROR, "trailers without END_STREAM");
      }
      const bad = tooLarge ? "header list too large" : checkFields(list, false);
      if (bad) return this.#streamError(id, H2_PROTOCOL_ERROR, bad);
      if (existing.expectedLength >= 0 && existing.receivedLength !== existing.expectedLength) {
        return this.#streamError(id, H2_PROTOCOL_ERROR, "less DATA than content-length");
      }
      this.#remoteEnd(existing);
      return;
    }
    if (id <= this.#lastStream) {
      const closed = this.#closedStreams.get(id);
      if (closed === Closed.BY_US) return; // we reset it: what follows is dropped
      if (closed !== undefined) {
        throw new H2Error(H2_STREAM_CLOSED, `HEADERS on closed stream ${id}`);
      }
      throw new H2Error(H2_PROTOCOL_ERROR, `stream id ${id} not above ${this.#lastStream}`);
    }
    this.#lastStream = id;
    if (dep === id) return this.#streamError(id, H2_PROTOCOL_ERROR, "stream depends on itself");
    if (tooLarge) return this.#streamError(id, H2_ENHANCE_YOUR_CALM, "header list too large");
    const bad = checkFields(list, true);
    if (bad) return this.#streamError(id, H2_PROTOCOL_ERROR, bad);
    if (this.streams.size >= MAX_STREAMS) {
      return this.#streamError(id, H2_REFUSED_STREAM, `more than ${MAX_STREAMS} streams`);
    }
    const headers = new Map(list);
    let expected = -1;
    const cl = headers.get("content-length");
    if (cl !== undefined) {
      if (!/^[0-9]{1,15}$/.test(cl)) {
        return this.#streamError(id, H2_PROTOCOL_ERROR, "content-length");
      }
      expected = Number(cl);
      if (endStream && expected !== 0) {
        return this.#streamError(id, H2_PROTOCOL_ERROR, "less DATA than content-length");
      }
    }
    const s = new H2Stream(id, headers, this, this.#peerInitialWindow);
    s.expectedLength = expected;
    this.streams.set(id, s);
    this.onStream(s);
    if (endStream) this.#remoteEnd(s);
  }

  /** A stream error: RST_STREAM `code`, and the stream (if tracked) is closed. */
  #streamError(id: number, code: number, message: string): void {
    const p = new Uint8Array(4);
    new DataView(p.buffer).setUint32(0, code);
    this.#frame(FrameType.RST_STREAM, 0, id, p);
    const s = this.streams.get(id);
    if (s) {
      this.#forget(s, Closed.BY_US);
      s.cancelled(new H2Error(code, message));
    } else if (!this.#idleStream(id)) {
      this.#remember(id, Closed.BY_US);
    }
  }

  #remember(id: number, how: Closed): void {
    this.#closedStreams.delete(id);
    this.#closedStreams.set(id, how);
    if (this.#closedStreams.size > CLOSED_MEMORY) {
      this.#closedStreams.delete(this.#closedStreams.keys().next().value!);
    }
  }

  #forget(s: H2Stream, how: Closed): void {
    this.streams.delete(s.id);
    s.gone = true;
    this.#remember(s.id, how);
  }

  #remoteEnd(s: H2Stream): void {
    if (s.remoteClosed) return;
    s.remoteClosed = true;
    s.onEnd();
    this.#maybeForget(s);
  }

  #maybeForget(s: H2Stream): void {
    if (s.remoteClosed && s.localClosed && s.queue.length === 0 && !s.gone) {
      this.#forget(s, Closed.DONE);
    }
  }

  #creditConnection(n: number): void {
    this.#connCredit += n;
    if (this.#connCredit >= CONNECTION_WINDOW / 4) {
      this.#recvWindow += this.#connCredit;
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
    if (this.#closed) return;
    const f = new Uint8Array(9 + payload.length);
    writeHeader(f, 0, payload.length, type, flags, id);
    f.set(payload, 9);
    this.#control.push(f);
    this.#controlBytes += f.length;
    this.#pump();
  }

  kick(s: H2Stream): void {
    if (s.gone || this.#goingAway) return;
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

  /** Fills the batch from control frames and ready streams; null when nothing can go. */
  #collect(): Uint8Array | null {
    const batch = this.#batch;
    while (this.#control.length) {
      const f = this.#control.shift()!;
      this.#controlBytes -= f.length;
      batch.append(f);
    }
    const blocked: H2Stream[] = [];
    while (this.#ready.length && batch.length < BATCH && !this.#goingAway) {
      const s = this.#ready.shift()!;
      if (s.gone) continue;
      const stalled = this.#collectStream(s);
      if (s.gone) continue;
      if (s.queue.length) (stalled ? blocked : this.#ready).push(s);
      else this.#maybeForget(s);
      if (stalled && this.#sendWindow <= 0) break;
    }
    for (const s of blocked) if (!this.#ready.includes(s)) this.#ready.push(s);
    return batch.take();
  }

  /** A ready stream's queued items into the batch; true when its data waits for a window. */
  #collectStream(s: H2Stream): boolean {
    const batch = this.#batch;
    while (s.queue.length && batch.length < BATCH) {
      const item = s.queue[0];
      if (item.kind === "headers") {
        this.#collectHeaders(s, item);
        s.queue.shift();
      } else if (item.kind === "reset") {
        this.#collectReset(s, item);
      } else {
        if (this.#collectData(s, item)) return true;
        if (item.off < item.bytes.length) break;
        s.queue.shift();
        item.done?.();
        break; // one data item per stream per round keeps streams fair
      }
    }
    return false;
  }

  /** A header block as HEADERS then CONTINUATION frames of at most the peer's frame size. */
  #collectHeaders(s: H2Stream, item: Extract<Outgoing, { kind: "headers" }>): void {
    const batch = this.#batch;
    const maxFrame = this.#peerMaxFrame;
    let block = item.block;
    let type = FrameType.HEADERS;
    for (;;) {
      const piece = block.subarray(0, maxFrame);
      block = block.subarray(piece.length);
      const last = block.length === 0;
      const flags = (last ? END_HEADERS : 0) |
        (type === FrameType.HEADERS && item.end ? END_STREAM : 0);
      batch.buf.set(piece, batch.frame(piece.length, type, flags, s.id));
      if (last) break;
      type = FrameType.CONTINUATION;
    }
  }

  /** Our end of a stream by RST_STREAM: what was still queued on it is dropped. */
  #collectReset(s: H2Stream, item: Extract<Outgoing, { kind: "reset" }>): void {
    s.queue.length = 0;
    // After our END_STREAM, only needed while the client is still sending.
    if (!(item.afterEnd && s.remoteClosed)) {
      const at = this.#batch.frame(4, FrameType.RST_STREAM, 0, s.id);
      const buf = this.#batch.buf;
      new DataView(buf.buffer, buf.byteOffset).setUint32(at, item.code);
    }
    this.#forget(s, item.afterEnd && s.remoteClosed ? Closed.DONE : Closed.BY_US);
    if (!s.remoteClosed) {
      // Nothing more will be read from the client on this stream.
      s.remoteClosed = true;
      s.onEnd();
    }
  }

  /**
   * A data item's bytes as DATA frames, within both send windows and the
   * batch; true when a window stopped it.
   */
  #collectData(s: H2Stream, item: Extract<Outgoing, { kind: "data" }>): boolean {
    const batch = this.#batch;
    const maxFrame = this.#peerMaxFrame;
    while (item.off < item.bytes.length && batch.length < BATCH) {
      const n = Math.min(item.bytes.length - item.off, maxFrame, s.sendWindow, this.#sendWindow);
      if (n <= 0) return true;
      batch.buf.set(
        item.bytes.subarray(item.off, item.off + n),
        batch.frame(n, FrameType.DATA, 0, s.id),
      );
      item.off += n;
      s.sendWindow -= n;
      this.#sendWindow -= n;
    }
    return false;
  }
}

/**
 * The bytes of one write to the transport: frames appended to a buffer that
 * grows when it must, and is kept for the next write unless it grew too big.
 */
class Batch {
  #kept = new Uint8Array(BATCH + 64 * 1024);
  #buf = this.#kept;
  /** Bytes appended since the last take(). */
  length = 0;

  /** The buffer the frames are in (it changes when it grows). */
  get buf(): Uint8Array {
    return this.#buf;
  }

  append(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** Appends a frame header for `len` bytes of payload; returns where that payload goes in `buf`. */
  frame(len: number, type: number, flags: number, id: number): number {
    this.#ensure(9 + len);
    writeHeader(this.#buf, this.length, len, type, flags, id);
    const at = this.length + 9;
    this.length = at + len;
    return at;
  }

  /** The bytes appended (null when none); the next frames start a new batch. */
  take(): Uint8Array | null {
    const buf = this.#buf;
    const len = this.length;
    this.length = 0;
    if (buf !== this.#kept && buf.length <= 4 * BATCH) this.#kept = buf;
    this.#buf = this.#kept;
    return len === 0 ? null : buf.subarray(0, len);
  }

  #ensure(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    const bigger = new Uint8Array(Math.max(this.#buf.length * 2, this.length + n));
    bigger.set(this.#buf.subarray(0, this.length));
    this.#buf = bigger;
  }
}

/** A failure of the transport's read, passed through serve() as is. */
class ReadError extends Error {
  constructor(override readonly cause: unknown) {
    super("read failed");
  }
}

const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
]);
const REQUEST_PSEUDO: ReadonlySet<string> = new Set([":method", ":scheme", ":path", ":authority"]);
/** A field name: lowercase visible ASCII, no separators that HTTP forbids (RFC 9113 §8.2.1). */
const BAD_NAME = /[^!#$%&'*+\-.^_`|~0-9a-z]/;
const BAD_VALUE = /[\0\r\n]|^[ \t]|[ \t]$/;

/**
 * Why a request's header list (or trailers) is malformed (RFC 9113 §8.2-8.3),
 * or "" when it is not.
 */
function checkFields(list: [string, string][], request: boolean): string {
  const pseudo = new Set<string>();
  let regular = false;
  for (const [name, value] of list) {
    if (name.startsWith(":")) {
      if (!request) return `pseudo-header ${name} in trailers`;
      if (regular) return `pseudo-header ${name} after a regular field`;
      if (!REQUEST_PSEUDO.has(name)) return `pseudo-header ${name} in a request`;
      if (pseudo.has(name)) return `duplicate ${name}`;
      pseudo.add(name);
      if (name === ":path" && value === "") return "empty :path";
    } else {
      regular = true;
      if (name === "" || BAD_NAME.test(name)) return `field name ${JSON.stringify(name)}`;
      if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
      if (name === "te" && value !== "trailers") return "te other than trailers";
    }
    if (BAD_VALUE.test(value)) return `value of ${name}`;
  }
  if (request) {
    for (const p of [":method", ":scheme", ":path"]) if (!pseudo.has(p)) return `missing ${p}`;
  }
  return "";
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
  if (payload.length === 0) {
    throw new H2Error(H2_FRAME_SIZE_ERROR, "padded frame without pad length");
  }
  const pad = payload[0];
  if (pad >= payload.length) throw new H2Error(H2_PROTOCOL_ERROR, "bad padding");
  return payload.subarray(1, payload.length - pad);
}
