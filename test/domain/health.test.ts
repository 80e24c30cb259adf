import { Either, Schema } from "effect";
import { describe, expect, it } from "vitest";
import {
  evaluate,
  namesIn,
  parseExpression,
  type RuleState,
  resolveHealth,
  showExpression,
} from "../../src/domain/health/health.ts";
import { HealthConfigSchema } from "../../src/domain/health/health-schema.ts";
import { exampleHealth } from "../support/health-example.ts";

const example = { ...exampleHealth, clear_after_ms: 3000 };

const parsed = (text: string) => Either.getOrThrow(parseExpression(text));
const states =
  (values: Record<string, RuleState>) =>
  (name: string): RuleState =>
    name in values ? (values[name] as RuleState) : false;

describe("health rules", () => {
  it("the example decodes and resolves; rules left out of the expression still run", () => {
    const config = Schema.decodeUnknownSync(HealthConfigSchema)(example);
    const health = Either.getOrThrow(resolveHealth(config));
    expect(Object.keys(health.rules)).toHaveLength(8);
    expect(health.clearAfterMs).toBe(3000);
    expect(namesIn(health.unhealthyWhen)).toEqual(["no_video", "no_pcr", "cc", "black", "silent", "frozen"]);
  });

  it("! binds tightest, then &&, then ||; parentheses group", () => {
    expect(showExpression(parsed("a || b && !c"))).toBe("a || b && !c");
    expect(parsed("a || b && c")).toEqual({ or: [{ rule: "a" }, { and: [{ rule: "b" }, { rule: "c" }] }] });
    expect(parsed("(a || b) && c")).toEqual({ and: [{ or: [{ rule: "a" }, { rule: "b" }] }, { rule: "c" }] });
    expect(showExpression(parsed("(a || b) && !(c && d)"))).toBe("(a || b) && !(c && d)");
    expect(showExpression(parsed("black&&silent"))).toBe("black && silent");
  });

  it("a malformed expression is refused in words that say where", () => {
    const message = (text: string) =>
      Either.getLeft(parseExpression(text)).pipe((x) => (x._tag === "Some" ? x.value : ""));
    expect(message("a &&")).toBe("expected a rule name, ! or ( at the end");
    expect(message("(a || b")).toBe("a ( is not closed: expected ) at the end");
    expect(message("a b")).toBe("expected && or || at character 3");
    expect(message("a & b")).toMatch(/^unexpected "&" at character 3/);
    expect(message("")).toBe("expected a rule name, ! or ( at the end");
  });

  it("an unknown name is refused, naming it and the rules there are", () => {
    const config = Schema.decodeUnknownSync(HealthConfigSchema)({
      ...example,
      unhealthy_when: "no_video || blak",
    });
    expect(Either.getLeft(resolveHealth(config))).toEqual(
      expect.objectContaining({
        value: [
          {
            field: "unhealthy_when",
            message:
              "names 'blak', which is not a rule: the rules are no_video, no_pcr, cc, low, p2, black, frozen, silent",
          },
        ],
      }),
    );
  });

  it("a rule that does not fit any shape, or a bad name, is refused", () => {
    expect(
      Either.isLeft(
        Schema.decodeUnknownEither(HealthConfigSchema)({ ...example, rules: { x: { black: {} } } }),
      ),
    ).toBe(true);
    const config = Schema.decodeUnknownSync(HealthConfigSchema)({
      rules: { "No-Video": { pid_missing: "video", for_ms: 1000 } },
      unhealthy_when: "No",
    });
    expect(Either.getLeft(resolveHealth(config))).toEqual(
      expect.objectContaining({
        value: expect.arrayContaining([expect.objectContaining({ field: "rules.No-Video" })]),
      }),
    );
  });

  it("three-valued: a rule that cannot judge never makes the expression true by itself", () => {
    const expression = parsed("no_video || (black && silent)");
    expect(evaluate(expression, states({ black: null, silent: true }))).toBeNull();
    expect(evaluate(expression, states({ black: null, silent: false }))).toBe(false);
    expect(evaluate(expression, states({ black: null, silent: null, no_video: true }))).toBe(true);
    expect(evaluate(expression, states({ black: true, silent: true }))).toBe(true);
    expect(evaluate(parsed("!frozen"), states({ frozen: null }))).toBeNull();
    expect(evaluate(parsed("!frozen"), states({ frozen: false }))).toBe(true);
  });
});

describe("the expression's bounds and walks", () => {
  it("refuses in words what is nested too deep, too long or has too many terms, and takes what is within", () => {
    const deep = parseExpression(`${"(".repeat(33)}a${")".repeat(33)}`);
    expect(Either.isLeft(deep) && deep.left).toContain("nested more than 32");
    expect(Either.isRight(parseExpression(`${"(".repeat(31)}a${")".repeat(31)}`))).toBe(true);
    const nots = parseExpression(`${"!".repeat(40)}a`);
    expect(Either.isLeft(nots) && nots.left).toContain("nested more than 32");
    const long = parseExpression("a || ".repeat(1000));
    expect(Either.isLeft(long) && long.left).toContain("4096 characters");
    const many = parseExpression(Array.from({ length: 257 }, () => "a").join("&&"));
    expect(Either.isLeft(many) && many.left).toContain("256 terms");
  });

  it("reads, evaluates, lists and shows an expression 200,000 levels deep without running out of stack", () => {
    // 50,000 times !(b && (… || c)): with b true and c false, each level turns the value over.
    let expression: Parameters<typeof evaluate>[0] = { rule: "a" };
    for (let level = 0; level < 100_000; level += 1)
      expression =
        level % 2 === 0 ? { not: expression } : { and: [{ rule: "b" }, { or: [expression, { rule: "c" }] }] };
    expect(evaluate(expression, states({ a: true, b: true, c: false }))).toBe(true);
    expect(evaluate(expression, states({ a: false, b: true, c: false }))).toBe(false);
    expect(evaluate(expression, states({ a: null, b: true, c: false }))).toBe(null);
    expect(evaluate(expression, states({ a: null, b: false, c: false }))).toBe(false);
    expect(namesIn(expression)).toHaveLength(1 + 50_000 * 2);
    const shown = showExpression(expression);
    expect(shown.startsWith("b && (!(b && (!(b && (")).toBe(true);
    expect(shown).toContain("!(b && (!a || c))");
    expect(shown.endsWith(") || c)) || c)")).toBe(true);
  });

  it("evaluates as the recursive reading did, Kleene's logic included", () => {
    const values: RuleState[] = [true, false, null];
    for (const a of values)
      for (const b of values)
        for (const c of values) {
          const state = states({ a, b, c });
          const and = (x: RuleState, y: RuleState) =>
            x === false || y === false ? false : x === null || y === null ? null : true;
          const or = (x: RuleState, y: RuleState) =>
            x === true || y === true ? true : x === null || y === null ? null : false;
          const not = (x: RuleState) => (x === null ? null : !x);
          expect(evaluate(parsed("a && !(b || c)"), state)).toBe(and(a, not(or(b, c))));
          expect(evaluate(parsed("!a || b && c"), state)).toBe(or(not(a), and(b, c)));
          expect(showExpression(parsed("!(a || b) && (c || a)"))).toBe("!(a || b) && (c || a)");
        }
  });
});
