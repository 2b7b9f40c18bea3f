// What the physical connectors (postgres+bin://, postgres+wal://) answer
// Init with. STREAM: what they read from the server can be read only once.
// NEEDACK: an entry is held until plakar opens or acknowledges it, so the
// stream behind it advances only then. A failed file fails the whole
// import: a copy or a WAL range with a hole must never be committed.

import {
  type ConnectorInfo,
  Flags,
  type ImportEntry,
  type ImportPolicy,
} from "../kloset/connector.ts";
import { MANIFEST_PATH } from "../pg/names.ts";

export function physicalInfo(host: string, type: string): ConnectorInfo {
  return { origin: host, type, root: "/", flags: Flags.STREAM | Flags.NEEDACK };
}

export const PHYSICAL_POLICY: Readonly<ImportPolicy> = { failImportOnOpenError: true };

/** The /manifest.json record: beside the data files, owned and readable like them. */
export function manifestEntry(bytes: Uint8Array, modTime: Date): ImportEntry {
  return {
    pathname: MANIFEST_PATH,
    fileInfo: { name: MANIFEST_PATH.slice(1), size: bytes.length, mode: 0o600, modTime },
    open: () => bytes,
  };
}
