import { describe, expect, it } from "vitest";
import { CoreStatus, PacketCore } from "../../src/core/packet-core.ts";
import { drain, joinPackets, ofType, pidOf } from "../support/core.ts";
import { type AdaptationSpec, TsGenerator, tsPacket } from "../support/ts-generator.ts";

const PID = 0x100;
const payload = new Uint8Array(184).fill(0xab);

/** Packets on PID with the given continuity counters; "af" marks an adaptation-only packet. */
const withCcs = (ccs: ReadonlyArray<number | "af" | { discontinuity: number }>): Uint8Array[] => {
  let last = 0;
  return ccs.map((cc) => {
    if (cc === "af") return tsPacket({ pid: PID, cc: last });
    if (typeof cc === "object") {
      last = cc.discontinuity;
      return tsPacket({
        pid: PID,
        cc: last,
        payload: payload.subarray(0, 182),
        adaptation: { discontinuity: true },
      });
    }
    last = cc;
    return tsPacket({ pid: PID, cc, payload });
  });
};

const ccErrorsOf = (packets: ReadonlyArray<Uint8Array>) => {
  const core = PacketCore.load();
  for (const packet of packets) core.push(packet);
  return { errors: core.snapshot().tr101290.ccErrors, events: ofType(drain(core), "ccError"), core };
};

describe("TS packets", () => {
  it("counts a clean generated stream per PID with no errors", () => {
    const generator = new TsGenerator({ seed: 3 });
    const core = PacketCore.load();
    let packets = 0;
    for (let i = 0; i < 3000; i++) packets += core.push(generator.datagram(), generator.nowMs);
    const snapshot = core.snapshot();
    expect(packets).toBe(21_000);
    expect(snapshot).toMatchObject({ datagrams: 3000, packets: 21_000, bytes: 21_000 * 188, malformed: 0 });
    expect(snapshot.tr101290).toEqual({
      syncLoss: 0,
      syncByteErrors: 0,
      patErrors: 0,
      ccErrors: 0,
      pmtErrors: 0,
      pidErrors: 0,
      transportErrors: 0,
      crcErrors: 0,
      pcrRepetitionErrors: 0,
      pcrDiscontinuityErrors: 0,
      ptsErrors: 0,
    });
    expect(snapshot.syncLocked).toBe(true);
    expect(snapshot.pids.reduce((n, pid) => n + pid.packets, 0)).toBe(21_000);
    const video = snapshot.pids.find((pid) => pid.pid === generator.videoPid);
    expect(video).toMatchObject({ streamType: 0x1b, ccErrors: 0, referenced: true });
    // One random access point a second over the stream's duration.
    expect(video?.randomAccess).toBe(Math.ceil(generator.nowMs / 1000));
    expect(video?.lastPcr).toBeGreaterThan(0);
    expect(video?.payloadBytes).toBeLessThan((video?.bytes ?? 0) - (video?.packets ?? 0) * 4 + 1);
    expect(snapshot.pids.find((pid) => pid.pid === generator.audioPid)).toMatchObject({ streamType: 0x0f });
    expect(snapshot.programs).toEqual([
      { program: 1, pmtPid: 0x1000, pcrPid: generator.videoPid, pmtVersion: 0 },
    ]);
  });

  it("counts each injected continuity gap exactly once", () => {
    const generator = new TsGenerator({ seed: 4 });
    const core = PacketCore.load();
    const gaps = 37;
    for (let i = 0; i < 2000; i++) {
      if (i % 50 === 10 && i / 50 < gaps)
        generator.injectCcGap(i % 100 === 10 ? generator.videoPid : (generator.audioPid ?? 0));
      core.push(generator.datagram());
    }
    expect(core.snapshot().tr101290.ccErrors).toBe(gaps);
    expect(ofType(drain(core), "ccError")).toHaveLength(gaps);
  });

  it("takes one duplicate packet as legal and reports the discontinuity indicator", () => {
    const generator = new TsGenerator({ seed: 5 });
    const core = PacketCore.load();
    for (let i = 0; i < 500; i++) {
      if (i % 20 === 3) generator.injectDuplicate(generator.videoPid);
      if (i % 20 === 13) generator.injectDiscontinuity();
      core.push(generator.datagram());
    }
    expect(core.snapshot().tr101290.ccErrors).toBe(0);
    expect(pidOf(core, generator.videoPid)?.discontinuities).toBe(25);
  });

  it("applies the continuity rules packet by packet", () => {
    expect(ccErrorsOf(withCcs([0, 1, 2, 2, 3])).errors).toBe(0);
    expect(ccErrorsOf(withCcs([0, 1, 1, 1, 2])).errors).toBe(1);
    expect(ccErrorsOf(withCcs([0, 1, 1, 1, 1, 2])).errors).toBe(2);
    expect(ccErrorsOf(withCcs([14, 15, 0, 1])).errors).toBe(0);
    expect(ccErrorsOf(withCcs([0, 1, "af", "af", 2, 3])).errors).toBe(0);
    expect(ccErrorsOf(withCcs([0, 1, { discontinuity: 9 }, 10])).errors).toBe(0);
    const gap = ccErrorsOf(withCcs([0, 1, 3, 4, 9]));
    expect(gap.errors).toBe(2);
    expect(gap.events.map((e) => [e.pid, e.expected, e.got])).toEqual([
      [PID, 2, 3],
      [PID, 5, 9],
    ]);
    expect(pidOf(gap.core, PID)?.ccErrors).toBe(2);
    // An adaptation-only packet must not advance the counter.
    const advanced = [
      tsPacket({ pid: PID, cc: 0, payload }),
      tsPacket({ pid: PID, cc: 1 }),
      tsPacket({ pid: PID, cc: 1, payload }),
    ];
    expect(ccErrorsOf(advanced).errors).toBe(1);
  });

  it("ignores continuity on the null PID", () => {
    const packets = [3, 3, 3, 7, 0, 12].map((cc) => tsPacket({ pid: 0x1fff, cc, payload }));
    const { errors, core } = ccErrorsOf(packets);
    expect(errors).toBe(0);
    expect(pidOf(core, 0x1fff)?.packets).toBe(6);
  });

  it("reads PCR as 27 MHz ticks and counts random access points", () => {
    const core = PacketCore.load();
    const max = (2 ** 33 - 1) * 300 + 299;
    const adaptations: AdaptationSpec[] = [
      { pcr: 123_456_789 },
      { randomAccess: true, pcr: max },
      { randomAccess: true },
    ];
    core.push(
      joinPackets(
        adaptations.map((adaptation, cc) =>
          tsPacket({ pid: PID, cc, adaptation, payload: new Uint8Array(100) }),
        ),
      ),
    );
    expect(pidOf(core, PID)).toMatchObject({ lastPcr: max, randomAccess: 2, packets: 3, payloadBytes: 300 });
    expect(pidOf(core, 0x101)).toBeUndefined();
  });

  it("validates the adaptation field length", () => {
    const core = PacketCore.load();
    const both = tsPacket({ pid: PID, cc: 0, payload });
    both[3] = 0x30;
    both[4] = 183;
    const only = tsPacket({ pid: PID, cc: 1 });
    only[4] = 100;
    const reserved = tsPacket({ pid: PID, cc: 2, payload });
    reserved[3] = 0x02;
    core.push(joinPackets([both, only, reserved]));
    expect(core.snapshot().adaptationFieldErrors).toBe(3);
    expect(pidOf(core, PID)?.adaptationFieldErrors).toBe(3);
  });

  it("loses sync after two bad sync bytes and regains it after five good ones", () => {
    const core = PacketCore.load();
    const good = (cc: number) => tsPacket({ pid: PID, cc, payload });
    core.push(joinPackets([0, 1, 2, 3, 4, 5, 6].map(good)));
    const broken = joinPackets([7, 8, 9, 10, 11, 12, 13].map(good));
    broken[188 * 2] = 0x46;
    broken[188 * 3] = 0x00;
    expect(core.push(broken)).toBe(CoreStatus.TsSyncByteMissing);
    const lost = core.snapshot();
    expect(lost.syncLocked).toBe(false);
    expect(lost.tr101290).toMatchObject({ syncLoss: 1, syncByteErrors: 2 });
    core.push(joinPackets([14, 15, 0, 1, 2, 3, 4].map(good)));
    // A datagram whose first sync byte is corrupt is still counted as TS once the input is known as one,
    // and dropped like every datagram with a packet out of sync.
    const firstBad = joinPackets([5, 6, 7, 8, 9, 10, 11].map(good));
    firstBad[0] = 0x48;
    expect(core.push(firstBad)).toBe(CoreStatus.TsSyncByteMissing);
    expect(core.payloadLength).toBe(0);
    expect(core.snapshot()).toMatchObject({ syncLocked: true, tr101290: { syncLoss: 1, syncByteErrors: 3 } });
    expect(ofType(drain(core), "sync").map((e) => e.locked)).toEqual([true, false, true]);
  });

  it("counts transport errors and leaves those packets alone", () => {
    const core = PacketCore.load();
    const packet = tsPacket({ pid: PID, cc: 0, payload });
    packet[1] = (packet[1] ?? 0) | 0x80;
    core.push(packet);
    expect(core.snapshot().tr101290.transportErrors).toBe(1);
    expect(pidOf(core, PID)).toBeUndefined();
  });

  it("starts afresh after reset", () => {
    const generator = new TsGenerator();
    const core = PacketCore.load();
    for (let i = 0; i < 100; i++) core.push(generator.datagram());
    core.reset();
    expect(core.snapshot()).toMatchObject({
      datagrams: 0,
      packets: 0,
      pids: [],
      programs: [],
      pat: null,
      inputKind: "unknown",
    });
    expect(drain(core)).toEqual([]);
  });

  it("after reset, sees a stream exactly as a new core does", () => {
    // Reset clears only the PID entries and section slots it marked as written: a stream seen again must
    // find none of the first one's continuity, section or PCR state.
    const datagrams = (seed: number) => {
      const generator = new TsGenerator({ seed });
      return Array.from({ length: 200 }, () => generator.datagram());
    };
    const used = PacketCore.load();
    for (const datagram of datagrams(5)) used.push(datagram, 1000);
    used.reset();
    const fresh = PacketCore.load();
    for (const [i, datagram] of datagrams(9).entries()) {
      used.push(datagram, 2000 + i);
      fresh.push(datagram, 2000 + i);
    }
    expect(used.snapshot()).toEqual(fresh.snapshot());
    expect(used.snapshot().pids.length).toBeGreaterThan(2);
    expect(drain(used)).toEqual(drain(fresh));
  });
});
