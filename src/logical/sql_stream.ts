// Byte-stream helpers for restore: look at a file's first bytes without
// losing them, and make the role-creation statements of a pg_dumpall script
// idempotent, so that restoring globals into a cluster where a role already
// exists (the superuser, always) is not an error, even with exit_on_error.

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

const CREATE_ROLE = /^CREATE ROLE ((?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*));$/;
const TAG = "$plakar_role$";

/** Rewrites one line: `CREATE ROLE x;` becomes a block that skips an existing role. */
export function idempotentRoleLine(line: string): string {
  const m = CREATE_ROLE.exec(line);
  if (!m || line.includes(TAG)) return line;
  return `DO ${TAG} BEGIN CREATE ROLE ${
    m[1]
  }; EXCEPTION WHEN duplicate_object THEN NULL; END ${TAG};`;
}

/**
 * A transform applying idempotentRoleLine to the roles section of a
 * pg_dumpall script. Lines are cut at newline bytes, so multi-byte characters
 * are never split. From the first `\connect` on (database contents in a full
 * cluster script) bytes pass through untouched.
 */
export function idempotentRoles(): TransformStream<Uint8Array, Uint8Array> {
  const dec = new TextDecoder();
  const enc = new TextEncoder();
  let partial = new Uint8Array(0);
  let passthrough = false;
  const rewrite = (line: Uint8Array): Uint8Array => {
    // Only lines starting with "CREATE ROLE" (ASCII) can change.
    if (line[0] !== 0x43 || line.length > 4096) return line;
    const text = dec.decode(line);
    const out = idempotentRoleLine(text);
    return out === text ? line : enc.encode(out);
  };
  return new TransformStream({
    transform(chunk, controller) {
      if (passthrough) {
        controller.enqueue(chunk);
        return;
      }
      const data = partial.length ? concat(partial, chunk) : chunk;
      let start = 0;
      for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, start)) {
        const line = data.subarray(start, nl);
        if (line[0] === 0x5c && dec.decode(line.subarray(0, 8)) === "\\connect") {
          passthrough = true;
          controller.enqueue(data.subarray(start));
          partial = new Uint8Array(0);
          return;
        }
        controller.enqueue(rewrite(line));
        controller.enqueue(NEWLINE);
        start = nl + 1;
      }
      partial = data.slice(start);
    },
    flush(controller) {
      if (partial.length) controller.enqueue(passthrough ? partial : rewrite(partial));
    },
  });
}

const NEWLINE = new Uint8Array([0x0a]);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
