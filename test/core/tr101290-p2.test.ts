import { describe, expect, it } from "vitest";
import { PacketCore } from "../../src/core/packet-core.ts";
import type { Tr101290Indicator } from "../../src/core/packet-core-events.ts";
import { PACKET, pcrOf, pidAt } from "../../src/core/ts/index.ts";
import { drain, ofType } from "../support/core.ts";
import { useTestStreams } from "../support/media.ts";
import { injectFault, packetClock, pcrPidOf, type TsFault } from "../support/ts-faults.ts";

// TR 101 290 second priority on real ffmpeg streams, each packet pushed at the time a sender pacing it by its
// PCR would send it (the clean stream's clock, also for its faulty copies: a fault moves no packet).
const stream = useTestStreams("tr101290-p2", 8, {
  default: [],
  pcr30: ["-pcr_period", "30"],
  pcr60: ["-pcr_period", "60"],
  pcr150: ["-pcr_period", "150"],
});

/** Pushes `ts` a packet at a time at `times` (no clock when absent), up to `untilMs` (all of it unless told). */
const pushAll = (core: PacketCore, ts: Uint8Array, times?: ReadonlyArray<number>, untilMs = Infinity) => {
  for (let i = 0; i * PACKET < ts.length && (times?.[i] ?? 0) <= untilMs; i++)
    core.push(ts.subarray(i * PACKET, (i + 1) * PACKET), times?.[i]);
  return core;
};

/** `ts` pushed into a new core whose PCR repetition limit is `limit`. */
const feed = (
  ts: Uint8Array,
  times: ReadonlyArray<number>,
  limit: "default" | "dvb" = "default",
  untilMs = Infinity,
) => {
  const core = PacketCore.load();
  core.pcrRepetition(limit);
  return pushAll(core, ts, times, untilMs);
};

const indicators = (core: PacketCore, indicator: Tr101290Indicator) =>
  ofType(drain(core), "tr101290").filter((event) => event.indicator === indicator);

/** The test's own count: intervals between the PCRs' arrivals over `limitMs`. */
const pcrIntervalsOver = (ts: Uint8Array, times: ReadonlyArray<number>, limitMs: number) => {
  const arrivals: number[] = [];
  for (let i = 0; i * PACKET < ts.length; i++)
    if (pcrOf(ts.subarray(i * PACKET, (i + 1) * PACKET)) >= 0) arrivals.push(times[i] ?? 0);
  return arrivals.filter((at, i) => i > 0 && at - (arrivals[i - 1] ?? 0) > limitMs).length;
};

const P2_CLEAN = {
  transportErrors: 0,
  crcErrors: 0,
  pcrRepetitionErrors: 0,
  pcrDiscontinuityErrors: 0,
  ptsErrors: 0,
};

describe("TR 101 290 second priority on ffmpeg's streams", () => {
  it("counts nothing on ffmpeg's default mux (a PCR every 80 ms at most), and keeps each PID's arrivals", () => {
    const ts = stream("default");
    const times = packetClock(ts);
    expect(pcrIntervalsOver(ts, times, 79)).toBeGreaterThan(0);
    expect(pcrIntervalsOver(ts, times, 80)).toBe(0);
    const core = feed(ts, times);
    const snapshot = core.snapshot();
    expect(snapshot.tr101290).toMatchObject({ ...P2_CLEAN, ccErrors: 0, patErrors: 0, pmtErrors: 0 });
    expect(ofType(drain(core), "tr101290")).toEqual([]);
    const pcrPid = pcrPidOf(ts);
    const lastPcrAt = times.findLast((_, i) => pcrOf(ts.subarray(i * PACKET, (i + 1) * PACKET)) >= 0);
    expect(snapshot.lastPcrMs).toBe(lastPcrAt);
    const video = snapshot.pids.find((pid) => pid.pid === pcrPid);
    expect(video).toMatchObject({
      lastPcrMs: lastPcrAt,
      lastSeenMs: times.findLast((_, i) => pidAt(ts, i * PACKET) === pcrPid),
    });
    // Every PES PID (video and audio) has its last PTS and its arrival; the tables' PIDs have none.
    const pes = snapshot.pids.filter((pid) => pid.lastPts !== null);
    expect(pes.map((pid) => pid.streamType).sort()).toEqual([0x0f, 0x1b]);
    for (const pid of pes) expect(pid.lastPtsMs).toBeGreaterThan((times.at(-1) ?? 0) - 700);
  });

  it("counts PCR_repetition_error at DVB's 40 ms with -pcr_period 60, none at the 100 ms default", () => {
    const ts = stream("pcr60");
    const times = packetClock(ts);
    const expected = pcrIntervalsOver(ts, times, 40);
    expect(expected).toBeGreaterThan(10);
    const dvb = feed(ts, times, "dvb");
    expect(dvb.snapshot().tr101290).toMatchObject({
      pcrRepetitionErrors: expected,
      pcrDiscontinuityErrors: 0,
    });
    expect(indicators(dvb, "PCR_repetition_error").map((event) => event.pid)).toEqual(
      Array(expected).fill(pcrPidOf(ts)),
    );
    expect(feed(ts, times).snapshot().tr101290.pcrRepetitionErrors).toBe(0);
    // The limit outlives a reset; without a clock, nothing is timed.
    dvb.reset();
    expect(pushAll(dvb, ts, times).snapshot().tr101290.pcrRepetitionErrors).toBe(expected);
    dvb.reset();
    expect(pushAll(dvb, ts).snapshot()).toMatchObject({ tr101290: P2_CLEAN, lastPcrMs: null });
  });

  // PCRs 120 or 160 ms apart also differ by over 100 ms in value: a PCR_discontinuity_indicator_error each
  // as TR 101 290 defines it (outside 0…100 ms without the flag), beside the repetition error.
  it("counts none at DVB's 40 ms with -pcr_period 30, and both PCR errors at 100 ms with -pcr_period 150", () => {
    const fast = stream("pcr30");
    expect(feed(fast, packetClock(fast), "dvb").snapshot().tr101290.pcrRepetitionErrors).toBe(0);
    const slow = stream("pcr150");
    const times = packetClock(slow);
    const expected = pcrIntervalsOver(slow, times, 100);
    expect(expected).toBeGreaterThan(10);
    expect(feed(slow, times).snapshot().tr101290).toMatchObject({
      ...P2_CLEAN,
      pcrRepetitionErrors: expected,
      pcrDiscontinuityErrors: expected,
    });
  });
});

describe("TR 101 290 second priority, each fault injected into a clean ffmpeg stream", () => {
  const inject = (fault: TsFault) => {
    const clean = stream("default");
    const times = packetClock(clean);
    return { times, ...injectFault(clean, times, fault) };
  };
  const pidsOf = (name: string) => {
    const snapshot = feed(stream(name), packetClock(stream(name))).snapshot();
    const [program] = snapshot.programs;
    const pid = (type: number) => snapshot.pids.find((entry) => entry.streamType === type)?.pid ?? -1;
    return { pmt: program?.pmtPid ?? -1, video: pid(0x1b), audio: pid(0x0f) };
  };

  it("counts each unflagged PCR jump once as a PCR_discontinuity_indicator_error", () => {
    const { ts, times, injected, atMs } = inject({ kind: "pcr_jump", count: 3 });
    expect(injected).toBe(3);
    const core = feed(ts, times);
    expect(core.snapshot().tr101290).toMatchObject({ ...P2_CLEAN, pcrDiscontinuityErrors: 3, ccErrors: 0 });
    expect(indicators(core, "PCR_discontinuity_indicator_error").map((event) => event.atMs)).toEqual(atMs);
    const backwards = inject({ kind: "pcr_jump", count: 2, jumpMs: -300 });
    expect(feed(backwards.ts, backwards.times).snapshot().tr101290.pcrDiscontinuityErrors).toBe(2);
    // The same jumps with the discontinuity_indicator set are announced, no error.
    const flagged = inject({ kind: "pcr_jump", count: 3, flagged: true });
    expect(feed(flagged.ts, flagged.times).snapshot().tr101290).toMatchObject({ ...P2_CLEAN, ccErrors: 0 });
  });

  it("counts each PTS gap over 700 ms once as a PTS_error on its PID", () => {
    const { video } = pidsOf("default");
    const { ts, times, injected } = inject({ kind: "pts_gap", pid: video, count: 3, gapMs: 1000 });
    expect(injected).toBe(3);
    const core = feed(ts, times);
    const snapshot = core.snapshot();
    expect(snapshot.tr101290).toMatchObject({ ...P2_CLEAN, ptsErrors: 3 });
    expect(snapshot.pids.find((pid) => pid.pid === video)?.ptsErrors).toBe(3);
    expect(indicators(core, "PTS_error").map((event) => event.pid)).toEqual([video, video, video]);
    // A gap under the limit is none.
    const short = inject({ kind: "pts_gap", pid: video, count: 3, gapMs: 500 });
    expect(feed(short.ts, short.times).snapshot().tr101290.ptsErrors).toBe(0);
  });

  it("counts each PMT with a bad CRC as a CRC_error, and loses no PMT over it", () => {
    const { pmt } = pidsOf("default");
    const { ts, times, injected } = inject({ kind: "crc", pid: pmt, count: 4 });
    expect(injected).toBe(4);
    const core = feed(ts, times);
    expect(core.snapshot().tr101290).toMatchObject({ ...P2_CLEAN, crcErrors: 4, pmtErrors: 0 });
    expect(ofType(drain(core), "crcError").map((event) => [event.pid, event.tableId])).toEqual(
      Array(4).fill([pmt, 2]),
    );
  });

  it("counts each transport_error_indicator as a Transport_error (the skipped packet breaks its PID's count)", () => {
    const { video } = pidsOf("default");
    const { ts, times, injected } = inject({ kind: "transport_error", pid: video, count: 5 });
    expect(injected).toBe(5);
    const core = feed(ts, times);
    expect(core.snapshot().tr101290).toMatchObject({ ...P2_CLEAN, transportErrors: 5, ccErrors: 5 });
    expect(indicators(core, "Transport_error").map((event) => event.pid)).toEqual(Array(5).fill(video));
  });

  it("shows a dropped PID by its last arrival, and its return as one PTS error and a continuity error", () => {
    const { audio, video } = pidsOf("default");
    const { ts, times, injected } = inject({ kind: "drop_pid", pid: audio, fromMs: 3000, forMs: 1400 });
    expect(injected).toBeGreaterThan(50);
    // The continuity counter is 4 bits: a gap of a multiple of 16 packets goes unseen.
    const ccErrors = injected % 16 === 0 ? 0 : 1;
    const during = feed(ts, times, "default", 4400).snapshot();
    const lastSeen = (pid: number) => during.pids.find((entry) => entry.pid === pid)?.lastSeenMs ?? -1;
    expect(lastSeen(audio)).toBeLessThan(3000);
    expect(lastSeen(video)).toBeGreaterThan(4390);
    expect(during.tr101290.ptsErrors).toBe(0);
    const after = feed(ts, times).snapshot();
    expect(after.tr101290).toMatchObject({ ...P2_CLEAN, ptsErrors: 1, ccErrors, pidErrors: 0 });
    expect(after.pids.find((entry) => entry.pid === audio)).toMatchObject({ ptsErrors: 1, ccErrors });
  });

  it("counts a continuity burst exactly, and nothing else", () => {
    const { video } = pidsOf("default");
    const { ts, times, injected, atMs } = inject({ kind: "cc_burst", pid: video, count: 20, fromMs: 4000 });
    expect(injected).toBe(20);
    expect((atMs.at(-1) ?? 0) - (atMs[0] ?? 0)).toBeLessThan(1000);
    const core = feed(ts, times);
    expect(core.snapshot().tr101290).toMatchObject({ ...P2_CLEAN, ccErrors: 20 });
    expect(ofType(drain(core), "ccError").length).toBe(20);
  });
});
