/**
 * The content watcher's pure half (src/core/content/): its ffmpeg's arguments run by real ffmpeg over a
 * stream made for it (a programme, a still, then black and silence, in one encode), and what that ffmpeg
 * printed read into states per rule; each rule judged from such states (true, false, null with its reason);
 * and the 1.5-GOP floor of a frozen rule in key-frame mode, in words.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ContentRule, contentWatchArgs, frozenRefusal } from "../../src/core/content/args.ts";
import { judgeContentRule } from "../../src/core/content/judge.ts";
import {
  applyContentLine,
  type ContentLine,
  type ContentReport,
  emptyReport,
  pictureSpacingMs,
  readContentLine,
} from "../../src/core/content/lines.ts";
import { encodeContentStream } from "../support/media.ts";

const rules: Record<string, ContentRule> = {
  black: { black: { pixel_threshold: 0.1, picture_ratio: 0.98 }, for_ms: 2000 },
  frozen: { frozen: { noise_db: -60 }, for_ms: 2000 },
  silent: { silent: { noise_db: -60 }, for_ms: 2000 },
};

let dir = "";
/** What ffmpeg printed, read line by line: its stderr's, then its stdout's (the service reads each on its own). */
let lines: ReadonlyArray<string> = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "content-lines-"));
  const file = join(dir, "stream.ts");
  await Effect.runPromise(
    encodeContentStream(file, [
      { kind: "programme", seconds: 3 },
      { kind: "still", seconds: 4 },
      { kind: "black", seconds: 4 },
    ]),
  );
  const args = contentWatchArgs(rules) ?? [];
  // Not execa's `all`: it interleaves the two pipes' chunks, which can cut a line of one with the other's.
  const result = await execa("ffmpeg", args, { inputFile: file, reject: false });
  expect(result.exitCode).toBe(0);
  lines = [...result.stderr.split("\n"), ...result.stdout.split("\n")];
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

const read = (): ReadonlyArray<ContentLine> =>
  lines.flatMap((line) => {
    const read = readContentLine(line);
    return read === null ? [] : [read];
  });

describe("ffmpeg's lines", () => {
  it("say when each rule's state began, on the stream's clock (the stream starts near 0)", () => {
    const changes = read().flatMap((line) => (line.kind === "state" ? [line] : []));
    const of = (rule: string) => changes.filter((change) => change.rule === rule);
    // Black and silence start together 7 s in, at a key frame.
    expect(of("black").map((change) => change.on)).toEqual([true]);
    expect(of("black")[0]?.at).toBeCloseTo(7, 0);
    expect(of("silent").map((change) => change.on)).toEqual([true]);
    expect(of("silent")[0]?.at).toBeCloseTo(7, 0);
    // The still froze from its first or second key frame (the encoder sharpens the first over the next).
    const frozen = of("frozen");
    expect(frozen[0]?.on).toBe(true);
    expect(frozen[0]?.at).toBeGreaterThanOrEqual(2.9);
    expect(frozen[0]?.at).toBeLessThanOrEqual(4.1);
    // Black is another picture: the still's freeze ends there (and black, static too, freezes in turn).
    expect(frozen[1]).toMatchObject({ on: false });
    expect(frozen[1]?.at).toBeCloseTo(7, 0);
  });

  it("say how far ffmpeg got and how many pictures it decoded: one a second in key-frame mode", () => {
    const report = read().reduce(applyContentLine, emptyReport);
    expect(report.reached).toBeGreaterThan(10.5);
    expect(report.frames).toBe(11);
    expect(report.states.get("black")).toEqual({ on: true, since: expect.closeTo(7, 0) });
  });

  it("give the key frames' spacing from the counts' growth as a live stream reports them, late or not", () => {
    // Fed at its pace: a progress block every 0.25 s, the stream's clock running `lead` ahead of the last
    // key frame decoded (a key frame a second, the first at 0.4 s); frame= comes before out_time_us=.
    const live = (lead: number, seconds: number) => {
      const lines: string[] = [];
      for (let wall = 0.25; wall <= seconds; wall += 0.25) {
        const decoded = wall >= 0.4 + lead ? Math.floor(wall - 0.4 - lead) + 1 : 0;
        lines.push(`frame=${decoded}`, `out_time_us=${Math.round(wall * 1e6)}`);
      }
      return lines.map(readContentLine).reduce(applyContentLine, emptyReport);
    };
    for (const lead of [0, 0.3, 0.7]) {
      expect(pictureSpacingMs(live(lead, 3)), `lead ${lead}`).toBeNull();
      const spacing = pictureSpacingMs(live(lead, 8));
      expect(spacing, `lead ${lead}`).toBeGreaterThan(950);
      expect(spacing, `lead ${lead}`).toBeLessThan(1050);
    }
  });

  it("ignore what is not a state, a figure or a count", () => {
    expect(
      readContentLine("[metadata@black @ 0x55d] [info] frame:7    pts:610320  pts_time:6.78133"),
    ).toBeNull();
    expect(
      readContentLine("[metadata@frozen @ 0x55d] [info] lavfi.freezedetect.freeze_duration=3"),
    ).toBeNull();
    expect(readContentLine("out_time_us=N/A")).toBeNull();
    expect(readContentLine("[blackdetect @ 0x55d] [info] black_start:6.78 black_end:11.78")).toBeNull();
  });
});

const at = (reached: number, states: Record<string, { on: boolean; since: number }> = {}): ContentReport => ({
  states: new Map(Object.entries(states)),
  reached,
  startedAt: 0,
  frames: Math.floor(reached) + 1,
  // A key frame a second from 0: the count grew last at the last whole second.
  firstFrameAt: 0,
  framesAtFirst: 1,
  lastFrameAt: Math.floor(reached),
  framesAtLast: Math.floor(reached) + 1,
});

describe("a rule's verdict", () => {
  const black = rules.black as ContentRule;
  it("is true once its state has held for for_ms of the stream, false before", () => {
    // Every picture decoded: the black is counted from the first black picture.
    const all = (reached: number) =>
      judgeContentRule("black", black, at(reached, { black: { on: true, since: 7 } }), null, "all");
    expect(all(8)).toEqual({ state: false, reason: "black for 1.0 s, not yet 2.0 s", since: 7 });
    expect(all(9.2)).toMatchObject({ state: true, reason: "black for 2.2 s" });
    // Key frames only, a second apart: the black began after the key frame before the first black one, and is
    // counted from half a second after it (0.5 s before the black key frame), not from the black key frame.
    expect(judgeContentRule("black", black, at(8, { black: { on: true, since: 7 } }), null)).toEqual({
      state: false,
      reason: "black for 1.5 s, not yet 2.0 s",
      since: 6.5,
    });
    expect(judgeContentRule("black", black, at(8.6, { black: { on: true, since: 7 } }), null)).toMatchObject({
      state: true,
      reason: "black for 2.1 s",
    });
    expect(judgeContentRule("black", black, at(12, { black: { on: false, since: 11 } }), null)).toMatchObject(
      {
        state: false,
        reason: "not black since 11.0 s",
      },
    );
  });

  it("is null, in words, before the watcher has seen for_ms, or while it cannot judge", () => {
    expect(judgeContentRule("black", black, at(1.5), null)).toMatchObject({
      state: null,
      reason: "the watcher has seen 1.5 s of the stream and needs 2.0 s to judge black",
    });
    expect(judgeContentRule("black", black, at(5), null)).toMatchObject({
      state: false,
      reason: "not black",
    });
    expect(judgeContentRule("black", black, emptyReport, null)).toMatchObject({ state: null });
    expect(judgeContentRule("black", black, at(9, { black: { on: true, since: 1 } }), "ffmpeg died")).toEqual(
      {
        state: null,
        reason: "ffmpeg died",
        since: null,
      },
    );
  });

  it("of a frozen rule shorter than 1.5 GOPs is null, saying why", () => {
    const short: ContentRule = { frozen: { noise_db: -60 }, for_ms: 1200 };
    expect(judgeContentRule("frozen", short, at(10), null)).toMatchObject({
      state: null,
      reason: expect.stringContaining("for_ms must be at least 1.5 GOPs (1500 ms), not 1200"),
    });
  });
});

describe("frozen rules in key-frame mode", () => {
  it("need for_ms of at least 1.5 GOPs, refused in words otherwise", () => {
    expect(frozenRefusal(3000, 2000)).toBeNull();
    expect(frozenRefusal(2999, 2000)).toBe(
      "a frozen picture is judged on key frames, 2000 ms apart in this stream: for_ms must be at least 1.5 GOPs (3000 ms), not 2999",
    );
    expect(frozenRefusal(500, 2000, "all")).toBeNull();
  });

  it("the arguments decode key frames only by default, every picture when asked, and only what the rules need", () => {
    expect(contentWatchArgs(rules)).toContain("nokey");
    expect(contentWatchArgs(rules, "all")).not.toContain("nokey");
    const sound = contentWatchArgs({ silent: rules.silent as ContentRule }) ?? [];
    const graph = sound[sound.indexOf("-filter_complex") + 1];
    expect(graph).toContain("[0:a:0]");
    expect(graph).not.toContain("[0:v:0]");
    expect(contentWatchArgs({})).toBeNull();
  });
});
