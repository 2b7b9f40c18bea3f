// Fuzzing our HTTP/2 server with frame sequences from a seeded PRNG, within a
// time budget: random and mutated sequences must end the connection cleanly
// (serve() resolves, or rejects with an H2Error after its GOAWAY) within a
// bound, with no other exception and bounded buffers; and a conforming call
// interleaved with harmless noise on the same connection must still complete.
//
// Rerun a failure with H2_FUZZ_SEED=<seed> (printed in the failure); set
// H2_FUZZ_MS to change the time spent (default 10 s in total).

import { Buffer } from "node:buffer";
import { assert, assertEquals } from "../../../helpers/assert.ts";
import { encodeHeaders, HpackDecoder, HpackError } from "../../../../src/kloset/h2/hpack.ts";
import {
  H2Connection,
  H2Error,
  MAX_CONTROL,
  MAX_STREAMS,
} from "../../../../src/kloset/h2/connection.ts";
import { Call } from "../../../../src/kloset/rpc.ts";
import {
  encodeFrame,
  FrameIO,
  MemPipe,
  PREFACE,
  setting,
  u32,
} from "../../../helpers/h2_frames.ts";

const BUDGET_MS = Number(Deno.env.get("H2_FUZZ_MS") ?? 10_000);
const SEED = Number(Deno.env.get("H2_FUZZ_SEED") ?? (Date.now() % 2 ** 31));
/** How long a connection may take to end once its input has ended. */
const END_WITHIN_MS = 5000;

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

class Rand {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

const frame = encodeFrame;
const grpc = (body: Uint8Array) => {
  const b = new Uint8Array(5 + body.length);
  new DataView(b.buffer).setUint32(1, body.length);
  b.set(body, 5);
  return b;
};
const request = (path: string, extra: [string, string][] = []) =>
  encodeHeaders([
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...extra,
  ]);

/** Handlers: echo, a call that never answers (until reset), and a 256 KiB answer. */
async function handle(c: Call): Promise<void> {
  try {
    if (c.path === "/t/Hang") {
      await new Promise((r) => c.signal.addEventListener("abort", r));
      return;
    }
    if (c.path === "/t/Big") {
      await c.send(new Uint8Array(256 * 1024).fill(7));
      c.end();
      return;
    }
    for (;;) {
      const m = await c.read();
      if (m === null) break;
      await c.send(m);
    }
    c.end();
  } catch (e) {
    c.fail(e);
  }
}

interface Server {
  up: MemPipe;
  down: MemPipe;
  conn: H2Connection;
  /** Settles with null (input ended) or the error serve() rejected with. */
  ended: Promise<unknown>;
}

function server(downCapacity: number): Server {
  const up = new MemPipe();
  const down = new MemPipe(downCapacity);
  const conn = new H2Connection(
    { read: (b) => up.read(b), write: (b) => down.write(b) },
    (s) => void handle(new Call(s)),
  );
  const ended = conn.serve().then(() => null, (e) => e);
  return { up, down, conn, ended };
}

/** A random frame, valid-looking more often than not. */
function randomFrame(r: Rand, ids: number[]): Uint8Array {
  const id = r.chance(0.8) ? r.pick(ids) : r.pick([0, 2, 4, r.int(2 ** 31), 2 ** 31 - 1]);
  const flags = r.chance(0.7) ? r.pick([0, 1, 4, 5, 8, 9, 0x20, 0x24, 0x25, 0x2d]) : r.int(256);
  const type = r.chance(0.95) ? r.int(10) : 10 + r.int(246);
  let payload: Uint8Array;
  if (r.chance(0.15)) {
    payload = r.bytes(r.chance(0.02) ? 16384 + r.int(3) : r.int(48));
  } else {
    switch (type) {
      case 0: {
        const body = grpc(r.bytes(r.int(2000)));
        if (flags & 8) {
          const pad = r.int(256);
          payload = new Uint8Array(1 + body.length + pad);
          payload[0] = pad;
          payload.set(body, 1);
        } else payload = body;
        break;
      }
      case 1:
      case 9: {
        const block = request(r.pick(["/t/Echo", "/t/Hang", "/t/Big", "/x"]));
        payload = r.chance(0.2) ? block.subarray(0, r.int(block.length)) : block;
        if (type === 1 && flags & 0x20) {
          payload = Uint8Array.from([0, 0, 0, r.int(9), 16, ...payload]);
        }
        if (type === 1 && flags & 8) payload = Uint8Array.from([2, ...payload, 0, 0]);
        break;
      }
      case 2:
        payload = Uint8Array.from([0, 0, 0, r.int(9), r.int(256)]);
        break;
      case 3:
        payload = u32(r.int(14));
        break;
      case 4:
        payload = r.chance(0.5) ? new Uint8Array(0) : Uint8Array.from([
          ...setting(r.int(8), r.pick([0, 1, 2, 16384, 65535, 1 << 20, 2 ** 24, 2 ** 31 - 1])),
          ...setting(4, r.pick([0, 1, 65535, 1 << 20])),
        ]);
        break;
      case 6:
        payload = r.bytes(8);
        break;
      case 7:
        payload = Uint8Array.from([...u32(r.int(9)), ...u32(r.int(14)), 0x64, 0x62]);
        break;
      case 8:
        payload = u32(r.pick([0, 1, 1000, 65535, 1 << 20, 2 ** 31 - 1]));
        break;
      default:
        payload = r.bytes(r.int(32));
    }
  }
  return frame(type, flags, id, payload);
}

/** Sends a hostile sequence, ends the input, and checks how the connection ends. */
async function hostile(r: Rand, caseNo: number): Promise<void> {
  const mute = r.chance(0.2); // a peer that reads nothing
  const s = server(mute ? 32 * 1024 : 1 << 20);
  let drained = 0;
  const drain = mute ? Promise.resolve() : (async () => {
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await s.down.read(buf);
      if (n === null) return;
      drained += n;
    }
  })();
  const parts: Uint8Array[] = [];
  if (r.chance(0.97)) parts.push(PREFACE);
  else parts.push(r.bytes(24));
  if (r.chance(0.9)) parts.push(frame(4, 0, 0, setting(4, r.pick([0, 100, 65535, 1 << 20]))));
  const ids = [1, 3, 5, 7, 9, 11];
  const n = 1 + r.int(60);
  for (let i = 0; i < n; i++) parts.push(randomFrame(r, ids));
  let bytes = Buffer.concat(parts);
  if (r.chance(0.3)) {
    // Mutations: flipped bytes, a cut.
    bytes = Buffer.from(bytes);
    for (let k = r.int(4); k >= 0; k--) bytes[r.int(bytes.length)] = r.int(256);
    if (r.chance(0.3)) bytes = bytes.subarray(0, r.int(bytes.length));
  }
  let peak = 0;
  for (let off = 0; off < bytes.length;) {
    const len = 1 + r.int(4096);
    await s.up.write(bytes.subarray(off, off + len));
    off += len;
    if (r.chance(0.3)) await new Promise((res) => setTimeout(res, 0));
    peak = Math.max(peak, s.conn.queuedControlBytes);
    assert(s.conn.streams.size <= MAX_STREAMS, `case ${caseNo}: ${s.conn.streams.size} streams`);
  }
  s.up.close();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    s.ended,
    new Promise((res) => (timer = setTimeout(() => res("stalled"), END_WITHIN_MS))),
  ]);
  clearTimeout(timer);
  s.down.close();
  await drain;
  assert(outcome !== "stalled", `case ${caseNo}: the connection did not end (mute: ${mute})`);
  assert(
    outcome === null || outcome instanceof H2Error,
    `case ${caseNo}: serve() failed with ${(outcome as Error)?.stack ?? outcome}`,
  );
  assert(peak <= MAX_CONTROL + 1024, `case ${caseNo}: ${peak} bytes of control frames queued`);
  void drained;
}

/** Harmless noise: frames a conforming client may send, or that only cost another stream. */
function noise(r: Rand, nextId: () => number, hanging: number[]): Uint8Array {
  switch (r.int(9)) {
    case 0:
      return frame(6, 0, 0, r.bytes(8));
    case 1:
      return frame(2, 0, 3 + 2 * r.int(50), Uint8Array.from([0, 0, 0, 1, r.int(256)]));
    case 2:
      return frame(8, 0, 0, u32(1 + r.int(1000)));
    case 3:
      return frame(0x20 + r.int(200), r.int(256), r.int(100), r.bytes(r.int(40)));
    case 4:
      return frame(4, 0, 0, setting(r.pick([1, 3, 6, 0x99]), r.int(100000)));
    case 5: {
      const id = nextId();
      hanging.push(id);
      return frame(1, 4, id, request("/t/Hang"));
    }
    case 6: {
      const id = hanging.shift();
      return id ? frame(3, 0, id, u32(8)) : frame(6, 0, 0, r.bytes(8));
    }
    case 7: // a malformed request: a stream error only
      return frame(1, 5, nextId(), request("/t/Echo", [["Upper", "x"]]));
    default: {
      const id = nextId();
      const pad = r.int(200);
      const body = Uint8Array.from([pad, ...grpc(r.bytes(r.int(100))), ...new Uint8Array(pad)]);
      return Buffer.concat([frame(1, 4, id, request("/t/Echo")), frame(0, 9, id, body)]);
    }
  }
}

/** A conforming echo call on stream 1, interleaved with noise; it must complete intact. */
async function conforming(r: Rand, caseNo: number): Promise<void> {
  const s = server(1 << 20);
  const reader = new FrameIO(s.down);
  let id = 1;
  const nextId = () => (id += 2);
  const hanging: number[] = [];
  const messages = Array.from({ length: 1 + r.int(5) }, () => r.bytes(r.int(300_000)));
  const out: Uint8Array[] = [
    PREFACE,
    frame(4, 0, 0, Uint8Array.from([...setting(4, 16 << 20), ...setting(5, 16384)])),
    frame(8, 0, 0, u32(64 << 20)),
    frame(1, 4, 1, request("/t/Echo")),
  ];
  for (const m of messages) {
    const g = grpc(m);
    for (let off = 0; off < g.length;) {
      const n = 1 + r.int(16384);
      out.push(frame(0, 0, 1, g.subarray(off, off + n)));
      off += n;
      if (r.chance(0.3)) out.push(noise(r, nextId, hanging));
    }
  }
  out.push(frame(0, 1, 1, new Uint8Array(0)));
  const sending = (async () => {
    for (const f of out) {
      await s.up.write(f);
      if (r.chance(0.05)) await new Promise((res) => setTimeout(res, 0));
    }
  })();
  const data: Uint8Array[] = [];
  const dec = new HpackDecoder();
  let status: string | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const done = (async () => {
    for (;;) {
      // The race below decides a stall; this deadline only keeps a read from outliving it.
      const f = await reader.frame(2 * END_WITHIN_MS);
      if (!f) return "connection ended";
      if (f.type === 1) {
        const h = new Map(dec.decode(f.payload));
        if (f.id === 1 && h.has("grpc-status")) status = h.get("grpc-status");
      }
      if (f.type === 7) return `GOAWAY ${new TextDecoder().decode(f.payload.subarray(8))}`;
      if (f.id !== 1) continue;
      if (f.type === 0) data.push(f.payload);
      if (f.type === 3) return `stream 1 reset (${new DataView(f.payload.buffer).getUint32(0)})`;
      if (f.type === 1 && f.flags & 1) return "ok";
    }
  })();
  const how = await Promise.race([
    done,
    new Promise((res) => (timer = setTimeout(() => res("stalled"), END_WITHIN_MS))),
  ]);
  clearTimeout(timer);
  await sending;
  s.up.close();
  s.down.close();
  const outcome = await s.ended;
  assertEquals(how, "ok", `case ${caseNo}: the conforming call did not complete`);
  assertEquals(status, "0", `case ${caseNo}: status`);
  assertEquals(outcome, null, `case ${caseNo}: serve() ended with ${outcome}`);
  const all = Buffer.concat(data);
  let off = 0;
  for (const m of messages) {
    assertEquals(all.readUInt32BE(off + 1), m.length, `case ${caseNo}: message length`);
    assert(Buffer.compare(all.subarray(off + 5, off + 5 + m.length), m) === 0, "echo differs");
    off += 5 + m.length;
  }
  assertEquals(off, all.length, `case ${caseNo}: extra data`);
}

/** Runs `body` with the seed in any failure, and catches unhandled rejections. */
async function withSeed(name: string, body: (r: Rand) => Promise<void>): Promise<void> {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    unhandled.push(e.reason);
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  try {
    await body(new Rand(SEED));
    await new Promise((r) => setTimeout(r, 0));
    assertEquals(unhandled.length, 0, `unhandled rejections: ${unhandled.join("; ")}`);
  } catch (e) {
    throw new Error(`${name} failed with H2_FUZZ_SEED=${SEED}: ${(e as Error).message}`, {
      cause: e,
    });
  } finally {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
  }
}

Deno.test("h2 fuzz: HPACK decoding of random and mutated blocks throws only HpackError", async () => {
  await withSeed("hpack fuzz", async (r) => {
    const valid = request("/t/Echo", [["x-a", "b".repeat(100)], ["grpc-timeout", "1S"]]);
    const deadline = Date.now() + BUDGET_MS / 10;
    let n = 0;
    while (Date.now() < deadline) {
      const d = new HpackDecoder(4096, 64 * 1024);
      for (let k = 0; k < 8; k++) {
        let block = r.chance(0.5) ? r.bytes(r.int(64)) : Uint8Array.from(valid);
        if (r.chance(0.7)) {
          for (let j = r.int(4); j >= 0; j--) block[r.int(block.length)] ^= r.int(256);
        }
        if (r.chance(0.2)) block = Uint8Array.from([0x3f, 0xe1, 0x1f, ...block]); // size update
        try {
          const list = d.decode(block);
          assert(list.length <= block.length, "more fields than bytes");
        } catch (e) {
          if (!(e instanceof HpackError)) throw e;
          break; // the context is unusable after an error, as on a connection
        }
      }
      n++;
      if (n % 256 === 0) await new Promise((res) => setTimeout(res, 0));
    }
  });
});

Deno.test("h2 fuzz: hostile frame sequences end the connection in bounded time and memory", async () => {
  await withSeed("hostile fuzz", async (r) => {
    const rss0 = Deno.memoryUsage().rss;
    const deadline = Date.now() + BUDGET_MS * 0.6;
    let n = 0;
    while (Date.now() < deadline) await hostile(r, n++);
    const grown = Deno.memoryUsage().rss - rss0;
    assert(grown < 256 * 1024 * 1024, `RSS grew by ${grown} bytes over ${n} cases`);
    assert(n > 10, `only ${n} cases ran`);
  });
});

Deno.test("h2 fuzz: a conforming call interleaved with noise completes intact", async () => {
  await withSeed("conforming fuzz", async (r) => {
    const deadline = Date.now() + BUDGET_MS * 0.3;
    let n = 0;
    while (Date.now() < deadline) await conforming(r, n++);
    assert(n > 2, `only ${n} cases ran`);
  });
});
