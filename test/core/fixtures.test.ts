import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PacketCore } from "../../src/core/packet-core.ts";
import { crc32Mpeg2 } from "../../src/core/ts/crc32.ts";
import { drain, ofType } from "../support/core.ts";
import { fixturePath } from "../support/fixtures.ts";
import { datagramsOf, RtpWrapper } from "../support/ts-generator.ts";

interface Verification {
  readonly file: string;
  readonly ts_packets: number;
  readonly pmt_streams_union: Readonly<Record<string, { readonly stream_type: string }>>;
  readonly scte35: Readonly<
    Record<string, { readonly sections: number; readonly sections_base64_in_file_order: string[] }>
  >;
}

const verification: Verification[] = JSON.parse(
  readFileSync(fixturePath("scte35", "ts_verification.json"), "utf8"),
);
// The Eyevinn sample sends every PMT packet with continuity counter 0: the first repeat is a legal
// duplicate, every further one an error (TR 101 290 1.4: "a packet occurs more than twice").
const STUCK_PMT_CC: Readonly<Record<string, number>> = { "ts/Eyevinn_mp2ts-tools/80s_with_ad.ts": 0x1000 };

describe.each(verification)("$file", (expected) => {
  const bytes = new Uint8Array(readFileSync(fixturePath("scte35", ...expected.file.split("/"))));
  const expectedSections = Object.entries(expected.scte35).flatMap(([pid, entry]) =>
    entry.sections_base64_in_file_order.map((base64) => ({ pid: Number(pid), base64 })),
  );

  it.each(["udp-ts", "rtp"] as const)("delivers every SCTE-35 section, fed as %s", (kind) => {
    const core = PacketCore.load();
    const rtp = new RtpWrapper({ sequence: 65_000, ssrc: 7 });
    const sections: Array<{ pid: number; base64: string; crc: number }> = [];
    let now = 0;
    let misplaced = 0;
    for (const datagram of datagramsOf(bytes)) {
      const input = kind === "rtp" ? rtp.wrap(datagram) : datagram;
      now += 2;
      const found = core.push(input, now);
      const payload = Buffer.from(input.buffer, input.byteOffset + core.payloadOffset, core.payloadLength);
      if (found !== datagram.length / 188 || !payload.equals(datagram)) misplaced++;
      for (const event of ofType(drain(core), "scte35")) {
        sections.push({
          pid: event.pid,
          base64: Buffer.from(event.section).toString("base64"),
          crc: crc32Mpeg2(event.section),
        });
      }
    }
    expect(misplaced).toBe(0);
    expect(sections.map(({ pid, base64 }) => ({ pid, base64 }))).toEqual(expectedSections);
    expect(sections.every((section) => section.crc === 0)).toBe(true);

    const snapshot = core.snapshot();
    expect(snapshot.inputKind).toBe(kind);
    expect(snapshot.packets).toBe(expected.ts_packets);
    expect(snapshot.malformed).toBe(0);
    expect(snapshot.tr101290).toMatchObject({
      syncLoss: 0,
      syncByteErrors: 0,
      crcErrors: 0,
      transportErrors: 0,
    });
    expect(snapshot.rtp.lost).toBe(0);
    const stuck = STUCK_PMT_CC[expected.file];
    const ccErrorPids = snapshot.pids.filter((pid) => pid.ccErrors > 0).map((pid) => pid.pid);
    expect(ccErrorPids).toEqual(stuck === undefined ? [] : [stuck]);
    for (const pid of Object.keys(expected.scte35)) {
      expect(snapshot.pids.find((entry) => entry.pid === Number(pid))).toMatchObject({
        streamType: 0x86,
        scte35: true,
      });
    }
    for (const [pid, stream] of Object.entries(expected.pmt_streams_union)) {
      if (stream.stream_type === "0x86") continue;
      expect(snapshot.pids.find((entry) => entry.pid === Number(pid))?.streamType).toBe(
        Number(stream.stream_type),
      );
    }
  });
});

it("finds 10 sections in the 4 SCTE-35 packets of tsduck.ts", () => {
  const core = PacketCore.load();
  for (const datagram of datagramsOf(
    new Uint8Array(readFileSync(fixturePath("scte35", "ts", "moq-dev_moq", "tsduck.ts"))),
  )) {
    core.push(datagram);
  }
  expect(ofType(drain(core), "scte35")).toHaveLength(10);
  expect(core.snapshot().pids.find((pid) => pid.pid === 0x21)?.packets).toBe(4);
});
