// The archive reader (src/physical/tar_entries.ts, src/physical/tar_input.ts)
// against archives it did not write: GNU tar in its gnu, pax and ustar
// formats (long names through 'L' records, pax records and the ustar
// prefix), and a seeded fuzz of truncated and corrupted archives, which must
// end in an error or a clean end, never a hang or a member larger than
// declared. TAR_FUZZ_SEED reproduces a fuzz run.

import { assert, assertEquals } from "../../helpers/assert.ts";
import { tarEntries } from "../../../src/physical/tar_entries.ts";
import { contentStream, type ImportEntry } from "../../../src/kloset/connector.ts";
import { ModeSymlink } from "../../../src/kloset/mode.ts";
import { byteStream } from "../../helpers/streams.ts";

const signal = new AbortController().signal;

async function content(e: ImportEntry): Promise<Uint8Array> {
  return new Uint8Array(await new Response(contentStream(await e.open!())).arrayBuffer());
}

interface Seen {
  path: string;
  size: number;
  target?: string;
  symlink: boolean;
  bytes?: Uint8Array;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Map<string, Seen>> {
  const out = new Map<string, Seen>();
  for await (const e of tarEntries(stream, signal, { file: 3000, budget: 10_000 })) {
    const seen: Seen = {
      path: e.pathname,
      size: e.fileInfo!.size,
      target: e.target,
      symlink: (e.fileInfo!.mode & ModeSymlink) !== 0,
    };
    if (e.open) seen.bytes = await content(e);
    out.set(e.pathname, seen);
  }
  return out;
}

/** A tree with names too long for a plain ustar header, a long link target, and sizes around the block and buffer edges. */
async function makeTree(
  linkTarget: string,
): Promise<{ dir: string; files: Map<string, Uint8Array>; link: string }> {
  const dir = await Deno.makeTempDir({ prefix: "tar-conf-" });
  const files = new Map<string, Uint8Array>();
  const deep = ["d".repeat(60), "e".repeat(60)].join("/");
  await Deno.mkdir(`${dir}/t/${deep}`, { recursive: true });
  let seed = 7;
  const rand = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    return b;
  };
  const sizes = [0, 1, 511, 512, 513, 2999, 3000, 3001, 65_536, 1024 * 1024 + 7, 2_500_000];
  for (const [i, size] of sizes.entries()) {
    const rel = i % 2 ? `${deep}/file-${size}-${"x".repeat(30)}` : `f${i}`;
    const data = rand(size);
    await Deno.writeFile(`${dir}/t/${rel}`, data);
    files.set(`/${rel}`, data);
  }
  const link = `${deep}/${"l".repeat(40)}`;
  await Deno.symlink(linkTarget, `${dir}/t/${link}`);
  return { dir, files, link: `/${link}` };
}

for (const format of ["gnu", "pax", "ustar"]) {
  Deno.test(`tarEntries() reads what GNU tar writes in ${format} format, long names included`, async () => {
    // ustar has no way to store a link target over 100 bytes.
    const target = `../${"target-".repeat(format === "ustar" ? 10 : 20)}`;
    const { dir, files, link } = await makeTree(target);
    try {
      const out = await new Deno.Command("tar", {
        args: [`--format=${format}`, "-C", `${dir}/t`, "-cf", "-", "."],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert(out.success, new TextDecoder().decode(out.stderr));
      for (const piece of [100_000, 4096, 777]) {
        const seen = await readAll(byteStream(out.stdout, piece));
        for (const [path, data] of files) {
          const s = seen.get(path);
          assert(s, `${format}: ${path} missing (piece ${piece})`);
          assertEquals(s.size, data.length, path);
          assertEquals(s.bytes, data, `${format}: content of ${path}`);
        }
        const l = seen.get(link);
        assert(l?.symlink, `${format}: ${link} is not a symlink`);
        assertEquals(l.target, target);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("tarEntries() on truncated and corrupted archives ends in an error or a clean end, never a hang (seeded fuzz)", async () => {
  const { dir } = await makeTree(`../${"target-".repeat(20)}`);
  let archive: Uint8Array;
  try {
    const out = await new Deno.Command("tar", {
      args: ["--format=pax", "-C", `${dir}/t`, "-cf", "-", "."],
      stdout: "piped",
    }).output();
    archive = out.stdout;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  let seed = Number(Deno.env.get("TAR_FUZZ_SEED") ?? Date.now() % 1_000_000);
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const startSeed = seed;
  let errors = 0;
  for (let round = 0; round < 150; round++) {
    const bytes = archive.slice(0, 1 + Math.floor(next() * archive.length));
    // Some rounds also flip bytes, headers included.
    const flips = next() < 0.5 ? 1 + Math.floor(next() * 8) : 0;
    for (let i = 0; i < flips; i++) {
      bytes[Math.floor(next() * bytes.length)] ^= 1 + Math.floor(next() * 255);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      (async () => {
        try {
          const seen = await readAll(byteStream(bytes, 256 + Math.floor(next() * 50_000)));
          for (const s of seen.values()) {
            if (s.bytes) {
              assert(s.bytes.length <= s.size, `member larger than declared (seed ${startSeed})`);
            }
          }
          return "end";
        } catch (e) {
          assert(e instanceof Error, `a non-Error was thrown (seed ${startSeed})`);
          errors++;
          return "error";
        }
      })(),
      new Promise<string>((r) => (timer = setTimeout(() => r("hang"), 5000))),
    ]);
    clearTimeout(timer);
    assert(outcome !== "hang", `round ${round} hung (TAR_FUZZ_SEED=${startSeed})`);
  }
  // Nearly every cut lands inside a member or before the end-of-archive marker.
  assert(errors > 100, `only ${errors} of 150 broken archives were refused (seed ${startSeed})`);
});
