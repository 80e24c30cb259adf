import type * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as ParseResult from "effect/ParseResult";
import * as Schema from "effect/Schema";
import * as SchemaAST from "effect/SchemaAST";
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

const pathKey = (path: ReadonlyArray<PropertyKey>) => path.map(String).join("\u0000");

/**
 * A wrong value in an optional (or nullable) field fails both halves of its `X | undefined` (`X | null`); the
 * "Expected undefined" ("Expected null") half tells the caller nothing the other half does not, so it is left
 * out where the other half speaks (another issue at its path or below it). `below` counts the issues at each
 * path and every path above it, so that the check is one lookup.
 */
const isOptionalEcho = (issue: ParseResult.ArrayFormatterIssue, below: ReadonlyMap<string, number>) =>
  issue._tag === "Type" &&
  (issue.message.startsWith("Expected undefined, actual ") ||
    issue.message.startsWith("Expected null, actual ")) &&
  (below.get(pathKey(issue.path)) ?? 0) > 1;

/** How many problems an answer names per field (its array indices aside), and in all; the rest are counted. */
const ISSUES_PER_FIELD = 5;
const MAX_ISSUES = 50;

/**
 * The first few problems of each field and a count of the rest: a body with 100,000 wrong items gets an
 * answer of a few lines that says how many there were, not one line each.
 */
const bounded = (issues: ReadonlyArray<FieldIssue>): ReadonlyArray<FieldIssue> => {
  const perField = new Map<string, number>();
  const kept: FieldIssue[] = [];
  const left = new Map<string, number>();
  for (const issue of issues) {
    const family = issue.field.replace(/\[\d+\]/g, "[]");
    const seen = perField.get(family) ?? 0;
    perField.set(family, seen + 1);
    if (seen < ISSUES_PER_FIELD && kept.length < MAX_ISSUES) kept.push(issue);
    else left.set(family, (left.get(family) ?? 0) + 1);
  }
  for (const [family, count] of left)
    kept.push({ field: family, message: `and ${count} more problem${count === 1 ? "" : "s"} like these` });
  return kept;
};

export const toFieldIssues = (error: ParseResult.ParseError): ReadonlyArray<FieldIssue> => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error);
  const below = new Map<string, number>();
  for (const issue of issues)
    for (let depth = 0; depth <= issue.path.length; depth++) {
      const key = pathKey(issue.path.slice(0, depth));
      below.set(key, (below.get(key) ?? 0) + 1);
    }
  return bounded(
    issues
      .filter((issue) => !isOptionalEcho(issue, below))
      .map((issue) => ({ field: fieldName(issue.path) || "(body)", message: issueMessage(issue) })),
  );
};

export const invalid = (errors: ReadonlyArray<FieldIssue>) =>
  new ControlError({
    reason: "invalid",
    message: errors.map((issue) => `${issue.field}: ${issue.message}`).join("; "),
    errors,
  });

/** The keys no map of ours takes: as a plain object's own key, each would reach (or stand for) its prototype. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

const limitOf = (ast: SchemaAST.AST, name: "maxItems" | "maxProperties"): number | undefined => {
  const annotation = SchemaAST.getJSONSchemaAnnotation(ast);
  if (annotation._tag === "None") return undefined;
  const limit = (annotation.value as Record<string, unknown>)[name];
  return typeof limit === "number" ? limit : undefined;
};

/**
 * Before anything is checked item by item: every array and map of the body against the most items the schema
 * lets it have, and every map's keys against the names no map takes. What it finds is answered without reading
 * further: a list of 100,000 wrong PIDs costs a walk of the body, and its answer is one line.
 */
const oversized = (
  ast: SchemaAST.AST,
  input: unknown,
  path: ReadonlyArray<PropertyKey>,
  found: FieldIssue[],
): void => {
  switch (ast._tag) {
    case "Refinement": {
      const max = Array.isArray(input)
        ? limitOf(ast, "maxItems")
        : isRecord(input)
          ? limitOf(ast, "maxProperties")
          : undefined;
      const count = Array.isArray(input) ? input.length : isRecord(input) ? Object.keys(input).length : 0;
      if (max !== undefined && count > max) {
        const what = Array.isArray(input) ? "items" : "entries";
        found.push({
          field: fieldName(path) || "(body)",
          message: `must have at most ${max} ${what}, got ${count}`,
        });
        return;
      }
      oversized(ast.from, input, path, found);
      return;
    }
    case "Transformation":
      oversized(ast.from, input, path, found);
      return;
    case "Suspend":
      oversized(ast.f(), input, path, found);
      return;
    case "Union":
      for (const member of ast.types) oversized(member, input, path, found);
      return;
    case "TupleType": {
      if (!Array.isArray(input)) return;
      const element = ast.rest[0]?.type;
      if (element !== undefined)
        for (const [index, item] of input.entries()) oversized(element, item, [...path, index], found);
      return;
    }
    case "TypeLiteral": {
      if (!isRecord(input)) return;
      for (const key of Object.keys(input)) {
        const property = ast.propertySignatures.find((signature) => signature.name === key);
        if (property === undefined && FORBIDDEN_KEYS.has(key) && ast.indexSignatures.length > 0) {
          found.push({
            field: fieldName([...path, key]),
            message: "is not a key any map here takes (every JavaScript object has it): remove it",
          });
          continue;
        }
        const type = property?.type ?? ast.indexSignatures[0]?.type;
        if (type !== undefined) oversized(type, input[key], [...path, key], found);
      }
      return;
    }
    default:
      return;
  }
};

/**
 * Decodes what a client sent, reporting the problems with the field each concerns: first the sizes and names
 * `oversized` checks, then the schema itself, at most a few problems a field (`bounded`).
 */
const decodeUnknownBounded =
  <A, I>(schema: Schema.Schema<A, I>, options?: { readonly onExcessProperty?: "error" }) =>
  (input: unknown): Either.Either<A, ControlError> => {
    const found: FieldIssue[] = [];
    oversized(schema.ast, input, [], found);
    if (found.length > 0) return Either.left(invalid(bounded(found)));
    return Either.mapLeft(Schema.decodeUnknownEither(schema, { errors: "all", ...options })(input), (error) =>
      invalid(toFieldIssues(error)),
    );
  };

/** Decodes a request body, reporting every problem with the field it concerns. */
export const decodeBody =
  <A, I>(schema: Schema.Schema<A, I>) =>
  (input: unknown): Effect.Effect<A, ControlError> =>
    decodeUnknownBounded(schema)(input);

/** What a lenient decode took, and what it ignored on the way (never a value, only where and why). */
export interface Lenient<A> {
  readonly value: A;
  readonly warnings: ReadonlyArray<FieldIssue>;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The shape a value of `ast` is decoded from: refinements and transformations unwrapped. */
const encodedSide = (ast: SchemaAST.AST): SchemaAST.AST => {
  switch (ast._tag) {
    case "Refinement":
      return encodedSide(ast.from);
    case "Transformation":
      return encodedSide(ast.from);
    case "Suspend":
      return encodedSide(ast.f());
    default:
      return ast;
  }
};

/**
 * `input` with every empty string removed where the schema makes that field optional: the original API's
 * clients send `"backup_rtp_ip": ""` for "none". Each removal is reported. A required field keeps its "" and
 * is refused for it.
 */
const blanksAsAbsent = (
  ast: SchemaAST.AST,
  input: unknown,
  path: ReadonlyArray<PropertyKey>,
  found: FieldIssue[],
): unknown => {
  const shape = encodedSide(ast);
  if (shape._tag === "Union") {
    const member = shape.types
      .map(encodedSide)
      .find((type) =>
        Array.isArray(input)
          ? type._tag === "TupleType"
          : isRecord(input) && (type._tag === "TypeLiteral" || type._tag === "Union"),
      );
    return member === undefined ? input : blanksAsAbsent(member, input, path, found);
  }
  if (shape._tag === "TupleType" && Array.isArray(input)) {
    const element = shape.rest[0]?.type;
    return element === undefined
      ? input
      : input.map((item, index) => blanksAsAbsent(element, item, [...path, index], found));
  }
  if (shape._tag !== "TypeLiteral" || !isRecord(input)) return input;
  const output: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    const property = shape.propertySignatures.find((signature) => signature.name === key);
    if (property?.isOptional && value === "") {
      found.push({ field: fieldName([...path, key]), message: "is empty; treated as absent" });
      continue;
    }
    const type = property?.type ?? (property === undefined ? shape.indexSignatures[0]?.type : undefined);
    output[key] = type === undefined ? value : blanksAsAbsent(type, value, [...path, key], found);
  }
  return output;
};

/**
 * Decodes a body as the original API did: an unknown field is ignored and named in a warning, an empty string
 * in an optional field counts as absent (also warned). Everything else is checked as strictly as `decodeBody`
 * checks it; schemas that must stay strict inside (such as `redundancy`) keep refusing unknown fields.
 */
export const decodeLenientEither =
  <A, I>(schema: Schema.Schema<A, I>) =>
  (input: unknown): Either.Either<Lenient<A>, ControlError> => {
    // Sizes first: the walk for blanks below goes through every item.
    const oversize: FieldIssue[] = [];
    oversized(schema.ast, input, [], oversize);
    if (oversize.length > 0) return Either.left(invalid(bounded(oversize)));
    const blanks: FieldIssue[] = [];
    const cleaned = blanksAsAbsent(schema.ast, input, [], blanks);
    const decoded = decodeUnknownBounded(schema)(cleaned);
    if (Either.isLeft(decoded)) return Either.left(decoded.left);
    const strict = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(cleaned);
    const unknown = Either.isLeft(strict)
      ? bounded(
          ParseResult.ArrayFormatter.formatErrorSync(strict.left)
            .filter((issue) => issue._tag === "Unexpected")
            .map((issue) => ({ field: fieldName(issue.path), message: "is not a known field; ignored" })),
        )
      : [];
    return Either.right({ value: decoded.right, warnings: [...blanks, ...unknown] });
  };

/** `decodeLenientEither` as an Effect. */
export const decodeLenient =
  <A, I>(schema: Schema.Schema<A, I>) =>
  (input: unknown): Effect.Effect<Lenient<A>, ControlError> =>
    decodeLenientEither(schema)(input);
