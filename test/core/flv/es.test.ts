/**
 * PES reassembly on hand-built packets: what the PMT names, when a PES is handed on, and what a continuity gap,
 * a duplicate packet or the end of a file do to it.
 */
import { describe, expect, it } from "vitest";
import { type AccessUnit, EsDemuxer, programStreams } from "../../../src/core/flv/es.ts";
import { buildPat, buildPmt, tsPacket } from "../../support/ts-generator.ts";

const PMT_PID = 0x100;
const VIDEO_PID = 0x101;
const AUDIO_PID = 0x102;

/** A PES header with a PTS, and a DTS when given; `length` 0 means unbounded, as video PES often are. */
const pesHeader = (streamId: number, payloadLength: number, pts: number, dts?: number): Uint8Array => {
  const stamp = (prefix: number, value: number) => [
    (prefix << 4) | (Math.floor(value / 2 ** 29) & 0x0e) | 1,
    Math.floor(value / 2 ** 22) & 0xff,
    (Math.floor(value / 2 ** 14) & 0xfe) | 1,
    Math.floor(value / 2 ** 7) & 0xff,
    ((value * 2) & 0xfe) | 1,
  ];
  const fields = dts === undefined ? stamp(2, pts) : [...stamp(3, pts), ...stamp(1, dts)];
  const length = payloadLength === 0 ? 0 : 3 + fields.length + payloadLength;
  return Uint8Array.of(
    0,
    0,
    1,
    streamId,
    length >> 8,
    length & 0xff,
    0x80,
    dts === undefined ? 0x80 : 0xc0,
    fields.length,
    ...fields,
  );
};

const section = (bytes: Uint8Array) => Uint8Array.of(0, ...bytes);
const psi = (streams: ReadonlyArray<{ streamType: number; pid: number }>) => [
  tsPacket({
    pid: 0,
    cc: 0,
    pusi: true,
    payload: section(buildPat({ programs: [{ program: 1, pmtPid: PMT_PID }] })),
    stuffAfterPayload: true,
  }),
  tsPacket({
    pid: PMT_PID,
    cc: 0,
    pusi: true,
    payload: section(buildPmt({ program: 1, pcrPid: VIDEO_PID, streams })),
    stuffAfterPayload: true,
  }),
];

const collect = () => {
  const units: Array<{
    pid: number;
    codec: string;
    pts: number;
    dts: number;
    keyframe: boolean;
    data: string;
  }> = [];
  const demux = new EsDemuxer((unit: AccessUnit) =>
    units.push({
      pid: unit.pid,
      codec: unit.codec,
      pts: unit.pts,
      dts: unit.dts,
      keyframe: unit.keyframe,
      data: Buffer.from(unit.data).toString("hex"),
    }),
  );
  return { units, demux };
};

const idr = Uint8Array.of(0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65, 0x88, 0x84);
const inter = Uint8Array.of(0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x41, 0x9a, 0x02);
const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

describe("EsDemuxer", () => {
  it("takes the PMT's H.264 and AAC PIDs and names what it cannot carry", () => {
    const pmt = buildPmt({
      program: 1,
      pcrPid: VIDEO_PID,
      streams: [
        { streamType: 0x81, pid: 0x103 },
        { streamType: 0x1b, pid: VIDEO_PID },
        { streamType: 0x0f, pid: AUDIO_PID },
        { streamType: 0x86, pid: 0x104 },
      ],
    });
    expect(programStreams(pmt)).toEqual({
      video: { pid: VIDEO_PID, codec: "h264", streamType: 0x1b },
      audio: { pid: AUDIO_PID, codec: "aac", streamType: 0x0f },
      unsupported: [0x81],
    });
  });

  it("ends an unbounded video PES at the next one, and a sized audio PES as soon as it is whole", () => {
    const { units, demux } = collect();
    const audioPayload = Uint8Array.of(0xff, 0xf1, 0x4c, 0x80, 0x01, 0x3f, 0xfc, 0xaa, 0xbb);
    for (const packet of [
      ...psi([
        { streamType: 0x1b, pid: VIDEO_PID },
        { streamType: 0x0f, pid: AUDIO_PID },
      ]),
      tsPacket({
        pid: VIDEO_PID,
        cc: 0,
        pusi: true,
        payload: concat(pesHeader(0xe0, 0, 183_600, 180_000), idr),
      }),
      tsPacket({
        pid: AUDIO_PID,
        cc: 0,
        pusi: true,
        payload: concat(pesHeader(0xc0, audioPayload.length, 181_000), audioPayload),
      }),
    ])
      demux.push(packet);
    // The audio PES said its length: handed on at once. The video PES is still open.
    expect(units.map((u) => [u.codec, u.pts, u.dts, u.data])).toEqual([
      ["aac", 181_000, 181_000, "fff14c80013ffcaabb"],
    ]);
    demux.push(
      tsPacket({
        pid: VIDEO_PID,
        cc: 1,
        pusi: true,
        payload: concat(pesHeader(0xe0, 0, 187_200, 183_600), inter),
      }),
    );
    expect(units[1]).toEqual({
      pid: VIDEO_PID,
      codec: "h264",
      pts: 183_600,
      dts: 180_000,
      keyframe: true,
      data: Buffer.from(idr).toString("hex"),
    });
    demux.flush();
    expect(units.map((u) => [u.codec, u.keyframe, u.pts])).toEqual([
      ["aac", true, 181_000],
      ["h264", true, 183_600],
      ["h264", false, 187_200],
    ]);
    demux.flush();
    expect(units.length).toBe(3);
  });

  it("joins a PES over packets, skips a duplicate packet and drops a PES with a gap", () => {
    const { units, demux } = collect();
    const big = new Uint8Array(300).fill(0x5a);
    big.set([0, 0, 1, 0x65], 0);
    const pes = concat(pesHeader(0xe0, 0, 90_000), big);
    const first = tsPacket({ pid: VIDEO_PID, cc: 4, pusi: true, payload: pes.subarray(0, 184) });
    const second = tsPacket({ pid: VIDEO_PID, cc: 5, payload: pes.subarray(184) });
    for (const packet of [...psi([{ streamType: 0x1b, pid: VIDEO_PID }]), first, second, second])
      demux.push(packet);
    demux.push(
      tsPacket({ pid: VIDEO_PID, cc: 6, pusi: true, payload: concat(pesHeader(0xe0, 0, 93_600), inter) }),
    );
    expect(units.map((u) => [u.pts, u.data.length / 2])).toEqual([[90_000, 300]]);
    // cc 8 after 6: a packet of this PES was lost, so the PES is not handed on; the next one is.
    demux.push(tsPacket({ pid: VIDEO_PID, cc: 8, payload: Uint8Array.of(1, 2, 3) }));
    demux.push(
      tsPacket({ pid: VIDEO_PID, cc: 9, pusi: true, payload: concat(pesHeader(0xe0, 0, 97_200), idr) }),
    );
    demux.flush();
    expect(units.map((u) => u.pts)).toEqual([90_000, 97_200]);
  });

  it("marks an HEVC access unit with an IRAP picture as a keyframe", () => {
    const { units, demux } = collect();
    const cra = Uint8Array.of(0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 0x2a, 0x01, 0xaf);
    const trail = Uint8Array.of(0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 0x02, 0x01, 0xd0);
    for (const packet of [
      ...psi([{ streamType: 0x24, pid: VIDEO_PID }]),
      tsPacket({ pid: VIDEO_PID, cc: 0, pusi: true, payload: concat(pesHeader(0xe0, 0, 1), cra) }),
      tsPacket({ pid: VIDEO_PID, cc: 1, pusi: true, payload: concat(pesHeader(0xe0, 0, 2), trail) }),
    ])
      demux.push(packet);
    demux.flush();
    expect(units.map((u) => [u.codec, u.keyframe])).toEqual([
      ["hevc", true],
      ["hevc", false],
    ]);
  });
});
