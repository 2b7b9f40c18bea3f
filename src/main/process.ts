// The plugin process's lifecycle, shared by the three entries: stdout is the
// host's (HTTP/2 frames only), the process makes its one Runtime, a signal is
// taken as the host going away, and at shutdown every child tool is stopped
// and every temporary file removed before the last frames go out.

import type { PluginOptions, ServeEnd } from "../kloset/server.ts";
import { Runtime } from "../proc/runtime.ts";

/** The signals that stop a plugin: plakar's, a terminal's, a closed session's. */
const STOP_SIGNALS: readonly Deno.Signal[] = ["SIGTERM", "SIGINT", "SIGHUP"];

/**
 * Serves one connector with `serve` as this process's plugin, until the host
 * goes away; resolves true when it closed the stream with no call in progress.
 */
export async function runPlugin(
  serve: (options: PluginOptions) => Promise<ServeEnd>,
): Promise<boolean> {
  // stdout carries HTTP/2 frames only: any stray log goes to stderr.
  console.log = console.error;
  console.info = console.error;
  const runtime = new Runtime();
  const stop = new AbortController();
  const unlisten = onStopSignals((sig) => stop.abort(`received ${sig}`));
  try {
    const end = await serve({
      runtime,
      hostGone: stop.signal,
      // A second signal while shutting down ends the process at once.
      onEnd: unlisten,
      onShutdown: () => runtime.release(),
    });
    return end.clean;
  } finally {
    unlisten();
  }
}

/** Calls `fn` on each stop signal; returns what removes the listeners (idempotent). */
function onStopSignals(fn: (sig: Deno.Signal) => void): () => void {
  const listeners = STOP_SIGNALS.map((sig) => ({ sig, listener: () => fn(sig) }));
  for (const { sig, listener } of listeners) {
    try {
      Deno.addSignalListener(sig, listener);
    } catch { /* not supported here */ }
  }
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    for (const { sig, listener } of listeners) {
      try {
        Deno.removeSignalListener(sig, listener);
      } catch { /* not supported here */ }
    }
  };
}
