/**
 * Packet cores made ahead of need (PacketCore.prepare, as a rebalance's new thread does before its moves): they
 * are handed out before any new one is made, each is fresh and has a memory of its own, and `prepare(0)` lets
 * go of those left.
 */
import { afterEach, describe, expect, it } from "vitest";
import { PacketCore } from "../../src/core/packet-core.ts";
import { waitingInstances } from "../../src/core/wasm.ts";
import { TsGenerator } from "../support/ts-generator.ts";

afterEach(() => PacketCore.prepare(0));

describe("packet cores prepared ahead", () => {
  it("are handed out first, each fresh and with its own memory; prepare(0) lets go of the rest", () => {
    PacketCore.prepare(3);
    expect(waitingInstances("core")).toBe(3);
    const first = PacketCore.load();
    const second = PacketCore.load();
    expect(waitingInstances("core")).toBe(1);
    expect(first.readSlots.memory.buffer).not.toBe(second.readSlots.memory.buffer);

    // What one core reads, the other does not see; a prepared one counts as a core made just now does.
    const generator = new TsGenerator({ seed: 5 });
    const datagrams = Array.from({ length: 12 }, () => generator.datagram());
    PacketCore.prepare(0);
    expect(waitingInstances("core")).toBe(0);
    const made = PacketCore.load();
    for (const datagram of datagrams) {
      expect(first.push(datagram, 1)).toBe(made.push(datagram, 1));
    }
    expect(first.counters()).toEqual(made.counters());
    expect(first.counters().datagrams).toBe(12);
    expect(second.counters().datagrams).toBe(0);
  });

  it("prepare keeps the number asked, never more", () => {
    PacketCore.prepare(4);
    PacketCore.prepare(2);
    expect(waitingInstances("core")).toBe(2);
    PacketCore.prepare(5);
    expect(waitingInstances("core")).toBe(5);
  });
});
