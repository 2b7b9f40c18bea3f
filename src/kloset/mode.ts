// FileInfo.mode carries Go's io/fs.FileMode bits, not POSIX st_mode: the
// permission bits at the bottom and one bit per file type at the top.

export const ModeDir = 2 ** 31;
export const ModeAppend = 2 ** 30;
export const ModeExclusive = 2 ** 29;
export const ModeTemporary = 2 ** 28;
export const ModeSymlink = 2 ** 27;
export const ModeDevice = 2 ** 26;
export const ModeNamedPipe = 2 ** 25;
export const ModeSocket = 2 ** 24;
export const ModeSetuid = 2 ** 23;
export const ModeSetgid = 2 ** 22;
export const ModeCharDevice = 2 ** 21;
export const ModeSticky = 2 ** 20;
export const ModeIrregular = 2 ** 19;
export const ModePerm = 0o777;

/** True when the Go mode is a directory. */
export function isDir(mode: number): boolean {
  return (mode >>> 31) === 1;
}

export type EntryType =
  | "file"
  | "directory"
  | "symlink"
  | "link"
  | "character-device"
  | "block-device"
  | "fifo";

/** Maps a POSIX mode (tar's) and an entry type onto Go FileMode bits. */
export function goMode(posixMode: number, type: EntryType): number {
  let mode = posixMode & ModePerm;
  if (posixMode & 0o4000) mode += ModeSetuid;
  if (posixMode & 0o2000) mode += ModeSetgid;
  if (posixMode & 0o1000) mode += ModeSticky;
  switch (type) {
    case "directory":
      mode += ModeDir;
      break;
    case "symlink":
      mode += ModeSymlink;
      break;
    case "character-device":
      mode += ModeDevice + ModeCharDevice;
      break;
    case "block-device":
      mode += ModeDevice;
      break;
    case "fifo":
      mode += ModeNamedPipe;
      break;
    default:
      break;
  }
  return mode;
}
