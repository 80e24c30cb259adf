import { Either, Schema } from "effect";
import { describe, expect, it } from "vitest";
import { toFieldIssues } from "../../src/domain/base/validate.ts";
import {
  AccessRules,
  grantsFromClaims,
  highestRole,
  inScope,
  roleOn,
  unscopedRole,
} from "../../src/domain/control/access.ts";

const rules = Schema.decodeUnknownSync(AccessRules)([
  { claim: "groups", equals: "tv-ops-eu", role: "operator", channels: { tags: ["eu"] } },
  { claim: "groups", equals: "tv-viewers", role: "viewer", channels: "*" },
  { claim: "groups", equals: "tv-admins", role: "admin", channels: "*" },
  { claim: "realm_access.roles", equals: "news", role: "operator", channels: { ids: ["news-1"] } },
  { claim: "https://example.com/desk", equals: "us", role: "operator", channels: { tags: ["us"] } },
]);
const eu = { id: "eu-1", tags: ["eu", "sports"] };
const us = { id: "us-1", tags: ["us"] };
const news = { id: "news-1" };

describe("access rules", () => {
  it("give an EU operator the EU channels only, and no node-wide role", () => {
    const grants = grantsFromClaims(rules, { sub: "ann", groups: ["staff", "tv-ops-eu"] });
    expect(roleOn(grants, eu)).toBe("operator");
    expect(roleOn(grants, us)).toBeNull();
    expect(unscopedRole(grants)).toBeNull();
    expect(highestRole(grants)).toBe("operator");
  });

  it("take the highest role that reaches a channel, and only unscoped grants node-wide", () => {
    const grants = grantsFromClaims(rules, { groups: ["tv-ops-eu", "tv-viewers"] });
    expect(roleOn(grants, eu)).toBe("operator");
    expect(roleOn(grants, us)).toBe("viewer");
    expect(unscopedRole(grants)).toBe("viewer");
    expect(unscopedRole(grantsFromClaims(rules, { groups: "tv-admins" }))).toBe("admin");
  });

  it("read nested and URL-named claims, and match nothing when no rule matches", () => {
    expect(roleOn(grantsFromClaims(rules, { realm_access: { roles: ["news"] } }), news)).toBe("operator");
    expect(roleOn(grantsFromClaims(rules, { "https://example.com/desk": "us" }), us)).toBe("operator");
    expect(grantsFromClaims(rules, { groups: ["tv-ops-eu-2"], realm_access: "news" })).toEqual([]);
  });

  it("scope by tag or id, and '*' reaches every channel", () => {
    expect(inScope({ ids: ["us-1"] }, us)).toBe(true);
    expect(inScope({ tags: ["sports"] }, eu)).toBe(true);
    expect(inScope({}, eu)).toBe(false);
    expect(inScope("*", { id: "x" })).toBe(true);
  });

  it("refuse a malformed rule in words", () => {
    const decoded = Schema.decodeUnknownEither(AccessRules)([
      { claim: "groups", equals: "x", role: "owner", channels: { tags: ["EU"] } },
    ]);
    const words = (result: typeof decoded) =>
      Either.isLeft(result) ? JSON.stringify(toFieldIssues(result.left)) : "accepted";
    expect(words(decoded)).toMatch(/\[0\]\.role.*owner/);
    const tag = Schema.decodeUnknownEither(AccessRules)([
      { claim: "groups", equals: "x", role: "viewer", channels: { tags: ["EU"] } },
    ]);
    expect(words(tag)).toMatch(/lower-case letters/);
  });
});
