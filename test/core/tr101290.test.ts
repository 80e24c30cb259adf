import { describe, expect, it } from "vitest";
import { PacketCore } from "../../src/core/packet-core.ts";
import { drain, ofType } from "../support/core.ts";
import { buildPat, buildPmt, packetizeSections, TsGenerator, tsPacket } from "../support/ts-generator.ts";

// Time-based checks run on the clock the host passes with each push; they are evaluated every 100 ms of it.
const PMT_PID = 0x1000;
const VIDEO = 0x100;
const pat = buildPat({ programs: [{ program: 1, pmtPid: PMT_PID }] });
const pmt = buildPmt({
  program: 1,
  pcrPid: VIDEO,
  streams: [
    { streamType: 0x1b, pid: VIDEO },
    { streamType: 0x86, pid: 0x1f0 },
  ],
});

class Feed {
  readonly core = PacketCore.load();
  readonly #cc = new Map<number, number>();

  #next(pid: number): number {
    const cc = ((this.#cc.get(pid) ?? 15) + 1) & 0x0f;
    this.#cc.set(pid, cc);
    return cc;
  }

  /** Pushes one packet every 10 ms from `fromMs` up to `toMs`, with PAT/PMT when their interval is due. */
  run(fromMs: number, toMs: number, options: { patEveryMs?: number; pmtEveryMs?: number; video?: boolean }) {
    for (let t = fromMs; t <= toMs; t += 10) {
      let packet = tsPacket({ pid: 0x1fff, cc: 0, payload: new Uint8Array(184) });
      if (options.patEveryMs !== undefined && t % options.patEveryMs === 0) {
        packet = packetizeSections(0, [pat], this.#next(0))[0] ?? packet;
      } else if (options.pmtEveryMs !== undefined && t % options.pmtEveryMs === 5 * 10) {
        packet = packetizeSections(PMT_PID, [pmt], this.#next(PMT_PID))[0] ?? packet;
      } else if (options.video) {
        packet = tsPacket({ pid: VIDEO, cc: this.#next(VIDEO), payload: new Uint8Array(184) });
      }
      this.core.push(packet, t);
    }
    return this.core.snapshot().tr101290;
  }
}

describe("TR 101 290 first priority, with the host's clock", () => {
  it("raises nothing for a generated stream fed at its own pace", () => {
    const generator = new TsGenerator({ seed: 2 });
    const core = PacketCore.load();
    while (generator.nowMs < 12_000) core.push(generator.datagram(), generator.nowMs);
    expect(core.snapshot().tr101290).toMatchObject({ patErrors: 0, pmtErrors: 0, pidErrors: 0 });
  });

  it("counts a PAT error per 500 ms without a PAT (1.3)", () => {
    const feed = new Feed();
    expect(feed.run(0, 2000, { patEveryMs: 400, pmtEveryMs: 400, video: true }).patErrors).toBe(0);
    // Last PAT at 2000 ms; checks at 2600, 3200 and 3800 find it missing.
    expect(feed.run(2010, 4000, { pmtEveryMs: 400, video: true }).patErrors).toBe(3);
    const events = ofType(drain(feed.core), "tr101290");
    expect(events.map((e) => [e.indicator, e.atMs])).toEqual([
      ["PAT_error", 2600],
      ["PAT_error", 3200],
      ["PAT_error", 3800],
    ]);
  });

  it("counts a PMT error when a program's PMT stops (1.5)", () => {
    const feed = new Feed();
    feed.run(0, 2000, { patEveryMs: 200, pmtEveryMs: 200, video: true });
    // Last PMT at 1850 ms: missing at 2400 and 3000.
    expect(feed.run(2010, 3000, { patEveryMs: 200, video: true })).toMatchObject({
      patErrors: 0,
      pmtErrors: 2,
    });
    expect(
      ofType(drain(feed.core), "tr101290").every((e) => e.indicator === "PMT_error" && e.pid === PMT_PID),
    ).toBe(true);
  });

  it("counts a PID error when a listed PID stays away for 5 s, but not for a quiet SCTE-35 PID (1.6)", () => {
    const feed = new Feed();
    feed.run(0, 3000, { patEveryMs: 200, pmtEveryMs: 200, video: true });
    // Last video packet at 2990 ms: the check at 8000 finds it 5010 ms old.
    expect(feed.run(3010, 9000, { patEveryMs: 200, pmtEveryMs: 200 })).toMatchObject({ pidErrors: 1 });
    expect(ofType(drain(feed.core), "tr101290").map((e) => [e.indicator, e.pid, e.atMs])).toEqual([
      ["PID_error", VIDEO, 8000],
    ]);
  });

  it("counts nothing time-based without a clock", () => {
    const core = PacketCore.load();
    for (let i = 0; i < 1000; i++) core.push(tsPacket({ pid: 0x1fff, cc: 0, payload: new Uint8Array(184) }));
    expect(core.snapshot().tr101290).toMatchObject({ patErrors: 0, pmtErrors: 0, pidErrors: 0 });
  });
});
