/**
 * What a forwarding thread loads: every module its entry reaches through imports that run (type-only imports
 * load nothing), as dependency-cruiser resolves them. The configuration reaches a thread already checked by the
 * main thread, so none of them is effect/Schema (its AST, its parser and fast-check, some 10 MiB of heap in each
 * thread) nor Effect's index. The schemas live in src/domain/*-schema.ts, the rules the thread runs without
 * them.
 */
import { cruise } from "dependency-cruiser";
import { describe, expect, it } from "vitest";

const ENTRY = "src/effects/channel/workers/worker.ts";

/** Each module the entry loads, with the chain of imports that brings it in. */
const loaded = async () => {
  const result = await cruise([ENTRY], {
    tsPreCompilationDeps: true,
    doNotFollow: { path: "node_modules" },
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  });
  const output = result.output;
  if (typeof output === "string") throw new Error("dependency-cruiser gave no modules");
  const edges = new Map(
    output.modules.map((module) => [
      module.source,
      module.dependencies
        .filter((dependency) => !dependency.dependencyTypes.includes("type-only"))
        .map((dependency) => dependency.resolved),
    ]),
  );
  const chain = new Map<string, string>([[ENTRY, ENTRY]]);
  const queue = [ENTRY];
  for (let next = queue.shift(); next !== undefined; next = queue.shift())
    for (const target of edges.get(next) ?? [])
      if (!chain.has(target)) {
        chain.set(target, `${chain.get(next)} → ${target}`);
        queue.push(target);
      }
  return chain;
};

describe("a forwarding thread's modules", () => {
  it("reach no effect/Schema and not Effect's index, through the imports that load", async () => {
    const chain = await loaded();
    const sources = [...chain.keys()];
    // What the thread is: the channel, its inputs and outputs, Effect's runtime.
    expect(sources).toContain("src/effects/channel/channel.ts");
    expect(sources).toContain("src/effects/outputs/udp.ts");
    expect(sources.some((source) => /node_modules\/effect\/dist\/(esm|cjs)\/Effect\.js$/.test(source))).toBe(
      true,
    );
    const unwanted = sources.filter((source) =>
      /node_modules\/effect\/dist\/(esm|cjs)\/(Schema|SchemaAST|ParseResult|index)\.js$/.test(source),
    );
    expect(unwanted.map((source) => chain.get(source))).toEqual([]);
  });
});
