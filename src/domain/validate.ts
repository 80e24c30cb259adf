import { Effect, Either, ParseResult, Schema, type SchemaAST } from "effect";
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

const within = (inner: ReadonlyArray<PropertyKey>, outer: ReadonlyArray<PropertyKey>) =>
  inner.length >= outer.length && outer.every((key, index) => inner[index] === key);

/**
 * A wrong value in an optional (or nullable) field fails both halves of its `X | undefined` (`X | null`); the
 * "Expected undefined" ("Expected null") half tells the caller nothing the other half does not, so it is left
 * out where the other half speaks.
 */
const isOptionalEcho = (
  issue: ParseResult.ArrayFormatterIssue,
  all: ReadonlyArray<ParseResult.ArrayFormatterIssue>,
) =>
  issue._tag === "Type" &&
  (issue.message.startsWith("Expected undefined, actual ") ||
    issue.message.startsWith("Expected null, actual ")) &&
  all.some((other) => other !== issue && within(other.path, issue.path));

export const toFieldIssues = (error: ParseResult.ParseError): ReadonlyArray<FieldIssue> => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error);
  return issues
    .filter((issue) => !isOptionalEcho(issue, issues))
    .map((issue) => ({ field: fieldName(issue.path) || "(body)", message: issueMessage(issue) }));
};

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
    const blanks: FieldIssue[] = [];
    const cleaned = blanksAsAbsent(schema.ast, input, [], blanks);
    const decoded = Schema.decodeUnknownEither(schema, { errors: "all" })(cleaned);
    if (Either.isLeft(decoded)) return Either.left(invalid(toFieldIssues(decoded.left)));
    const strict = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(cleaned);
    const unknown = Either.isLeft(strict)
      ? ParseResult.ArrayFormatter.formatErrorSync(strict.left)
          .filter((issue) => issue._tag === "Unexpected")
          .map((issue) => ({ field: fieldName(issue.path), message: "is not a known field; ignored" }))
      : [];
    return Either.right({ value: decoded.right, warnings: [...blanks, ...unknown] });
  };

/** `decodeLenientEither` as an Effect. */
export const decodeLenient =
  <A, I>(schema: Schema.Schema<A, I>) =>
  (input: unknown): Effect.Effect<Lenient<A>, ControlError> =>
    decodeLenientEither(schema)(input);
