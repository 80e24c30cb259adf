/**
 * Writes build/stripped/: every TypeScript module of src/ and views/, its types stripped by Node.js's own
 * stripper, named by the SHA-256 of its source (src/effects/runtime/threads/stripped-sources.mjs serves them). Run by
 * setup; the AssemblyScript sources of the packet core are not modules of the service and are left out.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { stripTypeScriptTypes } from "node:module";
import { join } from "node:path";
import { strippedName } from "../src/effects/runtime/threads/stripped-sources.mjs";

const root = new URL("..", import.meta.url).pathname;
const out = join(root, "build/stripped");
mkdirSync(out, { recursive: true });
// New copies first, then the stale ones go: a service starting meanwhile always finds the copies it needs.
const written = new Set<string>();
const modules = ["src", "views"].flatMap((dir) =>
  readdirSync(join(root, dir), { recursive: true, withFileTypes: true }),
);
for (const entry of modules) {
  if (!entry.isFile() || !entry.name.endsWith(".ts") || entry.name.endsWith(".d.ts")) continue;
  const path = join(entry.parentPath, entry.name);
  if (path.includes("/src/core/assembly/")) continue;
  const source = readFileSync(path);
  const name = strippedName(source);
  if (!existsSync(join(out, name))) {
    // Whole or not at all: the loader would serve a half-written copy.
    writeFileSync(join(out, `${name}.${process.pid}.part`), stripTypeScriptTypes(source.toString("utf8")));
    renameSync(join(out, `${name}.${process.pid}.part`), join(out, name));
  }
  written.add(name);
}
for (const name of readdirSync(out)) if (!written.has(name)) rmSync(join(out, name));
process.stdout.write(`strip-sources: ${written.size} modules in build/stripped/\n`);
