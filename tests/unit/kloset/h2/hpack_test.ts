// HPACK (src/kloset/h2/hpack.ts) against the examples of RFC 7541.

import { assert, assertEquals, assertThrows } from "../../../helpers/assert.ts";
import {
  encodeHeaders,
  HpackDecoder,
  HpackError,
  huffmanDecode,
} from "../../../../src/kloset/h2/hpack.ts";
import { indexed } from "../../../helpers/h2_frames.ts";
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

Deno.test("hpack: dynamic table sizes count octets, so eviction stays in step with the encoder", () => {
  const d = new HpackDecoder();
  const e = "é".repeat(1000); // 2000 octets, 1000 UTF-16 units
  d.decode(Uint8Array.from([...indexed("a", e), ...indexed("b", e)])); // 2 x 2033 <= 4096
  d.decode(Uint8Array.from(indexed("c", e))); // evicts "a"
  assertEquals(d.decode(hex("be bf")), [["c", e], ["b", e]]);
  assertThrows(() => d.decode(hex("c0")), HpackError); // index 64: "a" is gone
});

Deno.test("hpack: a table size update after a field is an error; a list above the limit is cut", () => {
  assertThrows(() => new HpackDecoder().decode(hex("82 20")), HpackError);
  assertEquals(new HpackDecoder().decode(hex("20 82")), [[":method", "GET"]]);
  const d = new HpackDecoder(4096, 200);
  const big = Uint8Array.from([...indexed("x", "v".repeat(150)), ...indexed("y", "w".repeat(150))]);
  assertEquals(d.decode(big), [["x", "v".repeat(150)]]);
  assert(d.tooLarge);
  // The table stayed in step: both entries are there.
  assertEquals(d.decode(hex("be")), [["y", "w".repeat(150)]]);
  assert(!d.tooLarge);
});
