// The seam between plakar's plugin protocol and our connectors. Connectors
// implement these interfaces and never see gRPC; the kloset layer adapts them
// to the Importer and Exporter services (acknowledgements, held readers,
// draining, errors turned into gRPC statuses).

import type { Runtime } from "../proc/runtime.ts";

/** FileInfo.mode is Go's io/fs.FileMode: connectors build it with goMode (./mode.ts). */
export { type EntryType, goMode } from "./mode.ts";

/** Connector-level location flags (plakar's bit values). */
export const Flags = {
  LOCALFS: 1,
  FILE: 2,
  STREAM: 4,
  NEEDACK: 8,
  NOMERGE: 16,
  EXPORTXATTR: 32,
} as const;

/** Options plakar sends with Init. */
export interface HostOptions {
  hostname: string;
  os: string;
  arch: string;
  cwd: string;
  maxConcurrency: number;
  excludes: string[];
  noXattr: boolean;
}

/** What Init receives: the scheme typed by the user and every config key (all strings). */
export interface InitParams {
  proto: string;
  config: Record<string, string>;
  options: HostOptions;
}

/** File metadata, plain TypeScript. `mode` holds Go io/fs.FileMode bits (see mode.ts). */
export interface FileInfo {
  name: string;
  size: number;
  mode: number;
  modTime: Date;
  dev?: number;
  ino?: number;
  uid?: number;
  gid?: number;
  nlink?: number;
  username?: string;
  groupname?: string;
  flags?: number;
}

/** An entry's content: a stream, or bytes already in memory. */
export type EntryContent = ReadableStream<Uint8Array> | Uint8Array;

/** An entry's content as a stream, whichever form it was given in. */
export function contentStream(content: EntryContent): ReadableStream<Uint8Array> {
  if (!(content instanceof Uint8Array)) return content;
  return new ReadableStream({
    start(c) {
      if (content.length) c.enqueue(content);
      c.close();
    },
  });
}

/** One entry an importer emits. */
export interface ImportEntry {
  /** Absolute path in the snapshot, e.g. "/00001-app.dump". */
  pathname: string;
  /** Metadata; absent when `error` is set. */
  fileInfo?: FileInfo;
  /** Symlink target, when the entry is a symlink. */
  target?: string;
  /** A per-entry failure: the host records the entry as failed. */
  error?: string;
  /**
   * The content, produced lazily: called at most once, when the host opens
   * the entry. A stream that errors fails the Open with the error's message.
   * When the host never opens the entry (it acknowledged it instead), the
   * adapter calls `release` so the producer can be cleaned up without starting.
   * Content already in memory (a small file, the manifest) may be returned
   * as bytes: it is sent as it is, without a stream around it.
   */
  open?: () => EntryContent | Promise<EntryContent>;
  release?: () => void | Promise<void>;
}

/** What Init answers. */
export interface ConnectorInfo {
  origin: string;
  type: string;
  root: string;
  flags: number;
}

/** A failure of one entry's content that should also fail the whole import. */
export interface ImportPolicy {
  /**
   * When true (the default), a failed Open also fails the Import call, so
   * plakar commits no snapshot and exits non-zero. When false, plakar's
   * per-file behaviour applies (a snapshot with that file recorded as failed).
   */
  failImportOnOpenError: boolean;
}

export interface ImporterConnector {
  info(): ConnectorInfo;
  policy(): ImportPolicy;
  /** A real round trip to the source; rejects with the reason. */
  ping(signal: AbortSignal): Promise<void>;
  /** Yields the entries in order; the adapter sends each as a Record. */
  entries(signal: AbortSignal): AsyncIterable<ImportEntry>;
  /** Releases everything (child processes, temp files, connections). */
  close(): Promise<void>;
}

/** One record the host asks an exporter to restore. */
export interface ExportEntry {
  pathname: string;
  fileInfo?: FileInfo;
  target?: string;
  isDir: boolean;
  /** Set when the snapshot holds an error for this entry instead of content. */
  error?: string;
}

export interface ExporterConnector {
  info(): ConnectorInfo;
  ping(signal: AbortSignal): Promise<void>;
  /**
   * Restores one entry. `content` is the file's bytes when it has any (null for
   * directories). Entries arrive one at a time in the host's order (lexicographic).
   * Resolving means success; rejecting records the error for that entry.
   * Content left unread is drained by the adapter.
   */
  restore(
    entry: ExportEntry,
    content: ReadableStream<Uint8Array> | null,
    signal: AbortSignal,
  ): Promise<void>;
  /**
   * Called after the host's last record. Rejecting fails the Export call, for
   * a restore that must not be reported as good when an entry failed.
   */
  finish(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** A connector factory: parse and validate the config completely, or throw a ConfigError. */
/**
 * Makes a connector from Init's parameters. `runtime` is the process's
 * (src/proc/runtime.ts): its tools, buffers and temporary files go there.
 */
export type ImporterFactory = (params: InitParams, runtime: Runtime) => Promise<ImporterConnector>;
export type ExporterFactory = (params: InitParams, runtime: Runtime) => Promise<ExporterConnector>;
