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

/**
 * The expression's bounds, so that reading and judging it costs little and no input (5,000 parentheses, 140,000
 * terms) can exhaust anything: its text, its rule names, how deep parentheses and `!` nest; and a channel's rules.
 */
export const MAX_EXPRESSION_LENGTH = 4096;
export const MAX_EXPRESSION_TERMS = 256;
export const MAX_EXPRESSION_DEPTH = 32;
export const MAX_HEALTH_RULES = 32;

const SPACE = /\s+/y;
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;

/** The tokens of `text`, read once from left to right (sticky patterns, no copy of the rest at each step). */
const tokenize = (text: string): Either.Either<ReadonlyArray<Token>, string> => {
  const tokens: Token[] = [];
  let at = 0;
  const matchAt = (pattern: RegExp) => {
    pattern.lastIndex = at;
    return pattern.exec(text)?.[0];
  };
  while (at < text.length) {
    const space = matchAt(SPACE);
    if (space !== undefined) {
      at += space.length;
      continue;
    }
    const name = matchAt(NAME);
    if (name !== undefined) {
      tokens.push({ kind: "name", name, at });
      at += name.length;
      continue;
    }
    const operator = ["&&", "||", "!", "(", ")"].find((candidate) => text.startsWith(candidate, at));
    if (operator === undefined)
      return Either.left(
        `unexpected ${JSON.stringify(text[at])} at character ${at + 1}: use rule names, &&, ||, ! and ()`,
      );
    tokens.push({ kind: operator as "&&" | "||" | "!" | "(" | ")", at });
    at += operator.length;
  }
  tokens.push({ kind: "end", at });
  return Either.right(tokens);
};

type Pending = { readonly kind: "!" | "&&" | "||" | "("; readonly at: number };
const BINDS: Record<"!" | "&&" | "||", number> = { "||": 0, "&&": 1, "!": 2 };

/**
 * Reads an expression of rule names; a message in words, naming where, when it is not one or is beyond the
 * bounds. Read with two explicit stacks (operators waiting, expressions made), never by recursion: `!` binds
 * tightest, then `&&`, then `||`, each left to right.
 */
export const parseExpression = (text: string): Either.Either<Expression, string> => {
  if (text.length > MAX_EXPRESSION_LENGTH)
    return Either.left(
      `is ${text.length} characters long; at most ${MAX_EXPRESSION_LENGTH} characters are taken (name the rules, and group them with at most ${MAX_EXPRESSION_DEPTH} levels of parentheses)`,
    );
  return Either.flatMap(tokenize(text), (tokens) => {
    const where = (token: Token) => (token.kind === "end" ? "at the end" : `at character ${token.at + 1}`);
    const made: Expression[] = [];
    const waiting: Pending[] = [];
    let depth = 0;
    let terms = 0;
    const apply = () => {
      const operator = waiting.pop() as Pending;
      if (operator.kind === "!") {
        depth -= 1;
        made.push({ not: made.pop() as Expression });
        return;
      }
      const right = made.pop() as Expression;
      const left = made.pop() as Expression;
      made.push(operator.kind === "&&" ? { and: [left, right] } : { or: [left, right] });
    };
    const opened = () => waiting.some((operator) => operator.kind === "(");
    let operand = true;
    for (const token of tokens) {
      if (operand) {
        if (token.kind === "name") {
          terms += 1;
          if (terms > MAX_EXPRESSION_TERMS)
            return Either.left(
              `has more than ${MAX_EXPRESSION_TERMS} terms (rule names) ${where(token)}; at most ${MAX_EXPRESSION_TERMS} terms are taken`,
            );
          made.push({ rule: token.name });
          operand = false;
        } else if (token.kind === "!" || token.kind === "(") {
          depth += 1;
          if (depth > MAX_EXPRESSION_DEPTH)
            return Either.left(
              `is nested more than ${MAX_EXPRESSION_DEPTH} levels deep (parentheses and !) ${where(token)}; at most ${MAX_EXPRESSION_DEPTH} levels are taken`,
            );
          waiting.push({ kind: token.kind, at: token.at });
        } else return Either.left(`expected a rule name, ! or ( ${where(token)}`);
        continue;
      }
      if (token.kind === "&&" || token.kind === "||") {
        for (let top = waiting.at(-1); top !== undefined && top.kind !== "("; top = waiting.at(-1)) {
          if (BINDS[top.kind] < BINDS[token.kind]) break;
          apply();
        }
        waiting.push({ kind: token.kind, at: token.at });
        operand = true;
      } else if (token.kind === ")") {
        if (!opened()) return Either.left(`expected && or || ${where(token)}`);
        while (waiting.at(-1)?.kind !== "(") apply();
        waiting.pop();
        depth -= 1;
      } else if (token.kind === "end") {
        if (opened()) return Either.left(`a ( is not closed: expected ) ${where(token)}`);
        while (waiting.length > 0) apply();
      } else
        return Either.left(
          opened() ? `a ( is not closed: expected ) ${where(token)}` : `expected && or || ${where(token)}`,
        );
    }
    return Either.right(made[0] as Expression);
  });
};

/** Every rule name the expression reads, in the order written (walked with a stack, not by recursion). */
export const namesIn = (expression: Expression): ReadonlyArray<string> => {
  const names: string[] = [];
  const work: Expression[] = [expression];
  for (let node = work.pop(); node !== undefined; node = work.pop()) {
    if ("rule" in node) names.push(node.rule);
    else if ("not" in node) work.push(node.not);
    else {
      const [left, right] = "and" in node ? node.and : node.or;
      work.push(right, left);
    }
  }
  return names;
};

/** A rule's state: true (it holds), false, or null (it cannot judge now). */
export type RuleState = boolean | null;

const kleeneAnd = (left: RuleState, right: RuleState): RuleState =>
  left === false || right === false ? false : left === null || right === null ? null : true;
const kleeneOr = (left: RuleState, right: RuleState): RuleState =>
  left === true || right === true ? true : left === null || right === null ? null : false;

/**
 * The expression's value under three-valued logic: null when the rules it depends on cannot judge. Walked in
 * post-order with an explicit stack: each operator combines the values its operands left on the value stack.
 */
export const evaluate = (expression: Expression, state: (name: string) => RuleState): RuleState => {
  const values: RuleState[] = [];
  const work: Array<Expression | "not" | "and" | "or"> = [expression];
  for (let item = work.pop(); item !== undefined; item = work.pop()) {
    if (typeof item === "string") {
      const right = values.pop() as RuleState;
      if (item === "not") values.push(right === null ? null : !right);
      else {
        const left = values.pop() as RuleState;
        values.push(item === "and" ? kleeneAnd(left, right) : kleeneOr(left, right));
      }
    } else if ("rule" in item) values.push(state(item.rule));
    else if ("not" in item) work.push("not", item.not);
    else if ("and" in item) work.push("and", item.and[1], item.and[0]);
    else work.push("or", item.or[1], item.or[0]);
  }
  return values[0] ?? null;
};

/** The expression written back, as the event log names a switch's reason (`rule:black && silent`). */
export const showExpression = (expression: Expression): string => {
  const out: string[] = [];
  // A piece of text, or a node with how tightly its parent binds (0 ||, 1 &&, 2 !): stacked, not recursed.
  const work: Array<string | readonly [Expression, number]> = [[expression, 0]];
  for (let item = work.pop(); item !== undefined; item = work.pop()) {
    if (typeof item === "string") {
      out.push(item);
      continue;
    }
    const [node, parent] = item;
    if ("rule" in node) out.push(node.rule);
    else if ("not" in node) {
      out.push("!");
      work.push([node.not, 2]);
    } else {
      const [op, level, [left, right]] = "and" in node ? ["&&", 1, node.and] : ["||", 0, node.or];
      const grouped = level < parent;
      if (grouped) work.push(")");
      work.push([right, level], ` ${op} `, [left, level]);
      if (grouped) work.push("(");
    }
  }
  return out.join("");
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
  if (names.length > MAX_HEALTH_RULES)
    issues.push({
      field: "rules",
      message: `has ${names.length} rules; a channel takes at most ${MAX_HEALTH_RULES} rules`,
    });
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
