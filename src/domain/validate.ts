import { Effect, ParseResult, Schema } from "effect";
import { ControlError, type FieldIssue } from "./errors.ts";

const fieldName = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (name, key) =>
      typeof key === "number" ? `${name}[${key}]` : name === "" ? String(key) : `${name}.${String(key)}`,
    "",
  );

const issueMessage = (issue: ParseResult.ArrayFormatterIssue): string => {
  switch (issue._tag) {
    case "Missing":
      return "is required";
    case "Unexpected":
      return "is not a known field";
    default:
      return issue.message;
  }
};

export const toFieldIssues = (error: ParseResult.ParseError): ReadonlyArray<FieldIssue> =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
    field: fieldName(issue.path) || "(body)",
    message: issueMessage(issue),
  }));

export const invalid = (errors: ReadonlyArray<FieldIssue>) =>
  new ControlError({
    reason: "invalid",
    message: errors.map((issue) => `${issue.field}: ${issue.message}`).join("; "),
    errors,
  });

/** Decodes a request body, reporting every problem with the field it concerns. */
export const decodeBody =
  <A, I>(schema: Schema.Schema<A, I>) =>
  (input: unknown): Effect.Effect<A, ControlError> =>
    Schema.decodeUnknown(schema, { errors: "all" })(input).pipe(
      Effect.mapError((error) => invalid(toFieldIssues(error))),
    );
