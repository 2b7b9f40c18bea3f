// Widening a child's pipe: the child can write far more than the default
// 64 KiB while nobody reads.

import { assert, assertEquals } from "../../helpers/assert.ts";
import { widenChildPipe, widenFd } from "../../../src/proc/pipes.ts";
import { loadLibc } from "../../../src/proc/libc.ts";

Deno.test("widenChildPipe() lets a child write 768 KiB into its stdout with no reader", async () => {
  const child = new Deno.Command("sh", {
    args: ["-c", "sleep 0.3; head -c 786432 /dev/zero"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    assert(widenChildPipe(loadLibc(), child.pid), "the pipe was not widened");
    // With a 64 KiB pipe the child would block on its write until read.
    const exited = await Promise.race([
      child.status.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
    ]);
    assert(exited, "the child blocked writing into its stdout");
    let n = 0;
    for await (const c of child.stdout) n += c.length;
    assertEquals(n, 786432);
  } finally {
    try {
      child.kill();
    } catch { /* exited */ }
    await child.status;
  }
});

Deno.test("widenFd() is false for a descriptor that is not open", () => {
  assertEquals(widenFd(loadLibc(), 987654), false);
});

Deno.test("widenChildPipe() and widenFd() do without libc", () => {
  assertEquals(widenChildPipe(null, Deno.pid), false);
  assertEquals(widenFd(null, 1), false);
});
