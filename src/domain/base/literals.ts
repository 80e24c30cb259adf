/**
 * A field that takes one of a few words. Its error is one line that lists them — not one "Expected …" per
 * word, which is what a union of literals reports by itself.
 */
import * as Schema from "effect/Schema";
import type * as SchemaAST from "effect/SchemaAST";

export const oneOf = <const Words extends ReadonlyArray<SchemaAST.LiteralValue>>(...words: Words) =>
  Schema.Literal(...words).annotations({
    message: (issue) => ({
      message: `must be one of ${words.join(", ")}; got ${JSON.stringify(issue.actual) ?? String(issue.actual)}`,
      override: true,
    }),
  });
