// One error type for the gRPC boundary: every failure a connector raises is
// normalised here into a status code and a one-line message that plakar shows
// to the user as is.

import { ConfigError, oneLine } from "../errors.ts";

// Shared with the connectors, which may raise them; defined apart from this layer.
export { ConfigError, oneLine };

/** gRPC status codes used at the boundary. */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;
export type Code = typeof Code[keyof typeof Code];

/** An error carrying the gRPC status code it should become. */
export class KlosetError extends Error {
  readonly code: Code;
  constructor(code: Code, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KlosetError";
    this.code = code;
  }

  /** Normalises anything thrown into a KlosetError with a one-line message. */
  static from(err: unknown, fallback: Code = Code.UNKNOWN): KlosetError {
    if (err instanceof KlosetError) return err;
    if (err instanceof Error) {
      const code = err instanceof ConfigError
        ? Code.INVALID_ARGUMENT
        : typeof (err as { grpcCode?: unknown }).grpcCode === "number"
        ? (err as unknown as { grpcCode: Code }).grpcCode
        : fallback;
      return new KlosetError(code, oneLine(err.message), { cause: err });
    }
    return new KlosetError(fallback, oneLine(String(err)));
  }
}
