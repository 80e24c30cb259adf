import { describe, expect, it } from "vitest";
import { sameValue } from "../../src/domain/base/same.ts";

describe("sameValue, the one equality for configuration values", () => {
  it("compares plain objects by content, keys in any order", () => {
    expect(sameValue({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 })).toBe(true);
    expect(sameValue({ a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [2, 1] } })).toBe(false);
    expect(sameValue({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameValue({ a: "1" }, { a: 1 })).toBe(false);
  });

  it("takes a key whose value is undefined as one left out, and undefined as null at the top", () => {
    expect(sameValue({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(sameValue({ x: { a: 1, b: undefined } }, { x: { a: 1 } })).toBe(true);
    expect(sameValue({ a: undefined }, { a: null })).toBe(false);
    expect(sameValue(undefined, null)).toBe(true);
    expect(sameValue(undefined, {})).toBe(false);
  });

  it("compares arrays in order, and values by value", () => {
    expect(sameValue([1, { a: 2 }], [1, { a: 2 }])).toBe(true);
    expect(sameValue([1, 2], [1, 2, 3])).toBe(false);
    expect(sameValue("x", "x")).toBe(true);
    expect(sameValue(0, -0)).toBe(true);
  });
});
