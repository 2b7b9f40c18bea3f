import { assertEquals } from "../../helpers/assert.ts";
import {
  goMode,
  isDir,
  ModeDir,
  ModeSetgid,
  ModeSticky,
  ModeSymlink,
} from "../../../src/kloset/mode.ts";

Deno.test("goMode() maps tar entry types and special bits onto Go's io/fs.FileMode", () => {
  assertEquals(goMode(0o644, "file"), 0o644);
  assertEquals(goMode(0o700, "directory"), ModeDir + 0o700);
  assertEquals(goMode(0o777, "symlink"), ModeSymlink + 0o777);
  assertEquals(goMode(0o2755, "directory"), ModeDir + ModeSetgid + 0o755);
  assertEquals(goMode(0o1777, "directory"), ModeDir + ModeSticky + 0o777);
});

Deno.test("isDir() reads the directory bit, the top bit of a uint32", () => {
  assertEquals(isDir(ModeDir + 0o755), true);
  assertEquals(isDir(0o755), false);
  assertEquals(isDir(ModeSymlink + 0o777), false);
});
