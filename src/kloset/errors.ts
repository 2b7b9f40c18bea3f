// One error type for the gRPC boundary: every failure a connector raises is
// normalised here into a status code and a one-line message that plakar shows
// to the user as is.

import { ConfigError, type ErrorKind, kindOf, oneLine } from "../errors.ts";

// Shared with the connectors, which may raise them; defined apart from this layer.
export { ConfigError, oneLine };

/** gRPC status codes used at the boundary. */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Code = typeof Code[keyof typeof Code];

/** The status each kind of error becomes (the kinds are named after these codes). */
export const CODE_OF_KIND: Readonly<Record<ErrorKind, Code>> = {
  "invalid-argument": Code.INVALID_ARGUMENT,
  "not-found": Code.NOT_FOUND,
  "unauthenticated": Code.UNAUTHENTICATED,
  "permission-denied": Code.PERMISSION_DENIED,
  "unavailable": Code.UNAVAILABLE,
  "failed-precondition": Code.FAILED_PRECONDITION,
  "aborted": Code.ABORTED,
  "resource-exhausted": Code.RESOURCE_EXHAUSTED,
  "data-loss": Code.DATA_LOSS,
  "cancelled": Code.CANCELLED,
  "unknown": Code.UNKNOWN,
};

/** An error carrying the gRPC status code it should become. */
export class KlosetError extends Error {
  readonly code: Code;
  constructor(code: Code, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KlosetError";
    this.code = code;
  }

  /**
   * Normalises anything thrown into a KlosetError with a one-line message,
   * its code from the error's kind (`fallback` when the kind is unknown).
   */
  static from(err: unknown, fallback: Code = Code.UNKNOWN): KlosetError {
    if (err instanceof KlosetError) return err;
    const kind = kindOf(err);
    const code = kind === "unknown" ? fallback : CODE_OF_KIND[kind];
    if (err instanceof Error) return new KlosetError(code, oneLine(err.message), { cause: err });
    return new KlosetError(code, oneLine(String(err)));
  }
}
