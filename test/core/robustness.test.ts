import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CoreStatus, PacketCore } from "../../src/core/packet-core.ts";
import { drain } from "../support/core.ts";
import {
  datagramsOf,
  packetizeSections,
  prng,
  RtpWrapper,
  rtpPacket,
  spliceNull,
  TsGenerator,
} from "../support/ts-generator.ts";

const DATAGRAMS = 1_000_000;

/** Valid material to mutate: generated TS with PSI and cues, raw and in RTP. */
const pool = (() => {
  const generator = new TsGenerator({ seed: 11 });
  for (let i = 0; i < 40; i++) generator.insertScte35(spliceNull(), i * 25);
  const rtp = new RtpWrapper({ csrc: [1], padding: 4 });
  const out: Uint8Array[] = [];
  for (let i = 0; i < 1500; i++) {
    const datagram = generator.datagram();
    out.push(datagram, rtp.wrap(datagram));
  }
  out.push(
    ...datagramsOf(
      new Uint8Array(packetizeSections(0x1f0, Array.from({ length: 30 }, spliceNull)).flatMap((p) => [...p])),
    ),
  );
  return out;
})();

describe("robustness", () => {
  it(`takes ${DATAGRAMS.toLocaleString("en")} random and mutated datagrams without throwing, hanging or growing`, () => {
    const core = PacketCore.load();
    const memoryBefore = core.memoryBytes;
    const random = prng(20240601);
    const noise = Uint8Array.from({ length: 1 << 20 }, () => (random() * 256) | 0);
    const scratch = new Uint8Array(2048);
    const int = (n: number) => (random() * n) | 0;
    let rejected = 0;
    let events = 0;
    for (let i = 0; i < DATAGRAMS; i++) {
      const base = pool[int(pool.length)] ?? new Uint8Array(0);
      let datagram: Uint8Array;
      switch (int(8)) {
        case 0: // truncated anywhere
          datagram = base.subarray(0, int(base.length + 1));
          break;
        case 1: {
          // noise, now and then longer than the largest UDP payload
          const start = int(noise.length - 70_000);
          datagram = noise.subarray(start, start + (int(200) === 0 ? int(70_000) : int(1500)));
          break;
        }
        case 2: {
          // random RTP header bits in front of valid TS
          scratch.set(base.subarray(0, Math.min(base.length, scratch.length)));
          for (let k = 0; k < 12; k++) scratch[k] = int(256);
          scratch[0] = 0x80 | int(64);
          datagram = scratch.subarray(0, Math.min(base.length, scratch.length));
          break;
        }
        case 3: {
          // a few random bytes flipped: sync bytes, headers, pointer fields, section lengths
          scratch.set(base);
          for (let k = int(6); k >= 0; k--) scratch[int(base.length)] = int(256);
          datagram = scratch.subarray(0, base.length);
          break;
        }
        case 4: {
          // absurd section lengths right after every pointer field
          scratch.set(base);
          for (let at = base[0] === 0x47 ? 0 : base.length % 188; at + 188 <= base.length; at += 188) {
            if (((scratch[at + 1] ?? 0) & 0x40) !== 0) {
              scratch[at + 6] = 0xff;
              scratch[at + 7] = int(256);
            }
          }
          datagram = scratch.subarray(0, base.length);
          break;
        }
        case 5: // wrong lengths: a TS datagram one byte off
          datagram = base.subarray(0, base.length - 1 - int(10));
          break;
        default:
          datagram = base;
      }
      if (core.push(datagram, i) < 0) rejected++;
      if ((i & 0x3ff) === 0) events += drain(core).length;
    }
    events += drain(core).length;
    const snapshot = core.snapshot();
    expect(core.memoryBytes).toBe(memoryBefore);
    expect(snapshot.datagrams).toBe(DATAGRAMS);
    expect(Object.values(snapshot.rejected).reduce((a, b) => a + b, 0)).toBe(rejected);
    expect(snapshot.malformed).toBe(snapshot.rejected.notTs);
    expect(snapshot.malformed).toBeGreaterThan(DATAGRAMS / 10);
    expect(events).toBeGreaterThan(0);
  });

  it("accepts any bytes as a datagram (property)", () => {
    const core = PacketCore.load();
    const memoryBefore = core.memoryBytes;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.boolean(), (bytes, asRtp) => {
        const datagram = asRtp ? rtpPacket(bytes, { sequence: bytes.length }) : bytes;
        const status = core.push(datagram, bytes.length);
        drain(core);
        return (
          Number.isInteger(status) &&
          status >= CoreStatus.SenderNotAllowed &&
          core.payloadOffset + core.payloadLength <= datagram.length
        );
      }),
      { numRuns: 20_000, seed: 42 },
    );
    expect(core.memoryBytes).toBe(memoryBefore);
  });

  it("drops and counts events when nobody drains the ring", () => {
    const core = PacketCore.load();
    const broken = new TsGenerator({ seed: 1 });
    for (let i = 0; i < 20_000; i++) {
      broken.injectCcGap(broken.videoPid);
      core.push(broken.datagram());
    }
    const dropped = core.snapshot().eventsDropped;
    expect(dropped).toBeGreaterThan(0);
    const delivered = drain(core).length;
    expect(delivered + dropped).toBeGreaterThanOrEqual(core.snapshot().tr101290.ccErrors);
    broken.injectCcGap(broken.videoPid);
    core.push(broken.datagram());
    expect(drain(core).map((event) => event.type)).toEqual(["ccError"]);
  });
});
