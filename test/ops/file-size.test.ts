/**
 * The code stays a size one reads in a sitting: no source file under src/ or views/ (TypeScript, the
 * AssemblyScript core, the pages' stylesheets and script) is over 450 lines, and no function under src/ over 250
 * (nested ones counted whole, as a reader meets them). A file or function that grows past it is split where it
 * has a seam.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import ts from "typescript";
import { expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const LIMIT = 450;
const FUNCTION_LIMIT = 250;

const sources = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    // What the set-up builds (the WebAssembly core and its generated layout) is not written by hand.
    if (name === "build") return [];
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(ts|css|js)$/.test(name) ? [path] : [];
  });

it(`no source file under src/ or views/ is over ${LIMIT} lines`, () => {
  const files = [...sources(join(root, "src")), ...sources(join(root, "views"))];
  expect(files.length).toBeGreaterThan(100);
  const over = files
    .map((file) => ({ file: relative(root, file), lines: readFileSync(file, "utf8").split("\n").length - 1 }))
    .filter((entry) => entry.lines > LIMIT)
    .map((entry) => `${entry.file}: ${entry.lines} lines`);
  expect(over).toEqual([]);
});

it(`no function under src/ is over ${FUNCTION_LIMIT} lines`, () => {
  const files = sources(join(root, "src")).filter((file) => file.endsWith(".ts"));
  const over: string[] = [];
  let functions = 0;
  for (const file of files) {
    const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
    const lineOf = (position: number) => source.getLineAndCharacterOfPosition(position).line;
    const visit = (node: ts.Node): void => {
      if (ts.isFunctionLike(node) && "body" in node && node.body) {
        functions += 1;
        const lines = lineOf(node.getEnd()) - lineOf(node.getStart()) + 1;
        if (lines > FUNCTION_LIMIT)
          over.push(`${relative(root, file)}:${lineOf(node.getStart()) + 1}: ${lines} lines`);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  expect(functions).toBeGreaterThan(1000);
  expect(over).toEqual([]);
});
