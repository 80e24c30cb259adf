import * as Schema from "effect/Schema";

export const FieldIssue = Schema.Struct({ field: Schema.String, message: Schema.String });
export type FieldIssue = typeof FieldIssue.Type;

/**
 * Why the control plane refused or could not do a request. One class with a `reason`, so the HTTP layer maps
 * reasons to statuses in one place; `message` is for a person and never holds a secret.
 */
export class ControlError extends Schema.TaggedError<ControlError>()("ControlError", {
  reason: Schema.Literal(
    "invalid",
    "not_found",
    "conflict",
    "start_failed",
    "unavailable",
    "store_failed",
    // The database stopped answering while the change was committed: it may or may not have been saved.
    "store_unconfirmed",
    // A service we call for the request (AWS MediaLive) refused it or failed.
    "upstream",
    // Too many of these requests in a while: `retry_after_s` says when the next may come.
    "rate_limited",
    // The caller's grants do not reach the channel, or not with the role the request needs.
    "forbidden",
  ),
  message: Schema.String,
  errors: Schema.optional(Schema.Array(FieldIssue)),
  retry_after_s: Schema.optional(Schema.Number),
}) {}

export const notFound = (what: string, id: string) =>
  new ControlError({ reason: "not_found", message: `${what} '${id}' does not exist` });

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
  "unsupported_media",
  /** The output's own code failed (a bug): the attempt ends and the output reconnects, alone. */
  "internal_error",
);
export type OutputErrorReason = typeof OutputErrorReason.Type;

export class OutputError extends Schema.TaggedError<OutputError>()("OutputError", {
  reason: OutputErrorReason,
  message: Schema.String,
}) {}

/** A throw in an output's own code, as the error that ends its attempt (it reconnects, alone). */
export const outputInternalError = (thrown: unknown): OutputError =>
  new OutputError({
    reason: "internal_error",
    message: `internal error in the output: ${thrown instanceof Error ? thrown.message : String(thrown)}`,
  });

export const isRetryable = (error: OutputError): boolean =>
  error.reason !== "invalid_url" && error.reason !== "not_installed";
