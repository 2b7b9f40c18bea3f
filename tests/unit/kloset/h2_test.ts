// Our HTTP/2 + gRPC server layer against node:http2's client (nghttp2, an
// independent implementation) over a real TCP connection, and HPACK against
// the examples of RFC 7541.

import * as http2 from "node:http2";
import { Buffer } from "node:buffer";
import { assert, assertEquals, assertThrows } from "../../helpers/assert.ts";
import {
  encodeHeaders,
  HpackDecoder,
  HpackError,
  huffmanDecode,
} from "../../../src/kloset/h2/hpack.ts";
import { type Call, type Handler, serve } from "../../../src/kloset/rpc.ts";

const hex = (s: string) =>
  Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!.map((b) => parseInt(b, 16)));

Deno.test("hpack: RFC 7541 C.4 requests with Huffman coding, dynamic table kept across blocks", () => {
  const d = new HpackDecoder();
  assertEquals(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  assertEquals(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ]);
  assertEquals(
    d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")),
    [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ],
  );
});

Deno.test("hpack: what the encoder writes decodes back, long values and new names included", () => {
  const headers: [string, string][] = [
    [":status", "200"],
    ["content-type", "application/grpc"],
    ["grpc-status", "3"],
    ["grpc-message", "x".repeat(300) + " é%C3%A9"],
  ];
  assertEquals(new HpackDecoder().decode(encodeHeaders(headers)), headers);
});

Deno.test("hpack: bad Huffman padding and out-of-range indexes are errors", () => {
  assertThrows(() => huffmanDecode(hex("00")), HpackError); // '0' then 3 zero bits of padding
  assertThrows(() => new HpackDecoder().decode(hex("be")), HpackError); // index 62: empty table
  assertEquals(
    new TextDecoder().decode(huffmanDecode(hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"))),
    "www.example.com",
  );
});

/** Serves `routes` on one TCP connection; returns the client session. */
async function connect(
  routes: Record<string, Handler>,
  settings: http2.Settings = {},
): Promise<{ session: http2.ClientHttp2Session; done: Promise<void>; close(): Promise<void> }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const session = http2.connect(`http://127.0.0.1:${listener.addr.port}`, { settings });
  const conn = await listener.accept();
  listener.close();
  const done = serve(routes, async () => {}, {
    read: (b) => conn.read(b),
    write: (b) => conn.write(b),
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
class RawPeer {
  #buf = new Uint8Array(0);
  #pending: Promise<Uint8Array | null> | undefined;
  constructor(readonly conn: Deno.Conn) {}

  async send(type: number, flags: number, id: number, payload: Uint8Array): Promise<void> {
    const f = new Uint8Array(9 + payload.length);
    f[0] = payload.length >>> 16;
    f[1] = (payload.length >>> 8) & 0xff;
    f[2] = payload.length & 0xff;
    f[3] = type;
    f[4] = flags;
    new DataView(f.buffer).setUint32(5, id);
    f.set(payload, 9);
    await this.conn.write(f);
  }

  /** The next frame, or null if none arrives within `ms`. */
  async frame(
    ms = 2000,
  ): Promise<{ type: number; flags: number; id: number; payload: Uint8Array } | null> {
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
        const n = await this.conn.read(chunk);
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
      const n = got.length;
      const chunk = got;
      const merged = new Uint8Array(this.#buf.length + n);
      merged.set(this.#buf);
      merged.set(chunk.subarray(0, n), this.#buf.length);
      this.#buf = merged;
    }
  }
}

const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};
const setting = (key: number, value: number) => {
  const b = new Uint8Array(6);
  new DataView(b.buffer).setUint16(0, key);
  new DataView(b.buffer).setUint32(2, value);
  return b;
};

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
    async () => {},
    { read: (b) => conn.read(b), write: (b) => conn.write(b) },
  );
  const peer = new RawPeer(client);
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
