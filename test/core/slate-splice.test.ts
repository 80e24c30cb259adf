/**
 * The slate at the TS level, over real encoder output decoded by real ffmpeg: a live H.264 + AAC stream with
 * MediaLive-like PIDs is cut, the slate clip (made by ffmpeg in the clip layout) is spliced in on the live's
 * PIDs under the live's PAT and PMT (splicer.ts), and the live comes back at its next random access point
 * (live-return.ts). ffmpeg must decode the whole without a word; the counters, the clock, the tables and the
 * live bytes are checked packet by packet.
 *
 * The live is cut between two PES (where an encoder that stops leaves it): a cut inside a picture would have
 * the decoder complain about that picture, which is the input's loss, not the splice.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readClip, type SlateClip } from "../../src/core/slate/clip.ts";
import { makeLiveReturn } from "../../src/core/slate/live-return.ts";
import { makeSplicer } from "../../src/core/slate/splicer.ts";
import { CLIP_PMT_PID, type SlateFormat } from "../../src/core/slate/types.ts";
import { pcrOf, readTimestamp, sectionLength, sectionOf } from "../../src/core/ts/index.ts";
import { withTwoPacketPmts } from "../support/long-pmt.ts";
import { buildPmt } from "../support/ts-generator.ts";

const PACKET = 188;
const MS = 27_000;
const FRAME_90K = 3600;
/** Where the live is lost (s of its PCR time): mid-GOP (a keyframe a second), so the return waits for one. */
const CUT = 3.5;

// --- packets -------------------------------------------------------------------------------------------------

const packetsOf = (ts: Uint8Array): Uint8Array[] =>
  Array.from({ length: Math.floor(ts.length / PACKET) }, (_, i) => ts.subarray(i * PACKET, (i + 1) * PACKET));
const pidOf = (p: Uint8Array) => (((p[1] ?? 0) & 0x1f) << 8) | (p[2] ?? 0);
const unitStart = (p: Uint8Array) => ((p[1] ?? 0) & 0x40) !== 0;
const control = (p: Uint8Array) => ((p[3] ?? 0) >> 4) & 3;
const hasPayload = (p: Uint8Array) => (control(p) & 1) !== 0;
const ccOf = (p: Uint8Array) => (p[3] ?? 0) & 0x0f;
const discontinuity = (p: Uint8Array) =>
  (control(p) & 2) !== 0 && (p[4] ?? 0) > 0 && ((p[5] ?? 0) & 0x80) !== 0;
const randomAccess = (p: Uint8Array) =>
  (control(p) & 2) !== 0 && (p[4] ?? 0) > 0 && ((p[5] ?? 0) & 0x40) !== 0;
const join_ = (parts: ReadonlyArray<Uint8Array>) => Buffer.concat(parts.map((part) => Buffer.from(part)));

/** The whole section that starts in this packet (the test's sections fit in one packet). */
const wholeSection = (p: Uint8Array) => {
  const section = sectionOf(p);
  return section === null ? null : section.slice(0, 3 + sectionLength(section));
};

/**
 * Our own continuity check: what is wrong, per packet index, across all PIDs. A payload packet's CC is the
 * previous packet's + 1, an adaptation-only packet's the previous one's, unless the packet itself carries the
 * discontinuity_indicator (a bridge): the packets after it then follow the bridge's CC.
 */
const continuityErrors = (packets: ReadonlyArray<Uint8Array>): string[] => {
  const last = new Map<number, number>();
  const errors: string[] = [];
  packets.forEach((p, i) => {
    const pid = pidOf(p);
    const before = last.get(pid);
    last.set(pid, ccOf(p));
    if (pid === 0x1fff || before === undefined || discontinuity(p)) return;
    const expected = hasPayload(p) ? (before + 1) & 15 : before;
    if (ccOf(p) !== expected) errors.push(`packet ${i} pid ${pid}: cc ${ccOf(p)} after ${before}`);
  });
  return errors;
};

// --- media -----------------------------------------------------------------------------------------------

let dir = "";
const ffmpeg = (...args: string[]) =>
  execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args], { encoding: "utf8" });

/**
 * What ffmpeg says decoding the file, at `-v warning` (stricter than error): its stderr lines. Its demuxer's
 * continuity check speaks only at debug level, so that run is read for "Continuity check failed" too.
 */
const decodeErrors = (file: string): string[] => {
  const decode = (level: string) =>
    spawnSync("ffmpeg", ["-hide_banner", "-v", level, "-i", file, "-f", "null", "-"], {
      encoding: "utf8",
      maxBuffer: 256 * 1024 * 1024,
    });
  const said = decode("warning");
  expect(said.status).toBe(0);
  const debug = decode("debug")
    .stderr.split("\n")
    .filter((line) => line.includes("Continuity check failed"));
  return [...said.stderr.split("\n").filter((line) => line.trim() !== ""), ...debug];
};

interface ProbePacket {
  readonly codec_type: string;
  readonly pts: number;
  readonly dts: number;
  readonly pos: string;
  readonly flags: string;
}
const probePackets = (file: string): ProbePacket[] =>
  (
    JSON.parse(
      execFileSync(
        "ffprobe",
        ["-v", "error", "-show_entries", "packet=codec_type,pts,dts,pos,flags", "-of", "json", file],
        { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
      ),
    ) as { packets?: ProbePacket[] }
  ).packets ?? [];

let live = new Uint8Array(0);
let clipBytes = new Uint8Array(0);
let clip: SlateClip;
let format: SlateFormat;

const LIVE_PMT = 480;
const LIVE_VIDEO = 481;
const LIVE_AUDIO = 482;

/** The live's format, read by hand from its first PAT and PMT. */
const formatOf = (ts: Uint8Array): SlateFormat => {
  const packets = packetsOf(ts);
  const pat = packets.filter((p) => pidOf(p) === 0 && unitStart(p)).map(wholeSection)[0];
  const pmt = packets.filter((p) => pidOf(p) === LIVE_PMT && unitStart(p)).map(wholeSection)[0];
  if (pat == null || pmt == null) throw new Error("no PAT/PMT in the live");
  return {
    program: ((pmt[3] ?? 0) << 8) | (pmt[4] ?? 0),
    pmtPid: LIVE_PMT,
    pcrPid: (((pmt[8] ?? 0) & 0x1f) << 8) | (pmt[9] ?? 0),
    pat,
    pmt,
    video: {
      pid: LIVE_VIDEO,
      streamType: 0x1b,
      codec: "h264",
      profile: "main",
      level: 3,
      width: 640,
      height: 360,
      frameRate: { num: 25, den: 1 },
      scan: "progressive",
      bitDepth: 8,
      chroma: "4:2:0",
    },
    audio: [{ pid: LIVE_AUDIO, streamType: 0x0f, codec: "aac", sampleRate: 48000, channels: 2 }],
    silent: [],
    ptsLead: 0,
  };
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "distributary-slate-"));
  const liveFile = join(dir, "live.ts");
  const clipFile = join(dir, "clip.ts");
  ffmpeg(
    ...[
      "-f",
      "lavfi",
      "-i",
      "testsrc2=size=640x360:rate=25",
      "-f",
      "lavfi",
      "-i",
      "sine=frequency=440:sample_rate=48000",
    ],
    ...["-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-bf", "3", "-pix_fmt", "yuv420p"],
    ...[
      "-c:a",
      "aac",
      "-ac",
      "2",
      "-mpegts_pmt_start_pid",
      "480",
      "-mpegts_start_pid",
      "481",
      "-f",
      "mpegts",
    ],
    liveFile,
  );
  ffmpeg(
    ...[
      "-f",
      "lavfi",
      "-i",
      "testsrc=size=640x360:rate=25",
      "-f",
      "lavfi",
      "-i",
      "anullsrc=r=48000:cl=stereo",
    ],
    ...["-t", "2", "-frames:v", "50", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
    ...["-bf", "0", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-flags", "+cgop"],
    ...["-x264-params", "repeat-headers=1", "-c:a", "aac", "-ac", "2"],
    ...[
      "-mpegts_pmt_start_pid",
      "4096",
      "-mpegts_start_pid",
      "256",
      "-pes_payload_size",
      "0",
      "-f",
      "mpegts",
    ],
    clipFile,
  );
  live = new Uint8Array(readFileSync(liveFile));
  clipBytes = new Uint8Array(readFileSync(clipFile));
  const read = readClip(clipBytes, 1);
  if ("unusable" in read) throw new Error(read.unusable);
  clip = read;
  format = formatOf(live);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The live's packet index nearest `seconds` of its PCR time where a PES starts (no PES is cut there). */
const cutAt = (seconds: number): { readonly at: number; readonly lastPcr: number } => {
  const packets = packetsOf(live);
  let first = -1;
  let lastPcr = -1;
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i] ?? new Uint8Array(PACKET);
    const pcr = pidOf(p) === format.pcrPid ? pcrOf(p) : -1;
    if (
      first >= 0 &&
      pcr - first >= seconds * 27_000_000 &&
      unitStart(p) &&
      pidOf(p) !== 0 &&
      pidOf(p) !== LIVE_PMT
    )
      return { at: i, lastPcr };
    if (pcr >= 0) {
      if (first < 0) first = pcr;
      lastPcr = pcr;
    }
  }
  throw new Error("live too short");
};

/** The latest PTS of any PES in `ts` (90 kHz; the test's times do not wrap). */
const latestPts = (ts: Uint8Array): number => {
  let latest = -1;
  for (const p of packetsOf(ts)) {
    if (!unitStart(p) || !hasPayload(p) || pidOf(p) === 0 || pidOf(p) === LIVE_PMT) continue;
    const pes = (control(p) & 2) !== 0 ? 5 + (p[4] ?? 0) : 4;
    if (p[pes] !== 0 || p[pes + 1] !== 0 || p[pes + 2] !== 1 || ((p[pes + 7] ?? 0) & 0x80) === 0) continue;
    latest = Math.max(latest, readTimestamp(p, pes + 9));
  }
  return latest;
};

/** Every take of `splicer` every 10 ms up to `ms`. */
const play = (splicer: ReturnType<typeof makeSplicer>, ms: number) => {
  const out: Uint8Array[] = [];
  for (let t = 10; t <= ms; t += 10) out.push(...splicer.take(t));
  return out;
};

interface Spliced {
  readonly file: string;
  readonly bytes: Uint8Array;
  /** Byte offsets: where the slate starts, where the live returns. */
  readonly slateAt: number;
  readonly returnAt: number;
  /** Where in the live file the return starts (its random access point). */
  readonly liveFrom: number;
  readonly lastPcr: number;
}

/** Live to `cut` s → `slateMs` of slate → the live from the cut on through a LiveReturn. */
const splice = (name: string, cut: number, slateMs: number, back = true): Spliced => {
  const { at, lastPcr } = cutAt(cut);
  const head = live.subarray(0, at * PACKET);
  const lastPts = latestPts(head);
  const slate = join_(play(makeSplicer(clip, format, { startPcr: lastPcr, lastPts }), slateMs));
  const parts: Uint8Array[] = [head, slate];
  let liveFrom = -1;
  if (back) {
    const liveReturn = makeLiveReturn(format);
    for (let from = at * PACKET; from < live.length; from += 7 * PACKET) {
      const chunk = live.subarray(from, Math.min(live.length, from + 7 * PACKET));
      const out = liveReturn.push(chunk);
      if (out === null) continue;
      if (liveFrom < 0) {
        // The first live packet sent, after any bridges.
        const firstLive = packetsOf(out).find((p) => hasPayload(p)) ?? new Uint8Array(0);
        for (let k = from; k < from + chunk.length; k += PACKET)
          if (Buffer.compare(live.subarray(k, k + PACKET), firstLive) === 0) liveFrom = k;
      }
      expect(out.length % PACKET).toBe(0);
      // Valid until the next push: kept as a copy.
      parts.push(out.slice());
    }
    expect(liveReturn.done()).toBe(true);
  }
  const bytes = join_(parts);
  const file = join(dir, `${name}.ts`);
  writeFileSync(file, bytes);
  return { file, bytes, slateAt: head.length, returnAt: head.length + slate.length, liveFrom, lastPcr };
};

describe("slate splice", () => {
  let spliced: Spliced;
  beforeAll(() => {
    spliced = splice("spliced", CUT, 4000);
  });

  it("reads the clip: its first PCR, 2 s of duration, times from 0", () => {
    expect(clip.duration).toBe(50 * FRAME_90K * 300);
    expect(clip.frameDuration).toBe(FRAME_90K * 300);
    expect(clip.times[0]).toBe(0);
    // The audio loops on its own period: a whole number of AAC frames (1024 samples at 48 kHz, 1920 ticks).
    expect((clip.audioPeriods[0] ?? 0) % (1920 * 300)).toBe(0);
    expect(pcrOf(clipBytes.subarray(0)) === -1 || pcrOf(clipBytes) === clip.firstPcr).toBe(true);
  });

  it("reads the same clip when its PMT spans two packets", () => {
    const long = readClip(withTwoPacketPmts(clipBytes, CLIP_PMT_PID), 1);
    if ("unusable" in long) throw new Error(long.unusable);
    const { packets: _p, count, pids, times: _t, ...figures } = clip;
    const { packets: _lp, count: longCount, pids: longPids, times: _lt, ...longFigures } = long;
    expect(longFigures).toEqual(figures);
    const pmts = pids.filter((pid) => pid === CLIP_PMT_PID).length;
    expect(pmts).toBeGreaterThan(0);
    expect(longCount).toBe(count + pmts);
    expect(longPids.filter((pid) => pid === CLIP_PMT_PID).length).toBe(2 * pmts);
  });

  it("refuses a clip not in the layout, saying why", () => {
    expect(readClip(live, 1)).toEqual({ unusable: "the clip's PMT is on 0x1e0, not 0x1000" });
    expect(readClip(clipBytes, 2)).toMatchObject({
      unusable: expect.stringContaining("needs 2 audio stream(s)"),
    });
    expect(readClip(clipBytes.subarray(0, 1000), 1)).toMatchObject({
      unusable: expect.stringContaining("188"),
    });
  });

  it("decodes without a word from ffmpeg across both switches", () => {
    expect(decodeErrors(spliced.file)).toEqual([]);
  });

  it("keeps every PID's continuity counter, or flags the jump", () => {
    expect(continuityErrors(packetsOf(spliced.bytes))).toEqual([]);
    // The check can fail: the same file without the slate's bridges.
    const unbridged = packetsOf(spliced.bytes).filter(
      (p, i) =>
        !(
          i * PACKET >= spliced.slateAt &&
          i * PACKET < spliced.returnAt &&
          !hasPayload(p) &&
          discontinuity(p)
        ),
    );
    expect(continuityErrors(unbridged).length).toBeGreaterThan(0);
  });

  it("continues the video's clock from where the live stopped", () => {
    const video = probePackets(spliced.file).filter((p) => p.codec_type === "video");
    const liveVideo = video.filter((p) => Number(p.pos) < spliced.slateAt);
    const slateVideo = video.filter(
      (p) => Number(p.pos) >= spliced.slateAt && Number(p.pos) < spliced.returnAt,
    );
    expect(slateVideo.length).toBeGreaterThanOrEqual(95);
    const liveLast = Math.max(...liveVideo.map((p) => p.pts));
    const liveLastDts = Math.max(...liveVideo.map((p) => p.dts));
    // The clip's own distance from its PCR to its first picture (the mux delay).
    const clipFirstPts = probePackets(join(dir, "clip.ts")).find((p) => p.codec_type === "video")?.pts ?? 0;
    const clipDelay = clipFirstPts - clip.firstPcr / 300;
    const first = slateVideo[0]?.pts ?? 0;
    expect(first).toBeGreaterThan(liveLast);
    expect(first - liveLast).toBeLessThanOrEqual(FRAME_90K + clipDelay);
    expect(slateVideo[0]?.dts ?? 0).toBeGreaterThan(liveLastDts);
    // The slate's pictures go on one frame apart (no B-frames in the clip: decode order is display order).
    slateVideo.forEach((p, i) => {
      if (i > 0) expect(p.pts - (slateVideo[i - 1]?.pts ?? 0)).toBe(FRAME_90K);
    });
  });

  it("carries the slate on the channel's PIDs under the channel's own PAT and PMT, every 100 ms", () => {
    const slate = packetsOf(spliced.bytes.subarray(spliced.slateAt, spliced.returnAt));
    const pids = new Set(slate.map(pidOf));
    expect([...pids].sort((a, b) => a - b)).toEqual([0, LIVE_PMT, LIVE_VIDEO, LIVE_AUDIO]);
    let time = -1;
    let lastPat = -1;
    let pats = 0;
    for (const p of slate) {
      const pcr = pidOf(p) === format.pcrPid ? pcrOf(p) : -1;
      if (pcr >= 0) time = pcr;
      if (!unitStart(p)) continue;
      if (pidOf(p) === 0) {
        expect(Buffer.from(wholeSection(p) ?? [])).toEqual(Buffer.from(format.pat));
        if (lastPat >= 0) expect(time - lastPat).toBeLessThanOrEqual(100 * MS);
        lastPat = time;
        pats += 1;
      }
      if (pidOf(p) === LIVE_PMT) expect(Buffer.from(wholeSection(p) ?? [])).toEqual(Buffer.from(format.pmt));
    }
    expect(pats).toBeGreaterThanOrEqual(40);
    // The first take starts with the switch: a bridge on every PID, then the PAT and the PMT.
    const bridges = slate.slice(0, 4);
    expect(bridges.map(pidOf)).toEqual([0, LIVE_PMT, LIVE_VIDEO, LIVE_AUDIO]);
    for (const p of bridges) expect([control(p), ccOf(p), discontinuity(p)]).toEqual([2, 15, true]);
    // The video's bridge carries the slate's first PCR: the live's clock, moved on no further than needed for
    // the slate's first PTS to come after the live's last.
    const firstPcr = pcrOf(bridges[2] ?? new Uint8Array());
    expect(firstPcr).toBe(
      slate
        .slice(6)
        .map((p) => pcrOf(p))
        .find((pcr) => pcr >= 0),
    );
    expect(firstPcr - spliced.lastPcr).toBeGreaterThanOrEqual(0);
    expect(firstPcr - spliced.lastPcr).toBeLessThanOrEqual(250 * MS);
    expect(slate.slice(4, 6).map((p) => [pidOf(p), ccOf(p)])).toEqual([
      [0, 0],
      [LIVE_PMT, 0],
    ]);
  });

  it("returns at the live's random access point, the live byte for byte", () => {
    expect(spliced.liveFrom).toBeGreaterThan(0);
    const firstLive = live.subarray(spliced.liveFrom, spliced.liveFrom + PACKET);
    expect(pidOf(firstLive)).toBe(LIVE_VIDEO);
    expect(unitStart(firstLive) && randomAccess(firstLive)).toBe(true);
    const returned = packetsOf(spliced.bytes.subarray(spliced.returnAt));
    // Before the first live packet: bridges only.
    const bridges = returned.filter((p) => !hasPayload(p) && discontinuity(p) && pcrOf(p) < 0);
    expect(new Set(bridges.map(pidOf))).toEqual(new Set([0, LIVE_PMT, LIVE_VIDEO, LIVE_AUDIO, 0x11]));
    expect(Buffer.compare(returned.find((p) => hasPayload(p)) ?? new Uint8Array(), firstLive)).toBe(0);
    const rest = join_(returned.filter((p) => !bridges.includes(p)));
    expect(rest.length).toBe(live.length - spliced.liveFrom);
    expect(Buffer.compare(rest, live.subarray(spliced.liveFrom))).toBe(0);
  });

  it("loops: 5 s of slate from a 2 s clip, its clock never going back, decoded clean", () => {
    const looped = splice("looped", CUT, 5000, false);
    expect(decodeErrors(looped.file)).toEqual([]);
    expect(continuityErrors(packetsOf(looped.bytes))).toEqual([]);
    const video = probePackets(looped.file).filter((p) => p.codec_type === "video");
    const slateVideo = video.filter((p) => Number(p.pos) >= looped.slateAt);
    expect(slateVideo.length).toBeGreaterThanOrEqual(124);
    slateVideo.forEach((p, i) => {
      if (i > 0) expect(p.pts - (slateVideo[i - 1]?.pts ?? 0)).toBe(FRAME_90K);
    });
    const audio = probePackets(looped.file).filter(
      (p) => p.codec_type === "audio" && Number(p.pos) >= looped.slateAt,
    );
    audio.forEach((p, i) => {
      if (i > 0) expect(p.pts).toBeGreaterThan(audio[i - 1]?.pts ?? 0);
    });
    // The PCR too goes on across the loops.
    let previous = -1;
    for (const p of packetsOf(looped.bytes.subarray(looped.slateAt))) {
      const pcr = pcrOf(p);
      if (pcr < 0) continue;
      expect(pcr).toBeGreaterThanOrEqual(previous);
      previous = pcr;
    }
    expect(previous - looped.lastPcr).toBeGreaterThan(4900 * MS);
  });

  it("sends the PCR on its own PID when the channel's PCR PID is not its video", () => {
    const PCR_PID = 0x1f0;
    const pmt = buildPmt({
      program: format.program,
      pcrPid: PCR_PID,
      streams: [
        { streamType: 0x1b, pid: LIVE_VIDEO },
        { streamType: 0x0f, pid: LIVE_AUDIO },
      ],
    });
    const own: SlateFormat = { ...format, pcrPid: PCR_PID, pmt };
    const start = 1_000_000 * 300;
    const out = join_(play(makeSplicer(clip, own, { startPcr: start }), 3000));
    const packets = packetsOf(out);
    const onPid = packets.filter((p) => pidOf(p) === PCR_PID);
    expect(onPid.length).toBeGreaterThan(25);
    expect(onPid.every((p) => control(p) === 2 && ccOf(p) === 15)).toBe(true);
    const pcrs = onPid.map((p) => pcrOf(p));
    expect(pcrs[0]).toBe(start);
    expect(discontinuity(onPid[0] ?? new Uint8Array())).toBe(true);
    // The bridge carries the first PCR, the first clip packet's PCR beside it the same; then on.
    expect(pcrs[1]).toBe(start);
    pcrs.forEach((pcr, i) => {
      if (i > 1) expect(pcr).toBeGreaterThan(pcrs[i - 1] ?? 0);
    });
    expect((pcrs.at(-1) ?? 0) - start).toBeGreaterThan(2900 * MS);
    expect(continuityErrors(packets)).toEqual([]);
    const file = join(dir, "pcr-pid.ts");
    writeFileSync(file, out);
    expect(decodeErrors(file)).toEqual([]);
  });

  it("ends every take between two PES, even where the clip's clock runs inside a picture (CBR)", () => {
    // A constant-rate clip: its PCR advances packet by packet, inside a picture's PES too.
    const file = join(dir, "clip-cbr.ts");
    ffmpeg(
      ...[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=640x360:rate=25",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=48000:cl=stereo",
      ],
      ...["-t", "2", "-frames:v", "50", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
      ...["-bf", "0", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-flags", "+cgop"],
      ...["-x264-params", "repeat-headers=1", "-c:a", "aac", "-ac", "2", "-muxrate", "3M"],
      ...[
        "-mpegts_pmt_start_pid",
        "4096",
        "-mpegts_start_pid",
        "256",
        "-pes_payload_size",
        "0",
        "-f",
        "mpegts",
      ],
      file,
    );
    const cbr = readClip(new Uint8Array(readFileSync(file)), 1);
    if ("unusable" in cbr) throw new Error(cbr.unusable);
    const splicer = makeSplicer(cbr, format, { startPcr: 0 });
    /** Per PID, the take its PES under way began in. */
    const began = new Map<number, number>();
    const split: string[] = [];
    let sent = 0;
    for (let take = 1; take * 7 <= 3000; take++) {
      const packets = packetsOf(join_(splicer.take(take * 7)));
      sent += packets.length;
      for (const p of packets) {
        if (!hasPayload(p) || (pidOf(p) !== LIVE_VIDEO && pidOf(p) !== LIVE_AUDIO)) continue;
        if (unitStart(p)) began.set(pidOf(p), take);
        else if (began.get(pidOf(p)) !== take) split.push(`take ${take}: pid ${pidOf(p)}`);
      }
    }
    expect(sent).toBeGreaterThan(500);
    expect(split).toEqual([]);
  });

  it("paces the takes by the clip's clock", () => {
    const splicer = makeSplicer(clip, format, { startPcr: 5_000 * MS });
    const first = packetsOf(join_(splicer.take(1000)));
    const pcrs = first.map((p) => pcrOf(p)).filter((pcr) => pcr >= 0);
    const span = (pcrs.at(-1) ?? 0) - (pcrs[0] ?? 0);
    // Due by 1000 ms: the clip's PCRs up to 1000 ms (ffmpeg writes one every 80 ms or so, and at keyframes)
    // and its pictures 0 to 25 (one every 40 ms, the one at 1000 ms included).
    expect(span).toBeLessThanOrEqual(1000 * MS);
    expect(span).toBeGreaterThanOrEqual(1000 * MS - 2 * FRAME_90K * 300);
    expect(first.filter((p) => pidOf(p) === LIVE_VIDEO && unitStart(p)).length).toBe(26);
    expect(splicer.take(1000)).toEqual([]);
    const second = packetsOf(join_(splicer.take(2000)));
    expect(second.length).toBeGreaterThan(0);
    expect(second.every((p) => pcrOf(p) < 0 || pcrOf(p) > (pcrs.at(-1) ?? 0))).toBe(true);
    // Datagrams of 7 packets; the last of a take may be shorter.
    const datagrams = splicer.take(2500);
    expect(datagrams.slice(0, -1).every((d) => d.length === 7 * PACKET)).toBe(true);
    expect(splicer.lastCc().get(LIVE_VIDEO)).toBe(
      ccOf(
        packetsOf(join_(datagrams))
          .filter((p) => pidOf(p) === LIVE_VIDEO)
          .at(-1) ?? new Uint8Array(4),
      ),
    );
  });

  it("holds the live back until its random access point, then puts each bridge before its packet", () => {
    const liveReturn = makeLiveReturn(format);
    const { at } = cutAt(CUT);
    const packets = packetsOf(live).slice(at);
    const rap = packets.findIndex((p) => pidOf(p) === LIVE_VIDEO && unitStart(p) && randomAccess(p));
    expect(rap).toBeGreaterThan(7);
    // One chunk of everything before the random access point: held back.
    expect(liveReturn.push(join_(packets.slice(0, rap)))).toBeNull();
    expect(liveReturn.done()).toBe(false);
    // A 7-packet chunk from it on: its packets plus bridges, whole packets (the outputs cut datagrams).
    const out = liveReturn.push(join_(packets.slice(rap, rap + 7)));
    expect(out).not.toBeNull();
    const sent = packetsOf(out ?? new Uint8Array(0));
    expect(sent.length).toBeGreaterThan(7);
    expect(sent.filter((p) => !discontinuity(p)).map((p) => Buffer.from(p).toString("hex"))).toEqual(
      packets.slice(rap, rap + 7).map((p) => Buffer.from(p).toString("hex")),
    );
    expect(sent[0] && [pidOf(sent[0]), control(sent[0]), discontinuity(sent[0])]).toEqual([
      LIVE_VIDEO,
      2,
      true,
    ]);
    expect(ccOf(sent[0] ?? new Uint8Array(4))).toBe((ccOf(packets[rap] ?? new Uint8Array(4)) + 15) & 15);
    expect(Buffer.compare(sent[1] ?? new Uint8Array(), packets[rap] ?? new Uint8Array())).toBe(0);
  });
});
