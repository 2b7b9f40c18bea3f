// Our HTTP/2 + gRPC server layer (src/kloset/h2/connection.ts, rpc.ts)
// against node:http2's client (nghttp2, an independent implementation) over a
// real TCP connection, and frame by frame.

import * as http2 from "node:http2";
import { Buffer } from "node:buffer";
import { assert, assertEquals, assertMatch } from "../../../helpers/assert.ts";
import { encodeHeaders, HpackDecoder } from "../../../../src/kloset/h2/hpack.ts";
import { Call, type Handler, serve } from "../../../../src/kloset/rpc.ts";
import {
  type Frame,
  FrameIO,
  indexed,
  MemPipe,
  PREFACE,
  setting,
  u32,
} from "../../../helpers/h2_frames.ts";
import {
  H2Connection,
  H2Error,
  MAX_CONTROL,
  MAX_HEADER_BLOCK,
  MAX_STREAMS,
} from "../../../../src/kloset/h2/connection.ts";

/** Serves `routes` on one TCP connection; returns the client session. */
async function connect(
  routes: Record<string, Handler>,
  settings: http2.Settings = {},
): Promise<{ session: http2.ClientHttp2Session; done: Promise<unknown>; close(): Promise<void> }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const session = http2.connect(`http://127.0.0.1:${listener.addr.port}`, { settings });
  const conn = await listener.accept();
  listener.close();
  const done = serve(routes, {
    onClose: async () => {},
    transport: { read: (b) => conn.read(b), write: (b) => conn.write(b) },
  });
  return {
    session,
    done,
    async close() {
      session.close();
      await done;
      try {
        conn.close();
      } catch { /* closed */ }
    },
  };
}

function grpcFrame(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + bytes.length);
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

interface Reply {
  messages: Uint8Array[];
  status: string | undefined;
  message: string | undefined;
}

function call(
  session: http2.ClientHttp2Session,
  path: string,
  body: Uint8Array[],
  opts: { readSlowly?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Buffer[] = [];
    let trailers: http2.IncomingHttpHeaders = {};
    let headers: http2.IncomingHttpHeaders = {};
    req.on("response", (h) => (headers = h));
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (c: Buffer) => {
      chunks.push(c);
      if (opts.readSlowly) {
        req.pause();
        setTimeout(() => req.resume(), 1);
      }
    });
    req.on("error", reject);
    req.on("end", () => {
      const all = Buffer.concat(chunks);
      const messages: Uint8Array[] = [];
      for (let off = 0; off < all.length;) {
        const len = all.readUInt32BE(off + 1);
        messages.push(Uint8Array.from(all.subarray(off + 5, off + 5 + len)));
        off += 5 + len;
      }
      const status = (trailers["grpc-status"] ?? headers["grpc-status"]) as string | undefined;
      const message = (trailers["grpc-message"] ?? headers["grpc-message"]) as string | undefined;
      resolve({ messages, status, message });
    });
    for (const b of body) req.write(grpcFrame(b));
    req.end();
  });
}

const pattern = (n: number, seed: number) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};

Deno.test("h2: messages both ways larger than every window, with a client that reads slowly", async () => {
  const routes: Record<string, Handler> = {
    // Echoes each request message back, then a 3 MiB one.
    "/t/Echo": async (c: Call) => {
      for (;;) {
        const m = await c.read();
        if (m === null) break;
        await c.send(m);
      }
      await c.send(pattern(1 << 20, 1), pattern(2 << 20, 2));
      c.end();
    },
  };
  // The client's windows are tiny: every byte we send waits for its credit.
  const t = await connect(routes, { initialWindowSize: 10_000, maxFrameSize: 16384 });
  try {
    const big = pattern(6 * 1024 * 1024 + 7, 3); // above our 4 MiB stream window
    const r = await call(t.session, "/t/Echo", [pattern(10, 4), big], { readSlowly: false });
    assertEquals(r.status, "0");
    assertEquals(r.messages.length, 3);
    assertEquals(r.messages[0], pattern(10, 4));
    assertEquals(r.messages[1].length, big.length);
    assert(Buffer.compare(r.messages[1], big) === 0, "echoed message differs");
    const last = r.messages[2];
    assertEquals(last.length, 3 << 20);
    assert(Buffer.compare(last.subarray(0, 1 << 20), pattern(1 << 20, 1)) === 0);
    assert(Buffer.compare(last.subarray(1 << 20), pattern(2 << 20, 2)) === 0);
    const slow = await call(t.session, "/t/Echo", [pattern(100_000, 5)], { readSlowly: true });
    assertEquals(slow.messages[0], pattern(100_000, 5));
  } finally {
    await t.close();
  }
});

Deno.test("h2: concurrent calls, an unknown method, an error status, a reset seen by the handler", async () => {
  let resetSeen: Promise<boolean> | undefined;
  const routes: Record<string, Handler> = {
    "/t/Fail": async (c: Call) => {
      await c.read();
      c.fail(new Error("nope: 100% broken\nsecond line"));
    },
    "/t/Slow": async (c: Call) => {
      const m = await c.read();
      await new Promise((r) => setTimeout(r, 50));
      await c.send(m!);
      c.end();
    },
    "/t/Forever": (c: Call) => {
      resetSeen = new Promise((resolve) => {
        c.signal.addEventListener("abort", () => resolve(true));
      });
      // Streams until the client goes away.
      (async () => {
        while (!c.signal.aborted) await c.send(new Uint8Array(64 * 1024));
      })();
    },
  };
  const t = await connect(routes);
  try {
    const calls = await Promise.all(
      Array.from({ length: 20 }, (_, i) => call(t.session, "/t/Slow", [pattern(1000 + i, i)])),
    );
    calls.forEach((r, i) => assertEquals(r.messages[0], pattern(1000 + i, i)));
    const unknown = await call(t.session, "/t/Nope", [new Uint8Array(0)]);
    assertEquals(unknown.status, "12");
    const failed = await call(t.session, "/t/Fail", [new Uint8Array(0)]);
    assertEquals(failed.status, "2");
    assertEquals(decodeURIComponent(failed.message!), "nope: 100% broken | second line");
    const req = t.session.request({ ":method": "POST", ":path": "/t/Forever" });
    req.write(grpcFrame(new Uint8Array(0)));
    await new Promise((r) => req.once("data", r));
    req.close(http2.constants.NGHTTP2_CANCEL);
    assertEquals(await resetSeen, true);
    // The connection still serves calls after the reset.
    const after = await call(t.session, "/t/Slow", [pattern(5, 5)]);
    assertEquals(after.messages[0], pattern(5, 5));
  } finally {
    await t.close();
  }
});

/** A raw HTTP/2 client end: frames written and read by hand. */

Deno.test("h2: CONTINUATION, padding, PING, and a stream window set to 0 then raised by SETTINGS", async () => {
  const body = pattern(100_000, 7);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const conn = await listener.accept();
  listener.close();
  const done = serve(
    {
      "/t/Echo": async (c: Call) => {
        const m = await c.read();
        await c.send(m!);
        c.end();
      },
    },
    {
      onClose: async () => {},
      transport: { read: (b) => conn.read(b), write: (b) => conn.write(b) },
    },
  );
  const peer = new FrameIO(client);
  try {
    await client.write(new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    // Stream windows start at 0: no DATA may come until they are raised.
    await peer.send(4, 0, 0, setting(4, 0));
    await peer.send(8, 0, 0, u32(1 << 20));
    // Request headers split over HEADERS (padded, with priority) and CONTINUATION.
    const block = encodeHeaders([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/t/Echo"],
      [":authority", "x"],
      ["content-type", "application/grpc"],
    ]);
    const half = Math.floor(block.length / 2);
    const headers = new Uint8Array(1 + 5 + half + 3);
    headers[0] = 3; // pad length
    headers.set([0, 0, 0, 0, 15], 1); // priority: dependency 0, weight 15
    headers.set(block.subarray(0, half), 6);
    await peer.send(1, 0x8 | 0x20, 1, headers);
    await peer.send(9, 0x4, 1, block.subarray(half));
    // The request message in one padded DATA frame that ends the stream.
    const msg = grpcFrame(body);
    for (let off = 0; off < msg.length; off += 16000) {
      const piece = msg.subarray(off, off + 16000);
      const last = off + 16000 >= msg.length;
      const padded = new Uint8Array(1 + piece.length + 2);
      padded[0] = 2;
      padded.set(piece, 1);
      await peer.send(0, 0x8 | (last ? 0x1 : 0), 1, padded);
    }
    await peer.send(6, 0, 0, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));

    const seen: number[] = [];
    let pingAck: Uint8Array | undefined;
    const dec = new HpackDecoder();
    // Until the window opens: settings acks, the ping ack, response headers; no DATA.
    for (;;) {
      const f = await peer.frame(500);
      if (!f) break;
      seen.push(f.type);
      if (f.type === 6 && f.flags & 1) pingAck = f.payload;
      if (f.type === 1) dec.decode(f.payload);
    }
    assertEquals(pingAck, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    assert(seen.includes(4), "no SETTINGS from the server");
    assert(!seen.includes(0), "DATA was sent into a zero window");

    await peer.send(4, 0, 0, setting(4, 1 << 20));
    const data: Uint8Array[] = [];
    let status: string | undefined;
    for (;;) {
      const f = await peer.frame();
      assert(f, "the response did not finish");
      if (f.type === 0) data.push(f.payload);
      if (f.type === 1) {
        const h = new Map(dec.decode(f.payload));
        if (h.has("grpc-status")) status = h.get("grpc-status");
        if (f.flags & 1) break;
      }
    }
    assertEquals(status, "0");
    const all = Buffer.concat(data);
    assertEquals(all.readUInt32BE(1), body.length);
    assert(Buffer.compare(all.subarray(5), body) === 0, "echo differs");
  } finally {
    client.close();
    await done;
    try {
      conn.close();
    } catch { /* closed */ }
  }
});

// ---------------------------------------------------------------------------
// Hostile peers, in memory: raw frames against H2Connection (RFC 9113).

/** A client written by hand against an H2Connection over in-memory pipes. */
class MemSession {
  readonly up: MemPipe; // client → server
  readonly down: MemPipe; // server → client
  readonly conn: H2Connection;
  /** How serve() ended: undefined while running, null if it resolved. */
  outcome: unknown = undefined;
  readonly served: Promise<void>;
  readonly #io: FrameIO;
  readonly dec = new HpackDecoder();

  constructor(handler: (c: Call) => void | Promise<void> = echo, downCapacity = Infinity) {
    this.up = new MemPipe();
    this.down = new MemPipe(downCapacity);
    this.#io = new FrameIO({ read: (b) => this.down.read(b), write: (b) => this.up.write(b) });
    this.conn = new H2Connection(
      { read: (b) => this.up.read(b), write: (b) => this.down.write(b) },
      (s) => {
        const c = new Call(s);
        Promise.resolve().then(() => handler(c)).catch((e) => c.fail(e));
      },
    );
    this.served = this.conn.serve().then(
      () => void (this.outcome = null),
      (e) => void (this.outcome = e),
    );
  }

  /** Preface and an empty SETTINGS, as every client starts. */
  async start(settings: Uint8Array = new Uint8Array(0)): Promise<void> {
    await this.up.write(PREFACE);
    await this.send(4, 0, 0, settings);
  }

  send(type: number, flags: number, id: number, payload: Uint8Array): Promise<void> {
    return this.#io.send(type, flags, id, payload);
  }

  /** Request headers for `path` on stream `id`. */
  request(id: number, path = "/t/Echo", end = false, extra: [string, string][] = []) {
    return this.send(
      1,
      0x4 | (end ? 1 : 0),
      id,
      encodeHeaders([
        [":method", "POST"],
        [":scheme", "http"],
        [":path", path],
        ["content-type", "application/grpc"],
        ...extra,
      ]),
    );
  }

  /** The next frame from the server, or null at its end or after `ms`. */
  frame(ms = 2000): Promise<Frame | null> {
    return this.#io.frame(ms);
  }

  /** Frames until one matches (returned) or the server stops sending (null). */
  async until(pred: (f: Frame) => boolean, ms = 2000, seen?: Frame[]): Promise<Frame | null> {
    for (;;) {
      const f = await this.frame(ms);
      if (!f) return null;
      seen?.push(f);
      if (f.type === 1) this.dec.decode(f.payload);
      if (pred(f)) return f;
    }
  }

  /** Expects GOAWAY `code` and serve() rejecting with H2Error `code`. */
  async expectGoaway(code: number): Promise<Frame> {
    const g = await this.until((f) => f.type === 7);
    assert(g, `no GOAWAY (expected code ${code})`);
    assertEquals(new DataView(g.payload.buffer).getUint32(4), code, "GOAWAY code");
    await this.served;
    assert(this.outcome instanceof H2Error, `serve() ended with ${this.outcome}`);
    assertEquals((this.outcome as H2Error).code, code);
    return g;
  }

  /** Expects RST_STREAM `code` on stream `id`, the connection still up. */
  async expectReset(id: number, code: number): Promise<void> {
    const r = await this.until((f) => f.type === 3 || f.type === 7);
    assert(r, `no RST_STREAM (expected code ${code} on ${id})`);
    assertEquals(r.type, 3, `a GOAWAY came instead: ${new TextDecoder().decode(r.payload)}`);
    assertEquals(r.id, id);
    assertEquals(new DataView(r.payload.buffer).getUint32(0), code, "RST_STREAM code");
    assertEquals(this.outcome, undefined, "serve() ended");
  }

  /** Sends one echo call on `id` and expects it answered with status 0. */
  async roundTrip(id: number, body = pattern(100, id), maxFrame = 16384): Promise<void> {
    await this.request(id);
    const msg = grpcFrame(body);
    for (let off = 0; off < msg.length; off += 16384) {
      await this.send(0, off + 16384 >= msg.length ? 1 : 0, id, msg.subarray(off, off + 16384));
    }
    const data: Uint8Array[] = [];
    const end = await this.until((f) => {
      if (f.id === id && f.type === 0) data.push(f.payload);
      assert(f.payload.length <= maxFrame, `a frame of ${f.payload.length} bytes`);
      return f.id === id && ((f.type === 1 && (f.flags & 1) !== 0) || f.type === 3);
    });
    assert(end && end.type === 1, "the call did not end with trailers");
    const all = Buffer.concat(data);
    assert(Buffer.compare(all.subarray(5), body) === 0, "echo differs");
  }

  async close(): Promise<void> {
    this.up.close();
    this.down.close();
    await this.served;
  }
}

async function echo(c: Call): Promise<void> {
  for (;;) {
    const m = await c.read();
    if (m === null) break;
    await c.send(m);
  }
  c.end();
}

/** Runs `fn` on a fresh started session, closed afterwards. */
async function session(
  fn: (s: MemSession) => Promise<void>,
  opts: {
    handler?: (c: Call) => void | Promise<void>;
    settings?: Uint8Array;
    downCapacity?: number;
  } = {},
): Promise<void> {
  const s = new MemSession(opts.handler, opts.downCapacity);
  try {
    await s.start(opts.settings);
    await fn(s);
  } finally {
    await s.close();
  }
}

const never = () => new Promise<void>(() => {});

Deno.test("h2: client SETTINGS outside their ranges are connection errors with GOAWAY", async () => {
  const cases: [string, Uint8Array, number, number?, number?][] = [
    ["MAX_FRAME_SIZE 0", setting(5, 0), 1],
    ["MAX_FRAME_SIZE 16383", setting(5, 16383), 1],
    ["MAX_FRAME_SIZE 2^24", setting(5, 2 ** 24), 1],
    ["INITIAL_WINDOW_SIZE 2^31", setting(4, 2 ** 31), 3],
    ["ENABLE_PUSH 2", setting(2, 2), 1],
    ["length 7", new Uint8Array(7), 6],
    ["on stream 1", setting(4, 100), 1, 0, 1],
    ["ACK with payload", setting(4, 100), 6, 1],
  ];
  for (const [what, payload, code, flags = 0, id = 0] of cases) {
    await session(async (s) => {
      // A call in flight: its headers are queued when the SETTINGS arrive.
      await s.request(1);
      await s.send(4, flags, id, payload);
      const g = await s.expectGoaway(code);
      assert(g.payload.length > 8, `${what}: GOAWAY without a reason`);
    });
  }
});

Deno.test("h2: a SETTINGS_MAX_FRAME_SIZE in range frames the output by it", async () => {
  await session(async (s) => {
    await s.send(4, 0, 0, setting(5, 20000));
    await s.send(8, 0, 0, u32(10 << 20));
    await s.send(4, 0, 0, setting(4, 10 << 20));
    await s.roundTrip(1, pattern(100_000, 1), 20000);
  });
});

Deno.test("h2: a window change that overflows a stream window is FLOW_CONTROL_ERROR", async () => {
  await session(async (s) => {
    await s.request(1);
    await s.send(8, 0, 1, u32(2 ** 31 - 1 - 65535)); // the stream window is now 2^31-1
    await s.send(4, 0, 0, setting(4, 65536));
    await s.expectGoaway(3);
  }, { handler: never });
});

Deno.test("h2: a header block that never ends is cut off at MAX_HEADER_BLOCK", async () => {
  await session(async (s) => {
    await s.send(1, 0, 1, encodeHeaders([[":method", "POST"]]));
    const piece = new Uint8Array(16384).fill(0x40);
    for (let sent = 0; sent <= MAX_HEADER_BLOCK && s.outcome === undefined; sent += piece.length) {
      await s.send(9, 0, 1, piece);
    }
    await s.expectGoaway(11);
  });
});

Deno.test("h2: a frame above our SETTINGS_MAX_FRAME_SIZE is FRAME_SIZE_ERROR (no buffer grows)", async () => {
  await session(async (s) => {
    await s.request(1);
    // Announces a 16 MiB frame; only its header is sent.
    await s.up.write(Uint8Array.from([0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]));
    await s.expectGoaway(6);
  }, { handler: never });
});

Deno.test("h2: padding is credited back to the stream window at once", async () => {
  // The handler reads nothing: only padding can be credited.
  await session(async (s) => {
    await s.request(1);
    let window = 65535; // until our SETTINGS are seen
    let credited = 0;
    // 6 MiB of DATA that is all padding would exhaust the 4 MiB stream window
    // unless the padding (and its length byte) came back as it arrived.
    const pad = new Uint8Array(256);
    pad[0] = 255;
    let sent = 0;
    while (sent < 6 << 20) {
      while (window < pad.length) {
        const f = await s.until((f) => f.type === 8 && f.id === 1 || f.type === 4, 2000);
        assert(f, `stalled after ${sent} bytes of padding: credited ${credited}`);
        if (f.type === 4 && !(f.flags & 1)) {
          const dv = new DataView(f.payload.buffer);
          for (let o = 0; o < f.payload.length; o += 6) {
            if (dv.getUint16(o) === 4) window += dv.getUint32(o + 2) - 65535;
          }
        } else if (f.type === 8) {
          const inc = new DataView(f.payload.buffer).getUint32(0);
          window += inc;
          credited += inc;
        }
      }
      await s.send(0, 0x8, 1, pad);
      window -= pad.length;
      sent += pad.length;
    }
    assert(credited >= sent - (4 << 20), `credited ${credited} of ${sent}`);
  }, { handler: never });
});

Deno.test("h2: streams beyond SETTINGS_MAX_CONCURRENT_STREAMS are refused with REFUSED_STREAM", async () => {
  await session(async (s) => {
    for (let i = 0; i < MAX_STREAMS; i++) await s.request(2 * i + 1, "/t/Hang");
    await s.request(2 * MAX_STREAMS + 1, "/t/Hang");
    await s.expectReset(2 * MAX_STREAMS + 1, 7);
    assertEquals(s.conn.streams.size, MAX_STREAMS);
  }, { handler: never });
});

Deno.test("h2: a refused request gets its INVALID_ARGUMENT trailers, then RST_STREAM NO_ERROR", async () => {
  for (const prefix of [[1, 0, 0, 0, 1, 0x61], [0, 0x7f, 0xff, 0xff, 0xff]]) {
    await session(async (s) => {
      await s.request(1);
      await s.send(0, 0, 1, Uint8Array.from(prefix)); // the client is still sending
      const seen: Frame[] = [];
      const rst = await s.until((f) => f.type === 3 && f.id === 1, 2000, seen);
      assert(rst, "no RST_STREAM");
      assertEquals(new DataView(rst.payload.buffer).getUint32(0), 0, "RST_STREAM code");
      const trailers = seen.find((f) => f.type === 1 && f.flags & 1);
      assert(trailers, "no trailers before the RST_STREAM");
      const h = new Map(new HpackDecoder().decode(trailers.payload));
      assertEquals(h.get("grpc-status"), "3");
      // The rest of the request is dropped, and the connection serves on.
      await s.send(0, 1, 1, new Uint8Array(100));
      await s.roundTrip(3);
    });
  }
});

Deno.test("h2: a connection error sends GOAWAY with the last stream, the code and a reason, then serve() rejects", async () => {
  await session(async (s) => {
    await s.roundTrip(1);
    await s.roundTrip(5);
    await s.send(5, 0, 3, new Uint8Array(4)); // PUSH_PROMISE from a client
    const g = await s.expectGoaway(1);
    const dv = new DataView(g.payload.buffer);
    assertEquals(dv.getUint32(0), 5, "last stream id");
    assertMatch(new TextDecoder().decode(g.payload.subarray(8)), /PUSH_PROMISE/);
    assertEquals(await s.frame(200), null, "a frame after GOAWAY");
  });
});

const hdrs = (...extra: [string, string][]) =>
  encodeHeaders([[":method", "POST"], [":scheme", "http"], [":path", "/t/Echo"], ...extra]);
const priority = (dep: number) => Uint8Array.from([0, 0, 0, dep, 16]);

/** Frames after the handshake, and what the server must answer. */
type Case = [string, [number, number, number, Uint8Array][], { goaway: number } | { rst: number }];

Deno.test("h2: MUST-level frame, stream-state and header checks of RFC 9113", async () => {
  const open: [number, number, number, Uint8Array] = [1, 4, 1, hdrs()];
  // A call that stays half-closed (remote): its handler never answers.
  const openEnd: [number, number, number, Uint8Array] = [
    1,
    5,
    1,
    encodeHeaders([[":method", "POST"], [":scheme", "http"], [":path", "/t/Hang"]]),
  ];
  const cases: Case[] = [
    ["DATA on stream 0", [[0, 0, 0, new Uint8Array(1)]], { goaway: 1 }],
    ["HEADERS on stream 0", [[1, 4, 0, hdrs()]], { goaway: 1 }],
    ["RST_STREAM on stream 0", [[3, 0, 0, u32(8)]], { goaway: 1 }],
    ["WINDOW_UPDATE of 0 on stream 0", [[8, 0, 0, u32(0)]], { goaway: 1 }],
    ["CONTINUATION on stream 0", [[9, 4, 0, hdrs()]], { goaway: 1 }],
    ["PRIORITY on stream 0", [[2, 0, 0, priority(1)]], { goaway: 1 }],
    ["PING on stream 1", [[6, 0, 1, new Uint8Array(8)]], { goaway: 1 }],
    ["GOAWAY on stream 1", [[7, 0, 1, new Uint8Array(8)]], { goaway: 1 }],
    ["PING of 7 bytes", [[6, 0, 0, new Uint8Array(7)]], { goaway: 6 }],
    ["RST_STREAM of 3 bytes", [open, [3, 0, 1, new Uint8Array(3)]], { goaway: 6 }],
    ["WINDOW_UPDATE of 3 bytes", [[8, 0, 0, new Uint8Array(3)]], { goaway: 6 }],
    ["PRIORITY of 4 bytes", [open, [2, 0, 1, new Uint8Array(4)]], { rst: 6 }],
    ["DATA on an idle stream", [[0, 0, 1, new Uint8Array(1)]], { goaway: 1 }],
    ["RST_STREAM on an idle stream", [[3, 0, 1, u32(8)]], { goaway: 1 }],
    ["WINDOW_UPDATE on an idle stream", [[8, 0, 1, u32(1)]], { goaway: 1 }],
    ["DATA on a half-closed (remote) stream", [openEnd, [0, 0, 1, new Uint8Array(1)]], {
      rst: 5,
    }],
    ["HEADERS on a half-closed (remote) stream", [openEnd, [1, 5, 1, hdrs()]], { rst: 5 }],
    ["WINDOW_UPDATE of 0 on a stream", [open, [8, 0, 1, u32(0)]], { rst: 1 }],
    ["stream window above 2^31-1", [open, [8, 0, 1, u32(2 ** 31 - 1)]], { rst: 3 }],
    ["connection window above 2^31-1", [[8, 0, 0, u32(2 ** 31 - 1)]], { goaway: 3 }],
    ["a stream id below the last one", [[1, 5, 5, hdrs()], [1, 5, 3, hdrs()]], { goaway: 1 }],
    ["an even stream id", [[1, 5, 2, hdrs()]], { goaway: 1 }],
    ["missing :method", [[1, 5, 1, encodeHeaders([[":scheme", "http"], [":path", "/"]])]], {
      rst: 1,
    }],
    ["missing :path", [[1, 5, 1, encodeHeaders([[":method", "GET"], [":scheme", "http"]])]], {
      rst: 1,
    }],
    ["missing :scheme", [[1, 5, 1, encodeHeaders([[":method", "GET"], [":path", "/"]])]], {
      rst: 1,
    }],
    ["empty :path", [[
      1,
      5,
      1,
      encodeHeaders([[":method", "GET"], [":scheme", "http"], [":path", ""]]),
    ]], { rst: 1 }],
    ["unknown pseudo-header", [[1, 5, 1, hdrs([":foo", "x"])]], { rst: 1 }],
    ["response pseudo-header", [[1, 5, 1, hdrs([":status", "200"])]], { rst: 1 }],
    ["pseudo-header after a regular one", [[
      1,
      5,
      1,
      encodeHeaders([[":method", "GET"], ["x", "y"], [":scheme", "http"], [":path", "/"]]),
    ]], { rst: 1 }],
    ["duplicate :path", [[1, 5, 1, hdrs([":path", "/"])]], { rst: 1 }],
    ["an uppercase name", [[1, 5, 1, hdrs(["X-Upper", "1"])]], { rst: 1 }],
    ["connection-specific field", [[1, 5, 1, hdrs(["connection", "keep-alive"])]], { rst: 1 }],
    ["te other than trailers", [[1, 5, 1, hdrs(["te", "gzip"])]], { rst: 1 }],
    ["trailers with a pseudo-header", [open, [1, 5, 1, encodeHeaders([[":path", "/"]])]], {
      rst: 1,
    }],
    ["trailers without END_STREAM", [open, [1, 4, 1, encodeHeaders([["x", "y"]])]], { rst: 1 }],
    ["content-length above the DATA", [[1, 4, 1, hdrs(["content-length", "10"])], [
      0,
      1,
      1,
      new Uint8Array(5),
    ]], { rst: 1 }],
    ["an HPACK index out of range", [[1, 5, 1, Uint8Array.from([0xff, 0x7f])]], { goaway: 9 }],
    ["a table size update after a field", [[1, 5, 1, Uint8Array.from([0x82, 0x20])]], {
      goaway: 9,
    }],
    ["a header list above 1 MiB once decoded", [[
      1,
      5,
      1,
      Uint8Array.from([
        ...hdrs(),
        ...indexed("x", "v".repeat(4000)),
        ...new Array(300).fill(0xbe),
      ]),
    ]], { rst: 11 }],
    ["HEADERS depending on itself", [[1, 0x25, 1, Uint8Array.from([...priority(1), ...hdrs()])]], {
      rst: 1,
    }],
    ["PRIORITY depending on itself", [[2, 0, 1, priority(1)]], { rst: 1 }],
    ["PUSH_PROMISE", [open, [5, 4, 1, new Uint8Array(4)]], { goaway: 1 }],
    ["a frame other than CONTINUATION in a header block", [[1, 0, 1, hdrs()], [
      6,
      0,
      0,
      new Uint8Array(8),
    ]], { goaway: 1 }],
    ["CONTINUATION without HEADERS", [[9, 4, 1, hdrs()]], { goaway: 1 }],
    ["DATA with padding longer than the frame", [open, [0, 8, 1, Uint8Array.from([5, 1, 2])]], {
      goaway: 1,
    }],
  ];
  for (const [what, frames, want] of cases) {
    await session(async (s) => {
      for (const [type, flags, id, payload] of frames) await s.send(type, flags, id, payload);
      try {
        if ("goaway" in want) await s.expectGoaway(want.goaway);
        else {
          const id = frames[frames.length - 1][2];
          await s.expectReset(id, want.rst);
          // A stream error leaves the connection serving.
          await s.roundTrip(id + 2);
        }
      } catch (e) {
        throw new Error(`${what}: ${(e as Error).message}`);
      }
    }, { handler: echoHang });
  }
});

/** Echoes, but leaves a call open until its request ends; calls on /t/Hang never end. */
async function echoHang(c: Call): Promise<void> {
  if (c.path === "/t/Hang") return never();
  await echo(c);
}

Deno.test("h2: a peer that sends PINGs and reads nothing meets ENHANCE_YOUR_CALM, not unbounded memory", async () => {
  await session(async (s) => {
    const ping = new Uint8Array(8);
    let peak = 0;
    for (let i = 0; i < 100_000 && s.outcome === undefined; i++) {
      await s.send(6, 0, 0, ping);
      if (i % 64 === 0) await new Promise((r) => setTimeout(r, 0)); // let the server read
      peak = Math.max(peak, s.conn.queuedControlBytes);
    }
    await s.served; // the GOAWAY cannot go out: serve() gives up on it in bounded time
    assert(s.outcome instanceof H2Error, `serve() ended with ${s.outcome}`);
    assertEquals((s.outcome as H2Error).code, 11);
    assert(peak <= MAX_CONTROL + 512, `${peak} bytes of control frames queued`);
  }, { downCapacity: 64 * 1024 });
});
