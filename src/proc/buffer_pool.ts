// Reused buffers for the restore data path. Each file's content reaches the
// exporter as 1 MiB gRPC messages; a fresh buffer per message cost a restore
// half of the plugin's CPU (every 4 KiB page of a new 1 MiB allocation faults
// in when the frames are copied into it, and is unmapped again when it is
// collected) and its garbage, between collections, was most of the peak RSS
// (figures: docs/BENCHMARKS.md, "Restore").
//
// Buffers are reused only when it is certain that nothing reads them any
// more: the protocol layer lends out one exact view (a chunk's content), and
// only the final consumer, once that very view has been written out (to
// pg_restore's or psql's stdin), gives it back. A view that was cut into
// pieces, kept, or written somewhere else is never given back, and its buffer
// is left to the collector as before. A buffer given back is moved to a new
// ArrayBuffer (`transfer()`, no copy), which detaches every view of the old
// one: a view somebody kept by mistake reads as empty, it can never see the
// next message's bytes.
//
// One pool of message buffers per process (`Runtime.buffers`,
// src/proc/runtime.ts): it is an allocator, shared by the protocol layer that
// fills buffers and the tool runner that empties them.
//
// The backup side uses the same pool differently (`recycle`): the importer
// service reads a tool's stdout into whole buffers (1 MiB chunks) and, once a
// chunk's bytes are sent, it alone knows that nothing reads that buffer any
// more. A byte stream's reads move the buffer to a new ArrayBuffer each time,
// so such a buffer is recognised by its size, not as one the pool made.

export class BufferPool {
  readonly #free: ArrayBuffer[] = [];
  readonly #ours = new WeakSet<ArrayBuffer>();
  readonly #lent = new WeakMap<ArrayBuffer, { offset: number; length: number }>();

  /**
   * @param size bytes of every buffer; larger requests are not pooled
   * @param keep free buffers kept at most (the others go to the collector)
   */
  constructor(readonly size: number, readonly keep: number) {
    if (!Number.isInteger(size) || size < 1 || !Number.isInteger(keep) || keep < 0) {
      throw new RangeError(`Cannot make a buffer pool of ${keep} buffers of ${size} bytes`);
    }
  }

  /** Free buffers held now. */
  get idle(): number {
    return this.#free.length;
  }

  /** `length` bytes (at most `size`), from a reused buffer when one is free. */
  take(length: number): Uint8Array {
    if (length > this.size) {
      throw new RangeError(`Cannot take ${length} bytes from a pool of ${this.size}-byte buffers`);
    }
    let buffer = this.#free.pop();
    if (!buffer) {
      buffer = new ArrayBuffer(this.size);
      this.#ours.add(buffer);
    }
    return new Uint8Array(buffer, 0, length);
  }

  /**
   * Marks `view` as the one use of its buffer from now on: giving back this
   * exact view (same offset and length) returns the buffer to the pool.
   * A view of a buffer that is not the pool's is ignored.
   */
  lend(view: Uint8Array): void {
    const buffer = view.buffer as ArrayBuffer;
    if (!this.#ours.has(buffer)) return;
    this.#lent.set(buffer, { offset: view.byteOffset, length: view.byteLength });
  }

  /**
   * Returns the buffer of `view` to the pool when `view` is exactly the view
   * lent out; true when it did. Every view of that buffer is detached.
   */
  giveBack(view: Uint8Array): boolean {
    const buffer = view.buffer as ArrayBuffer;
    const lent = this.#lent.get(buffer);
    if (!lent || lent.offset !== view.byteOffset || lent.length !== view.byteLength) return false;
    this.#lent.delete(buffer);
    this.#ours.delete(buffer);
    this.#keepOrDrop(buffer);
    return true;
  }

  /**
   * Returns the whole buffer of `view` to the pool, on the caller's word that
   * nothing reads any view of it any more; true when it did. Any buffer of
   * the pool's size is taken (a byte stream's read moves the pool's buffers
   * to new ArrayBuffers). Every view of that buffer is detached.
   */
  recycle(view: Uint8Array): boolean {
    const buffer = view.buffer;
    if (
      !(buffer instanceof ArrayBuffer) || buffer.detached || buffer.resizable ||
      buffer.byteLength !== this.size
    ) return false;
    this.#lent.delete(buffer);
    this.#ours.delete(buffer);
    this.#keepOrDrop(buffer);
    return true;
  }

  /** Keeps `buffer` as a free one (moved, so that its old views are detached) or drops it. */
  #keepOrDrop(buffer: ArrayBuffer): void {
    if (this.#free.length >= this.keep) {
      buffer.transfer(0); // detach the views all the same; the memory goes
      return;
    }
    const moved = buffer.transfer();
    this.#ours.add(moved);
    this.#free.push(moved);
  }
}

/**
 * A pool for the message buffers of the data path: one gRPC message of
 * plakar's (a 1 MiB chunk and a few bytes of framing) fits. Twelve free
 * buffers cover what can be in flight (the stream window, the content queue,
 * one write).
 */
export function messageBufferPool(): BufferPool {
  return new BufferPool(1024 * 1024 + 64 * 1024, 12);
}
