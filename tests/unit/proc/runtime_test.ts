// Each Runtime holds its own children and temporary files, and release()
// stops and removes what is still there.

import { assert, assertEquals } from "../../helpers/assert.ts";
import { Runtime } from "../../../src/proc/runtime.ts";

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

function sleeper(): Deno.ChildProcess {
  return new Deno.Command("sleep", { args: ["30"], stdout: "null", stderr: "null" }).spawn();
}

Deno.test("two runtimes share no children and no temporary files", async () => {
  const one = new Runtime();
  const other = new Runtime();
  const child = one.children.track(sleeper());
  const file = await Deno.makeTempFile();
  one.tempFiles.register(file);
  try {
    assertEquals([one.children.live, other.children.live], [1, 0]);
    assertEquals(other.tempFiles.live(), []);
    assert(one.buffers !== other.buffers, "the runtimes share a buffer pool");
    await other.release();
    assert(await exists(file), "another runtime removed the file");
    assertEquals(one.children.live, 1);
  } finally {
    await one.release();
  }
  assertEquals((await child.status).signal, "SIGTERM");
  assert(!(await exists(file)), "release() left the file");
  assertEquals(one.children.live, 0);
});

Deno.test("Children.stopAll() kills what ignores SIGTERM after the grace period", async () => {
  const rt = new Runtime();
  const child = rt.children.track(
    new Deno.Command("sh", { args: ["-c", "trap '' TERM; sleep 30"], stdout: "null" }).spawn(),
  );
  await new Promise((r) => setTimeout(r, 200)); // the trap is set
  await rt.children.stopAll(100);
  assertEquals((await child.status).signal, "SIGKILL");
});

Deno.test("Runtime.libc() is opened once", () => {
  const rt = new Runtime();
  assert(rt.libc() === rt.libc());
});
