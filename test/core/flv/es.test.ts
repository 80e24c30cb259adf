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

  it("finds an IDR behind SEI, its start code cut across two packets, in chunks of several packets", () => {
    const { units, demux } = collect();
    const sei = Uint8Array.of(0x06, 0x05, ...new Array<number>(155).fill(0x5a), 0x80);
    // AUD, SEI, IDR: the IDR's 4-byte start code straddles the end of the first packet's payload.
    const au = (slice: Uint8Array) => concat(idr.subarray(0, 6), Uint8Array.of(0, 0, 0, 1), sei, slice);
    const key = au(Uint8Array.of(0, 0, 0, 1, 0x65, 0x88, 0x84));
    const nonKey = au(Uint8Array.of(0, 0, 0, 1, 0x41, 0x9a, 0x02));
    const pes = (payload: Uint8Array, pts: number, cc: number) => {
      const bytes = concat(pesHeader(0xe0, 0, pts), payload);
      return [
        tsPacket({ pid: VIDEO_PID, cc, pusi: true, payload: bytes.subarray(0, 184) }),
        tsPacket({ pid: VIDEO_PID, cc: cc + 1, payload: bytes.subarray(184) }),
      ];
    };
    const packets = [...psi([{ streamType: 0x1b, pid: VIDEO_PID }]), ...pes(key, 1, 0), ...pes(nonKey, 2, 2)];
    expect(concat(pesHeader(0xe0, 0, 1), key).subarray(182, 186)).toEqual(Uint8Array.of(0, 0, 0, 1));
    // One chunk of all the packets, with a packet's worth of something else before it in its buffer.
    const chunk = concat(new Uint8Array(188), ...packets).subarray(188);
    demux.push(chunk);
    demux.flush();
    expect(units.map((u) => [u.pts, u.keyframe, u.data])).toEqual([
      [1, true, Buffer.from(key).toString("hex")],
      [2, false, Buffer.from(nonKey).toString("hex")],
    ]);
  });

  it("marks an HEVC access unit with an IRAP picture (types 16 to 23) as a keyframe", () => {
    const { units, demux } = collect();
    // AUD, then a slice of each type: TRAIL_N 0, RASL_R 9, 15 (reserved), BLA_W_LP 16, CRA 21, 23, 24 (reserved).
    const types = [0, 9, 15, 16, 21, 23, 24];
    const au = (type: number) => Uint8Array.of(0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, type << 1, 0x01, 0xaf);
    const packets = types.map((type, i) =>
      tsPacket({ pid: VIDEO_PID, cc: i, pusi: true, payload: concat(pesHeader(0xe0, 0, i), au(type)) }),
    );
    for (const packet of [...psi([{ streamType: 0x24, pid: VIDEO_PID }]), ...packets]) demux.push(packet);
    demux.flush();
    expect(units.map((u) => u.codec)).toEqual(types.map(() => "hevc"));
    expect(units.map((u) => u.keyframe)).toEqual([false, false, false, true, true, true, false]);
  });
});
