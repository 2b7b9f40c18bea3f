import { assertEquals, assertThrows } from "../../helpers/assert.ts";
import { mapConcurrent, Semaphore } from "../../../src/proc/semaphore.ts";

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("Semaphore lets `limit` holders in and the next waiter in arrival order on release", async () => {
  const s = new Semaphore(2);
  const order: string[] = [];
  const r1 = await s.acquire();
  const r2 = await s.acquire();
  const p3 = s.acquire().then((r) => (order.push("3"), r));
  const p4 = s.acquire().then((r) => (order.push("4"), r));
  await tick();
  assertEquals([s.held, s.waiting, order], [2, 2, []]);
  r1();
  r1(); // a second release of the same slot does nothing
  await tick();
  assertEquals([s.held, s.waiting, order], [2, 1, ["3"]]);
  r2();
  await tick();
  assertEquals(order, ["3", "4"]);
  (await p3)();
  (await p4)();
  assertEquals([s.held, s.waiting], [0, 0]);
});

Deno.test("Semaphore: an aborted wait leaves the queue and rejects with the reason", async () => {
  const s = new Semaphore(1);
  const release = await s.acquire();
  const ac = new AbortController();
  const waiting = s.acquire(ac.signal);
  ac.abort(new Error("cancelled"));
  const e = await waiting.then(() => undefined, (e) => e as Error);
  assertEquals(e?.message, "cancelled");
  assertEquals(s.waiting, 0);
  release();
  assertEquals(s.held, 0);
});

Deno.test("Semaphore refuses fewer than one slot", () => {
  assertThrows(() => new Semaphore(0), RangeError);
});

Deno.test("mapConcurrent runs at most `limit` calls at once, in order, results in order", async () => {
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const out = await mapConcurrent([1, 2, 3, 4, 5, 6], 2, async (n) => {
    started.push(n);
    most = Math.max(most, ++running);
    await tick();
    running--;
    return n * 10;
  });
  assertEquals([out, started, most], [[10, 20, 30, 40, 50, 60], [1, 2, 3, 4, 5, 6], 2]);
});
