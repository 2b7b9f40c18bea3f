import { assert, assertEquals, assertMatch, assertRejects } from "../../../helpers/assert.ts";
import { checkSpoolSpace, freeBytes, spool } from "../../../../src/logical/restore/spool.ts";
import { Runtime } from "../../../../src/proc/runtime.ts";

function streamOf(parts: Uint8Array[], failAfter?: number): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (failAfter !== undefined && i === failAfter) {
        c.error(new Error("the host went away"));
        return;
      }
      if (i >= parts.length) return c.close();
      c.enqueue(parts[i++]);
    },
  });
}

const entries = async (dir: string) =>
  (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);

Deno.test("spool() writes the whole stream to a file that has no name on disk while it is open", async () => {
  const runtime = new Runtime();
  const dir = await Deno.makeTempDir();
  try {
    const parts = [new Uint8Array(1000).fill(1), new Uint8Array(70000).fill(2)];
    let path: string;
    {
      await using file = await spool(streamOf(parts), { dir, size: 71000, runtime });
      path = file.path;
      assertEquals(file.size, 71000);
      // Unlinked at once: nothing in the directory, even while it is in use.
      assertEquals(await entries(dir), []);
      assertMatch(path, new RegExp(`^/proc/${Deno.pid}/fd/\\d+$`));
      // Another process reads it through that path, as pg_restore -j does.
      const out = await new Deno.Command("wc", { args: ["-c", path], stdout: "piped" }).output();
      assertMatch(new TextDecoder().decode(out.stdout), /^71000 /);
      const bytes = await Deno.readFile(path);
      assertEquals([bytes[0], bytes[999], bytes[1000], bytes[70999]], [1, 1, 2, 2]);
      assertEquals(runtime.tempFiles.live(), [], "an unlinked file needs no removal at shutdown");
    }
    // Disposed: the descriptor is closed and the path no longer opens.
    await assertRejects(() => Deno.stat(path));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a spooled file leaves nothing on disk when the process that wrote it is SIGKILLed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `
      import { spool } from "${
      new URL("../../../../src/logical/restore/spool.ts", import.meta.url).href
    }";
      import { Runtime } from "${new URL("../../../../src/proc/runtime.ts", import.meta.url).href}";
      const data = new ReadableStream({ start(c) { c.enqueue(new Uint8Array(4096)); c.close(); } });
      const file = await spool(data, { dir: ${JSON.stringify(dir)}, runtime: new Runtime() });
      console.log(file.path);
      await new Promise(() => {});
    `;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "-"],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(script));
    await w.close();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const { value } = await reader.read();
    assertMatch(value ?? "", /^\/proc\/\d+\/fd\/\d+/);
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
    assertEquals(await entries(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("spool() removes its file when the input fails midway", async () => {
  const runtime = new Runtime();
  const dir = await Deno.makeTempDir();
  try {
    const e = await assertRejects(() =>
      spool(streamOf([new Uint8Array(10), new Uint8Array(10)], 1), { dir, runtime })
    );
    assertMatch(e.message, /the host went away/);
    assertEquals(await entries(dir), []);
    assertEquals(runtime.tempFiles.live(), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("spool() stops, cancels the input and removes its file when aborted", async () => {
  const runtime = new Runtime();
  const dir = await Deno.makeTempDir();
  try {
    const ac = new AbortController();
    let cancelled = false;
    let sent = 0;
    const input = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (sent++ === 2) {
          ac.abort(new Error("restore cancelled"));
          await new Promise((r) => setTimeout(r, 10));
        }
        c.enqueue(new Uint8Array(100));
      },
      cancel() {
        cancelled = true;
      },
    });
    const e = await assertRejects(() => spool(input, { dir, signal: ac.signal, runtime }));
    assertMatch(e.message, /cancelled/);
    assert(cancelled, "the input was not cancelled");
    assertEquals(await entries(dir), []);
    assertEquals(runtime.tempFiles.live(), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("spool() refuses a file larger than the free space before writing a byte", async () => {
  const runtime = new Runtime();
  const dir = await Deno.makeTempDir();
  try {
    let cancelled = false;
    const input = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(new Uint8Array(1));
      },
      cancel() {
        cancelled = true;
      },
    });
    const tooBig = (await freeBytes(dir)) + 1024 ** 3;
    const e = await assertRejects(() => spool(input, { dir, size: tooBig, runtime }));
    assertMatch(
      e.message,
      /^Cannot spool the dump to .* \(spool_dir\): it needs \d+ MiB and \d+ MiB are free; .*without jobs=/,
    );
    assert(cancelled, "the input was not cancelled");
    assertEquals(await entries(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkSpoolSpace() names a spool_dir that does not exist", async () => {
  const e = await assertRejects(() => checkSpoolSpace("/nonexistent/spool", 10));
  assertMatch(e.message, /^Cannot spool the dump to \/nonexistent\/spool \(spool_dir\)/);
});

Deno.test("freeBytes() agrees with df within a few MiB", async () => {
  const out = await new Deno.Command("df", { args: ["-B1", "--output=avail", "/tmp"] }).output();
  const df = Number(new TextDecoder().decode(out.stdout).trim().split("\n")[1]);
  assert(Math.abs((await freeBytes("/tmp")) - df) < 64 * 1024 ** 2, `df says ${df}`);
});
