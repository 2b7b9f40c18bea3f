import { assertEquals } from "../../helpers/assert.ts";
import { GcPacer } from "../../../src/proc/memory.ts";

Deno.test("GcPacer asks for a minor collection once every 8 MiB of short-lived buffers", () => {
  const calls: unknown[] = [];
  const pacer = new GcPacer((options) => calls.push(options));
  for (let i = 0; i < 7; i++) pacer.shortLived(1024 * 1024);
  assertEquals(calls, []);
  pacer.shortLived(1024 * 1024);
  assertEquals(calls, [{ type: "minor" }]);
  for (let i = 0; i < 8; i++) pacer.shortLived(1024 * 1024);
  assertEquals(calls.length, 2);
  // Another pacer counts from zero.
  new GcPacer((options) => calls.push(options)).shortLived(1024 * 1024);
  assertEquals(calls.length, 2);
});
