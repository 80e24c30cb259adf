/**
 * What the RIST tests send and check: two seconds of TS with three SCTE-35 cues, the null-packet primers that
 * open a link before the stream (the simple profile loses a link's first datagram, a GStreamer pipeline its
 * first moments), and the comparison, byte for byte, cue for cue.
 */
import { Effect } from "effect";
import { expect } from "vitest";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { analyse } from "./analyse.ts";
import { immediateSpliceOut } from "./cues.ts";
import { sendPaced } from "./sender.ts";
import { TsGenerator } from "./ts-generator.ts";

/** Two seconds of TS with three SCTE-35 splice_inserts. */
export const ristStreamWithCues = (seed: number) => {
  const generator = new TsGenerator({ seed, bitrate: 2_000_000 });
  for (const [index, at] of [300, 900, 1500].entries()) {
    generator.insertScte35(encodeSection(immediateSpliceOut(100 + index)), at);
  }
  return generator.packets(Math.round((2_000_000 * 2) / 8 / 188 / 7) * 7);
};

/** Seven null packets: what primes a link before the stream (the simple profile loses its first datagram). */
const PRIMER = Buffer.concat(
  Array.from({ length: 7 }, () =>
    Buffer.from([0x47, 0x1f, 0xff, 0x10, ...new Array<number>(184).fill(0xff)]),
  ),
);

/** The TS without its null packets (PID 0x1FFF): the primers, however a sender cut them into datagrams. */
const withoutNullPackets = (ts: Buffer) => {
  const kept: Array<Buffer> = [];
  for (let at = 0; at + 188 <= ts.length; at += 188) {
    if (((ts[at + 1] ?? 0) & 0x1f) !== 0x1f || ts[at + 2] !== 0xff) kept.push(ts.subarray(at, at + 188));
  }
  return Buffer.concat(kept);
};

/** What arrived after the primers: the stream as the input handed it on. */
export const collector = () => {
  const datagrams: Array<Buffer> = [];
  return {
    onDatagram: (datagram: Buffer) => datagrams.push(datagram),
    // Several primers through: a sender's first moments (GStreamer's pipeline starting) are behind it.
    primed: () => datagrams.length >= 5,
    bytes: () => withoutNullPackets(Buffer.concat(datagrams)),
  };
};

/** Sends primers to `udpPort` until the input says it is primed. */
export const primed = (udpPort: number, arrived: () => boolean) =>
  Effect.gen(function* () {
    while (!arrived()) {
      yield* sendPaced([PRIMER], udpPort);
      yield* Effect.sleep("50 millis");
    }
  }).pipe(Effect.timeout("15 seconds"), Effect.orDie);

export const expectSame = (received: Buffer, sent: Uint8Array) => {
  expect(received.length).toBe(sent.length);
  expect(Buffer.compare(received, Buffer.from(sent))).toBe(0);
  const expected = analyse(sent);
  const seen = analyse(received);
  expect(expected.sections.length).toBe(3);
  expect(seen.sections).toEqual(expected.sections);
  expect(seen.ccErrors).toBe(0);
};
