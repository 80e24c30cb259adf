import { Schema } from "effect";

export const FieldIssue = Schema.Struct({ field: Schema.String, message: Schema.String });
export type FieldIssue = typeof FieldIssue.Type;

/**
 * Why the control plane refused or could not do a request. One class with a `reason`, so the HTTP layer maps
 * reasons to statuses in one place; `message` is for a person and never holds a secret.
 */
export class ControlError extends Schema.TaggedError<ControlError>()("ControlError", {
  reason: Schema.Literal("invalid", "not_found", "conflict", "start_failed", "unavailable", "store_failed"),
  message: Schema.String,
  errors: Schema.optional(Schema.Array(FieldIssue)),
}) {}

export const notFound = (what: string, id: string) =>
  new ControlError({ reason: "not_found", message: `${what} '${id}' does not exist` });
