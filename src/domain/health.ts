/**
 * A channel's input health rules (`redundancy.health`): named rules over what each input's packet core and its
 * picture-and-sound watcher measure, and one expression of their names that says when an input is unhealthy.
 * Failover then goes on what the stream and the picture say, not only on silence. This module is the
 * expression's grammar and its three-valued reading (the rules' shape, as the API takes it: health-schema.ts);
 * what measures each rule lives elsewhere.
 *
 * The expression takes rule names, `&&`, `||`, `!` and parentheses (`!` binds tightest, then `&&`, then `||`).
 * A rule that cannot judge (its watcher is slow or gone, or the stream has not shown enough yet) is unknown,
 * and unknown stays unknown through the operators unless the other side decides (Kleene's logic): an input is
 * unhealthy only when the expression is surely true, so a rule that cannot judge never causes a failover.
 */
import * as Either from "effect/Either";
import type { HealthConfig, HealthRule } from "./health-schema.ts";

/** The TR 101 290 priority 2 indicators a rule may count. */
export const P2_INDICATORS = [
  "Transport_error",
  "CRC_error",
  "PCR_repetition_error",
  "PCR_discontinuity_indicator_error",
  "PTS_error",
] as const;
export type P2Indicator = (typeof P2_INDICATORS)[number];

const RULE_NAME = /^[a-z][a-z0-9_]{0,39}$/;

export const HEALTH_CLEAR_AFTER_MS = 3000;

/** Whether a rule is judged from the decoded picture or sound (the watcher), not from the TS. */
export const isContentRule = (rule: HealthRule): boolean =>
  "black" in rule || "frozen" in rule || "silent" in rule;

// --- The expression -----------------------------------------------------------------------------------------

export type Expression =
  | { readonly rule: string }
  | { readonly not: Expression }
  | { readonly and: readonly [Expression, Expression] }
  | { readonly or: readonly [Expression, Expression] };

type Token =
  | { readonly kind: "name"; readonly name: string; readonly at: number }
  | {
      readonly kind: "&&" | "||" | "!" | "(" | ")" | "end";
      readonly at: number;
    };

const tokenize = (text: string): Either.Either<ReadonlyArray<Token>, string> => {
  const tokens: Token[] = [];
  let at = 0;
  while (at < text.length) {
    const rest = text.slice(at);
    const space = /^\s+/.exec(rest);
    if (space !== null) {
      at += space[0].length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest);
    if (name !== null) {
      tokens.push({ kind: "name", name: name[0], at });
      at += name[0].length;
      continue;
    }
    const operator = ["&&", "||", "!", "(", ")"].find((candidate) => rest.startsWith(candidate));
    if (operator === undefined)
      return Either.left(
        `unexpected ${JSON.stringify(rest[0])} at character ${at + 1}: use rule names, &&, ||, ! and ()`,
      );
    tokens.push({ kind: operator as "&&" | "||" | "!" | "(" | ")", at });
    at += operator.length;
  }
  tokens.push({ kind: "end", at });
  return Either.right(tokens);
};

/** Reads an expression of rule names; a message in words, naming where, when it is not one. */
export const parseExpression = (text: string): Either.Either<Expression, string> =>
  Either.flatMap(tokenize(text), (tokens) => {
    let next = 0;
    const peek = () => tokens[next] as Token;
    const where = (token: Token) => (token.kind === "end" ? "at the end" : `at character ${token.at + 1}`);
    const fail = (message: string): never => {
      throw new ExpressionError(message);
    };
    const primary = (): Expression => {
      const token = peek();
      next += 1;
      if (token.kind === "name") return { rule: token.name };
      if (token.kind === "!") return { not: primary() };
      if (token.kind === "(") {
        const inner = or();
        if (peek().kind !== ")") fail(`a ( is not closed: expected ) ${where(peek())}`);
        next += 1;
        return inner;
      }
      return fail(`expected a rule name, ! or ( ${where(token)}`);
    };
    const and = (): Expression => {
      let left = primary();
      while (peek().kind === "&&") {
        next += 1;
        left = { and: [left, primary()] };
      }
      return left;
    };
    const or = (): Expression => {
      let left = and();
      while (peek().kind === "||") {
        next += 1;
        left = { or: [left, and()] };
      }
      return left;
    };
    try {
      const expression = or();
      if (peek().kind !== "end") fail(`expected && or || ${where(peek())}`);
      return Either.right(expression);
    } catch (error) {
      if (error instanceof ExpressionError) return Either.left(error.message);
      throw error;
    }
  });

class ExpressionError extends Error {}

/** Every rule name the expression reads, in the order written. */
export const namesIn = (expression: Expression): ReadonlyArray<string> => {
  if ("rule" in expression) return [expression.rule];
  if ("not" in expression) return namesIn(expression.not);
  const [left, right] = "and" in expression ? expression.and : expression.or;
  return [...namesIn(left), ...namesIn(right)];
};

/** A rule's state: true (it holds), false, or null (it cannot judge now). */
export type RuleState = boolean | null;

/** The expression's value under three-valued logic: null when the rules it depends on cannot judge. */
export const evaluate = (expression: Expression, state: (name: string) => RuleState): RuleState => {
  if ("rule" in expression) return state(expression.rule);
  if ("not" in expression) {
    const inner = evaluate(expression.not, state);
    return inner === null ? null : !inner;
  }
  if ("and" in expression) {
    const left = evaluate(expression.and[0], state);
    if (left === false) return false;
    const right = evaluate(expression.and[1], state);
    if (right === false) return false;
    return left === null || right === null ? null : true;
  }
  const left = evaluate(expression.or[0], state);
  if (left === true) return true;
  const right = evaluate(expression.or[1], state);
  if (right === true) return true;
  return left === null || right === null ? null : false;
};

/** The expression written back, as the event log names a switch's reason (`rule:black && silent`). */
export const showExpression = (expression: Expression): string => {
  const show = (node: Expression, parent: 0 | 1 | 2): string => {
    if ("rule" in node) return node.rule;
    if ("not" in node) return `!${show(node.not, 2)}`;
    const [op, level, [left, right]] = "and" in node ? ["&&", 1, node.and] : ["||", 0, node.or];
    const text = `${show(left, level as 0 | 1)} ${op} ${show(right, level as 0 | 1)}`;
    return level < parent ? `(${text})` : text;
  };
  return show(expression, 0);
};

// --- Checking a channel's health settings -------------------------------------------------------------------

export interface HealthIssue {
  /** Under `redundancy.health`, e.g. "unhealthy_when" or "rules.black". */
  readonly field: string;
  readonly message: string;
}

/** What a channel runs: its rules, the parsed expression and the clear time. */
export interface Health {
  readonly rules: Readonly<Record<string, HealthRule>>;
  readonly unhealthyWhen: Expression;
  readonly clearAfterMs: number;
  /** What the watcher decodes: key frames only, or every picture. */
  readonly decode: "key" | "all";
}

/**
 * Checks what the schema cannot: rule names, the expression's grammar, and that it names only rules that
 * exist. A rule the expression leaves out still runs and shows its state (a lamp to watch, not a trigger).
 */
export const resolveHealth = (config: HealthConfig): Either.Either<Health, ReadonlyArray<HealthIssue>> => {
  const issues: HealthIssue[] = [];
  const names = Object.keys(config.rules);
  for (const name of names)
    if (!RULE_NAME.test(name))
      issues.push({
        field: `rules.${name}`,
        message: "a rule's name is lower-case letters, digits and _ (at most 40), starting with a letter",
      });
  if (names.length === 0) issues.push({ field: "rules", message: "name at least one rule" });
  const parsed = parseExpression(config.unhealthy_when);
  if (Either.isLeft(parsed)) {
    issues.push({ field: "unhealthy_when", message: parsed.left });
    return Either.left(issues);
  }
  const used = namesIn(parsed.right);
  const unknown = [...new Set(used.filter((name) => !(name in config.rules)))];
  if (unknown.length > 0)
    issues.push({
      field: "unhealthy_when",
      message: `names ${unknown.map((name) => `'${name}'`).join(", ")}, which ${unknown.length === 1 ? "is not a rule" : "are not rules"}: the rules are ${names.join(", ") || "none"}`,
    });
  if (issues.length > 0) return Either.left(issues);
  return Either.right({
    rules: config.rules,
    unhealthyWhen: parsed.right,
    clearAfterMs: config.clear_after_ms ?? HEALTH_CLEAR_AFTER_MS,
    decode: config.decode === "all_frames" ? "all" : "key",
  });
};
