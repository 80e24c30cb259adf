/**
 * A prepared slate clip, read once: the ffmpeg-made TS (layout in types.ts) as the splicer needs it. Its
 * packets in file order in one buffer with each one's PID and time, the clip's first
 * PCR and its duration, so that the splicer only copies, renumbers and re-times packets.
 *
 *   const clip = readClip(bytes, format.audio.length)
 *   if ("unusable" in clip) say(clip.unusable)
 *
 * A packet's time is the PCR of the latest PCR-bearing packet at or before it, counted from the clip's first
 * PCR (27 MHz); a packet before the first PCR is at 0. The duration is the video's frame count × frame
 * duration (last PTS − first PTS + one frame), so that the next loop's first picture follows the last one by
 * exactly one frame.
 */

import { ticksBetween } from "../flv/timestamps.ts";
import {
  PACKET,
  PCR_WRAP,
  type Pmt,
  PTS_WRAP,
  packetPts,
  pcrOf,
  pidAt,
  readPmt,
  SectionReader,
  SYNC,
  unitStartAt,
} from "../ts/index.ts";
import { isRandomAccess, pmtPidOf } from "../ts-start.ts";
import { CLIP_FIRST_AUDIO_PID, CLIP_PMT_PID, CLIP_VIDEO_PID } from "./types.ts";

export interface SlateClip {
  /** The clip's packets in file order, 188 bytes each: `count` packets. */
  readonly packets: Uint8Array;
  readonly count: number;
  /** Each packet's PID. */
  readonly pids: Uint16Array;
  /** Each packet's time, 27 MHz after `firstPcr` (see above). */
  readonly times: Float64Array;
  /** The clip's first PCR (27 MHz). */
  readonly firstPcr: number;
  /** One loop of the video, 27 MHz: a whole number of frames. */
  readonly duration: number;
  /**
   * One loop of each audio stream, 27 MHz: its PES span plus one PES step (the maker puts one frame in each).
   * It is not the video's: whole audio frames never fill a whole number of pictures exactly, so each stream
   * loops on its own period and neither overlaps itself nor leaves a gap.
   */
  readonly audioPeriods: ReadonlyArray<number>;
  /** The earliest PTS of the clip's first loop on any of its streams (90 kHz, as the clip has it). */
  readonly firstPts: number;
  /** One frame, 27 MHz. */
  readonly frameDuration: number;
  readonly audioCount: number;
  /** The PMT stream type of the clip's video (0x1b, 0x24). */
  readonly videoStreamType: number;
}

/** The PTS at the start of the PES this packet begins, or -1. */
const ptsOf = (packet: Uint8Array): number => (unitStartAt(packet) ? packetPts(packet) : -1);

const hex = (pid: number) => `0x${pid.toString(16)}`;

export const readClip = (ts: Uint8Array, audioCount: number): SlateClip | { unusable: string } => {
  if (ts.length < PACKET || ts.length % PACKET !== 0)
    return { unusable: `the clip is ${ts.length} bytes, not a whole number of 188-byte TS packets` };
  const count = ts.length / PACKET;
  const packets = ts.slice();
  const pids = new Uint16Array(count);
  const times = new Float64Array(count);
  const audioPids = Array.from({ length: audioCount }, (_, i) => CLIP_FIRST_AUDIO_PID + i);
  const carried = (pid: number) =>
    pid === CLIP_VIDEO_PID || (pid > CLIP_VIDEO_PID && pid <= CLIP_VIDEO_PID + audioCount);

  let pmtPid = -1;
  let pmt = null as Pmt | null;
  // The first PAT's PMT PID, then the first PMT on it: sections reassembled, CRC checked.
  const patReader = new SectionReader((section) => {
    pmtPid = pmtPidOf(section) ?? -1;
  });
  const pmtReader = new SectionReader((section) => {
    pmt = readPmt(section);
  });
  let firstPcr = -1;
  let pcrOnOther = -1;
  let time = 0;
  let firstVideo = -1;
  const seen = new Set<number>();
  let firstPts = -1;
  let earliestPts = -1;
  let minPts = 0;
  let maxPts = 0;
  let pictures = 0;
  let step = Number.POSITIVE_INFINITY;
  let previousPts = -1;

  // Each audio stream's last PES PTS (after its first) and its smallest step.
  const audioSpans = audioPids.map(() => ({ first: -1, last: 0, step: Number.POSITIVE_INFINITY }));
  for (let i = 0; i < count; i++) {
    const packet = packets.subarray(i * PACKET, (i + 1) * PACKET);
    if (packet[0] !== SYNC)
      return { unusable: `packet ${i} of the clip does not start with the sync byte 0x47` };
    const pid = pidAt(packet);
    pids[i] = pid;
    const unitStart = unitStartAt(packet);
    if (pid === 0 && pmtPid === -1) patReader.read(packet);
    else if (pid === pmtPid && pmt === null) pmtReader.read(packet);
    const pcr = pcrOf(packet);
    if (pcr >= 0) {
      if (pid !== CLIP_VIDEO_PID) pcrOnOther = pid;
      else {
        if (firstPcr < 0) firstPcr = pcr;
        time = (((pcr - firstPcr) % PCR_WRAP) + PCR_WRAP) % PCR_WRAP;
      }
    }
    times[i] = time;
    if (carried(pid)) seen.add(pid);
    if (carried(pid) && unitStart) {
      const pts = ptsOf(packet);
      if (pts >= 0 && (earliestPts < 0 || ticksBetween(earliestPts, pts) < 0)) earliestPts = pts;
    }
    const span = pid > CLIP_VIDEO_PID && unitStart ? audioSpans[pid - CLIP_FIRST_AUDIO_PID] : undefined;
    if (span !== undefined) {
      const pts = ptsOf(packet);
      if (pts >= 0) {
        if (span.first < 0) span.first = pts;
        const at = (((pts - span.first) % PTS_WRAP) + PTS_WRAP) % PTS_WRAP;
        if (at > span.last) {
          span.step = Math.min(span.step, at - span.last);
          span.last = at;
        }
      }
    }
    if (pid === CLIP_VIDEO_PID && unitStart) {
      if (firstVideo === -1) firstVideo = i;
      const pts = ptsOf(packet);
      if (pts >= 0) {
        if (firstPts < 0) firstPts = pts;
        const at = (((pts - firstPts) % PTS_WRAP) + PTS_WRAP) % PTS_WRAP;
        const signed = at >= PTS_WRAP / 2 ? at - PTS_WRAP : at;
        if (signed < minPts) minPts = signed;
        if (signed > maxPts) maxPts = signed;
        if (previousPts >= 0) {
          const delta = Math.abs(signed - previousPts);
          if (delta > 0 && delta < step) step = delta;
        }
        previousPts = signed;
        pictures += 1;
      }
    }
  }

  if (pmtPid === -1) return { unusable: "the clip has no PAT naming a PMT" };
  if (pmtPid !== CLIP_PMT_PID)
    return { unusable: `the clip's PMT is on ${hex(pmtPid)}, not ${hex(CLIP_PMT_PID)}` };
  if (pmt === null) return { unusable: `the clip has no PMT on ${hex(CLIP_PMT_PID)}` };
  if (pmt.pcrPid !== CLIP_VIDEO_PID)
    return {
      unusable: `the clip's PCR is on ${hex(pmt.pcrPid)}, not on the video PID ${hex(CLIP_VIDEO_PID)}`,
    };
  const video = pmt.streams.find((stream) => stream.pid === CLIP_VIDEO_PID);
  if (video === undefined)
    return { unusable: `the clip's PMT has no stream on the video PID ${hex(CLIP_VIDEO_PID)}` };
  const listed = pmt.streams.filter((stream) => stream.pid !== CLIP_VIDEO_PID).map((stream) => stream.pid);
  if (listed.length !== audioCount || listed.some((pid, i) => pid !== audioPids[i]))
    return {
      unusable: `the clip's PMT lists audio on [${listed.map(hex).join(", ")}], the channel needs ${audioCount} audio stream(s) on [${audioPids.map(hex).join(", ")}]`,
    };
  for (const pid of [CLIP_VIDEO_PID, ...audioPids])
    if (!seen.has(pid)) return { unusable: `the clip carries no packet on ${hex(pid)}` };
  if (pcrOnOther !== -1)
    return { unusable: `the clip carries a PCR on ${hex(pcrOnOther)}, not only on the video` };
  if (firstPcr < 0) return { unusable: `the clip's video (${hex(CLIP_VIDEO_PID)}) carries no PCR` };
  const first = packets.subarray(firstVideo * PACKET, (firstVideo + 1) * PACKET);
  if (!isRandomAccess(first, video.streamType))
    return {
      unusable: "the clip's first video PES is not a random access point (an IDR with its parameter sets)",
    };
  if (pictures < 2 || !Number.isFinite(step))
    return { unusable: `the clip has ${pictures} picture(s) with a PTS: too few to know its frame duration` };

  const frameDuration = step * 300;
  const duration = (maxPts - minPts) * 300 + frameDuration;
  const audioPeriods = audioSpans.map((span) =>
    Number.isFinite(span.step) ? (span.last + span.step) * 300 : duration,
  );
  return {
    packets,
    count,
    pids,
    times,
    firstPcr,
    duration,
    audioPeriods,
    firstPts: earliestPts,
    frameDuration,
    audioCount,
    videoStreamType: video.streamType,
  };
};
