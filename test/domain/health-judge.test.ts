import { Either, Schema } from "effect";
import { describe, expect, it } from "vitest";
import { resolveHealth } from "../../src/domain/health/health.ts";
import {
  type ContentVerdict,
  type InputSample,
  makeHealthJudge,
} from "../../src/domain/health/health-judge.ts";
import { HealthConfigSchema } from "../../src/domain/health/health-schema.ts";

const health = (config: unknown) =>
  Either.getOrThrow(resolveHealth(Schema.decodeUnknownSync(HealthConfigSchema)(config)));

const p2 = {
  Transport_error: 0,
  CRC_error: 0,
  PCR_repetition_error: 0,
  PCR_discontinuity_indicator_error: 0,
  PTS_error: 0,
};

/** A 7 Mbit/s input with everything present at `atMs`, changed by `over`. */
const sample = (atMs: number, over: Partial<InputSample> = {}): InputSample => ({
  atMs,
  bytes: (atMs * 7_000_000) / 8 / 1000,
  ccErrors: 0,
  p2,
  lastPcrAtMs: atMs,
  lastPtsAtMs: atMs,
  lastSeenAtMs: () => atMs,
  content: {},
  ...over,
});

/** Samples every 100 ms from `from` to `to` (inclusive): the judge's view at each. */
const run = (
  judge: ReturnType<typeof makeHealthJudge>,
  from: number,
  to: number,
  at: (t: number) => InputSample,
) => {
  const views = [];
  for (let t = from; t <= to; t += 100) views.push({ t, ...judge.sample(at(t)) });
  return views;
};

describe("the health judge", () => {
  it("black && silent: unhealthy once both have lasted for_ms, healthy again after clear_after_ms", () => {
    const judge = makeHealthJudge(
      health({
        rules: {
          black: { black: { pixel_threshold: 0.1, picture_ratio: 0.98 }, for_ms: 3000 },
          silent: { silent: { noise_db: -60 }, for_ms: 3000 },
        },
        unhealthy_when: "black && silent",
        clear_after_ms: 2000,
      }),
      0,
    );
    // Black and silent from 1000 ms to 8000 ms: the watcher says so once each has lasted its for_ms.
    const dark = (t: number) => {
      const held = t >= 4000 && t < 8000;
      const verdict = (kind: string): ContentVerdict =>
        held
          ? { state: true, reason: `${kind} for ${((t - 1000) / 1000).toFixed(1)} s` }
          : { state: false, reason: `not ${kind}` };
      return sample(t, { content: { black: verdict("black"), silent: verdict("silent") } });
    };
    const views = run(judge, 0, 12_000, dark);
    const firstUnhealthy = views.find((view) => view.state === "unhealthy");
    expect(firstUnhealthy?.t).toBe(4000);
    expect(firstUnhealthy?.rules.black).toEqual({ state: true, figure: "black for 3.0 s" });
    expect(views.find((view) => view.t === 3900)?.state).toBe("healthy");
    const healthyAgain = views.find((view) => view.t > 4000 && view.state === "healthy");
    expect(healthyAgain?.t).toBe(10_000);
    expect(healthyAgain?.sinceMs).toBe(10_000);
  });

  it("a rule that cannot judge neither turns the input unhealthy nor lets it clear", () => {
    const judge = makeHealthJudge(
      health({
        rules: { silent: { silent: { noise_db: -60 }, for_ms: 1000 } },
        unhealthy_when: "silent",
        clear_after_ms: 1000,
      }),
      0,
    );
    const blind: ContentVerdict = { state: null, reason: "the watcher stopped: restarting" };
    const gone = run(judge, 0, 3000, (t) => sample(t, { content: { silent: blind } }));
    expect(gone.every((view) => view.state === "healthy")).toBe(true);
    expect(gone.at(-1)?.rules.silent).toEqual({ state: null, figure: "the watcher stopped: restarting" });
    const silent: ContentVerdict = { state: true, reason: "silent for 1.0 s" };
    run(judge, 3100, 4100, (t) => sample(t, { content: { silent } }));
    // Unhealthy; then the watcher goes blind: it stays unhealthy however long that lasts.
    const blindAgain = run(judge, 4200, 8000, (t) => sample(t, { content: { silent: blind } }));
    expect(blindAgain.every((view) => view.state === "unhealthy")).toBe(true);
  });

  it("TS rules: a PID, the PCR, continuity errors and P2 indicators in a window, a low bitrate for a time", () => {
    const judge = makeHealthJudge(
      health({
        rules: {
          no_video: { pid_missing: "video", for_ms: 1000 },
          no_pcr: { pcr_missing_ms: 500 },
          cc: { cc_errors: 20, window_ms: 1000 },
          low: { bitrate_below_bps: 800_000, for_ms: 3000 },
          p2: { tr101290: ["PCR_repetition_error", "CRC_error"], count: 5, window_ms: 5000 },
        },
        unhealthy_when: "no_video || no_pcr || cc || low || p2",
      }),
      0,
    );
    run(judge, 0, 2000, (t) => sample(t));
    // The video PID stops at 2000: 1000 ms later, no_video.
    const noVideo = run(judge, 2100, 3100, (t) =>
      sample(t, { lastSeenAtMs: (pid) => (pid === "video" ? 2000 : t) }),
    );
    expect(noVideo.find((view) => view.rules.no_video?.state)?.t).toBe(3000);
    expect(noVideo.at(-1)?.rules.no_video?.figure).toBe("1100 ms since its last packet");

    const fresh = () =>
      makeHealthJudge(health({ rules: { x: { pcr_missing_ms: 500 } }, unhealthy_when: "x" }), 0);
    const pcr = run(fresh(), 0, 1000, (t) => sample(t, { lastPcrAtMs: Math.min(t, 300) }));
    expect(pcr.find((view) => view.state === "unhealthy")?.t).toBe(800);

    // 19 continuity errors within a second are not 20; 20 are.
    const ccJudge = makeHealthJudge(
      health({ rules: { cc: { cc_errors: 20, window_ms: 1000 } }, unhealthy_when: "cc" }),
      0,
    );
    run(ccJudge, 0, 1000, (t) => sample(t));
    expect(run(ccJudge, 1100, 1500, (t) => sample(t, { ccErrors: t >= 1500 ? 19 : 0 })).at(-1)?.state).toBe(
      "healthy",
    );
    expect(run(ccJudge, 1600, 1600, () => sample(1600, { ccErrors: 20 }))[0]?.rules.cc).toEqual({
      state: true,
      figure: "20 in 1000 ms",
    });

    // 640 kbit/s from 1000 ms: low once that has lasted 3000 ms.
    const lowJudge = makeHealthJudge(
      health({ rules: { low: { bitrate_below_bps: 800_000, for_ms: 3000 } }, unhealthy_when: "low" }),
      0,
    );
    const bytesAt = (t: number) =>
      t <= 1000 ? (t * 7_000_000) / 8000 : (1000 * 7_000_000) / 8000 + ((t - 1000) * 640_000) / 8000;
    const low = run(lowJudge, 0, 6000, (t) => sample(t, { bytes: bytesAt(t) }));
    const turned = low.find((view) => view.state === "unhealthy");
    expect(turned?.rules.low?.figure).toBe("640 kbit/s");
    // The last second is all below from 2000 ms; it has been below for 3000 ms at 5000 ms.
    expect(turned?.t).toBe(5000);

    const p2Judge = makeHealthJudge(
      health({
        rules: { p2: { tr101290: ["PCR_repetition_error", "CRC_error"], count: 5, window_ms: 5000 } },
        unhealthy_when: "p2",
      }),
      0,
    );
    const counts = (t: number) => ({
      ...p2,
      PCR_repetition_error: Math.floor(t / 2000),
      CRC_error: t >= 6000 ? 3 : 0,
    });
    const p2Views = run(p2Judge, 0, 8000, (t) => sample(t, { p2: counts(t) }));
    // In the 5 s before 6000 ms: repetition errors at 2000, 4000, 6000 (3) and 3 CRC errors: 6 of the 5 asked.
    expect(p2Views.find((view) => view.state === "unhealthy")?.t).toBe(6000);
    expect(p2Views.find((view) => view.t === 5900)?.rules.p2?.figure).toBe("2 in 5000 ms");
  });
});
