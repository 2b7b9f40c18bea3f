// Diagnostics go to stderr only: stdout carries the plugin protocol.

/** Prints one warning line on stderr, prefixed with the integration's name. */
export function warn(line: string): void {
  console.error(`postgresql: warning: ${line.replace(/\s*\n\s*/g, " ")}`);
}

/** Prints one error line on stderr. */
export function error(line: string): void {
  console.error(`postgresql: error: ${line.replace(/\s*\n\s*/g, " ")}`);
}
