/**
 * The documentation as a reader follows it: every relative link in the project's Markdown (README.md,
 * ARCHITECTURE.md, docs/, test/README.md and the other folders' notes) leads to a file that exists and, when it
 * names a heading (`#…`), to a heading of that file; and the README stays a page a newcomer reads to the end.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
/** Folders whose Markdown is not ours to keep (installed packages, generated run reports, the fixtures' own). */
const skipped = new Set(["node_modules", ".git", "build", "load-tests/reports", "test/fixtures", "config"]);

const markdownFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (skipped.has(relative(root, path))) return [];
    if (statSync(path).isDirectory()) return markdownFiles(path);
    return name.endsWith(".md") ? [path] : [];
  });

/** GitHub's anchor for a heading: lower case, punctuation but hyphens gone, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");

const withoutCode = (text: string) => text.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");

const anchorsOf = (file: string): Set<string> => {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of withoutCode(readFileSync(file, "utf8")).split("\n")) {
    const heading = /^#{1,6}\s+(.*)$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
};

describe("documentation", () => {
  const files = markdownFiles(root);

  it("finds the project's Markdown", () => {
    const names = files.map((file) => relative(root, file));
    expect(names).toEqual(
      expect.arrayContaining(["README.md", "ARCHITECTURE.md", "docs/api.md", "test/README.md"]),
    );
  });

  it("has every relative link resolving to a file and, where it names one, a heading", () => {
    const broken: string[] = [];
    for (const file of files) {
      const text = withoutCode(readFileSync(file, "utf8"));
      for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = match[1] ?? "";
        if (/^[a-z]+:/i.test(target)) continue;
        const [path = "", anchor] = target.split("#");
        const targetFile = path === "" ? file : resolve(dirname(file), path);
        const where = `${relative(root, file)} → ${target}`;
        if (!existsSync(targetFile)) {
          broken.push(`${where}: no such file`);
          continue;
        }
        if (anchor !== undefined && targetFile.endsWith(".md") && !anchorsOf(targetFile).has(anchor)) {
          broken.push(`${where}: no such heading`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it("keeps the README short enough to read through: at most 350 lines", () => {
    const lines = readFileSync(join(root, "README.md"), "utf8").split("\n").length;
    expect(lines).toBeLessThanOrEqual(350);
  });
});
