/**
 * The vector path (src/effects/ingest/input-path.ts `runOf`): a channel whose outputs are all plain UDP takes a
 * whole read of its input at once (one packet core call, one run to the outputs); a channel with an output
 * that takes datagrams one by one (here RTP) is handed each. Both deliver the input byte for byte. The test
 * counts the input path's entries through its test seam (ChannelFaults.onDatagram): once per read on the
 * vector path, once per datagram otherwise.
 */
import { Effect, Layer } from "effect";
import { afterEach, expect, it } from "vitest";
import { ChannelFaults } from "../../src/effects/channel/channel.ts";
import { eventually, freeUdpPort, makeTestApp, type TestApp } from "../support/app.ts";
import { udpSink } from "../support/peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

it("plain UDP outputs take a whole read at once; an RTP output beside them has each datagram; both byte for byte", async () => {
  const entries = new Map<string, number>();
  const counting = Layer.succeed(ChannelFaults, {
    onDatagram: (channelId: string) => entries.set(channelId, (entries.get(channelId) ?? 0) + 1),
  });
  app = await makeTestApp(undefined, counting);
  const test = app;
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const [plain, mixed, rtp] = yield* Effect.all([udpSink, udpSink, udpSink]);
        const [plainPort, mixedPort] = yield* Effect.promise(() =>
          Promise.all([freeUdpPort(), freeUdpPort()]),
        );
        yield* Effect.promise(async () => {
          for (const [id, port, outputs] of [
            ["plain", plainPort, [{ name: "a", protocol: "udp", url: `udp://127.0.0.1:${plain.port}` }]],
            [
              "mixed",
              mixedPort,
              [
                { name: "a", protocol: "udp", url: `udp://127.0.0.1:${mixed.port}` },
                { name: "b", protocol: "rtp", url: `rtp://127.0.0.1:${rtp.port}` },
              ],
            ],
          ] as const) {
            const created = await test.request("/api/channels", {
              method: "POST",
              body: JSON.stringify({ id, name: id, rtp_ip: "127.0.0.1", rtp_port: port, outputs }),
            });
            expect(created.status).toBe(201);
            expect((await test.request(`/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
          }
        });
        const stream = Buffer.from(new TsGenerator({ seed: 8, bitrate: 8_000_000 }).packets(7 * 600));
        const datagrams = chunkTs(stream);
        // Four datagrams a millisecond: several wait for each read (every 3 ms).
        yield* Effect.all([sendPaced(datagrams, plainPort, 4), sendPaced(datagrams, mixedPort, 4)], {
          concurrency: 2,
        });
        yield* Effect.promise(() =>
          eventually("both channels' UDP outputs have the whole stream", () =>
            plain.totalBytes() >= stream.length && mixed.totalBytes() >= stream.length ? true : undefined,
          ),
        );
        expect(plain.bytes().equals(stream)).toBe(true);
        expect(mixed.bytes().equals(stream)).toBe(true);
        // The RTP output's datagrams carry the same TS behind their 12-byte headers.
        expect(rtp.totalBytes()).toBe(stream.length + 12 * datagrams.length);
        expect(entries.get("mixed")).toBe(datagrams.length);
        expect(entries.get("plain") ?? 0).toBeGreaterThan(0);
        expect(entries.get("plain") ?? 0).toBeLessThan(datagrams.length / 2);
      }),
    ),
  );
});
