import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Test material from other projects, carried in the repository (`test/fixtures/PROVENANCE.md` says whence). */
export const fixturesRoot = fileURLToPath(new URL("../fixtures/", import.meta.url));

export const fixturePath = (...parts: ReadonlyArray<string>): string => {
  const path = [fixturesRoot.replace(/\/$/, ""), ...parts].join("/");
  if (!existsSync(path)) throw new Error(`fixture missing: ${path}`);
  return path;
};
