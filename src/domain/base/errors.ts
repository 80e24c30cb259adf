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
