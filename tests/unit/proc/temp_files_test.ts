import { assert, assertEquals } from "../../helpers/assert.ts";
import {
  liveTempFiles,
  registerTempFile,
  removeAllTempFiles,
  removeTempFile,
} from "../../../src/proc/temp_files.ts";

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

Deno.test("removeAllTempFiles() (the shutdown path) removes every registered file still there", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = `${dir}/a.dump`;
    const b = `${dir}/b.dump`;
    await Deno.writeTextFile(a, "a");
    await Deno.writeTextFile(b, "b");
    registerTempFile(a);
    registerTempFile(b);
    registerTempFile(`${dir}/never-written.dump`);
    await removeTempFile(a);
    assertEquals(liveTempFiles().sort(), [b, `${dir}/never-written.dump`].sort());
    await removeAllTempFiles();
    assert(!(await exists(b)), "a registered file survived the shutdown path");
    assertEquals(liveTempFiles(), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
