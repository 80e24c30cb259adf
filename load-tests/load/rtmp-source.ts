/**
 * The RTMP runs' stream, written to `path` with ffmpeg: real H.264 (1280x720, B-frames, a keyframe every 2 s)
 * and AAC at about `mbps`, `seconds` long. Used by `npm run load -- --protocol rtmp` (rtmp.ts) and by
 * `npm run bench:remux`, which must remux the same stream; it reads no harness option.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { crc32Mpeg2 } from "../../src/core/ts/index.ts";
import { immediateSpliceOut } from "../../test/support/cues.ts";

export const writeRtmpSource = (path: string, seconds: number, mbps: number, muxFactor = 1.1): void => {
  const rate = `${mbps}M`;
  execFileSync("ffmpeg", [
    ...["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25"],
    ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", String(seconds)],
    ...["-vf", "noise=alls=30:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "50"],
    ...["-b:v", rate, "-maxrate", rate, "-bufsize", rate, "-c:a", "aac", "-b:a", "128k"],
    ...["-muxrate", `${Math.round(mbps * muxFactor * 1_000_000)}`, "-f", "mpegts", path],
  ]);
};

const PACKET = 188;
/** The SCTE-35 PID addCues declares in the PMT and carries its cues on. */
export const CUE_PID = 0x1f0;
const pidOf = (ts: Uint8Array, at: number) => (((ts[at + 1] ?? 0) & 0x1f) << 8) | (ts[at + 2] ?? 0);

/**
 * Gives the stream at `path` (ffmpeg's TS) SCTE-35: its PMT names a stream of type 0x86 on CUE_PID, and an
 * immediate splice_insert out of the network (event ids 1, 2, …) is put in every `everySeconds` of stream from
 * 1 s on (one packet more each: the pace hardly changes). Returns the packet index of each cue in the new file.
 */
export const addCues = (
  path: string,
  everySeconds: number,
  mbps: number,
  muxFactor = 1.1,
): ReadonlyArray<number> => {
  const ts = new Uint8Array(readFileSync(path));
  const packets = Math.floor(ts.length / PACKET);
  let pmtPid = -1;
  for (let i = 0; i < packets && pmtPid < 0; i++) {
    const at = i * PACKET;
    // The PAT's first program: its PMT's PID (the section starts after the pointer field at byte 4).
    if (pidOf(ts, at) === 0 && (ts[at + 1] ?? 0) & 0x40) pmtPid = pidOf(ts, at + 5 + (ts[at + 4] ?? 0) + 9);
  }
  if (pmtPid < 0) throw new Error(`${path}: no PAT`);
  for (let i = 0; i < packets; i++) {
    const at = i * PACKET;
    if (pidOf(ts, at) !== pmtPid || ((ts[at + 1] ?? 0) & 0x40) === 0) continue;
    const start = at + 5 + (ts[at + 4] ?? 0);
    const length = (((ts[start + 1] ?? 0) & 0x0f) << 8) | (ts[start + 2] ?? 0);
    const end = start + 3 + length - 4; // where the CRC lies: the new stream goes before it
    const entry = [0x86, 0xe0 | (CUE_PID >> 8), CUE_PID & 0xff, 0xf0, 0x00];
    if (end + entry.length + 4 > at + PACKET) throw new Error(`${path}: the PMT fills its packet`);
    ts.set(entry, end);
    const grown = length + entry.length;
    ts[start + 1] = ((ts[start + 1] ?? 0) & 0xf0) | (grown >> 8);
    ts[start + 2] = grown & 0xff;
    const crc = crc32Mpeg2(ts, start, end + entry.length);
    new DataView(ts.buffer).setUint32(end + entry.length, crc);
  }
  const packetsPerSecond = (mbps * muxFactor * 1_000_000) / 8 / PACKET;
  const cues: number[] = [];
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (let second = 1; ; second += everySeconds) {
    const i = Math.round(second * packetsPerSecond);
    if (i >= packets) break;
    const section = encodeSection(immediateSpliceOut(cues.length + 1));
    const packet = new Uint8Array(PACKET).fill(0xff);
    packet.set([0x47, 0x40 | (CUE_PID >> 8), CUE_PID & 0xff, 0x10 | (cues.length & 0x0f), 0]);
    packet.set(section, 5);
    pieces.push(ts.subarray(from * PACKET, i * PACKET), packet);
    from = i;
    cues.push(i + cues.length);
  }
  pieces.push(ts.subarray(from * PACKET, packets * PACKET));
  writeFileSync(path, Buffer.concat(pieces));
  return cues;
};
