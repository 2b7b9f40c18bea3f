// The kloset layer over a real HTTP/2 connection to a real plugin process
// (test connectors under tests/fixtures), driven by our protocol host.

import { assert, assertEquals, assertMatch, assertRejects } from "../../helpers/assert.ts";
import {
  type ExportFile,
  fileChunks,
  PluginHost,
  runExport,
  runImport,
  StatusError,
} from "../../../harness/protocol_host.ts";
import { pattern } from "../../fixtures/test_importer.ts";
import { createHash } from "node:crypto";

const FIXTURES = new URL("../../fixtures/", import.meta.url).pathname;
const plugin = (name: string, env: Record<string, string> = {}) =>
  new PluginHost(Deno.execPath(), ["run", "-A", "--quiet", `${FIXTURES}${name}`], env);

Deno.test("importer: records in order, contents intact in 1 MiB chunks, Import ends cleanly", async () => {
  await using host = plugin("test_importer.ts", { FIXTURE_BIG_MB: "5" });
  const sizes = new Map<string, number>();
  const chunkSizes: number[] = [];
  let mismatch = -1;
  const { records, errors } = await runImport(host, "test", {}, (path, chunk) => {
    const off = sizes.get(path) ?? 0;
    if (path === "/big.bin") {
      chunkSizes.push(chunk.length);
      for (let i = 0; i < chunk.length && mismatch < 0; i++) {
        if (chunk[i] !== pattern(off + i)) mismatch = off + i;
      }
    }
    sizes.set(path, off + chunk.length);
  });
  assertEquals(records.map((r) => r.pathname), ["/a.txt", "/big.bin"]);
  assertEquals(records[0].fileInfo?.mode, 0o644);
  assertEquals(errors.size, 0);
  assertEquals(sizes.get("/a.txt"), 5);
  assertEquals(sizes.get("/big.bin"), 5 * 1024 * 1024);
  assertEquals(mismatch, -1);
  assertEquals(chunkSizes.every((n) => n === 1024 * 1024), true, chunkSizes.join(","));
});

Deno.test("importer: a failing producer fails its Open and, by default, the Import call with a stderr line", async () => {
  await using host = plugin("test_importer.ts");
  const e = await assertRejects(() => runImport(host, "test", { broken: "true" }), StatusError);
  assertMatch(e.message, /broken\.bin failed: producer failed: disk on fire/);
  await new Promise((r) => setTimeout(r, 100));
  assertMatch(host.stderr, /postgresql: error: \/broken\.bin: producer failed: disk on fire/);
});

Deno.test("importer: with the relaxed policy only the Open fails", async () => {
  await using host = plugin("test_importer.ts");
  const { errors } = await runImport(host, "test", { broken: "true", strict: "false" });
  assertEquals([...errors.keys()], ["/broken.bin"]);
  assertMatch(errors.get("/broken.bin")!, /disk on fire/);
});

Deno.test("importer: an Init error is a status with the one-line message", async () => {
  await using host = plugin("test_importer.ts");
  const e = await assertRejects(() => runImport(host, "test", { fail_init: "x" }), StatusError);
  assertEquals(e.code, 3); // INVALID_ARGUMENT
  assertEquals(e.message, "fail_init: asked to fail");
});

Deno.test("exporter: every record gets a result, content arrives intact, unread content is drained", async () => {
  const out = await Deno.makeTempFile();
  const big = await Deno.makeTempFile();
  const data = new Uint8Array(7 * 1024 * 1024 + 123).map((_, i) => pattern(i));
  await Deno.writeFile(big, data);
  try {
    await using host = plugin("test_exporter.ts", { FIXTURE_OUT: out });
    const files: ExportFile[] = [
      { pathname: "/" },
      { pathname: "/big.bin", content: fileChunks(big) },
      { pathname: "/skip.bin", content: fileChunks(big) },
      { pathname: "/fail.txt", content: fileChunks(big) },
      { pathname: "/z.txt", content: (async function* () {})() },
    ];
    const results = await runExport(host, "test", {}, files);
    assertEquals([...results.keys()].sort(), ["/", "/big.bin", "/fail.txt", "/skip.bin", "/z.txt"]);
    assertEquals(results.get("/big.bin"), "");
    assertEquals(results.get("/fail.txt"), "cannot restore this one");
    const got = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
    const bigEntry = got.find((g) => g.path === "/big.bin");
    assertEquals(bigEntry.size, data.length);
    assertEquals(bigEntry.sha256, createHash("sha256").update(data).digest("hex"));
    assert(got.some((g) => g.path === "/skip.bin" && g.skipped));
    assertEquals(got.find((g) => g.path === "/z.txt").size, 0);
  } finally {
    await Deno.remove(out);
    await Deno.remove(big);
  }
});

Deno.test("exporter: a finish() that rejects fails the Export call", async () => {
  const out = await Deno.makeTempFile();
  try {
    await using host = plugin("test_exporter.ts", { FIXTURE_OUT: out });
    const results = await runExport(host, "test", { fail_finish: "true" }, [{ pathname: "/" }]);
    assertMatch(results.get("(status)") ?? "", /restore failed for 1 file/);
  } finally {
    await Deno.remove(out);
  }
});
