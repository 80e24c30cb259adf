/**
 * Node.js loads the service's TypeScript from the copies setup stripped (src/effects/runtime/threads/stripped-sources.mjs),
 * in a real Node.js 24 process: the whole HTTP app and a forwarding worker's modules load without Node.js's
 * own type stripper; a module edited since setup has no copy and is stripped as usual, so it runs as written.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";

const root = new URL("../../", import.meta.url);
const node = new URL("node_modules/.bin/node", root).pathname;
const hooks = new URL("src/effects/runtime/threads/stripped-sources.mjs", root).href;
const scratch = new URL(`build/strip-test-${process.pid}/`, root);

// The copies of the tree as it is now (setup makes them too; a module edited since would have none).
beforeAll(() => {
  execFileSync(node, [
    "--disable-warning=ExperimentalWarning",
    new URL("scripts/strip-sources.ts", root).pathname,
  ]);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Imports `modules` after the hooks, in a new process; what it loaded of the stripper, and what it printed. */
const load = (modules: ReadonlyArray<string>, print = "") =>
  JSON.parse(
    execFileSync(
      node,
      [
        "--disable-warning=ExperimentalWarning",
        "--input-type=module",
        "-e",
        `const { useStrippedSources } = await import(${JSON.stringify(hooks)});
         useStrippedSources();
         const loaded = [];
         for (const url of ${JSON.stringify(modules)}) loaded.push(await import(url));
         console.log(JSON.stringify({
           stripper: process.moduleLoadList.filter((name) => name.includes("amaro")),
           printed: ${print || "null"},
         }));`,
      ],
      { encoding: "utf8", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
    ),
  ) as { stripper: string[]; printed: unknown };

it("loads the app and a worker's modules without Node.js's type stripper", () => {
  const modules = ["src/http/app.ts", "src/effects/channel/channel-host.ts", "src/effects/outputs/writer.ts"];
  const result = load(modules.map((path) => new URL(path, root).href));
  expect(result.stripper).toEqual([]);
});

it("strips a module edited since setup as Node.js always does, and runs what it says", () => {
  mkdirSync(scratch, { recursive: true });
  const edited = new URL("edited.ts", scratch);
  writeFileSync(edited, `export const said: string = "written ${Date.now()}";\n`);
  const result = load([edited.href], "loaded[0].said");
  expect(result.printed).toMatch(/^written \d+$/);
  expect(result.stripper).toEqual(["NativeModule internal/deps/amaro/dist/index"]);
});
