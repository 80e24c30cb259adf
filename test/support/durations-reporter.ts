/**
 * Where the suite's time goes, from Vitest itself rather than from the text another reporter prints.
 *
 * As a Vitest reporter (`--reporter=./test/support/durations-reporter.ts`), it appends one JSON line per test
 * file to the file named by DISTRIBUTARY_TEST_DURATIONS: the project, the file and its whole duration, that
 * is the file's import and collection, set-up and every test and hook (a lab or an image build spends most
 * of its time in `beforeAll`). scripts/test.sh points every Vitest run (main and main-apart, then timing) at
 * one file.
 *
 * Run as a program (`node test/support/durations-reporter.ts FILE [COUNT]`), it prints the COUNT (15)
 * slowest files of FILE and the total, and exits 1 when FILE holds no duration at all or a line it cannot
 * read: a report that has nothing to say is a failed check, never a silent one.
 */
import { appendFileSync, readFileSync } from "node:fs";
import { relative } from "node:path";
import type { Reporter, TestModule } from "vitest/node";

/** One test file's line in the durations file. */
export type FileDuration = { readonly project: string; readonly file: string; readonly ms: number };

/** A file's whole time: import, collection, set-up and its tests with their hooks. */
export const wholeDuration = (module: TestModule): number => {
  const d = module.diagnostic();
  return d.environmentSetupDuration + d.prepareDuration + d.setupDuration + d.collectDuration + d.duration;
};

export default class DurationsReporter implements Reporter {
  private readonly out = process.env.DISTRIBUTARY_TEST_DURATIONS;

  onTestModuleEnd(module: TestModule): void {
    if (this.out === undefined || this.out === "") return;
    const line: FileDuration = {
      project: module.project.name,
      file: relative(process.cwd(), module.moduleId),
      ms: Math.round(wholeDuration(module)),
    };
    appendFileSync(this.out, `${JSON.stringify(line)}\n`);
  }
}

const isFileDuration = (v: unknown): v is FileDuration =>
  typeof v === "object" &&
  v !== null &&
  typeof (v as FileDuration).project === "string" &&
  typeof (v as FileDuration).file === "string" &&
  typeof (v as FileDuration).ms === "number" &&
  Number.isFinite((v as FileDuration).ms) &&
  (v as FileDuration).ms >= 0;

/** The lines of a durations file, or why they cannot be reported. */
export const readDurations = (text: string): FileDuration[] | string => {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  if (lines.length === 0) return "no test file reported a duration";
  const out: FileDuration[] = [];
  for (const l of lines) {
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch {
      return `not a duration: ${l.slice(0, 120)}`;
    }
    if (!isFileDuration(v)) return `not a duration: ${l.slice(0, 120)}`;
    out.push(v);
  }
  return out;
};

/** The report printed at the end of `npm test`: the slowest files, then each project's total. */
export const slowestReport = (durations: ReadonlyArray<FileDuration>, count = 15): string => {
  const sorted = [...durations].sort((a, b) => b.ms - a.ms);
  const rows = sorted
    .slice(0, count)
    .map(
      (d) =>
        `${(d.ms / 1000).toFixed(1).padStart(7)} s  ${d.file}${d.project === "main" || d.project === "" ? "" : ` (${d.project})`}`,
    );
  const totals = new Map<string, { files: number; ms: number }>();
  for (const d of durations) {
    const t = totals.get(d.project) ?? { files: 0, ms: 0 };
    totals.set(d.project, { files: t.files + 1, ms: t.ms + d.ms });
  }
  const summary = [...totals]
    .map(([p, t]) => `${p}: ${t.files} files, ${(t.ms / 1000).toFixed(1)} s`)
    .join("; ");
  return [...rows, `  (the files' own times added up: ${summary})`].join("\n");
};

if (import.meta.main) {
  const [file, countArg] = process.argv.slice(2);
  let text = "";
  try {
    text = file === undefined ? "" : readFileSync(file, "utf8");
  } catch (e) {
    text = "";
    console.error(`✗ durations: cannot read ${file}: ${(e as Error).message}`);
  }
  const durations = readDurations(text);
  if (typeof durations === "string") {
    console.error(`✗ durations: ${durations}`);
    process.exit(1);
  }
  console.log(slowestReport(durations, countArg === undefined ? 15 : Number(countArg)));
}
