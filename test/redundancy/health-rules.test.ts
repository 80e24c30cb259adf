import { Either, Schema } from "effect";
import { describe, expect, it } from "vitest";
import { PacketCore } from "../../src/core/packet-core.ts";
import { NULL_PID, PACKET, pidAt } from "../../src/core/ts/index.ts";
import { resolveHealth } from "../../src/domain/health/health.ts";
import { type HealthView, makeHealthJudge } from "../../src/domain/health/health-judge.ts";
import { HealthConfigSchema, P2_INDICATORS } from "../../src/domain/health/health-schema.ts";
import { sampleOf } from "../../src/effects/ingest/input-health.ts";
import { useTestStreams } from "../support/media.ts";
import { injectFault, packetClock, type TsFault } from "../support/ts-faults.ts";

// Each TS rule of redundancy.health fired by a stream made for it: a real ffmpeg stream (or a fault injected
// into it) pushed packet by packet into a packet core at the times a sender pacing it by its PCR would send
// it, and judged every 100 ms as a running channel judges its inputs (input-health.ts `sampleOf`).
const SAMPLE_MS = 100;
const stream = useTestStreams("health-rules", 8, { default: [], pcr150: ["-pcr_period", "150"] });

/** The stream judged by `rules` (their names in `unhealthy_when` joined by ||): each rule's first time true. */
const judged = (ts: Uint8Array, times: ReadonlyArray<number>, rules: Record<string, unknown>) => {
  const config = Schema.decodeUnknownSync(HealthConfigSchema)({
    rules,
    unhealthy_when: Object.keys(rules).join(" || "),
  });
  const health = Either.getOrThrow(resolveHealth(config));
  const core = PacketCore.load();
  core.pcrRepetition(
    Object.values(config.rules).some((rule) => "limits" in rule && rule.limits === "dvb") ? "dvb" : "default",
  );
  const start = times[0] ?? 0;
  const judge = makeHealthJudge(health, start);
  const pids = { video: null, audio: null };
  const views: Array<{ readonly atMs: number; readonly view: HealthView }> = [];
  let next = start + SAMPLE_MS;
  const sample = (atMs: number) => {
    views.push({ atMs, view: judge.sample(sampleOf(core.snapshot(), pids, atMs, {})) });
    core.drainEvents(() => {});
  };
  for (let i = 0; i * PACKET < ts.length; i++) {
    const at = times[i] ?? 0;
    for (; next <= at; next += SAMPLE_MS) sample(next);
    core.push(ts.subarray(i * PACKET, (i + 1) * PACKET), at);
  }
  sample(next);
  const firstTrue = (name: string) => views.find((entry) => entry.view.rules[name]?.state === true);
  return {
    firstTrue: (name: string) => firstTrue(name)?.atMs ?? null,
    figure: (name: string) => firstTrue(name)?.view.rules[name]?.figure,
    everTrue: (name: string) => firstTrue(name) !== undefined,
    unhealthyAt: views.find((entry) => entry.view.state === "unhealthy")?.atMs ?? null,
  };
};

/** The programme's PIDs, read by a core from the clean stream. */
const pidsOf = (ts: Uint8Array) => {
  const core = PacketCore.load();
  for (let at = 0; at < ts.length; at += PACKET) core.push(ts.subarray(at, at + PACKET));
  const snapshot = core.snapshot();
  const pid = (type: number) => snapshot.pids.find((entry) => entry.streamType === type)?.pid ?? -1;
  return { pmt: snapshot.programs[0]?.pmtPid ?? -1, video: pid(0x1b), audio: pid(0x0f) };
};

const ALL_RULES = {
  no_video: { pid_missing: "video", for_ms: 1000 },
  no_audio: { pid_missing: "audio", for_ms: 1000 },
  no_pcr: { pcr_missing_ms: 500 },
  no_pts: { pts_missing_ms: 800 },
  cc: { cc_errors: 20, window_ms: 1000 },
  low: { bitrate_below_bps: 300_000, for_ms: 1000 },
  p2: {
    tr101290: P2_INDICATORS,
    count: 1,
    window_ms: 5000,
  },
};

describe("each TS health rule, fired by a stream made for it", () => {
  const inject = (fault: TsFault) => {
    const clean = stream("default");
    const times = packetClock(clean);
    return { times, ...injectFault(clean, times, fault) };
  };

  it("the clean stream (ffmpeg's default mux) fires none of them, the DVB PCR limit aside", () => {
    const ts = stream("default");
    const result = judged(ts, packetClock(ts), ALL_RULES);
    for (const name of Object.keys(ALL_RULES)) expect(result.everTrue(name), name).toBe(false);
    expect(result.unhealthyAt).toBeNull();
    // ffmpeg puts a PCR up to 80 ms apart: within ISO 13818-1's 100 ms, not within DVB's 40 ms.
    const dvb = judged(ts, packetClock(ts), {
      pcr_dvb: { tr101290: ["PCR_repetition_error"], count: 1, window_ms: 5000, limits: "dvb" },
    });
    expect(dvb.everTrue("pcr_dvb")).toBe(true);
  });

  it("the video PID dropped for 2 s: the PID, its PCR and its PTS missing, the bitrate low, each after its own time", () => {
    const { video } = pidsOf(stream("default"));
    const dropAt = 3000;
    const nulled = inject({ kind: "drop_pid", pid: video, fromMs: dropAt, forMs: 2000 });
    // Gone from the wire, not replaced by null packets (those would keep the bitrate).
    const kept = [...nulled.times.keys()].filter((i) => pidAt(nulled.ts.subarray(i * PACKET)) !== NULL_PID);
    const ts = Buffer.concat(kept.map((i) => nulled.ts.subarray(i * PACKET, (i + 1) * PACKET)));
    const times = kept.map((i) => nulled.times[i] ?? 0);
    const result = judged(ts, times, ALL_RULES);
    const delay = (name: string) => (result.firstTrue(name) ?? Number.NaN) - dropAt;
    console.log(
      `video dropped: ${["no_video", "no_pcr", "no_pts", "low"].map((name) => `${name} true ${Math.round(delay(name))} ms after (${result.figure(name)})`).join(", ")}`,
    );
    // Each holds once its time has passed since the PID's last packet (a sample every 100 ms; the last PCR or
    // picture came a little before the drop).
    expect(delay("no_video")).toBeGreaterThanOrEqual(1000 - SAMPLE_MS);
    expect(delay("no_video")).toBeLessThanOrEqual(1000 + SAMPLE_MS);
    expect(delay("no_pcr")).toBeGreaterThanOrEqual(500 - 100);
    expect(delay("no_pcr")).toBeLessThanOrEqual(500 + SAMPLE_MS);
    expect(delay("no_pts")).toBeGreaterThanOrEqual(800 - 100);
    expect(delay("no_pts")).toBeLessThanOrEqual(800 + SAMPLE_MS);
    expect(delay("low")).toBeGreaterThanOrEqual(1000);
    expect(delay("low")).toBeLessThanOrEqual(2000);
    expect(result.everTrue("no_audio")).toBe(false);
    expect(result.figure("no_video")).toMatch(/ms since its last packet/);
  });

  it("a burst of 25 continuity errors fires cc_errors 20 in 1000 ms; 15 do not", () => {
    const { video } = pidsOf(stream("default"));
    const burst = inject({ kind: "cc_burst", pid: video, count: 25, fromMs: 3000 });
    const small = inject({ kind: "cc_burst", pid: video, count: 15, fromMs: 3000 });
    const cc = { cc: ALL_RULES.cc };
    const fired = judged(burst.ts, burst.times, cc);
    expect(fired.firstTrue("cc")).toBeGreaterThanOrEqual(burst.atMs[19] ?? 0);
    expect(fired.figure("cc")).toMatch(/^\d+ in 1000 ms$/);
    expect(judged(small.ts, small.times, cc).everTrue("cc")).toBe(false);
  });

  it("each TR 101 290 second-priority indicator fires its rule once its count is reached, not before", () => {
    const { video, pmt } = pidsOf(stream("default"));
    const cases: ReadonlyArray<readonly [string, TsFault, number]> = [
      ["PCR_discontinuity_indicator_error", { kind: "pcr_jump", count: 3 }, 3],
      ["PTS_error", { kind: "pts_gap", pid: video, count: 2, gapMs: 1000 }, 2],
      ["CRC_error", { kind: "crc", pid: pmt, count: 4 }, 4],
      ["Transport_error", { kind: "transport_error", pid: video, count: 5 }, 5],
    ];
    for (const [indicator, fault, count] of cases) {
      const { ts, times, atMs, injected } = inject(fault);
      expect(injected, indicator).toBe(count);
      const rule = { tr101290: [indicator], count, window_ms: 8000 };
      const fired = judged(ts, times, { rule });
      const last = atMs[count - 1] ?? 0;
      expect(fired.firstTrue("rule"), indicator).toBeGreaterThanOrEqual(last);
      // Raised when seen: a PTS gap at the picture after it.
      const seen = last + ("gapMs" in fault ? (fault.gapMs ?? 0) : 0);
      expect(fired.firstTrue("rule"), indicator).toBeLessThanOrEqual(seen + 2 * SAMPLE_MS);
      // One fewer than injected is not enough.
      expect(judged(ts, times, { rule: { ...rule, count: count + 1 } }).everTrue("rule"), indicator).toBe(
        false,
      );
    }
    // A PCR every 150 ms (ffmpeg -pcr_period 150) against the 100 ms limit.
    const slow = stream("pcr150");
    const repetition = { tr101290: ["PCR_repetition_error"], count: 5, window_ms: 5000 };
    expect(judged(slow, packetClock(slow), { repetition }).everTrue("repetition")).toBe(true);
  });
});
