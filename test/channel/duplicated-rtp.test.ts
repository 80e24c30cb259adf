/**
 * An RTP input that receives each datagram twice (same SSRC, same sequence number: two paths converging on
 * the input, a mirror port) forwards each once: the second copy is dropped by the input's packet core and
 * counted as a duplicate where a user reads it (the channel and /metrics). Both of the input's paths: a channel
 * whose outputs are all plain UDP takes whole reads (the vector path, PacketCore `pushMany`); one with an RTP
 * output beside has each datagram (`push`). The stream crosses the sequence number's wrap at 65535.
 */
import { Effect } from "effect";
import { afterEach, expect, it } from "vitest";
import { analyse } from "../support/analyse.ts";
import { eventually, json, type TestApp } from "../support/app.ts";
import { withBothInputPaths } from "../support/input-paths.ts";
import { asRtp, chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

it("each datagram sent twice: every output carries the stream once, byte for byte, and the copies are counted", async () => {
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const both = yield* withBothInputPaths;
        app = both.app;
        const { app: test, entries, plain, mixed, rtp, plainPort, mixedPort } = both;
        const stream = Buffer.from(new TsGenerator({ seed: 21, bitrate: 8_000_000 }).packets(7 * 900));
        const once = asRtp(chunkTs(stream), 65_000);
        const twice = once.flatMap((datagram) => [datagram, datagram]);
        // Several datagrams a millisecond: many wait for each read (every 3 ms), copies in the same read.
        yield* Effect.all([sendPaced(twice, plainPort, 4), sendPaced(twice, mixedPort, 4)], {
          concurrency: 2,
        });
        const counted = (id: string) =>
          Effect.promise(() =>
            eventually(`the ${id} channel to count every copy`, async () => {
              const view = await json(await test.request(`/api/channels/${id}`));
              const input = (view.inputs as Array<{ rtp: { duplicate: number } | null }>)[0];
              return input?.rtp?.duplicate === once.length ? input : undefined;
            }),
          );
        yield* counted("plain");
        yield* counted("mixed");
        yield* Effect.promise(() =>
          eventually("every output to have the whole stream", () =>
            plain.totalBytes() >= stream.length &&
            mixed.totalBytes() >= stream.length &&
            rtp.datagrams.length >= once.length
              ? true
              : undefined,
          ),
        );

        expect(plain.bytes().equals(stream)).toBe(true);
        expect(mixed.bytes().equals(stream)).toBe(true);
        expect(analyse(plain.bytes()).ccErrors).toBe(0);
        // The RTP output: one datagram per datagram sent once, in sequence, the same TS behind the header.
        expect(rtp.datagrams.length).toBe(once.length);
        expect(Buffer.concat(rtp.datagrams.map((datagram) => datagram.subarray(12))).equals(stream)).toBe(
          true,
        );
        const sequences = rtp.datagrams.map((datagram) => datagram.readUInt16BE(2));
        expect(
          sequences.every((sequence, i) => i === 0 || sequence === ((sequences[i - 1] ?? 0) + 1) % 65_536),
        ).toBe(true);
        // The plain channel took whole reads (the vector path); the mixed one each datagram.
        expect(entries.get("plain") ?? 0).toBeLessThan(twice.length / 2);
        expect(entries.get("mixed")).toBe(twice.length);

        const metrics = yield* Effect.promise(async () => (await test.request("/metrics")).text());
        for (const id of ["plain", "mixed"])
          expect(metrics).toContain(
            `distributary_input_rtp_duplicate_packets_total{channel="${id}",input="primary"} ${once.length}`,
          );
      }),
    ),
  );
}, 60_000);
