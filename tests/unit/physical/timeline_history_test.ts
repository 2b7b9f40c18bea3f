import { assertEquals, assertThrows } from "../../helpers/assert.ts";
import { parseHistory, timelineOf } from "../../../src/physical/timeline_history.ts";

// 00000003.history as PostgreSQL writes it after two promotions.
const HISTORY =
  '1\t0/3000158\tno recovery target specified\n\n2\t0/5000060\tat restore point "x"\n';

Deno.test("a history file lists each ancestor timeline and where it ended", () => {
  assertEquals(parseHistory(HISTORY), [
    { tli: 1, switchpoint: 0x3000158n },
    { tli: 2, switchpoint: 0x5000060n },
  ]);
  assertThrows(() => parseHistory("one\t0/1\n"), SyntaxError);
});

Deno.test("a position belongs to the first timeline that had not ended there", () => {
  const h = parseHistory(HISTORY);
  assertEquals(timelineOf(0x3000000n, 3, h), 1);
  assertEquals(timelineOf(0x3000158n, 3, h), 2);
  assertEquals(timelineOf(0x5000060n, 3, h), 3);
  assertEquals(timelineOf(0x1000000n, 1, []), 1);
});
