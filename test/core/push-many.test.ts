/**
 * A whole read at once (PacketCore pushMany): datagrams written into the core's read slots as recvmmsg(2)
 * writes them are checked exactly as push checks each one, their TS payloads come out as one run in order, and
 * a sender the host has not let in stops the run until it decides.
 */
import { describe, expect, it } from "vitest";
import { CoreStatus, PacketCore } from "../../src/core/packet-core.ts";
import { RtpWrapper, TsGenerator } from "../support/ts-generator.ts";

const MSG_TRUNC = 0x20;

interface Landed {
  readonly bytes: Uint8Array;
  /** An IPv4 sender as address and port; a cut datagram sets `truncated`. */
  readonly from?: readonly [string, number];
  readonly truncated?: boolean;
}

/** Writes datagrams into the core's read slots as the kernel would: data, length, flags and sender. */
const land = (core: PacketCore, datagrams: ReadonlyArray<Landed>): number => {
  const { memory, headers, names, data, slotBytes } = core.readSlots;
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  datagrams.forEach(({ bytes, from = ["192.0.2.1", 5000], truncated = false }, slot) => {
    memory.set(bytes.subarray(0, slotBytes), data + slot * slotBytes);
    const header = headers + slot * 64;
    view.setUint32(header + 8, 16, true); // the kernel writes the name's length back
    view.setInt32(header + 48, truncated ? MSG_TRUNC : 0, true);
    view.setUint32(header + 56, truncated ? slotBytes : bytes.length, true);
    const name = names + slot * 32;
    view.setUint16(name, 2, true); // AF_INET
    view.setUint16(name + 2, from[1], false);
    for (const [i, part] of from[0].split(".").entries()) view.setUint8(name + 4 + i, Number(part));
  });
  return datagrams.length;
};

const runBytes = (core: PacketCore): Uint8Array => {
  const uniform = core.uniformRun();
  if (uniform !== null) return Uint8Array.from(uniform);
  const parts: Uint8Array[] = [];
  core.runPayloads((payload) => parts.push(Uint8Array.from(payload)));
  return Buffer.concat(parts);
};

/** What the host does for a sender pushMany stopped at: trusts it, or refuses the datagram. */
const runAll = (core: PacketCore, count: number, allowed: (slot: number) => boolean, nowMs = 1) => {
  const asked: number[] = [];
  let slot = core.pushMany(0, count, nowMs);
  while (slot < count) {
    asked.push(slot);
    if (allowed(slot)) {
      core.trustSender(slot);
      slot = core.pushMany(slot, count, nowMs);
    } else {
      core.rejectSlot(slot, CoreStatus.SenderNotAllowed);
      slot = core.pushMany(slot + 1, count, nowMs);
    }
  }
  return asked;
};

describe("pushMany", () => {
  it("counts and finds what push does, and hands the accepted payloads on as one run in order", () => {
    const generator = new TsGenerator({ seed: 11 });
    const datagrams = Array.from({ length: 16 }, () => generator.datagram());
    // Among them, what push refuses: a cut datagram, a stray byte, a TS datagram without its sync byte.
    const broken = Uint8Array.from(datagrams[13] ?? []);
    broken[188] = 0;
    const landed: Landed[] = datagrams.map((bytes) => ({ bytes }));
    landed[10] = { bytes: datagrams[10] ?? new Uint8Array(), truncated: true };
    landed[11] = { bytes: new Uint8Array([0x47]) };
    landed[13] = { bytes: broken };

    const one = PacketCore.load();
    const accepted: Uint8Array[] = [];
    for (const { bytes, truncated } of landed) {
      const status = truncated ? one.push(new Uint8Array(70_000), 1) : one.push(bytes, 1);
      if (status > 0) accepted.push(Uint8Array.from(bytes));
    }

    const many = PacketCore.load();
    const count = land(many, landed);
    expect(runAll(many, count, () => true)).toEqual([0]);
    expect(many.runAccepted).toBe(13);
    expect(Buffer.from(runBytes(many)).equals(Buffer.concat(accepted))).toBe(true);
    expect(many.snapshot()).toEqual(one.snapshot());
    expect(many.counters().malformed).toBe(3);
    // The kernel wrote each name's length back; the core gave each slot its room again for the next read.
    const { memory, headers } = many.readSlots;
    const view = new DataView(memory.buffer, memory.byteOffset);
    expect(Array.from({ length: count }, (_, slot) => view.getUint32(headers + slot * 64 + 8, true))).toEqual(
      Array(count).fill(32),
    );
  });

  it("strips RTP headers into the run, and names a run that is not whole 7-packet datagrams", () => {
    const generator = new TsGenerator({ seed: 3 });
    const rtp = new RtpWrapper({ ssrc: 0x1234 });
    const payloads = [generator.datagram(), generator.datagram(3), generator.datagram()];
    const core = PacketCore.load();
    const count = land(
      core,
      payloads.map((payload) => ({ bytes: rtp.wrap(payload) })),
    );
    runAll(core, count, () => true);
    expect(core.inputKind).toBe("rtp");
    expect(core.runAccepted).toBe(3);
    // One payload of 3 packets: the outputs cannot send the run as it is, so each payload comes alone.
    expect(core.uniformRun()).toBeNull();
    const seen: number[] = [];
    core.runPayloads((payload) => seen.push(payload.length));
    expect(seen).toEqual([1316, 564, 1316]);
    expect(Buffer.from(runBytes(core)).equals(Buffer.concat(payloads))).toBe(true);
  });

  it("drops a copy of an RTP datagram it took, within a read and across reads, as push does", () => {
    const generator = new TsGenerator({ seed: 9 });
    const rtp = new RtpWrapper({ ssrc: 0x4321, sequence: 65_533 });
    // Each datagram twice, across the sequence number's wrap: two paths converging on the input.
    const sent = Array.from({ length: 6 }, () => rtp.wrap(generator.datagram()));
    const twice = sent.flatMap((bytes) => [{ bytes }, { bytes }]);
    const many = PacketCore.load();
    runAll(many, land(many, twice), () => true);
    expect(many.runAccepted).toBe(6);
    const payloads = sent.map((bytes) => bytes.subarray(12));
    expect(Buffer.from(runBytes(many)).equals(Buffer.concat(payloads))).toBe(true);
    // The next read repeats the last datagram of this one.
    const last = sent.at(-1) ?? new Uint8Array();
    runAll(many, land(many, [{ bytes: last }]), () => true);
    expect(many.runAccepted).toBe(0);
    const one = PacketCore.load();
    for (const { bytes } of [...twice, { bytes: last }]) one.push(bytes, 1);
    expect(many.snapshot()).toEqual(one.snapshot());
    expect(many.snapshot().rtp).toMatchObject({ duplicate: 7, lost: 0, lastSequence: 2 });
    expect(many.snapshot().tr101290.ccErrors).toBe(0);
  });

  it("asks the host about each new sender, counts the datagrams it refuses, and forgets whom it trusted when told", () => {
    const generator = new TsGenerator({ seed: 5 });
    const good: readonly [string, number] = ["192.0.2.1", 5000];
    const stranger: readonly [string, number] = ["198.51.100.7", 5000];
    const samePortOtherHost: readonly [string, number] = ["192.0.2.2", 5000];
    const landed: Landed[] = [
      { bytes: generator.datagram(), from: good },
      { bytes: generator.datagram(), from: good },
      { bytes: generator.datagram(), from: stranger },
      { bytes: generator.datagram(), from: good },
      { bytes: generator.datagram(), from: samePortOtherHost },
      { bytes: generator.datagram(), from: good },
    ];
    const core = PacketCore.load();
    const count = land(core, landed);
    const isGood = (slot: number) => landed[slot]?.from === good;
    expect(runAll(core, count, isGood)).toEqual([0, 2, 4]);
    expect(core.runAccepted).toBe(4);
    expect(core.counters().rejected.senderNotAllowed).toBe(2);
    expect(core.uniformRun()?.length).toBe(4 * 1316);

    // Trusted from the last read on: the next read of the same sender goes through without a question.
    land(core, [{ bytes: generator.datagram(), from: good }]);
    expect(runAll(core, 1, isGood)).toEqual([]);
    expect(core.runAccepted).toBe(1);
    // The allow-list changed: the host is asked again.
    core.distrustSender();
    land(core, [{ bytes: generator.datagram(), from: good }]);
    expect(runAll(core, 1, () => false)).toEqual([0]);
    expect(core.runAccepted).toBe(0);
    expect(core.uniformRun()?.length).toBe(0);
  });
});
