/**
 * Both of an input's paths at once, for the tests that compare them (test/channel/whole-reads,
 * duplicated-rtp): the app with the input path's test seam counting its entries per channel
 * (ChannelFaults.onDatagram: once per read on the vector path, once per datagram otherwise), and two running
 * channels, "plain" whose one output is plain UDP (the vector path: whole reads) and "mixed" with an RTP output
 * beside its UDP one (each datagram handed on alone). Made in the caller's scope; the app is the caller's to close.
 */
import { Effect, Layer } from "effect";
import { expect } from "vitest";
import { ChannelFaults } from "../../src/effects/channel/channel-types.ts";
import { freeUdpPort, makeTestApp, type TestApp } from "./app.ts";
import { udpSink } from "./peers.ts";

export const withBothInputPaths = Effect.gen(function* () {
  const entries = new Map<string, number>();
  const counting = Layer.succeed(ChannelFaults, {
    onDatagram: (channelId: string) => entries.set(channelId, (entries.get(channelId) ?? 0) + 1),
  });
  const app: TestApp = yield* Effect.promise(() => makeTestApp(undefined, counting));
  const [plain, mixed, rtp] = yield* Effect.all([udpSink, udpSink, udpSink]);
  const [plainPort, mixedPort] = yield* Effect.promise(() => Promise.all([freeUdpPort(), freeUdpPort()]));
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
      const created = await app.request("/api/channels", {
        method: "POST",
        body: JSON.stringify({ id, name: id, rtp_ip: "127.0.0.1", rtp_port: port, outputs }),
      });
      expect(created.status).toBe(201);
      expect((await app.request(`/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
    }
  });
  return { app, entries, plain, mixed, rtp, plainPort, mixedPort };
});
