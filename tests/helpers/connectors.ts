// Drives our connectors directly (no gRPC) for integration tests: run an
// importer to completion collecting its files, and feed files to an exporter
// in the host's lexicographic order.

import {
  contentStream,
  type ExporterConnector,
  type HostOptions,
  type ImporterConnector,
  type InitParams,
} from "../../src/kloset/connector.ts";
import { bytesInChunks } from "./streams.ts";

export const HOST_OPTIONS: HostOptions = {
  hostname: "test",
  os: "linux",
  arch: "amd64",
  cwd: "/",
  maxConcurrency: 1,
  excludes: [],
  noXattr: true,
};

export function params(proto: string, config: Record<string, string>): InitParams {
  return { proto, config, options: HOST_OPTIONS };
}

/** Runs an import and reads every file's content; errors are collected per path. */
export async function importAll(
  imp: ImporterConnector,
): Promise<{ files: Map<string, Uint8Array>; errors: Map<string, string> }> {
  const files = new Map<string, Uint8Array>();
  const errors = new Map<string, string>();
  const signal = new AbortController().signal;
  for await (const entry of imp.entries(signal)) {
    if (entry.error) {
      errors.set(entry.pathname, entry.error);
      continue;
    }
    if (!entry.open) continue;
    try {
      files.set(
        entry.pathname,
        new Uint8Array(await new Response(contentStream(await entry.open())).arrayBuffer()),
      );
    } catch (e) {
      errors.set(entry.pathname, (e as Error).message);
    }
  }
  return { files, errors };
}

function streamOf(bytes: Uint8Array, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  return bytesInChunks(bytes, chunk);
}

/**
 * Restores files through an exporter in lexicographic order, as plakar does.
 * Returns the per-file errors and finish()'s error, if any.
 */
export async function exportAll(
  exp: ExporterConnector,
  files: Map<string, Uint8Array>,
): Promise<{ errors: Map<string, string>; finishError?: string }> {
  const errors = new Map<string, string>();
  const signal = new AbortController().signal;
  await exp.restore({ pathname: "/", isDir: true }, null, signal);
  for (const path of [...files.keys()].sort()) {
    const bytes = files.get(path)!;
    const stream = streamOf(bytes);
    try {
      await exp.restore(
        {
          pathname: path,
          isDir: false,
          fileInfo: { name: path.slice(1), size: bytes.length, mode: 0o444, modTime: new Date() },
        },
        stream,
        signal,
      );
    } catch (e) {
      errors.set(path, (e as Error).message);
    }
    await stream.cancel().catch(() => {});
  }
  let finishError: string | undefined;
  try {
    await exp.finish(signal);
  } catch (e) {
    finishError = (e as Error).message;
  }
  return { errors, finishError };
}

/** A postgres:// logical exporter made from `config`, fed `files`, then closed. */
export async function restoreFiles(
  config: Record<string, string>,
  files: Map<string, Uint8Array>,
): Promise<{ errors: Map<string, string>; finishError?: string }> {
  // Imported here: the helpers of protocol-level tests need no connector.
  const { createLogicalExporter } = await import("../../src/logical/restore/exporter.ts");
  const exp = await createLogicalExporter(params("postgres", config));
  try {
    return await exportAll(exp, files);
  } finally {
    await exp.close();
  }
}
