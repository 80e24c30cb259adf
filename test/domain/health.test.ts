import { Either, Schema } from "effect";
import { describe, expect, it } from "vitest";
import {
  evaluate,
  namesIn,
  parseExpression,
  type RuleState,
  resolveHealth,
  showExpression,
} from "../../src/domain/health.ts";
import { HealthConfigSchema } from "../../src/domain/health-schema.ts";
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
