// Assertions for tests: node:assert/strict under the names the tests use
// (jsr:@std/assert is not reachable here).
import assert from "node:assert/strict";

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assert.deepStrictEqual(actual, expected, message as string);
}
export function assert_(cond: unknown, message?: string): asserts cond {
  assert.ok(cond, message as string);
}
export { assert_ as assert };
export function assertMatch(actual: string, re: RegExp, message?: string): void {
  assert.match(actual, re, message as string);
}
export function assertNotMatch(actual: string, re: RegExp, message?: string): void {
  assert.doesNotMatch(actual, re, message as string);
}
export function assertStringIncludes(actual: string, expected: string, message?: string): void {
  assert.ok(
    actual.includes(expected),
    message ?? `${JSON.stringify(actual)} does not include ${JSON.stringify(expected)}`,
  );
}
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  cls?: new (...a: any[]) => E,
): E {
  try {
    fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) {
      throw new assert.AssertionError({ message: `expected ${cls.name}, got ${e}` });
    }
    return e as E;
  }
  throw new assert.AssertionError({ message: "expected the function to throw" });
}
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  cls?: new (...a: any[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) {
      throw new assert.AssertionError({ message: `expected ${cls.name}, got ${e}` });
    }
    return e as E;
  }
  throw new assert.AssertionError({ message: "expected the promise to reject" });
}
