import { assert, assertEquals } from "../../helpers/assert.ts";
import { TempFiles } from "../../../src/proc/temp_files.ts";

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

Deno.test("TempFiles.removeAll() (the shutdown path) removes every registered file still there", async () => {
  const dir = await Deno.makeTempDir();
  const files = new TempFiles();
  try {
    const a = `${dir}/a.dump`;
    const b = `${dir}/b.dump`;
    await Deno.writeTextFile(a, "a");
    await Deno.writeTextFile(b, "b");
    files.register(a);
    files.register(b);
    files.register(`${dir}/never-written.dump`);
    await files.remove(a);
    assertEquals(files.live().sort(), [b, `${dir}/never-written.dump`].sort());
    await files.removeAll();
    assert(!(await exists(b)), "a registered file survived the shutdown path");
    assertEquals(files.live(), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("two TempFiles registries share nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const one = new TempFiles();
    const other = new TempFiles();
    const path = `${dir}/a.dump`;
    await Deno.writeTextFile(path, "a");
    one.register(path);
    assertEquals(other.live(), []);
    await other.removeAll();
    assert(await exists(path), "another registry removed the file");
    await one.removeAll();
    assert(!(await exists(path)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
