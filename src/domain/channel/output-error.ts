/**
 * Why an output is not delivering. The supervisor reads `reason` to decide what to show and whether a retry
 * can help (`invalid_url` and `not_installed` cannot); `message` is for a person and never holds a secret.
 * A plain tagged error, not a Schema class: the forwarding threads, which make them, load no Schema.
 */
import * as Data from "effect/Data";

export type OutputErrorReason =
  | "invalid_url"
  | "not_installed"
  | "resolve_failed"
  | "connect_refused"
  | "connect_timeout"
  | "auth_rejected"
  | "disconnected"
  | "child_exited"
  | "write_failed"
  | "unsupported_media"
  /** The output's own code failed (a bug): the attempt ends and the output reconnects, alone. */
  | "internal_error";

export class OutputError extends Data.TaggedError("OutputError")<{
  readonly reason: OutputErrorReason;
  readonly message: string;
}> {}

/** A throw in an output's own code, as the error that ends its attempt (it reconnects, alone). */
export const outputInternalError = (thrown: unknown): OutputError =>
  new OutputError({
    reason: "internal_error",
    message: `internal error in the output: ${thrown instanceof Error ? thrown.message : String(thrown)}`,
  });

export const isRetryable = (error: OutputError): boolean =>
  error.reason !== "invalid_url" && error.reason !== "not_installed";
