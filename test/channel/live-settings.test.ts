/**
 * Changing a running channel's redundancy settings or backup input applies live: timers, FEC on and off, the
 * mode and a re-pointed backup take effect while the outputs go on untouched — every datagram of a stream sent
 * meanwhile arrives at a UDP output, byte for byte, with no continuity error and no reconnect.
 */
import { Effect, Fiber } from "effect";
import { afterEach, expect, it } from "vitest";
import { analyse } from "../support/analyse.ts";
import { freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";
import { eventually, udpSink } from "../support/peers.ts";
import { asRtp, chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

it("redundancy and backup changes on a running channel leave its outputs untouched", async () => {
  app = await makeTestApp();
  const test = app;
  const patch = async (body: unknown) => {
    const response = await test.request("/api/channels/live", {
      method: "PATCH",
      body: JSON.stringify(body),
    });
    expect(response.status, JSON.stringify(await response.clone().json())).toBe(200);
  };

  await Effect.runPromise(
    Effect.gen(function* () {
      const sink = yield* udpSink;
      const [primaryPort, backupPort, movedBackupPort] = yield* Effect.promise(() =>
        Promise.all([freeUdpPort(), freeUdpPort(), freeUdpPort()]),
      );
      yield* Effect.promise(async () => {
        const created = await test.request("/api/channels", {
          method: "POST",
          body: JSON.stringify({
            id: "live",
            name: "live",
            rtp_ip: "127.0.0.1",
            rtp_port: primaryPort,
            backup_rtp_ip: "127.0.0.1",
            backup_rtp_port: backupPort,
            outputs: [{ id: "sink", name: "sink", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
          }),
        });
        expect(created.status).toBe(201);
        expect((await test.request("/api/channels/live/start", { method: "POST" })).status).toBe(200);
      });

      // Eight seconds of RTP at 4 Mbit/s to the primary, long enough for every change to land mid-stream.
      const ts = new TsGenerator({ seed: 12, bitrate: 4_000_000 }).packets(
        Math.round((8 * 4_000_000) / 1504),
      );
      const sending = yield* Effect.fork(sendPaced(asRtp(chunkTs(ts)), primaryPort, 0.4));
      yield* eventually("the stream at the output", () => (sink.totalBytes() > 0 ? true : undefined));

      yield* Effect.promise(async () => {
        const channel = async () => json(await test.request("/api/channels/live"));
        await patch({ redundancy: { revert_after_ms: 2500, failover_after_ms: 300 } });
        expect((await channel()).redundancy).toMatchObject({ revert_after_ms: 2500, failover_after_ms: 300 });
        await patch({
          redundancy: {
            revert_after_ms: 2500,
            failover_after_ms: 300,
            fec: { primary: true, backup: false },
          },
        });
        expect((await channel()).inputs).toMatchObject([
          { role: "primary", active: true, fec: { recovered: 0 } },
          { role: "backup", active: false, fec: null },
        ]);
        await patch({ redundancy: { mode: "merge", merge_window_ms: 50 } });
        expect((await channel()).inputs).toMatchObject([
          { role: "primary", active: true, fec: { recovered: 0 } },
          { role: "backup", active: true, fec: null },
        ]);
        await patch({ redundancy: { mode: "failover" } });
        await patch({ backup_rtp_port: movedBackupPort });
        expect((await channel()).inputs).toMatchObject([
          { role: "primary", active: true, port: primaryPort },
          { role: "backup", active: false, port: movedBackupPort },
        ]);
      });
      yield* Fiber.join(sending);
      yield* eventually("the whole stream at the output", () =>
        sink.totalBytes() >= ts.length ? true : undefined,
      );

      expect(Buffer.compare(sink.bytes(), Buffer.from(ts))).toBe(0);
      expect(analyse(sink.bytes()).ccErrors).toBe(0);
      const output = yield* Effect.promise(async () =>
        json(await test.request("/api/channels/live/outputs/sink")),
      );
      expect(output).toMatchObject({ reconnects: 0 });
      const events = yield* Effect.promise(async () =>
        json(
          await test.request(
            "/api/events?channel=live&type=channel_stopped,channel_started,output_reconnect",
          ),
        ),
      );
      expect(events.events).toMatchObject([{ type: "channel_started" }]);
    }).pipe(Effect.scoped),
  );
});
