import { assert, assertEquals, assertMatch, assertThrows } from "../../helpers/assert.ts";
import { BufferPool } from "../../../src/proc/buffer_pool.ts";

Deno.test("BufferPool reuses a buffer given back through the exact view it lent, and detaches the old views", () => {
  const pool = new BufferPool(1024, 4);
  const body = pool.take(100);
  body.fill(7);
  const chunk = body.subarray(5, 100);
  pool.lend(chunk);
  assert(pool.giveBack(chunk));
  // Nothing that still holds a view of the old buffer can read the next message's bytes.
  assertEquals([body.length, chunk.length, chunk[0]], [0, 0, undefined]);
  assertEquals(pool.idle, 1);
  const next = pool.take(1024);
  assertEquals([next.length, pool.idle], [1024, 0]);
  assertEquals(next[0], 7); // the same memory, moved: not a fresh allocation
});

Deno.test("BufferPool never reuses a buffer through a piece of the lent view, nor one never lent", () => {
  const pool = new BufferPool(1024, 4);
  const body = pool.take(100);
  const chunk = body.subarray(5);
  pool.lend(chunk);
  // A transform that cut the chunk in two writes the pieces separately: neither frees it.
  assertEquals(pool.giveBack(chunk.subarray(0, 10)), false);
  assertEquals(pool.giveBack(chunk.subarray(10)), false);
  assertEquals([chunk.length, pool.idle], [95, 0]);
  const other = pool.take(10);
  assertEquals(pool.giveBack(other), false, "not lent");
  assertEquals(other.length, 10);
  // Given back once: a second time is nothing.
  assert(pool.giveBack(chunk));
  assertEquals(pool.giveBack(chunk), false);
  assertEquals(pool.idle, 1);
});

Deno.test("BufferPool ignores buffers it did not make and keeps at most `keep` free", () => {
  const pool = new BufferPool(64, 1);
  const foreign = new Uint8Array(64);
  pool.lend(foreign);
  assertEquals(pool.giveBack(foreign), false);
  assertEquals(foreign.length, 64);
  const a = pool.take(64);
  const b = pool.take(64);
  pool.lend(a);
  pool.lend(b);
  assert(pool.giveBack(a));
  assert(pool.giveBack(b));
  // The second is past `keep`: dropped, but detached all the same.
  assertEquals([pool.idle, a.length, b.length], [1, 0, 0]);
});

Deno.test("BufferPool refuses more than its buffer size, and bad sizes", () => {
  const pool = new BufferPool(64, 1);
  assertMatch(assertThrows(() => pool.take(65), RangeError).message, /^Cannot take 65 bytes/);
  assertThrows(() => new BufferPool(0, 1), RangeError);
  assertThrows(() => new BufferPool(64, -1), RangeError);
});

Deno.test("BufferPool.recycle takes back any buffer of its size, moved or not, and detaches its views", () => {
  const pool = new BufferPool(64, 1);
  const whole = pool.take(64);
  // A byte stream's read moves the buffer: the pool no longer knows it by identity.
  const moved = new Uint8Array((whole.buffer as ArrayBuffer).transfer());
  moved.fill(3);
  const chunk = moved.subarray(0, 10);
  assert(pool.recycle(chunk));
  assertEquals([moved.length, chunk.length, pool.idle], [0, 0, 1]);
  assertEquals(pool.take(64)[0], 3); // the same memory, not a fresh allocation
  assertEquals(pool.recycle(new Uint8Array(32)), false, "not the pool's size");
  // Past `keep`: dropped, detached all the same.
  const a = new Uint8Array(64);
  const b = new Uint8Array(64);
  assert(pool.recycle(a));
  assert(pool.recycle(b));
  assertEquals([pool.idle, a.length, b.length], [1, 0, 0]);
});
