// Raw HTTP/2 for the h2 tests: frames encoded and read by hand (so a test can
// send what no conforming client would), an in-memory pipe to run a
// connection without sockets, and the small payload builders they share.

/** The client connection preface (RFC 9113 §3.4). */
export const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Uint8Array;
}

/** One frame's bytes: the 9-byte header, then `payload`. */
export function encodeFrame(
  type: number,
  flags: number,
  id: number,
  payload: Uint8Array,
): Uint8Array {
  const f = new Uint8Array(9 + payload.length);
  f[0] = payload.length >>> 16;
  f[1] = (payload.length >>> 8) & 0xff;
  f[2] = payload.length & 0xff;
  f[3] = type;
  f[4] = flags;
  new DataView(f.buffer).setUint32(5, id >>> 0);
  f.set(payload, 9);
  return f;
}

/** A 32-bit big-endian value. */
export const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
};

/** One SETTINGS entry. */
export const setting = (key: number, value: number) => {
  const b = new Uint8Array(6);
  new DataView(b.buffer).setUint16(0, key);
  new DataView(b.buffer).setUint32(2, value >>> 0);
  return b;
};

/** Something frames can be written to and read from (a Deno.Conn, a pair of MemPipes). */
export interface ByteIO {
  read(buf: Uint8Array): Promise<number | null>;
  write(buf: Uint8Array): Promise<number>;
}

/** Sends frames and reads them back one at a time, with a deadline. */
export class FrameIO {
  #buf = new Uint8Array(0);
  #pending: Promise<Uint8Array | null> | undefined;
  constructor(readonly io: ByteIO) {}

  async send(type: number, flags: number, id: number, payload: Uint8Array): Promise<void> {
    const f = encodeFrame(type, flags, id, payload);
    let off = 0;
    while (off < f.length) off += await this.io.write(f.subarray(off));
  }

  /** The next frame, or null at the end of input or if none arrives within `ms`. */
  async frame(ms = 2000): Promise<Frame | null> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.#buf.length >= 9) {
        const len = (this.#buf[0] << 16) | (this.#buf[1] << 8) | this.#buf[2];
        if (this.#buf.length >= 9 + len) {
          const f = {
            type: this.#buf[3],
            flags: this.#buf[4],
            id: new DataView(this.#buf.buffer, this.#buf.byteOffset).getUint32(5) & 0x7fffffff,
            payload: this.#buf.slice(9, 9 + len),
          };
          this.#buf = this.#buf.slice(9 + len);
          return f;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) return null;
      // A read that outlives a timeout is kept for the next call.
      this.#pending ??= (async () => {
        const chunk = new Uint8Array(65536);
        const n = await this.io.read(chunk);
        return n === null ? null : chunk.subarray(0, n);
      })();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const got = await Promise.race([
        this.#pending,
        new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), left))),
      ]);
      clearTimeout(timer);
      if (got === "timeout") return null;
      this.#pending = undefined;
      if (got === null) return null;
      const merged = new Uint8Array(this.#buf.length + got.length);
      merged.set(this.#buf);
      merged.set(got, this.#buf.length);
      this.#buf = merged;
    }
  }
}

/** One direction of an in-memory byte stream; a write waits while `capacity` bytes are unread. */
export class MemPipe {
  #chunks: Uint8Array[] = [];
  #size = 0;
  #closed = false;
  #waiters: (() => void)[] = [];
  constructor(readonly capacity = Infinity) {}

  get buffered(): number {
    return this.#size;
  }

  #wait(): Promise<void> {
    return new Promise((r) => this.#waiters.push(r));
  }

  #notify(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  async write(b: Uint8Array): Promise<number> {
    while (this.#size >= this.capacity && !this.#closed) await this.#wait();
    if (this.#closed) throw new Error("pipe closed");
    this.#chunks.push(b.slice());
    this.#size += b.length;
    this.#notify();
    return b.length;
  }

  async read(buf: Uint8Array): Promise<number | null> {
    while (!this.#chunks.length) {
      if (this.#closed) return null;
      await this.#wait();
    }
    let n = 0;
    while (n < buf.length && this.#chunks.length) {
      const c = this.#chunks[0];
      const take = Math.min(c.length, buf.length - n);
      buf.set(c.subarray(0, take), n);
      n += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#size -= n;
    this.#notify();
    return n;
  }

  close(): void {
    this.#closed = true;
    this.#notify();
  }
}

/** A literal field with incremental indexing, name and value as plain UTF-8. */
export function indexed(name: string, value: string): number[] {
  const out: number[] = [0x40];
  for (const s of [name, value]) {
    const b = new TextEncoder().encode(s);
    let n = b.length;
    if (n < 127) out.push(n);
    else {
      out.push(127);
      n -= 127;
      while (n >= 128) {
        out.push((n & 0x7f) | 0x80);
        n >>= 7;
      }
      out.push(n);
    }
    out.push(...b);
  }
  return out;
}
