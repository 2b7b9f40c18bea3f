// Streams for tests that stand in for a tool's stdout.

/** `bytes` as a tool's stdout gives them: a byte stream, at most `piece` bytes per read. */
export function byteStream(bytes: Uint8Array, piece: number): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    type: "bytes",
    pull(c) {
      const req = c.byobRequest!;
      const view = req.view as Uint8Array;
      const n = Math.min(view.byteLength, bytes.length - off, piece);
      if (n === 0) {
        c.close();
        req.respond(0);
        return;
      }
      view.set(bytes.subarray(off, off + n));
      off += n;
      req.respond(n);
    },
  });
}

/** `text` as a stream of chunks of `size` bytes (the last one shorter). */
export function chunked(text: string, size: number): ReadableStream<Uint8Array> {
  return bytesInChunks(new TextEncoder().encode(text), size);
}

/** `bytes` as a stream of chunks of `size` bytes (the last one shorter). */
export function bytesInChunks(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.slice(off, off + size));
      off += size;
    },
  });
}

/** Everything `s` yields, as text. */
export async function collectText(s: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(s).text();
}
