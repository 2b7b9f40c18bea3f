import { assertEquals } from "../helpers/assert.ts";
import { ConfigError } from "../../src/errors.ts";
import { Code, KlosetError } from "../../src/kloset/errors.ts";

Deno.test("KlosetError.from() turns a ConfigError into INVALID_ARGUMENT, naming the option", () => {
  const e = KlosetError.from(new ConfigError("port", "must be\n1-65535"));
  assertEquals(e.code, Code.INVALID_ARGUMENT);
  assertEquals(e.message, "port: must be | 1-65535");
});

Deno.test("KlosetError.from() gives other errors the fallback code", () => {
  assertEquals(KlosetError.from(new Error("x")).code, Code.UNKNOWN);
  assertEquals(KlosetError.from(new Error("x"), Code.INTERNAL).code, Code.INTERNAL);
});
