/**
 * The timing project's lanes (test/support/timing-lanes.ts): each file they name exists and is a timing file,
 * and no file is in both lanes (two files of one lane never run beside each other).
 */
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { TIMING_LANES } from "../support/timing-lanes.ts";

const isTimingFile = (file: string) =>
  file.endsWith(".timing.test.ts") || /^test\/lab\/.+\.test\.ts$/.test(file);

describe("the timing project's lanes", () => {
  it("name only timing files that exist, each in one lane", () => {
    const named = [...TIMING_LANES.labs, ...TIMING_LANES.light];
    expect(named.filter((file) => !existsSync(file))).toEqual([]);
    expect(named.filter((file) => !isTimingFile(file))).toEqual([]);
    expect(new Set(named).size).toBe(named.length);
  });
});
