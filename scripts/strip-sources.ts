/**
 * Writes build/stripped/: every TypeScript module of src/ and views/, its types stripped by Node.js's own
 * stripper, named by the SHA-256 of its source (src/effects/runtime/stripped-sources.mjs serves them). Run by
 * setup; the AssemblyScript sources of the packet core are not modules of the service and are left out.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { stripTypeScriptTypes } from "node:module";
import { join } from "node:path";
import { strippedName } from "../src/effects/runtime/stripped-sources.mjs";

const root = new URL("..", import.meta.url).pathname;
const out = join(root, "build/stripped");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
let count = 0;
const modules = ["src", "views"].flatMap((dir) =>
  readdirSync(join(root, dir), { recursive: true, withFileTypes: true }),
);
for (const entry of modules) {
  if (!entry.isFile() || !entry.name.endsWith(".ts") || entry.name.endsWith(".d.ts")) continue;
  const path = join(entry.parentPath, entry.name);
  if (path.includes("/src/core/assembly/")) continue;
  const source = readFileSync(path);
  writeFileSync(join(out, strippedName(source)), stripTypeScriptTypes(source.toString("utf8")));
  count++;
}
process.stdout.write(`strip-sources: ${count} modules in build/stripped/\n`);
