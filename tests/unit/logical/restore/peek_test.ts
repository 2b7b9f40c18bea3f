import { assertEquals } from "../../../helpers/assert.ts";
import { chunked, collectText } from "../../../helpers/streams.ts";
import { peek } from "../../../../src/logical/restore/peek.ts";

Deno.test("peek() returns the head and a stream that still yields every byte", async () => {
  const text = "0123456789".repeat(100);
  const { head, stream } = await peek(chunked(text, 7), 20);
  assertEquals(head.length >= 20, true);
  assertEquals(await collectText(stream), text);
  const short = await peek(chunked("abc", 2), 512);
  assertEquals(new TextDecoder().decode(short.head), "abc");
  assertEquals(await collectText(short.stream), "abc");
});
