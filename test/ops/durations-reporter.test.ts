/**
 * The slowest-files report of `npm test` (test/support/durations-reporter.ts): a real Vitest run of two small
 * files with the reporter loaded writes each file's whole duration, set-up included; the printer lists them
 * slowest first; with nothing to report, or a line it cannot read, the printer fails.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FileDuration, readDurations } from "../support/durations-reporter.ts";

const run = promisify(execFile);
const reporter = resolve("test/support/durations-reporter.ts");
const vitest = resolve("node_modules/.bin/vitest");

/** The printer as scripts/test.sh runs it: its exit code and what it wrote. */
const print = async (file: string): Promise<{ code: number; out: string }> => {
  try {
    const { stdout, stderr } = await run(process.execPath, [reporter, file, "15"]);
    return { code: 0, out: stdout + stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout + err.stderr };
  }
};

describe("durations reporter", () => {
  let dir = "";
  let durations: FileDuration[] = [];
  const out = () => join(dir, "durations.jsonl");

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "distributary-durations-"));
    // Globals, so the files import nothing (the directory has no node_modules of its own).
    await writeFile(
      join(dir, "vitest.config.mjs"),
      'export default { test: { globals: true, include: ["*.test.mjs"] } };\n',
    );
    // Its time is in its set-up (a hook): the report must count it.
    await writeFile(
      join(dir, "slow-setup.test.mjs"),
      'beforeAll(() => new Promise((r) => setTimeout(r, 700)));\nit("runs", () => expect(1).toBe(1));\n',
    );
    await writeFile(join(dir, "quick.test.mjs"), 'it("runs", () => expect(2).toBe(2));\n');
    await run(
      vitest,
      ["run", "--root", dir, "--config", join(dir, "vitest.config.mjs"), `--reporter=${reporter}`],
      {
        env: { ...process.env, DISTRIBUTARY_TEST_DURATIONS: out() },
      },
    );
    const read = readDurations(await readFile(out(), "utf8"));
    if (typeof read === "string") throw new Error(read);
    durations = read;
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("writes each file's whole duration, its set-up hook included", () => {
    const byFile = new Map(durations.map((d) => [d.file.replace(/^.*\//, ""), d.ms]));
    expect([...byFile.keys()].sort()).toEqual(["quick.test.mjs", "slow-setup.test.mjs"]);
    expect(byFile.get("slow-setup.test.mjs")).toBeGreaterThanOrEqual(700);
    expect(byFile.get("quick.test.mjs")).toBeLessThan(byFile.get("slow-setup.test.mjs") ?? 0);
  });

  it("prints the files slowest first", async () => {
    const { code, out: text } = await print(out());
    expect(code).toBe(0);
    const rows = text.split("\n").filter((l) => l.includes(".test.mjs"));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^ +\d+\.\d s {2}.*slow-setup\.test\.mjs/);
    expect(rows[1]).toContain("quick.test.mjs");
  });

  it("fails when it has nothing to report", async () => {
    const empty = join(dir, "empty.jsonl");
    await writeFile(empty, "");
    const a = await print(empty);
    expect(a.code).toBe(1);
    expect(a.out).toContain("no test file reported a duration");
    const missing = await print(join(dir, "never-written.jsonl"));
    expect(missing.code).toBe(1);
  });

  it("fails on a line that is not a duration", async () => {
    const bad = join(dir, "bad.jsonl");
    await writeFile(
      bad,
      `${JSON.stringify({ project: "main", file: "a.test.ts", ms: 5 })}\n 12.3 s  a.test.ts\n`,
    );
    const r = await print(bad);
    expect(r.code).toBe(1);
    expect(r.out).toContain("not a duration");
  });
});
