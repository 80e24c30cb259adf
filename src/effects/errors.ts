import { Schema } from "effect";

/**
 * Why an output is not delivering. The supervisor reads `reason` to decide what to show and whether a retry
 * can help (`invalid_url` and `not_installed` cannot); `message` is for a person and never holds a secret.
 */
export const OutputErrorReason = Schema.Literal(
  "invalid_url",
  "not_installed",
  "resolve_failed",
  "connect_refused",
  "connect_timeout",
  "auth_rejected",
  "disconnected",
  "child_exited",
  "write_failed",
);
export type OutputErrorReason = typeof OutputErrorReason.Type;

export class OutputError extends Schema.TaggedError<OutputError>()("OutputError", {
  reason: OutputErrorReason,
  message: Schema.String,
}) {}

export const isRetryable = (error: OutputError): boolean =>
  error.reason !== "invalid_url" && error.reason !== "not_installed";
