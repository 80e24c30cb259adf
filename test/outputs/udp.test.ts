import { it } from "@effect/vitest";
import { Effect } from "effect";
import { describe, expect } from "vitest";
import { makeOutput } from "../../src/effects/outputs/writer.ts";
import { eventually, udpSink } from "../support/peers.ts";
import { TsGenerator } from "../support/ts-generator.ts";

/** Chunks as the channel delivers them: datagram-sized pieces, here of varying packet counts. */
const chunks = (generator: TsGenerator, sizes: ReadonlyArray<number>) =>
  sizes.map((packets) => generator.packets(packets));

const concat = (parts: ReadonlyArray<Uint8Array>) => Buffer.concat(parts.map((part) => Buffer.from(part)));

describe("udp and rtp outputs", () => {
  it.scopedLive(
    "udp: the sink receives exactly the bytes offered, in 188-aligned datagrams of at most 1316",
    () =>
      Effect.gen(function* () {
        const sink = yield* udpSink;
        const output = yield* makeOutput(`udp://127.0.0.1:${sink.port}?ttl=8`);
        yield* Effect.forkScoped(output.run);
        yield* eventually("connected", () => (output.status().state === "connected" ? true : undefined));
        const offered = chunks(new TsGenerator({ seed: 3 }), [7, 7, 3, 1, 5, 7, 2, 7, 7, 4]);
        for (const chunk of offered) output.offer(chunk);
        const expected = concat(offered);
        yield* eventually("all bytes", () => (sink.totalBytes() >= expected.length ? true : undefined));
        expect(sink.bytes().equals(expected)).toBe(true);
        for (const datagram of sink.datagrams) {
          expect(datagram.length % 188).toBe(0);
          expect(datagram.length).toBeLessThanOrEqual(1316);
          expect(datagram[0]).toBe(0x47);
        }
        expect(output.status()).toMatchObject({
          bytesSent: expected.length,
          packetsSent: expected.length / 188,
          queueDrops: 0,
        });
      }),
  );

  it.scopedLive("rtp: PT 33 header with one SSRC and a sequence that increments by one", () =>
    Effect.gen(function* () {
      const sink = yield* udpSink;
      const output = yield* makeOutput(`rtp://127.0.0.1:${sink.port}`);
      yield* Effect.forkScoped(output.run);
      yield* eventually("connected", () => (output.status().state === "connected" ? true : undefined));
      const generator = new TsGenerator({ seed: 4 });
      const offered: Array<Uint8Array> = [];
      for (let i = 0; i < 40; i++) {
        const chunk = generator.datagram();
        offered.push(chunk);
        output.offer(chunk);
        // Spread over time so the 90 kHz timestamps can be seen to advance.
        if (i % 10 === 9) yield* Effect.sleep("20 millis");
      }
      yield* eventually("40 datagrams", () => (sink.datagrams.length >= 40 ? true : undefined));
      const headers = sink.datagrams.map((datagram) => ({
        first: datagram[0],
        payloadType: datagram.readUInt8(1) & 0x7f,
        marker: datagram.readUInt8(1) >> 7,
        sequence: datagram.readUInt16BE(2),
        timestamp: datagram.readUInt32BE(4),
        ssrc: datagram.readUInt32BE(8),
      }));
      expect(new Set(headers.map((header) => header.ssrc)).size).toBe(1);
      headers.forEach((header, i) => {
        expect(header).toMatchObject({ first: 0x80, payloadType: 33, marker: 0 });
        const previous = headers[i - 1];
        if (previous !== undefined) {
          expect(header.sequence).toBe((previous.sequence + 1) & 0xffff);
          expect((header.timestamp - previous.timestamp) >>> 0).toBeLessThan(90_000);
        }
      });
      const first = headers[0];
      const last = headers.at(-1);
      if (first === undefined || last === undefined) throw new Error("no datagrams");
      // About 60 ms of sending at 90 kHz.
      expect((last.timestamp - first.timestamp) >>> 0).toBeGreaterThan(90 * 30);
      const payloads = Buffer.concat(sink.datagrams.map((datagram) => datagram.subarray(12)));
      expect(payloads.equals(concat(offered))).toBe(true);
      expect(sink.datagrams.every((datagram) => datagram.length === 12 + 1316)).toBe(true);
    }),
  );
});
