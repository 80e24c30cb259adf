import { describe, expect, it } from "vitest";
import { CoreStatus, PacketCore } from "../../src/core/packet-core.ts";
import type { CoreSnapshot } from "../../src/core/packet-core-snapshot.ts";
import { drain, ofType } from "../support/core.ts";
import { RtpWrapper, rtpPacket, TsGenerator } from "../support/ts-generator.ts";

const ts = new TsGenerator({ seed: 7 }).datagram();

const pushSequences = (core: PacketCore, sequences: ReadonlyArray<number>): CoreSnapshot["rtp"] => {
  for (const sequence of sequences) expect(core.push(rtpPacket(ts, { sequence }))).toBe(7);
  return core.snapshot().rtp;
};

describe("RTP input", () => {
  it("finds the TS payload behind CSRC list, header extension and padding", () => {
    const core = PacketCore.load();
    const datagram = rtpPacket(ts, {
      sequence: 1,
      ssrc: 0xdeadbeef,
      csrc: [1, 2, 3],
      extension: { profile: 0xbede, data: new Uint8Array(8) },
      padding: 5,
    });
    expect(core.push(datagram)).toBe(7);
    expect(core.inputKind).toBe("rtp");
    expect(core.payloadOffset).toBe(12 + 12 + 4 + 8);
    expect(core.payloadLength).toBe(1316);
    expect(datagram.subarray(core.payloadOffset, core.payloadOffset + core.payloadLength)).toEqual(ts);
    const snapshot = core.snapshot();
    expect(snapshot.rtp).toMatchObject({ payloadType: 33, ssrc: 0xdeadbeef, lastSequence: 1 });
    const events = drain(core);
    expect(ofType(events, "inputKind")).toEqual([{ type: "inputKind", atMs: null, kind: "rtp" }]);
    expect(ofType(events, "rtpPayloadType")).toEqual([
      { type: "rtpPayloadType", atMs: null, previous: null, payloadType: 33 },
    ]);
  });

  it("locks to plain UDP TS and takes RTP only once the TS was silent for the lock time", () => {
    const core = PacketCore.load();
    expect(core.inputKind).toBe("unknown");
    expect(core.push(ts, 5)).toBe(7);
    expect(core.inputKind).toBe("udp-ts");
    expect([core.payloadOffset, core.payloadLength]).toEqual([0, 1316]);
    // One RTP datagram while the TS flows does not flip the kind: it is dropped and counted.
    expect(core.push(rtpPacket(ts, { sequence: 9 }), 6)).toBe(CoreStatus.OtherInputKind);
    expect(core.payloadLength).toBe(0);
    expect(core.push(ts, 300)).toBe(7);
    expect(core.push(rtpPacket(ts, { sequence: 10 }), 799)).toBe(CoreStatus.OtherInputKind);
    expect(core.inputKind).toBe("udp-ts");
    // 500 ms (the default lock time) after the last TS datagram, RTP takes the input with its second
    // datagram in sequence; the first is still dropped.
    expect(core.push(rtpPacket(ts, { sequence: 11 }), 800)).toBe(CoreStatus.OtherInputKind);
    expect(core.push(rtpPacket(ts, { sequence: 40 }), 801)).toBe(CoreStatus.OtherInputKind);
    expect(core.inputKind).toBe("udp-ts");
    expect(core.push(rtpPacket(ts, { sequence: 41 }), 802)).toBe(7);
    expect(core.inputKind).toBe("rtp");
    expect(core.push(ts, 803)).toBe(CoreStatus.OtherInputKind);
    expect(ofType(drain(core), "inputKind").map((e) => [e.kind, e.atMs])).toEqual([
      ["udp-ts", 5],
      ["rtp", 802],
    ]);
    expect(core.snapshot().rejected).toEqual({
      notTs: 0,
      otherKind: 5,
      foreignSsrc: 0,
      payloadType: 0,
      senderNotAllowed: 0,
      ownOutput: 0,
    });
  });

  it("takes only payload type 33 (MPEG-2 TS) and counts the others", () => {
    const core = PacketCore.load();
    expect(core.push(rtpPacket(ts, { sequence: 1 }))).toBe(7);
    expect(core.push(rtpPacket(ts, { sequence: 7000, payloadType: 96 }))).toBe(CoreStatus.WrongPayloadType);
    expect(core.push(rtpPacket(ts, { sequence: 2 }))).toBe(7);
    expect(ofType(drain(core), "rtpPayloadType").map((e) => [e.previous, e.payloadType])).toEqual([
      [null, 33],
    ]);
    const snapshot = core.snapshot();
    expect(snapshot.rtp).toMatchObject({ payloadType: 33, lost: 0, duplicate: 0, reordered: 0 });
    expect(snapshot.rejected.payloadType).toBe(1);
    expect(snapshot.packets).toBe(14);
  });

  it("rejects malformed headers with a status and counts them", () => {
    const core = PacketCore.load();
    const cases: Array<[Uint8Array, number]> = [
      [new Uint8Array(0), CoreStatus.TooShort],
      [Uint8Array.of(0x80, 33, 0, 1), CoreStatus.TooShort],
      [new Uint8Array(70_000), CoreStatus.TooLong],
      [new Uint8Array(200), CoreStatus.UnknownFormat],
      [Uint8Array.of(0x8f, 33, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4), CoreStatus.RtpCsrcOverrun],
      [
        rtpPacket(new Uint8Array(0), { sequence: 1 }).map((b, i) => (i === 0 ? b | 0x10 : b)),
        CoreStatus.RtpExtensionOverrun,
      ],
      [
        rtpPacket(ts, { sequence: 1, extension: { profile: 1, data: new Uint8Array(4) } }).subarray(0, 16),
        CoreStatus.RtpExtensionOverrun,
      ],
      [
        rtpPacket(ts, { sequence: 1, padding: 1 }).map((b, i, a) => (i === a.length - 1 ? 0 : b)),
        CoreStatus.RtpBadPadding,
      ],
      [
        rtpPacket(new Uint8Array(4), { sequence: 1 }).map((b, i) =>
          i === 0 ? b | 0x20 : i === 15 ? 200 : b,
        ),
        CoreStatus.RtpBadPadding,
      ],
      [rtpPacket(ts.subarray(0, 100), { sequence: 1 }), CoreStatus.TsLengthNotMultipleOf188],
    ];
    for (const [datagram, status] of cases) {
      expect(core.push(datagram)).toBe(status);
      expect(core.payloadLength).toBe(0);
    }
    expect(core.snapshot()).toMatchObject({ malformed: cases.length, datagrams: cases.length, packets: 0 });
  });

  it("counts a clean run across the 16-bit wrap as no loss", () => {
    const rtp = pushSequences(PacketCore.load(), [65532, 65533, 65534, 65535, 0, 1, 2]);
    expect(rtp).toMatchObject({ lost: 0, duplicate: 0, reordered: 0, lastSequence: 2 });
  });

  it("counts gaps across the wrap as lost", () => {
    const rtp = pushSequences(PacketCore.load(), [65533, 65534, 1, 2, 10]);
    expect(rtp).toMatchObject({ lost: 2 + 7, duplicate: 0, reordered: 0 });
  });

  it("drops and counts duplicates, also of an earlier packet and across the wrap", () => {
    const core = PacketCore.load();
    const sequences = [65534, 65535, 65535, 0, 65535, 1, 1, 0, 2];
    const statuses = sequences.map((sequence) => core.push(rtpPacket(ts, { sequence })));
    const D = CoreStatus.RtpDuplicate;
    expect(statuses).toEqual([7, 7, D, 7, D, 7, D, D, 7]);
    // A dropped copy reaches no output and no TS count.
    const snapshot = core.snapshot();
    expect(snapshot.rtp).toMatchObject({ lost: 0, duplicate: 4, reordered: 0, lastSequence: 2 });
    expect(snapshot).toMatchObject({ datagrams: 9, packets: 5 * 7 });
  });

  it("takes a late packet once: a second copy of it is a duplicate", () => {
    const core = PacketCore.load();
    const statuses = [10, 12, 11, 11, 13].map((sequence) => core.push(rtpPacket(ts, { sequence })));
    expect(statuses).toEqual([7, 7, 7, CoreStatus.RtpDuplicate, 7]);
    expect(core.snapshot().rtp).toMatchObject({ lost: 0, duplicate: 1, reordered: 1 });
  });

  it("moves a late packet from lost to reordered, across the wrap", () => {
    const rtp = pushSequences(PacketCore.load(), [65533, 65535, 0, 65534, 2, 1, 5, 3]);
    // 65534 and 1 arrive late; 4 never arrives.
    expect(rtp).toMatchObject({ lost: 1, duplicate: 0, reordered: 3 });
  });

  it("keeps the counts right over many wraps with periodic faults", () => {
    const core = PacketCore.load();
    const wrapper = new RtpWrapper({ sequence: 60_000 });
    let expectedLost = 0;
    let expectedDuplicate = 0;
    let expectedReordered = 0;
    let held: Uint8Array | null = null;
    for (let i = 0; i < 200_000; i++) {
      const packet = wrapper.wrap(ts);
      if (i % 1000 === 500) {
        expectedLost++;
        continue;
      }
      if (i % 1000 === 700) {
        held = packet;
        continue;
      }
      core.push(packet);
      if (i % 1000 === 701 && held !== null) {
        core.push(held);
        expectedReordered++;
      }
      if (i % 1000 === 900) {
        core.push(packet);
        expectedDuplicate++;
      }
    }
    expect(core.snapshot().rtp).toMatchObject({
      lost: expectedLost,
      duplicate: expectedDuplicate,
      reordered: expectedReordered,
    });
  });

  it("takes a new SSRC only once the locked one was silent for the lock time, then counts afresh", () => {
    const core = PacketCore.load();
    core.configure({ silenceMs: 200, lockSsrc: true });
    expect(core.push(rtpPacket(ts, { sequence: 100, ssrc: 1 }), 0)).toBe(7);
    expect(core.push(rtpPacket(ts, { sequence: 5000, ssrc: 2 }), 100)).toBe(CoreStatus.ForeignSsrc);
    expect(core.push(rtpPacket(ts, { sequence: 101, ssrc: 1 }), 150)).toBe(7);
    expect(core.push(rtpPacket(ts, { sequence: 5001, ssrc: 2 }), 349)).toBe(CoreStatus.ForeignSsrc);
    // The encoder restarted with a new SSRC: 200 ms after the old one's last packet, its second datagram
    // in sequence makes it the input's.
    expect(core.push(rtpPacket(ts, { sequence: 5002, ssrc: 2 }), 350)).toBe(CoreStatus.ForeignSsrc);
    expect(core.push(rtpPacket(ts, { sequence: 5003, ssrc: 2 }), 351)).toBe(7);
    expect(core.push(rtpPacket(ts, { sequence: 5004, ssrc: 2 }), 352)).toBe(7);
    expect(core.push(rtpPacket(ts, { sequence: 102, ssrc: 1 }), 353)).toBe(CoreStatus.ForeignSsrc);
    const snapshot = core.snapshot();
    expect(snapshot.rtp).toMatchObject({ lost: 0, duplicate: 0, reordered: 0, ssrcChanges: 1, ssrc: 2 });
    expect(snapshot.rejected.foreignSsrc).toBe(4);
    expect(snapshot.packets).toBe(4 * 7);
  });

  it("never lets one stranger's datagram take a silent input: a new source needs two in a row", () => {
    const core = PacketCore.load();
    core.configure({ silenceMs: 200, lockSsrc: true });
    expect(core.push(rtpPacket(ts, { sequence: 1, ssrc: 1 }), 0)).toBe(7);
    // A stalled host finds a backlog: strangers' datagrams first, the real stream's among them.
    expect(core.push(rtpPacket(ts, { sequence: 9, ssrc: 7 }), 900)).toBe(CoreStatus.ForeignSsrc);
    expect(core.push(ts, 900)).toBe(CoreStatus.OtherInputKind);
    expect(core.push(rtpPacket(ts, { sequence: 10, ssrc: 7 }), 900)).toBe(CoreStatus.ForeignSsrc);
    expect(core.push(rtpPacket(ts, { sequence: 2, ssrc: 1 }), 900)).toBe(7);
    expect(core.push(rtpPacket(ts, { sequence: 11, ssrc: 7 }), 900)).toBe(CoreStatus.ForeignSsrc);
    expect(core.push(rtpPacket(ts, { sequence: 3, ssrc: 1 }), 901)).toBe(7);
    expect(core.snapshot()).toMatchObject({ inputKind: "rtp", rtp: { ssrc: 1, ssrcChanges: 0, lost: 0 } });
  });

  it("resynchronises after a restart with the same SSRC: counted once, not as duplicates (RFC 3550 A.1)", () => {
    const core = PacketCore.load();
    const forward = pushSequences(core, [40_000, 40_001, 40_002, 40_003]);
    expect(forward).toMatchObject({ lost: 0, restarts: 0 });
    // The sender restarts from a low number, then sends on in order.
    const restarted = pushSequences(
      core,
      Array.from({ length: 2000 }, (_, i) => 12 + i),
    );
    expect(restarted).toMatchObject({ lost: 0, duplicate: 0, reordered: 0, restarts: 1, lastSequence: 2011 });
    // A jump ahead by more than the dropout limit, the same way.
    const ahead = pushSequences(core, [30_000, 30_001, 30_002]);
    expect(ahead).toMatchObject({ lost: 0, duplicate: 0, reordered: 0, restarts: 2 });
    // Copies of the new sequence's first packets are copies, not another restart.
    expect([30_000, 30_002].map((sequence) => core.push(rtpPacket(ts, { sequence })))).toEqual([
      CoreStatus.RtpDuplicate,
      CoreStatus.RtpDuplicate,
    ]);
    expect(core.snapshot().rtp).toMatchObject({ duplicate: 2, restarts: 2 });
  });

  it("counts a lone stray sequence number as nothing, and goes on with the stream", () => {
    const rtp = pushSequences(PacketCore.load(), [7, 8, 9, 20_000, 10, 11, 12]);
    expect(rtp).toMatchObject({ lost: 0, duplicate: 0, reordered: 0, restarts: 0, lastSequence: 12 });
  });
});
