import { describe, expect, it } from "vitest";
import { CoreStatus, PacketCore } from "../../src/core/packet-core.ts";
import type { CoreRejections } from "../../src/core/packet-core-snapshot.ts";
import { drain, ofType } from "../support/core.ts";
import { FOREIGN_KINDS, ForeignDatagrams, REASON_ON_RTP_INPUT } from "../support/foreign.ts";
import { RtpWrapper, rtpPacket, TsGenerator } from "../support/ts-generator.ts";

const SSRC = 0x0d15_7a1b;
const none: CoreRejections = {
  notTs: 0,
  otherKind: 0,
  foreignSsrc: 0,
  payloadType: 0,
  senderNotAllowed: 0,
  ownOutput: 0,
};

/** Pushes `datagram`; returns the TS bytes the core would let through (empty when rejected). */
const accepted = (core: PacketCore, datagram: Uint8Array, nowMs: number): Uint8Array => {
  const status = core.push(datagram, nowMs);
  if (status <= 0) {
    expect(core.payloadLength).toBe(0);
    return new Uint8Array(0);
  }
  return datagram.subarray(core.payloadOffset, core.payloadOffset + core.payloadLength);
};

describe("foreign datagrams", () => {
  it("drops each kind whole, with its own status and counter, on an RTP input", () => {
    const core = PacketCore.load();
    const rtp = new RtpWrapper({ ssrc: SSRC });
    const real = new TsGenerator({ seed: 3 });
    const foreign = new ForeignDatagrams({ ssrc: SSRC });
    expect(core.push(rtp.wrap(real.datagram()), 0)).toBe(7);
    const expected: Record<string, number> = { ...none };
    const statuses: Record<string, number> = {
      notTs: CoreStatus.TsSyncByteMissing,
      otherKind: CoreStatus.OtherInputKind,
      foreignSsrc: CoreStatus.ForeignSsrc,
      payloadType: CoreStatus.WrongPayloadType,
    };
    for (const kind of FOREIGN_KINDS) {
      const reason = REASON_ON_RTP_INPUT[kind];
      const status = core.push(foreign.of(kind), 1);
      expect(status, kind).toBeLessThan(0);
      if (kind === "rtp_no_sync" || kind === "rtp_one_bad_sync") expect(status, kind).toBe(statuses[reason]);
      else if (reason !== "notTs") expect(status, kind).toBe(statuses[reason]);
      expect(core.payloadLength, kind).toBe(0);
      expected[reason] = (expected[reason] ?? 0) + 1;
      expect(core.snapshot().rejected, kind).toEqual(expected);
    }
    expect(core.push(rtp.wrap(real.datagram()), 2)).toBe(7);
    const snapshot = core.snapshot();
    expect(snapshot).toMatchObject({ inputKind: "rtp", packets: 14, malformed: expected.notTs });
    expect(snapshot.rtp).toMatchObject({ ssrc: SSRC, lost: 0, duplicate: 0, reordered: 0, ssrcChanges: 0 });
    expect(snapshot.tr101290.ccErrors).toBe(0);
  });

  it("keeps a plain TS input's kind: noise after a sync byte, then noise without one, never pass", () => {
    const core = PacketCore.load();
    const real = new TsGenerator({ seed: 3 });
    const foreign = new ForeignDatagrams({ ssrc: SSRC });
    expect(core.push(real.datagram(), 0)).toBe(7);
    expect(core.push(foreign.of("raw_sync_then_noise"), 1)).toBe(CoreStatus.TsSyncByteMissing);
    expect(core.push(foreign.of("raw_no_sync"), 2)).toBe(CoreStatus.TsSyncByteMissing);
    expect(core.push(foreign.of("rtp_other_ssrc"), 3)).toBe(CoreStatus.OtherInputKind);
    expect(core.push(real.datagram(), 4)).toBe(7);
    const snapshot = core.snapshot();
    expect(snapshot.inputKind).toBe("udp-ts");
    expect(snapshot.rejected).toEqual({ ...none, notTs: 2, otherKind: 1 });
    expect(snapshot).toMatchObject({ packets: 14, tr101290: { ccErrors: 0 } });
    expect(ofType(drain(core), "inputKind").map((event) => event.kind)).toEqual(["udp-ts"]);
  });

  it("takes no kind from a datagram that is not whole TS", () => {
    const core = PacketCore.load();
    const foreign = new ForeignDatagrams({ ssrc: SSRC });
    expect(core.push(foreign.of("raw_sync_then_noise"), 0)).toBe(CoreStatus.TsSyncByteMissing);
    expect(core.push(foreign.of("raw_no_sync"), 1)).toBe(CoreStatus.UnknownFormat);
    expect(core.push(foreign.of("rtp_no_sync"), 2)).toBe(CoreStatus.TsSyncByteMissing);
    expect(core.inputKind).toBe("unknown");
    expect(core.snapshot().rtp.ssrc).toBeNull();
    // The real stream, when it comes, is the one the input locks to.
    expect(core.push(rtpPacket(new TsGenerator().datagram(), { sequence: 1, ssrc: SSRC }), 3)).toBe(7);
    expect(core.snapshot()).toMatchObject({ inputKind: "rtp", rtp: { ssrc: SSRC } });
  });

  it("counts a sender the host refused with the rest", () => {
    const core = PacketCore.load();
    expect(core.rejectSender()).toBe(CoreStatus.SenderNotAllowed);
    expect(core.snapshot()).toMatchObject({ datagrams: 1, packets: 0, rejected: { senderNotAllowed: 1 } });
  });

  it("lets exactly the real stream through when every kind is interleaved with it", () => {
    const core = PacketCore.load();
    core.configure({ silenceMs: 500, lockSsrc: true });
    const rtp = new RtpWrapper({ ssrc: SSRC, sequence: 65_000 });
    const real = new TsGenerator({ seed: 5 });
    const foreign = new ForeignDatagrams({ ssrc: SSRC, seed: 5 });
    const sent: Uint8Array[] = [];
    const through: Uint8Array[] = [];
    for (let i = 0; i < 20_000; i++) {
      const nowMs = i * 0.1;
      const datagram = real.datagram().slice();
      sent.push(datagram);
      through.push(accepted(core, rtp.wrap(datagram), nowMs).slice());
      for (let k = 0; k < 3; k++)
        through.push(accepted(core, foreign.next(i * 3 + k).datagram, nowMs).slice());
    }
    expect(Buffer.compare(Buffer.concat(through), Buffer.concat(sent))).toBe(0);
    const snapshot = core.snapshot();
    expect(snapshot.tr101290.ccErrors).toBe(0);
    expect(snapshot.rtp).toMatchObject({ lost: 0, duplicate: 0, reordered: 0, restarts: 0, ssrcChanges: 0 });
    expect(Object.values(snapshot.rejected).reduce((a, b) => a + b, 0)).toBe(60_000);
  });
});
