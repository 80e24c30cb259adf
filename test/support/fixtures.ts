import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The shared test material lives beside the clone (`../shared/fixtures`); it is read there, never copied in. */
export const fixturesRoot = fileURLToPath(new URL("../../../shared/fixtures/", import.meta.url));

export const fixturePath = (...parts: ReadonlyArray<string>): string => {
  const path = [fixturesRoot.replace(/\/$/, ""), ...parts].join("/");
  if (!existsSync(path)) throw new Error(`fixture missing: ${path} (is ../shared beside the clone?)`);
  return path;
};
