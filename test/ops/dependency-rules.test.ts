/**
 * The dependency rules as `npm test` runs them (.dependency-cruiser.cjs): the tree has no import cycle, and a
 * cycle closed by a type-only import is refused as well as any other, so the check can fail.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cruise } from "dependency-cruiser";
import { afterAll, describe, expect, it } from "vitest";

const config = require("../../.dependency-cruiser.cjs") as { forbidden: unknown[] };

const cycles = async (paths: string[]) => {
  const result = await cruise(paths, {
    ruleSet: { forbidden: config.forbidden } as never,
    validate: true,
    tsPreCompilationDeps: true,
    doNotFollow: { path: "node_modules" },
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  });
  const output = result.output;
  if (typeof output === "string") throw new Error("dependency-cruiser gave no modules");
  return output.summary.violations.filter((v) => v.rule.name === "no-cycles").map((v) => v.from);
};

describe("dependency rules", () => {
  const dirs: string[] = [];
  afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  it("src/ has no import cycle, type-only ones included", async () => {
    expect(await cycles(["src"])).toEqual([]);
  });

  it("a cycle closed by a type-only import is a violation", async () => {
    const dir = await mkdtemp(join("test", ".cycle-"));
    dirs.push(dir);
    await writeFile(
      join(dir, "schema.ts"),
      'import { NAMES } from "./rules.ts";\nexport type Name = (typeof NAMES)[number];\n',
    );
    await writeFile(
      join(dir, "rules.ts"),
      'import type { Name } from "./schema.ts";\nexport const NAMES = ["a"] as const;\nexport const first = (n: Name): Name => n;\n',
    );
    const found = await cycles([dir]);
    expect(found.length).toBeGreaterThan(0);
    for (const from of found) expect([join(dir, "rules.ts"), join(dir, "schema.ts")]).toContain(from);
  });
});
