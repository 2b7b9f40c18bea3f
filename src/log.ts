// Diagnostics go to stderr only: stdout carries the plugin protocol. Every
// line is prefixed with the integration's name, since plakar interleaves the
// plugin's stderr with its own output, and kept on one line so that a log
// collector keeps it whole.

import { oneLine } from "./errors.ts";

/** Prints one warning line on stderr. */
export function warn(line: string): void {
  console.error(`postgresql: warning: ${oneLine(line)}`);
}

/** Prints one error line on stderr. */
export function error(line: string): void {
  console.error(`postgresql: error: ${oneLine(line)}`);
}
