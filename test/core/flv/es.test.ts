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

  it("joins a PES over packets, skips a duplicate packet and hands on a PES with a gap without the hole", () => {
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
    // cc 8 after 6: a packet of this PES was lost. The PES goes on all the same (a decoder conceals what it
    // lacks), without what follows the hole up to the next NAL unit, which no decoder can use; so does the next.
    demux.push(tsPacket({ pid: VIDEO_PID, cc: 8, payload: Uint8Array.of(1, 2, 3, 0, 0, 1, 0x41, 0x9a) }));
    demux.push(
      tsPacket({ pid: VIDEO_PID, cc: 9, pusi: true, payload: concat(pesHeader(0xe0, 0, 97_200), idr) }),
    );
    demux.flush();
    expect(units.map((u) => [u.pts, u.keyframe, u.data])).toEqual([
      [90_000, true, expect.any(String)],
      [93_600, false, Buffer.from(concat(inter, Uint8Array.of(0, 0, 1, 0x41, 0x9a))).toString("hex")],
      [97_200, true, Buffer.from(idr).toString("hex")],
    ]);
  });

  it("reads a frame whose PES header lies from its first start code, its times -1 where they are broken", () => {
    const units: Array<{ pts: number; keyframe: boolean; data: string }> = [];
    const bad: string[] = [];
    const told = new EsDemuxer(
      (unit) =>
        units.push({ pts: unit.pts, keyframe: unit.keyframe, data: Buffer.from(unit.data).toString("hex") }),
      (_pid, codec, detail) => bad.push(`${codec}: ${detail}`),
    );
    const broken = (edit: (header: Uint8Array) => void, payload: Uint8Array, pts: number) => {
      const header = pesHeader(0xe0, 0, pts);
      edit(header);
      return concat(header, payload);
    };
    const payloads = [
      // PES_header_data_length past the PES: the payload is where the first start code after the PTS is.
      broken((h) => h.set([0xf5], 8), inter, 3600),
      // A PES_packet_length of 3, which cannot hold the header: the PES ends where the next one starts.
      broken((h) => h.set([0, 3], 4), inter, 7200),
      // The PTS's marker bits wrong: not read (the remux times such a frame from the one before).
      broken((h) => h.set([(h[9] ?? 0) & 0xfe], 9), inter, 10_800),
      // The start code prefix broken: the header is not read at all, the frame is.
      broken((h) => h.set([0x05], 2), inter, 14_400),
      // Neither a header nor a start code: nothing to frame.
      broken((h) => h.set([0x05], 2), Uint8Array.of(0x41, 0x9a, 0x02, 0, 0, 2, 7), 18_000),
      // An IDR whose NAL header has its forbidden bit set is no keyframe: a decoder skips that unit.
      concat(pesHeader(0xe0, 0, 21_600), idr.subarray(0, 9), Uint8Array.of(0xe5, 0x88, 0x84)),
      concat(pesHeader(0xe0, 0, 25_200), idr),
    ];
    const packets = payloads.map((payload, cc) => tsPacket({ pid: VIDEO_PID, cc, pusi: true, payload }));
    for (const packet of [...psi([{ streamType: 0x1b, pid: VIDEO_PID }]), ...packets]) told.push(packet);
    told.flush();
    const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
    expect(units.map((u) => [u.pts, u.keyframe, u.data])).toEqual([
      [3600, false, hex(inter)],
      [7200, false, hex(inter)],
      [-1, false, hex(inter)],
      [-1, false, hex(inter)],
      [21_600, false, hex(concat(idr.subarray(0, 9), Uint8Array.of(0xe5, 0x88, 0x84)))],
      [25_200, true, hex(idr)],
    ]);
    expect(bad).toEqual(["h264: a PES that does not start with a PES header, with no start code in it"]);
  });

  it("reads an audio PES whose header length lies after its PTS, and tells one whose PTS is broken", () => {
    const units: Array<[number, string]> = [];
    const bad: string[] = [];
    const demux = new EsDemuxer(
      (unit) => units.push([unit.pts, Buffer.from(unit.data).toString("hex")]),
      (_pid, codec, detail) => bad.push(`${codec}: ${detail}`),
    );
    const adts = Uint8Array.of(0xff, 0xf1, 0x4c, 0x80, 0x01, 0x3f, 0xfc, 0xaa, 0xbb);
    const lying = pesHeader(0xc0, adts.length, 90_000);
    lying[8] = 0xf0;
    const unmarked = pesHeader(0xc0, adts.length, 91_920);
    unmarked[13] = (unmarked[13] ?? 0) & 0xfe;
    for (const packet of [
      ...psi([{ streamType: 0x0f, pid: AUDIO_PID }]),
      tsPacket({ pid: AUDIO_PID, cc: 0, pusi: true, payload: concat(lying, adts) }),
      tsPacket({ pid: AUDIO_PID, cc: 1, pusi: true, payload: concat(unmarked, adts) }),
    ])
      demux.push(packet);
    demux.flush();
    expect(units).toEqual([[90_000, Buffer.from(adts).toString("hex")]]);
    expect(bad).toEqual(["aac: a PES header whose PTS has no markers"]);
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
