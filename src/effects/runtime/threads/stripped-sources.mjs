/**
 * Node.js only: serves the project's TypeScript modules from the copies scripts/strip-sources.ts wrote at
 * setup, their types already stripped, so that no thread loads Node.js's own type stripper. That stripper
 * (a WebAssembly build of swc) costs each thread that loads it 11–17 MiB of memory, the main thread and every
 * forwarding worker alike.
 *
 * A copy is found by the SHA-256 of the source it was made from: a module edited since setup finds none and
 * is stripped by Node.js as usual. Plain JavaScript, for it runs before any TypeScript can be loaded.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as module from "node:module";

const stripped = new URL("../../../../build/stripped/", import.meta.url);
const root = new URL("../../../../", import.meta.url).href;

/** The copy's name for `source`: also used by scripts/strip-sources.ts. */
export const strippedName = (source) => `${createHash("sha256").update(source).digest("hex")}.js`;

let registered = false;

/** Registers the hook in this thread (each worker calls it too); a no-op on Bun and Deno. */
export const useStrippedSources = () => {
  if (registered || typeof module.registerHooks !== "function" || "Bun" in globalThis || "Deno" in globalThis)
    return;
  registered = true;
  module.registerHooks({
    load(url, context, nextLoad) {
      if (!url.startsWith(root) || !url.endsWith(".ts") || url.includes("/node_modules/"))
        return nextLoad(url, context);
      try {
        const source = readFileSync(new URL(url));
        return {
          format: "module",
          source: readFileSync(new URL(strippedName(source), stripped)),
          shortCircuit: true,
        };
      } catch {
        return nextLoad(url, context);
      }
    },
  });
};
