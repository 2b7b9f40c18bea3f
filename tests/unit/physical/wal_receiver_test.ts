import { assertEquals } from "../../helpers/assert.ts";
import { ready } from "../../../src/physical/wal_receiver.ts";

const SEG = 16 * 1024 * 1024;
const files = (...names: string[]) => names.map((name) => ({ name, isFile: true }));

Deno.test("while pg_receivewal runs, history files then complete segments in order are ready; partial ones are not", () => {
  const got = ready(
    files(
      "000000020000000000000006.partial",
      "000000010000000000000005.partial",
      "000000020000000000000005",
      "000000010000000000000004",
      "00000002.history",
    ),
    new Set(),
    false,
    SEG,
  );
  assertEquals(got.map((f) => `${f.kind}:${f.name}`), [
    "history:00000002.history",
    "segment:000000010000000000000004",
    "segment:000000020000000000000005",
  ]);
});

Deno.test("once pg_receivewal has exited, the partial segments follow, older timeline first", () => {
  const got = ready(
    files(
      "000000020000000000000005.partial",
      "000000010000000000000005.partial",
      "000000010000000000000004",
    ),
    new Set(["000000010000000000000004"]),
    true,
    SEG,
  );
  assertEquals(got.map((f) => f.name), [
    "000000010000000000000005.partial",
    "000000020000000000000005.partial",
  ]);
});
