/**
 * A hand-over between two different copies of one programme (src/core/handover/rap.ts): the video random
 * access points and their PTS are found from the stream's own PAT and PMT; PTS order holds across the 33-bit
 * wrap; each PID begins at one of its units; and the first packet of each PID gets its discontinuity_indicator — in its adaptation field when it
 * has one, else in an adaptation-only packet just before it whose counter keeps the PID's count continuous.
 */
import { describe, expect, it } from "vitest";
import {
  DiscontinuityMarker,
  ProgramWatch,
  ptsAtOrAfter,
  randomAccessIn,
} from "../../src/core/handover/rap.ts";
import {
  ccAt,
  NULL_PID,
  PACKET,
  PTS_WRAP,
  patSection,
  pidAt,
  pmtSection,
  STREAM_TYPE_H264,
  sectionPackets,
  signalsDiscontinuity,
  writeTimestamp,
} from "../../src/core/ts/index.ts";
import { withTwoPacketPmts } from "../support/long-pmt.ts";

const VIDEO = 0x100;
const AUDIO = 0x101;
const PMT = 0x1000;

/** A packet of `pid` with counter `cc`; with `rap`, a PES start with random_access_indicator and PTS `pts`. */
const packet = (pid: number, cc: number, options: { rap?: boolean; pts?: number; start?: boolean } = {}) => {
  const bytes = new Uint8Array(PACKET).fill(0xff);
  bytes[0] = 0x47;
  bytes[1] = ((options.start === true || options.pts !== undefined ? 0x40 : 0) | (pid >> 8)) & 0x5f;
  bytes[2] = pid & 0xff;
  let at = 4;
  if (options.rap === true) {
    bytes[3] = 0x30 | cc;
    bytes[4] = 1;
    bytes[5] = 0x40;
    at = 6;
  } else bytes[3] = 0x10 | cc;
  if (options.pts !== undefined) {
    bytes.set([0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x20], at);
    writeTimestamp(bytes, at + 9, options.pts);
  }
  return bytes;
};
const datagram = (...packets: ReadonlyArray<Uint8Array>) => {
  const out = new Uint8Array(packets.length * PACKET);
  packets.forEach((p, i) => {
    out.set(p, i * PACKET);
  });
  return out;
};
const tables = () =>
  datagram(
    sectionPackets(patSection(1, 0, [{ program: 1, pid: PMT }]), 0, 3),
    sectionPackets(
      pmtSection(1, 0, VIDEO, new Uint8Array(0), [
        { streamType: STREAM_TYPE_H264, pid: VIDEO, descriptors: new Uint8Array(0) },
        { streamType: 0x0f, pid: AUDIO, descriptors: new Uint8Array(0) },
      ]),
      PMT,
      5,
    ),
  );

describe("random access points of a copy", () => {
  it("are the video PID's PES starts with random_access_indicator, known once the PMT was read", () => {
    const watch = new ProgramWatch();
    const rap = datagram(packet(AUDIO, 1, { pts: 1000 }), packet(VIDEO, 2, { rap: true, pts: 90_000 }));
    expect(randomAccessIn(rap, watch.videoPids)).toBeNull();
    watch.observe(tables());
    expect([...watch.videoPids]).toEqual([VIDEO]);
    expect(watch.pat?.length).toBe(PACKET);
    expect(watch.pmt === null ? -1 : pidAt(watch.pmt)).toBe(PMT);
    expect(randomAccessIn(rap, watch.videoPids)).toEqual({ packet: 1, pts: 90_000 });
    // A PES start without the flag is not one, nor is the audio's.
    expect(randomAccessIn(datagram(packet(VIDEO, 3, { pts: 93_600 })), watch.videoPids)).toBeNull();
  });

  it("are known from a PMT that spans two packets too, both packets kept to go first", () => {
    const watch = new ProgramWatch();
    const long = withTwoPacketPmts(tables(), PMT);
    watch.observe(long);
    expect([...watch.videoPids]).toEqual([VIDEO]);
    expect(watch.pat?.length).toBe(PACKET);
    expect(Buffer.from(watch.pmt ?? new Uint8Array(0))).toEqual(Buffer.from(long.subarray(PACKET)));
  });

  it("are compared by PTS across the wrap", () => {
    expect(ptsAtOrAfter(90_000, 90_000)).toBe(true);
    expect(ptsAtOrAfter(93_600, 90_000)).toBe(true);
    expect(ptsAtOrAfter(86_400, 90_000)).toBe(false);
    expect(ptsAtOrAfter(1000, PTS_WRAP - 1000)).toBe(true);
    expect(ptsAtOrAfter(PTS_WRAP - 1000, 1000)).toBe(false);
  });
});

describe("the discontinuity flagged at a PTS-aligned start", () => {
  it("sets the flag on each PID's first packet: in its adaptation field, or in one added before it", () => {
    const marker = new DiscontinuityMarker();
    const first = datagram(
      packet(VIDEO, 7, { rap: true, pts: 90_000 }),
      packet(AUDIO, 4, { pts: 1000 }),
      packet(NULL_PID, 0),
      packet(VIDEO, 8),
    );
    const out = marker.mark(first);
    expect(out.length).toBe(2);
    const [added, marked] = out as [Uint8Array, Uint8Array];
    // The audio packet had no adaptation field: one adaptation-only packet, its counter the one before 4.
    expect(added.length).toBe(PACKET);
    expect(pidAt(added)).toBe(AUDIO);
    expect(signalsDiscontinuity(added)).toBe(true);
    expect(ccAt(added)).toBe(3);
    expect((added[3] ?? 0) & 0x30).toBe(0x20);
    // The video packet's own adaptation field carries it; the rest is as it came.
    expect(signalsDiscontinuity(marked.subarray(0, PACKET))).toBe(true);
    expect(signalsDiscontinuity(marked.subarray(3 * PACKET))).toBe(false);
    expect(marked.subarray(PACKET)).toEqual(first.subarray(PACKET));
    expect(signalsDiscontinuity(first.subarray(0, PACKET))).toBe(false);
    // Each PID once: the next datagram goes as it is.
    const next = datagram(packet(VIDEO, 9), packet(AUDIO, 5));
    expect(marker.mark(next)).toEqual([next]);
  });

  it("begins each PID at a unit's start: the packets before the start asked, and a PID's tail before its first unit, become null packets", () => {
    const marker = new DiscontinuityMarker();
    const first = datagram(
      packet(VIDEO, 1),
      packet(AUDIO, 2),
      packet(VIDEO, 3, { rap: true, pts: 90_000 }),
      packet(AUDIO, 3),
      packet(AUDIO, 4, { start: true }),
    );
    const out = marker.mark(first, 2);
    const marked = out.at(-1) ?? new Uint8Array(0);
    const pids = Array.from({ length: 5 }, (_, i) => pidAt(marked, i * PACKET));
    expect(pids).toEqual([NULL_PID, NULL_PID, VIDEO, NULL_PID, AUDIO]);
    expect(signalsDiscontinuity(marked.subarray(2 * PACKET))).toBe(true);
    // The audio's first unit has no adaptation field: its flag comes in a packet added before the datagram.
    expect(out.length).toBe(2);
    expect(pidAt(out[0] ?? new Uint8Array(0))).toBe(AUDIO);
  });
});
