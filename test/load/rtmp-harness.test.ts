/**
 * The RTMP run of the load harness at its smallest (`npm run load -- --protocol rtmp`): 1 channel × 2 RTMP
 * outputs of a real H.264 + AAC stream with a SCTE-35 cue every 2 s, ours and then ffmpeg's tee, each into a
 * fresh counting receiver. Its report must say what the receiver counted: every frame our outputs sent and
 * every cue, and ffmpeg's frames beside them (its FLV carries no cue).
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";

let reportDir = "";
afterAll(async () => {
  if (reportDir !== "") await rm(reportDir, { recursive: true, force: true });
});

interface RtmpRun {
  readonly name: string;
  readonly streams: number;
  readonly videoReceived: number | null;
  readonly audioReceived: number | null;
  readonly cuesReceived: number | null;
  readonly framesSent: number | null;
  readonly framesDropped: number | null;
  readonly cuesSent: number | null;
  readonly connectedAfter: number | null;
}

describe("load harness, RTMP", () => {
  it("counts at the receiver every frame and cue our outputs sent, and ffmpeg's frames beside them", async () => {
    reportDir = await mkdtemp(join(tmpdir(), "distributary-load-rtmp-"));
    const run = await execa(
      process.execPath,
      [
        "load-tests/load.ts",
        ...["--protocol", "rtmp", "--channels", "1", "--outputs", "2", "--seconds", "6", "--warmup", "1"],
        ...["--cue-every", "2", "--anchors", "ffmpeg", "--report-dir", reportDir],
      ],
      { reject: false, all: true },
    );
    expect(run.exitCode, run.all).toBe(0);
    const json = (await readdir(reportDir)).find((name) => name.endsWith("-1x2-rtmp.json"));
    expect(json).toBeDefined();
    const report = JSON.parse(await readFile(join(reportDir, json ?? ""), "utf8")) as {
      receiver: string;
      runs: ReadonlyArray<RtmpRun>;
    };
    expect(report.receiver).toBe("counter");
    const [ours, ffmpeg] = report.runs;
    expect(ours?.name).toBe("distributary");
    expect(ours?.streams).toBe(2);
    // Every frame our outputs sent reached the receiver, none dropped: at least the window's 6 s of 25 fps.
    expect((ours?.videoReceived ?? 0) + (ours?.audioReceived ?? 0)).toBe(ours?.framesSent);
    expect(ours?.videoReceived).toBeGreaterThanOrEqual(2 * 6 * 25);
    expect(ours?.framesDropped).toBe(0);
    expect(ours?.cuesReceived).toBe(ours?.cuesSent);
    expect(ours?.cuesReceived).toBeGreaterThanOrEqual(2 * 3);
    expect(ours?.connectedAfter).not.toBeNull();
    expect(ffmpeg?.name).toBe("ffmpeg -f tee");
    expect(ffmpeg?.streams).toBe(2);
    expect(ffmpeg?.videoReceived).toBeGreaterThanOrEqual(2 * 6 * 25);
    expect(ffmpeg?.cuesReceived).toBe(0);
    expect(ffmpeg?.framesSent).toBeNull();
  }, 300_000);
});
