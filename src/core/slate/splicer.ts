/**
 * The slate on air: the prepared clip (clip.ts), looped, carried at the TS level on the channel's own PIDs
 * under the channel's own PAT and PMT, its clock continuing from where the input's clock stands. A source of
 * TS, not a filter (ts-filter.ts): it makes the stream the slate sends.
 *
 *   const splicer = makeSplicer(clip, format, { startPcr })
 *   every few ms: for (const payload of splicer.take(now - started)) send(payload)
 *   on the input's return: makeLiveReturn(format) takes over (live-return.ts)
 *
 * What goes out:
 * - first, the switch: one adaptation-only "bridge" per PID the slate writes on (PAT, PMT, video, each audio,
 *   the PCR PID) with discontinuity_indicator = 1 and CC 15, so that the slate's counters (from 0) follow it
 *   and the jump from the input's counters is flagged; the PCR PID's bridge carries the first PCR;
 * - the channel's PAT and PMT sections byte for byte, at the start and every 100 ms of stream time;
 * - every clip packet of the video (0x100) and audio (0x101 + i) on the channel's PIDs, its PCR, PTS and DTS
 *   moved by (startPcr − clip's first PCR) + its stream's loop × period, its CC counted per output PID; the clip's
 *   own PAT, PMT, SDT are not carried;
 * - when the channel's PCR PID is not its video PID, an adaptation-only packet with the PCR on it beside
 *   every clip packet that carries one.
 *
 * Pacing: a packet is due at its time (clip.ts) + loop × duration, counted from the slate's start. A take
 * ends only where no picture or audio frame is under way (the clip's `clean` marks): it finishes the PES it
 * is in, so that the input's return never cuts a slate picture in two (the decoder would complain about it).
 *
 * Allocation: the datagram buffers handed out (7 packets each), nothing per packet.
 */
import { ticksBetween } from "../flv/timestamps.ts";
import {
  DATAGRAM,
  hasPayloadAt,
  NULL_PID,
  nextCc,
  PACKET,
  PCR_WRAP,
  PID_COUNT,
  PTS_WRAP,
  payloadOffset,
  pcrOf,
  pidAt,
  previousCc,
  readTimestamp,
  sectionPackets,
  setCcAt,
  unitStartAt,
  writeAdaptationOnly,
  writePcr,
  writeTimestamp,
} from "../ts/index.ts";
import type { SlateClip } from "./clip.ts";
import { CLIP_VIDEO_PID, type SlateFormat } from "./types.ts";

const TICKS_PER_MS = 27_000;
const PSI_EVERY = 100 * TICKS_PER_MS;
/** A take finishes the PES it is in, but never runs more than this past what is due (a clip without ends). */
const MAX_RUN_ON = 1000 * TICKS_PER_MS;

interface Splicer {
  /** The TS due by `elapsedMs` since the slate started, as datagram payloads of 7 packets (the last of a take may be shorter), in order. The first take starts with the switch. */
  take(elapsedMs: number): Uint8Array[];
  /** The continuity counter the slate last used on each PID it wrote (for the return to live). */
  lastCc(): ReadonlyMap<number, number>;
}

const mod = (value: number, wrap: number) => ((value % wrap) + wrap) % wrap;

export const makeSplicer = (
  clip: SlateClip,
  format: SlateFormat,
  options: {
    /** 27 MHz: where the input's clock stands now (its last PCR + the time since), or null if it never had one. */
    readonly startPcr: number | null;
    /**
     * 90 kHz: the latest PTS the input sent on any stream, if known. The slate's time then starts late enough
     * that its first PTS comes one frame after it: an input whose pictures run further ahead of its PCR than
     * the clip's (B-frames, a longer mux delay) would otherwise overlap the slate's first pictures.
     */
    readonly lastPts?: number | null;
  },
): Splicer => {
  // Clip PID → channel PID (-1: not carried).
  const map = new Int32Array(PID_COUNT).fill(-1);
  map[CLIP_VIDEO_PID] = format.video.pid;
  for (let i = 0; i < clip.audioCount; i++) {
    const audio = format.audio[i];
    if (audio !== undefined) map[CLIP_VIDEO_PID + 1 + i] = audio.pid;
  }
  const pcrPid = format.pcrPid;
  const separatePcr = pcrPid !== format.video.pid && pcrPid !== NULL_PID;
  const written = [
    0,
    format.pmtPid,
    format.video.pid,
    ...format.audio.slice(0, clip.audioCount).map((a) => a.pid),
  ];
  if (pcrPid !== NULL_PID) written.push(pcrPid);
  const pidsWritten = [...new Set(written)];
  // One view per clip packet, made once: copying one allocates nothing.
  const views = Array.from({ length: clip.count }, (_, i) =>
    clip.packets.subarray(i * PACKET, (i + 1) * PACKET),
  );
  const empty = new Uint8Array(PACKET);
  const psi = Buffer.concat([sectionPackets(format.pat, 0), sectionPackets(format.pmt, format.pmtPid)]);

  /** The next payload packet's CC on each output PID. */
  const next = new Uint8Array(PID_COUNT);
  let offset = mod((options.startPcr ?? clip.firstPcr) - clip.firstPcr, PCR_WRAP);
  if (options.lastPts != null) {
    const first = mod(clip.firstPts + Math.floor(offset / 300), PTS_WRAP);
    const short = ticksBetween(first, options.lastPts + clip.frameDuration / 300);
    if (short > 0) offset = mod(offset + short * 300, PCR_WRAP);
  }

  /**
   * Each carried stream's packets (clip indices, file order) and where it stands: the stream loops on its own
   * period (the video on the clip's duration, each audio on its own), so none overlaps or leaves a gap.
   */
  const streams = [
    CLIP_VIDEO_PID,
    ...Array.from({ length: clip.audioCount }, (_, i) => CLIP_VIDEO_PID + 1 + i),
  ]
    .filter((clipPid) => (map[clipPid] ?? -1) >= 0)
    .map((clipPid) => {
      const indices: number[] = [];
      for (let i = 0; i < clip.count; i++) if (clip.pids[i] === clipPid) indices.push(i);
      return {
        pid: map[clipPid] ?? -1,
        indices: Int32Array.from(indices),
        period:
          clipPid === CLIP_VIDEO_PID
            ? clip.duration
            : (clip.audioPeriods[clipPid - CLIP_VIDEO_PID - 1] ?? clip.duration),
        at: 0,
        loop: 0,
      };
    });
  /** 1 where a clip packet continues a PES (payload, no unit start): a take does not stop before it. */
  const continues = new Uint8Array(clip.count);
  for (let i = 0; i < clip.count; i++) {
    const at = i * PACKET;
    continues[i] = hasPayloadAt(clip.packets, at) && !unitStartAt(clip.packets, at) ? 1 : 0;
  }

  let started = false;
  /** Stream time (27 MHz since the slate's start) of the latest clip packet sent, and of the latest PSI. */
  let streamTime = 0;
  let psiAt = 0;

  let out: Uint8Array = new Uint8Array(DATAGRAM);
  let filled = 0;
  let payloads: Uint8Array[] = [];

  /** Room for one packet at `out[filled]`; a full datagram is handed over. */
  const room = (): number => {
    if (filled === DATAGRAM) {
      payloads.push(out);
      out = new Uint8Array(DATAGRAM);
      filled = 0;
    }
    const at = filled;
    filled += PACKET;
    return at;
  };

  const stamp = (at: number, pid: number, payload: boolean) => {
    const cc = payload ? (next[pid] ?? 0) : previousCc(next[pid] ?? 0);
    if (payload) next[pid] = nextCc(cc);
    setCcAt(out, at, cc);
  };

  const sendPsi = () => {
    for (let p = 0; p < psi.length; p += PACKET) {
      const at = room();
      out.set(psi.subarray(p, p + PACKET), at);
      stamp(at, pidAt(psi, p), true);
    }
  };

  const sendClipPacket = (i: number, shift: number, pid: number) => {
    const at = room();
    out.set(views[i] ?? empty, at);
    out[at + 1] = ((out[at + 1] ?? 0) & 0xe0) | ((pid >> 8) & 0x1f);
    out[at + 2] = pid & 0xff;
    const payload = hasPayloadAt(out, at);
    stamp(at, pid, payload);
    let pcr = -1;
    const carried = pcrOf(out, at);
    if (carried >= 0) {
      pcr = mod(carried + shift, PCR_WRAP);
      writePcr(out, at + 6, pcr);
    }
    if (unitStartAt(out, at) && payload) {
      const pes = at + payloadOffset(out, at);
      if (pes + 19 <= at + PACKET && out[pes] === 0 && out[pes + 1] === 0 && out[pes + 2] === 1) {
        const flags = (out[pes + 7] ?? 0) >> 6;
        const shift90 = Math.floor(shift / 300);
        if (flags >= 2) writeTimestamp(out, pes + 9, mod(readTimestamp(out, pes + 9) + shift90, PTS_WRAP));
        if (flags === 3) writeTimestamp(out, pes + 14, mod(readTimestamp(out, pes + 14) + shift90, PTS_WRAP));
      }
    }
    if (pcr >= 0 && separatePcr) {
      const at2 = room();
      writeAdaptationOnly(out, at2, pcrPid, previousCc(next[pcrPid] ?? 0), false, pcr);
    }
  };

  const take = (elapsedMs: number): Uint8Array[] => {
    payloads = [];
    if (!started) {
      started = true;
      for (const pid of pidsWritten) {
        const at = room();
        const pcr = pid === pcrPid ? mod(clip.firstPcr + offset, PCR_WRAP) : -1;
        writeAdaptationOnly(out, at, pid, 15, true, pcr);
      }
      sendPsi();
    }
    const limit = elapsedMs * TICKS_PER_MS;
    for (;;) {
      // The stream whose next packet is due first; one in the middle of a PES goes on to its end.
      let next = -1;
      let nextTime = Number.POSITIVE_INFINITY;
      for (let n = 0; n < streams.length; n++) {
        const stream = streams[n];
        if (stream === undefined) continue;
        const i = stream.indices[stream.at] ?? 0;
        const time = (clip.times[i] ?? 0) + stream.loop * stream.period;
        const due = time <= limit || (continues[i] === 1 && time <= limit + MAX_RUN_ON);
        if (due && time < nextTime) {
          next = n;
          nextTime = time;
        }
      }
      const stream = streams[next];
      if (stream === undefined) break;
      if (nextTime > psiAt + PSI_EVERY) {
        sendPsi();
        psiAt = streamTime;
      }
      sendClipPacket(stream.indices[stream.at] ?? 0, offset + stream.loop * stream.period, stream.pid);
      streamTime = Math.max(streamTime, nextTime);
      stream.at += 1;
      if (stream.at === stream.indices.length) {
        stream.at = 0;
        stream.loop += 1;
      }
    }
    if (filled > 0) {
      payloads.push(filled === DATAGRAM ? out : out.subarray(0, filled));
      out = new Uint8Array(DATAGRAM);
      filled = 0;
    }
    return payloads;
  };

  const lastCc = (): ReadonlyMap<number, number> => {
    const cc = new Map<number, number>();
    if (started) for (const pid of pidsWritten) cc.set(pid, previousCc(next[pid] ?? 0));
    return cc;
  };

  return { take, lastCc };
};
