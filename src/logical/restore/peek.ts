// Looks at a file's first bytes (to classify it) without losing them: the
// stream handed on still yields everything from the first byte.

/** Reads at least `n` bytes (or to EOF) and returns them with a stream that still yields everything. */
export async function peek(
  stream: ReadableStream<Uint8Array>,
  n: number,
): Promise<{ head: Uint8Array; stream: ReadableStream<Uint8Array> }> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let ended = false;
  while (size < n) {
    const { value, done } = await reader.read();
    if (done) {
      ended = true;
      break;
    }
    chunks.push(value);
    size += value.length;
  }
  const head = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    head.set(c, off);
    off += c.length;
  }
  let replayed = false;
  const rest = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!replayed) {
        replayed = true;
        if (size > 0) {
          controller.enqueue(head);
          return;
        }
      }
      if (ended) {
        controller.close();
        return;
      }
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason) {
      await reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { head, stream: rest };
}
