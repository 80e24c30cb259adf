/**
 * The access rules' API: an admin over every channel reads and replaces the list whole, a bad rule is a 400
 * that names its entry and field, the change is audited and kept in the store across a restart, and neither an
 * operator nor an admin of some channels only may touch it.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { layerFile } from "../../src/effects/config/store.ts";
import { json, makeTestApp } from "../support/app.ts";

const RULES = [
  { claim: "groups", equals: "tv-ops-eu", role: "operator", channels: { tags: ["eu"] } },
  { claim: "groups", equals: "tv-admins", role: "admin", channels: "*" },
];

/** A PUT of `body` as it is; `put` sends the rules as `{"rules": [...]}`. */
const putBody = (body: unknown, token?: string) => ({
  method: "PUT",
  body: JSON.stringify(body),
  ...(token === undefined ? {} : { token }),
});
const put = (rules: unknown, token?: string) => putBody({ rules }, token);

describe("access rules", () => {
  it("are replaced whole, audited, kept across a restart, and a bad one is a 400 naming entry and field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "access-rules-"));
    const first = await makeTestApp(layerFile(dir));
    try {
      expect(await json(await first.request("/api/access/rules"))).toEqual({ rules: [] });
      const replaced = await first.request("/api/access/rules", put(RULES));
      expect(replaced.status).toBe(200);
      expect(await json(replaced)).toEqual({ rules: RULES });

      const bad = await first.request(
        "/api/access/rules",
        put([RULES[0], { claim: "groups", equals: "x", role: "boss", channels: "*" }]),
      );
      expect(bad.status).toBe(400);
      expect(bad.headers.get("content-type")).toBe("application/problem+json");
      const problem = await json(bad);
      expect(problem.errors).toEqual([
        { field: "rules[1].role", message: 'must be viewer, operator or admin; got "boss"' },
      ]);
      const badScope = await json(
        await first.request(
          "/api/access/rules",
          put([{ claim: "groups", equals: "x", role: "viewer", channels: { tags: ["EU"] } }]),
        ),
      );
      expect(JSON.stringify(badScope.errors)).toContain("rules[0].channels");
      // Nothing of a refused list was taken.
      expect(await json(await first.request("/api/access/rules"))).toEqual({ rules: RULES });
      // The bare list is the rules too, its problems named the same way.
      const bare = await first.request(
        "/api/access/rules",
        putBody([RULES[1], { ...RULES[0], role: "boss" }]),
      );
      expect((await json(bare)).errors).toEqual([
        { field: "rules[1].role", message: 'must be viewer, operator or admin; got "boss"' },
      ]);
      const bareOk = await first.request("/api/access/rules", putBody([...RULES].reverse()));
      expect(await json(bareOk)).toEqual({ rules: [...RULES].reverse() });
      await first.request("/api/access/rules", put(RULES));

      const events = (await json(await first.request("/api/events?type=api_change"))).events as Array<{
        action: string;
        detail: string;
      }>;
      expect(events.filter((event) => event.action === "access.rules").map((event) => event.detail)).toEqual([
        "access rules replaced: 0 rules before, 2 now",
        "access rules replaced: 2 rules before, 2 now",
        "access rules replaced: 2 rules before, 2 now",
      ]);
      expect(readFileSync(join(dir, "access-rules.json"), "utf8")).toContain("tv-ops-eu");
    } finally {
      await first.close();
    }
    const second = await makeTestApp(layerFile(dir));
    try {
      expect(await json(await second.request("/api/access/rules"))).toEqual({ rules: RULES });
    } finally {
      await second.close();
    }
  });

  it("need an admin over every channel: an operator and an admin of the eu channels get 403", async () => {
    const app = await makeTestApp();
    try {
      const tokenOf = async (body: Record<string, unknown>) =>
        String(
          (await json(await app.request("/api/tokens", { method: "POST", body: JSON.stringify(body) })))
            .token,
        );
      const operator = await tokenOf({ name: "ops", role: "operator" });
      const euAdmin = await tokenOf({ name: "eu admin", role: "admin", channels: { tags: ["eu"] } });
      for (const token of [operator, euAdmin]) {
        expect((await app.request("/api/access/rules", { token })).status).toBe(403);
        const refused = await app.request("/api/access/rules", put(RULES, token));
        expect(refused.status).toBe(403);
        expect((await json(refused)).detail).toContain("admin");
      }
      expect(await json(await app.request("/api/access/rules"))).toEqual({ rules: [] });
    } finally {
      await app.close();
    }
  });
});
