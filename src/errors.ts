// Errors every layer shares. A ConfigError names the option it concerns; the
// PostgreSQL side raises it while parsing a configuration, and the protocol
// layer (src/kloset/errors.ts) turns it into INVALID_ARGUMENT at Init. Here,
// apart from both, so that neither has to import the other for it.

/** A configuration error: names the option. */
export class ConfigError extends Error {
  readonly option: string;
  constructor(option: string, message: string) {
    super(`${option}: ${message}`);
    this.name = "ConfigError";
    this.option = option;
  }
}

/** Collapses whitespace and newlines so a message stays on one line. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, " | ").replace(/\s+/g, " ").trim();
}
