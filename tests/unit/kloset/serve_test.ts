// serve() ends when the process is told to stop, runs the shutdown steps in
// order, and reports how it ended.

import { assertEquals } from "../../helpers/assert.ts";
import { serve } from "../../../src/kloset/rpc.ts";

Deno.test("serve() ends on hostGone: onEnd, onClose, onShutdown in that order, and says why", async () => {
  const steps: string[] = [];
  const stop = new AbortController();
  const done = serve({}, {
    // A host that never sends anything and takes whatever is written.
    transport: { read: () => new Promise(() => {}), write: (b) => Promise.resolve(b.length) },
    hostGone: stop.signal,
    onEnd: (end) => steps.push(`end: ${end.why}`),
    onClose: () => {
      steps.push("close");
      return Promise.resolve();
    },
    onShutdown: () => {
      steps.push("shutdown");
      return Promise.resolve();
    },
  });
  stop.abort("received SIGTERM");
  assertEquals(await done, { clean: true, why: "received SIGTERM" });
  assertEquals(steps, ["end: received SIGTERM", "close", "shutdown"]);
});

Deno.test("serve() ends when the host's input ends", async () => {
  let closed = false;
  const end = await serve({}, {
    transport: { read: () => Promise.resolve(null), write: (b) => Promise.resolve(b.length) },
    onClose: () => {
      closed = true;
      return Promise.resolve();
    },
  });
  assertEquals(end, { clean: true, why: "input closed" });
  assertEquals(closed, true);
});
