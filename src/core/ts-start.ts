/**
 * Where a decoder can join a live MPEG-TS: the first video random-access point (a keyframe) after a PAT and
 * its PMT. The RTMP writer feeds ffmpeg through one gate per connection, so that every (re)connect starts
 * with the tables, then a keyframe, then audio and video together: nothing before the keyframe that ffmpeg
 * would have to throw away (it drops video until a keyframe but keeps the audio, which shifts the two).
 *
 *   const gate = makeStartGate()
 *   const out = gate.push(chunk); if (out !== null) write(out)   // nothing until the start is found, then everything
 *
 * A TS filter (ts-filter.ts); what it answers is never memory it reuses.
 *
 * A keyframe is a packet of the video PID that starts a PES and either carries the adaptation field's
 * random_access_indicator or, for encoders that do not set it, begins with an H.264/H.265 parameter set or
 * IDR picture. A program without video starts at its first PES. A stream that never shows a keyframe is let
 * through after `giveUpAfterPictures` picture starts, and one without a PAT and PMT after `giveUpAfterBytes`,
 * so that a gate never holds an output back for ever (ffmpeg then says what it cannot read).
 *
 * Runs only until it opens (one pass over at most a GOP of packets per connection), then passes chunks as is.
 */

import {
  firstProgram,
  PACKET,
  payloadOffset,
  pidAt,
  randomAccessIndicator,
  readPat,
  readPmt,
  SectionPackets,
  STREAM_TYPE_H264,
  STREAM_TYPE_H265,
  SYNC,
  unitStartAt,
  VIDEO_STREAM_TYPES,
} from "./ts/index.ts";
import type { TsFilter } from "./ts-filter.ts";

interface StartGate extends TsFilter {
  /**
   * Takes the next chunk (whole 188-byte packets); answers what to pass on: null while still looking, then
   * the PAT, the PMT and the chunk from the keyframe on (in one new run), then every later chunk untouched.
   */
  push(chunk: Uint8Array): Uint8Array | null;
  readonly isOpen: () => boolean;
  /** Bytes held back before the start was found. */
  readonly skippedBytes: () => number;
}

/** The first programme's PMT PID in a PAT section (as far as the bytes given hold it). */
export const pmtPidOf = (section: Uint8Array): number | null => firstProgram(readPat(section))?.pid ?? null;

export interface Elementary {
  readonly pid: number;
  readonly streamType: number;
}

/** The video stream of a PMT section, else its first stream (stream type -1: not video). */
export const startStreamOf = (section: Uint8Array): Elementary | null => {
  const streams = readPmt(section)?.streams ?? [];
  const video = streams.find((s) => VIDEO_STREAM_TYPES.has(s.streamType));
  if (video !== undefined) return { pid: video.pid, streamType: video.streamType };
  const first = streams[0];
  return first === undefined ? null : { pid: first.pid, streamType: -1 };
};

/** Whether the start of this PES carries a parameter set or an IDR/IRAP picture. */
const beginsWithKeyNal = (packet: Uint8Array, streamType: number): boolean => {
  if (streamType !== STREAM_TYPE_H264 && streamType !== STREAM_TYPE_H265) return false;
  const pes = payloadOffset(packet);
  if (pes + 9 > PACKET || packet[pes] !== 0 || packet[pes + 1] !== 0 || packet[pes + 2] !== 1) return false;
  for (let at = pes + 9 + (packet[pes + 8] ?? 0); at + 3 < PACKET; at++) {
    if (packet[at] !== 0 || packet[at + 1] !== 0 || packet[at + 2] !== 1) continue;
    const header = packet[at + 3] ?? 0;
    if (streamType === STREAM_TYPE_H264) {
      const type = header & 0x1f;
      if (type === 5 || type === 7) return true;
    } else {
      const type = (header >> 1) & 0x3f;
      if ((type >= 16 && type <= 23) || (type >= 32 && type <= 34)) return true;
    }
  }
  return false;
};

/**
 * Whether a decoder can start at this packet of the start stream (`startStreamOf`), which must begin a PES:
 * the random_access_indicator, or a parameter set or IDR/IRAP picture at the start of an H.264/H.265 PES; a
 * stream that is not video (`streamType` -1) starts at any PES.
 */
export const isRandomAccess = (packet: Uint8Array, streamType: number): boolean => {
  if (streamType === -1) return true;
  return randomAccessIndicator(packet) || beginsWithKeyNal(packet, streamType);
};

export const makeStartGate = (
  options: { readonly giveUpAfterPictures?: number; readonly giveUpAfterBytes?: number } = {},
): StartGate => {
  const giveUpAfter = options.giveUpAfterPictures ?? 300;
  const giveUpAfterBytes = options.giveUpAfterBytes ?? 8 * 1024 * 1024;
  let pat: Uint8Array | null = null;
  let pmtPid: number | null = null;
  let pmt: Uint8Array | null = null;
  let start: Elementary | null = null;
  let pictures = 0;
  let skipped = 0;
  let open = false;

  // The PAT and the PMT as the packets that carried them (sections reassembled, CRC checked).
  const patReader = new SectionPackets((section, packets) => {
    const next = pmtPidOf(section);
    if (next === null) return;
    if (next !== pmtPid) {
      pmt = null;
      start = null;
      pmtReader.reset();
    }
    pat = packets.slice();
    pmtPid = next;
  });
  const pmtReader = new SectionPackets((section, packets) => {
    const stream = startStreamOf(section);
    if (stream !== null) {
      pmt = packets.slice();
      start = stream;
    }
  });

  /** Whether a decoder can start at this packet. */
  const isStart = (packet: Uint8Array, pid: number): boolean => {
    if (pid === 0) {
      patReader.read(packet);
      return false;
    }
    if (pid === pmtPid) {
      pmtReader.read(packet);
      return false;
    }
    if (!unitStartAt(packet)) return false;
    if (pat === null || pmt === null || start === null || pid !== start.pid) return false;
    if (isRandomAccess(packet, start.streamType)) return true;
    pictures += 1;
    return pictures > giveUpAfter;
  };

  const push = (chunk: Uint8Array): Uint8Array | null => {
    if (open) return chunk;
    for (let at = 0; at + PACKET <= chunk.length; at += PACKET) {
      const packet = chunk.subarray(at, at + PACKET);
      if (packet[0] !== SYNC) continue;
      const pid = pidAt(packet);
      if (isStart(packet, pid) && pat !== null && pmt !== null) {
        open = true;
        skipped += at;
        return Buffer.concat([pat, pmt, chunk.subarray(at)]);
      }
    }
    skipped += chunk.length;
    if (pmt === null && skipped > giveUpAfterBytes) {
      open = true;
      return chunk;
    }
    return null;
  };

  return { push, isOpen: () => open, skippedBytes: () => skipped };
};
