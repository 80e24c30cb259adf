/**
 * Failure stays inside the channel it happens in: a start whose packet core cannot load fails with a clear
 * problem and leaves the API answering; a channel whose datagram path throws goes to `error` while another
 * channel keeps streaming byte for byte. A channel that should run but cannot start is started again on the
 * reconnect schedule until it runs; one that fails again and again backs off and says so.
 */
import { createSocket } from "node:dgram";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Layer } from "effect";
import { afterEach, describe, expect, it } from "vitest";
import { ChannelFaults } from "../../src/effects/channel/channel-types.ts";
import { OutputDefaults } from "../../src/effects/channel/channels.ts";
import { layerFile } from "../../src/effects/config/store.ts";
import {
  eventually,
  freeUdpPort,
  json,
  makeTestApp,
  type TestApp,
  udpSink,
  udpSource,
} from "../support/app.ts";
import { udpSink as scopedUdpSink } from "../support/peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const createChannel = async (test: TestApp, name: string, inputPort: number, outputPort?: number) => {
  const response = await test.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      name,
      rtp_ip: "127.0.0.1",
      rtp_port: inputPort,
      outputs:
        outputPort === undefined
          ? []
          : [{ name: "sink", protocol: "udp", url: `udp://127.0.0.1:${outputPort}` }],
    }),
  });
  expect(response.status).toBe(201);
  return String((await json(response)).id);
};

describe("failure stays contained", () => {
  it("a packet core that cannot load fails the start with a clear problem, and the next call answers at once", async () => {
    const failingCore = Layer.succeed(ChannelFaults, {
      loadCore: () => {
        throw new Error("WebAssembly.Module(): expected magic word 00 61 73 6d");
      },
    });
    app = await makeTestApp(undefined, failingCore);
    const id = await createChannel(app, "no core", await freeUdpPort());
    const started = await app.request(`/api/channels/${id}/start`, { method: "POST" });
    expect(started.status).toBeGreaterThanOrEqual(400);
    expect(started.headers.get("content-type")).toContain("application/problem+json");
    const problem = await json(started);
    expect(String(problem.detail)).toContain("packet core");
    expect(String(problem.detail)).toContain("could not be loaded");
    expect(String(problem.detail)).toContain("expected magic word");

    // The control plane's lock is free again: a read and a write both answer within a second.
    const list = await app.request("/api/channels", { signal: AbortSignal.timeout(1000) });
    expect(list.status).toBe(200);
    const channel = ((await json(list)).channels as Array<Record<string, unknown>>)[0];
    expect(channel).toMatchObject({ id, status: "error" });
    expect(String(channel?.error)).toContain("could not be loaded");
    const renamed = await app.request(`/api/channels/${id}`, {
      method: "PATCH",
      body: JSON.stringify({ name: "renamed" }),
      signal: AbortSignal.timeout(1000),
    });
    expect(renamed.status).toBe(200);
    const failed = await json(await app.request(`/api/events?channel=${id}&type=channel_failed`));
    expect(failed.events).toHaveLength(1);
  });

  it("an exception in one channel's datagram path stops that channel with an error; another streams on, byte-exact", async () => {
    let armed = false;
    const throwing = Layer.succeed(ChannelFaults, {
      onDatagram: (channelId: string) => {
        if (armed && channelId === "broken") throw new RangeError("offset is out of bounds (injected)");
      },
    });
    app = await makeTestApp(undefined, throwing);
    const test = app;
    await Effect.runPromise(
      Effect.gen(function* () {
        const [healthySink, brokenSink] = yield* Effect.all([scopedUdpSink, scopedUdpSink]);
        const [healthyPort, brokenPort] = yield* Effect.promise(() =>
          Promise.all([freeUdpPort(), freeUdpPort()]),
        );
        yield* Effect.promise(async () => {
          for (const [id, port, sink] of [
            ["healthy", healthyPort, healthySink.port],
            ["broken", brokenPort, brokenSink.port],
          ] as const) {
            const response = await test.request("/api/channels", {
              method: "POST",
              body: JSON.stringify({
                id,
                name: id,
                rtp_ip: "127.0.0.1",
                rtp_port: port,
                outputs: [{ name: "sink", protocol: "udp", url: `udp://127.0.0.1:${sink}` }],
              }),
            });
            expect(response.status).toBe(201);
            expect((await test.request(`/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
          }
        });
        armed = true;
        const warmUp = chunkTs(new TsGenerator({ seed: 3, bitrate: 4_000_000 }).packets(7 * 20));
        yield* sendPaced(warmUp, brokenPort);
        const broken = yield* Effect.promise(() =>
          eventually("the broken channel to stop with an error", async () => {
            const channel = await json(await test.request("/api/channels/broken"));
            return channel.status === "error" ? channel : undefined;
          }),
        );
        expect(String(broken.error)).toContain("offset is out of bounds (injected)");
        expect(String(broken.error)).toContain("primary input");

        // After the crash, the healthy channel carries a whole stream untouched.
        const stream = new TsGenerator({ seed: 4, bitrate: 4_000_000 }).packets(7 * 400);
        const datagrams = chunkTs(stream);
        yield* sendPaced(datagrams, healthyPort);
        yield* Effect.promise(() =>
          eventually("every byte at the healthy channel's output", () =>
            healthySink.totalBytes() >= stream.length ? true : undefined,
          ),
        );
        expect(healthySink.bytes().equals(Buffer.from(stream))).toBe(true);
        const healthy = yield* Effect.promise(async () => json(await test.request("/api/channels/healthy")));
        expect(healthy.status).toBe("running");
        const failed = yield* Effect.promise(async () =>
          json(await test.request("/api/events?type=channel_failed")),
        );
        expect(failed.events).toMatchObject([{ channel: "broken", type: "channel_failed" }]);
      }).pipe(Effect.scoped),
    );
  });

  it("a stored running channel that cannot start at service start is listed by /api/ready, and the service answers", async () => {
    const dir = await mkdtemp(join(tmpdir(), "distributary-resume-"));
    try {
      const channel = (id: string, port: number) => ({
        id,
        name: id,
        rtp_ip: "127.0.0.1",
        rtp_port: port,
        backup_rtp_ip: null,
        backup_rtp_port: null,
        redundancy: {},
        desired: "running",
        created_at: "2026-11-01T00:00:00.000Z",
        outputs: [],
      });
      await writeFile(
        join(dir, "channels.json"),
        JSON.stringify({ version: 1, channels: [channel("will-fail", await freeUdpPort())] }),
      );
      const failingCore = Layer.succeed(ChannelFaults, {
        loadCore: () => {
          throw new Error("no WebAssembly today");
        },
      });
      app = await makeTestApp(layerFile(dir), failingCore);
      const ready = await app.request("/api/ready", { token: null });
      expect(ready.status).toBe(200);
      const body = await json(ready);
      expect(body.status).toBe("ready");
      expect(body.not_resumed).toMatchObject([{ id: "will-fail", name: "will-fail" }]);
      expect(String((body.not_resumed as Array<{ error: string }>)[0]?.error)).toContain(
        "no WebAssembly today",
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a stored running channel whose input port is taken at service start runs once the port is free, with no one acting", async () => {
    const dir = await mkdtemp(join(tmpdir(), "distributary-retry-"));
    const holder = createSocket("udp4");
    const sink = await udpSink();
    try {
      const inputPort = await freeUdpPort();
      await new Promise<void>((bound) => holder.bind(inputPort, "127.0.0.1", bound));
      const stored = {
        id: "held",
        name: "held",
        rtp_ip: "127.0.0.1",
        rtp_port: inputPort,
        backup_rtp_ip: null,
        backup_rtp_port: null,
        redundancy: {},
        desired: "running",
        created_at: "2026-11-01T00:00:00.000Z",
        outputs: [
          { id: "sink", name: "sink", protocol: "udp", url: `udp://127.0.0.1:${sink.port}`, enabled: true },
        ],
      };
      await writeFile(join(dir, "channels.json"), JSON.stringify({ version: 1, channels: [stored] }));
      const quickRetries = Layer.succeed(OutputDefaults, {
        reconnect: { firstDelay: "100 millis", maxDelay: "300 millis" },
      });
      app = await makeTestApp(layerFile(dir), quickRetries);
      const test = app;

      const before = await json(await test.request("/api/ready", { token: null }));
      expect(before.not_resumed).toMatchObject([{ id: "held" }]);
      const failed = await json(await test.request("/api/channels/held"));
      expect(failed.status).toBe("error");

      // Still failing while the port stays taken: each try is another channel_failed, none a start.
      await eventually("a second failed try", async () => {
        const events = await json(await test.request("/api/events?channel=held&type=channel_failed"));
        return (events.events as unknown[]).length >= 2 ? true : undefined;
      });
      await new Promise<void>((closed) => holder.close(() => closed()));

      await eventually("the channel to run", async () => {
        const channel = await json(await test.request("/api/channels/held"));
        return channel.status === "running" ? true : undefined;
      });
      const after = await json(await test.request("/api/ready", { token: null }));
      expect(after.not_resumed).toEqual([]);
      const source = udpSource(inputPort);
      try {
        await eventually("bytes at the output", () => (sink.bytes() > 10 * 1316 ? true : undefined));
      } finally {
        await source.close();
      }
    } finally {
      await sink.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a channel that fails again and again backs off after three failures in a row and says why", async () => {
    const throwing = Layer.succeed(ChannelFaults, {
      onDatagram: (channelId: string) => {
        if (channelId === "looping") throw new RangeError("a fault its input triggers every time (injected)");
      },
    });
    const quickRetries = Layer.succeed(OutputDefaults, {
      reconnect: { firstDelay: "100 millis", maxDelay: "300 millis" },
    });
    app = await makeTestApp(undefined, Layer.merge(throwing, quickRetries));
    const test = app;
    const port = await freeUdpPort();
    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "looping",
        name: "looping",
        rtp_ip: "127.0.0.1",
        rtp_port: port,
        outputs: [],
      }),
    });
    expect(created.status).toBe(201);
    expect((await test.request("/api/channels/looping/start", { method: "POST" })).status).toBe(200);
    // Every start meets a datagram at once, as a channel whose input carries what breaks it would.
    const source = udpSource(port);
    try {
      const events = async (type: string) =>
        (await json(await test.request(`/api/events?channel=looping&type=${type}`))).events as Array<
          Record<string, unknown>
        >;
      const backingOff = await eventually(
        "the channel to back off",
        async () => (await events("channel_backing_off"))[0],
        20_000,
      );
      expect(backingOff).toMatchObject({ failures: 4, delay_ms: 10_000 });
      expect(String(backingOff.message)).toContain("a fault its input triggers every time (injected)");
      // While it waits, the channel says it failed, and why.
      const waiting = await eventually("the channel's view to show the failure", async () => {
        const channel = await json(await test.request("/api/channels/looping"));
        return channel.status === "error" ? channel : undefined;
      });
      expect(String(waiting.error)).toContain("a fault its input triggers every time (injected)");
      // Three quick restarts (the reconnect schedule's 100–300 ms), then the wait it announced.
      expect(await events("channel_started")).toHaveLength(4);
      expect(await events("channel_failed")).toHaveLength(4);
      const next = await eventually(
        "the start after the wait",
        async () => (await events("channel_started"))[4],
        20_000,
      );
      expect(Date.parse(String(next.at)) - Date.parse(String(backingOff.at))).toBeGreaterThanOrEqual(10_000);
    } finally {
      await source.close();
    }
  });
});
