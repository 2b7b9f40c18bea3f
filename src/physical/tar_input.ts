// The tar stream (pg_basebackup's stdout) as the archive reader needs it:
// whole blocks and small bodies copied out, and large bodies read straight
// into the caller's buffer. One buffer of BUFFER_SIZE bytes is reused for
// the whole stream, so memory does not grow with the cluster and nothing is
// left for the collector; a byte stream (the tool's stdout) is read into it
// in large pieces, and a large file's content skips it altogether.

/** Bytes of the stream buffered at most. */
export const BUFFER_SIZE = 1024 * 1024;
/** A read for the caller at least this large goes straight into the caller's buffer. */
const DIRECT_MIN = 64 * 1024;

export class TarInput {
  #buf = new Uint8Array(BUFFER_SIZE);
  #start = 0;
  #end = 0;
  #consumed = 0;
  #eof = false;
  #error: Error | undefined;
  readonly #byob: ReadableStreamBYOBReader | undefined;
  readonly #plain: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #pending: Uint8Array | undefined;

  constructor(stream: ReadableStream<Uint8Array>) {
    try {
      this.#byob = stream.getReader({ mode: "byob" });
    } catch {
      this.#plain = stream.getReader();
    }
  }

  /** Bytes of the stream consumed so far (for messages). */
  get offset(): number {
    return this.#consumed;
  }

  /** Fails every read from now on with `err` and stops the producer. */
  async abort(err: Error): Promise<void> {
    this.#error ??= err;
    await (this.#byob ?? this.#plain)!.cancel(err).catch(() => {});
  }

  release(): void {
    (this.#byob ?? this.#plain)!.releaseLock();
  }

  /** Reads more into the buffer; false at the end of the stream. */
  async #fill(): Promise<boolean> {
    if (this.#error) throw this.#error;
    if (this.#eof) return false;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    else if (this.#end === this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    try {
      if (this.#byob) {
        const { value, done } = await this.#byob.read(
          new Uint8Array(this.#buf.buffer, this.#end, this.#buf.length - this.#end),
        );
        // The read hands the same memory back in a new ArrayBuffer.
        if (value) this.#buf = new Uint8Array(value.buffer);
        if (this.#error) throw this.#error;
        if (done) {
          this.#eof = true;
          return false;
        }
        this.#end += value.length;
        return true;
      }
      let chunk = this.#pending;
      this.#pending = undefined;
      if (!chunk) {
        const { value, done } = await this.#plain!.read();
        if (this.#error) throw this.#error;
        if (done) {
          this.#eof = true;
          return false;
        }
        chunk = value;
      }
      const n = Math.min(chunk.length, this.#buf.length - this.#end);
      this.#buf.set(chunk.subarray(0, n), this.#end);
      this.#end += n;
      if (n < chunk.length) this.#pending = chunk.subarray(n);
      return true;
    } catch (e) {
      this.#error ??= e instanceof Error ? e : new Error(String(e));
      throw this.#error;
    }
  }

  /**
   * Exactly `n` bytes, in a buffer of their own; null when the stream ends
   * before any of them, and an error naming `what` when it ends among them.
   */
  async exact(n: number, what: () => string): Promise<Uint8Array | null> {
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      if (this.#start === this.#end && !(await this.#fill())) {
        if (got === 0) return null;
        throw new Error(`the tar stream ended inside ${what()}`);
      }
      const k = Math.min(n - got, this.#end - this.#start);
      out.set(this.#buf.subarray(this.#start, this.#start + k), got);
      this.#start += k;
      this.#consumed += k;
      got += k;
    }
    return out;
  }

  /** Exactly `n` bytes, in a buffer of their own; an error naming `what` when the stream ends first. */
  async need(n: number, what: () => string): Promise<Uint8Array> {
    const bytes = await this.exact(n, what);
    if (!bytes) throw new Error(`the tar stream ended inside ${what()}`);
    return bytes;
  }

  /** Skips `n` bytes; an error naming `what` when the stream ends first. */
  async skip(n: number, what: () => string): Promise<void> {
    while (n > 0) {
      if (this.#start === this.#end && !(await this.#fill())) {
        throw new Error(`the tar stream ended inside ${what()}`);
      }
      const k = Math.min(n, this.#end - this.#start);
      this.#start += k;
      this.#consumed += k;
      n -= k;
    }
  }

  /**
   * Fills some of `view` (at least one byte, unless the stream has ended)
   * and returns the filled part. It may be on a new ArrayBuffer holding the
   * same memory (a byte stream's read transfers it).
   */
  async readInto(view: Uint8Array): Promise<Uint8Array> {
    if (this.#error) throw this.#error;
    if (this.#start === this.#end && this.#byob && !this.#eof && view.length >= DIRECT_MIN) {
      try {
        const { value, done } = await this.#byob.read(view);
        if (this.#error) throw this.#error;
        if (done) {
          this.#eof = true;
          return value ?? view.subarray(0, 0);
        }
        this.#consumed += value.length;
        return value;
      } catch (e) {
        this.#error ??= e instanceof Error ? e : new Error(String(e));
        throw this.#error;
      }
    }
    if (this.#start === this.#end && !(await this.#fill())) return view.subarray(0, 0);
    const k = Math.min(view.length, this.#end - this.#start);
    view.set(this.#buf.subarray(this.#start, this.#start + k));
    this.#start += k;
    this.#consumed += k;
    return view.subarray(0, k);
  }

  /** Reads to the end of the stream, discarding (what follows the end-of-archive marker). */
  async drain(): Promise<void> {
    this.#start = this.#end;
    while (await this.#fill()) this.#start = this.#end;
  }
}
