/**
 * The service as the status and metrics benchmarks run it: its own services in this process (memory store,
 * logs at error level only), listening on a free loopback port, with `channels` running channels of a primary
 * and a backup input and 4 UDP outputs each, and a trickle of TS (20 datagrams a second) on every input so
 * counters and bitrates are real. Loopback only.
 */
import { createSocket } from "node:dgram";
import { Layer, Logger, LogLevel, ManagedRuntime, Scope } from "effect";
import { ServicesTest } from "../src/effects/services.ts";
import { ReadModel } from "../src/effects/status/read-model.ts";
import { makeApp } from "../src/http/app.ts";
import { listen } from "../src/http/server.ts";
import { chunkTs } from "../test/support/sender.ts";
import { TsGenerator } from "../test/support/ts-generator.ts";

export const TOKEN = "bench-admin-token-0123456789abcdef0123456789";

const freePort = () =>
  new Promise<number>((resolve) => {
    const socket = createSocket("udp4");
    socket.bind(0, "127.0.0.1", () => {
      const { port: free } = socket.address();
      socket.close(() => resolve(free));
    });
  });

/** `traffic: false` leaves the inputs silent (bench:idle); by default a trickle keeps the counters moving. */
export const startBenchService = async (channels: number, options: { readonly traffic?: boolean } = {}) => {
  const layer = ServicesTest(TOKEN).pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.Error)));
  const runtime = ManagedRuntime.make(layer);
  const scope = await runtime.runPromise(Scope.make());
  const handle = await runtime.runPromise(Scope.extend(makeApp(), scope));
  const server = await runtime.runPromise(
    Scope.extend(listen(handle.app, { port: 0, hostname: "127.0.0.1" }), scope),
  );
  handle.injectWebSocket(server);
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${port}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    });

  // One sink for every output, so the sockets stay healthy.
  const sink = createSocket("udp4");
  await new Promise<void>((resolve) => sink.bind(0, "127.0.0.1", () => resolve()));
  const sinkPort = sink.address().port;

  const inputs: number[] = [];
  for (let c = 0; c < channels; c++) {
    const [primary, backup] = [await freePort(), await freePort()];
    inputs.push(primary, backup);
    const response = await api("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: `bench-${c}`,
        name: `Bench ${c}`,
        rtp_ip: "127.0.0.1",
        rtp_port: primary,
        backup_rtp_ip: "127.0.0.1",
        backup_rtp_port: backup,
        outputs: [0, 1, 2, 3].map((o) => ({
          name: `out ${o}`,
          protocol: "udp",
          url: `udp://127.0.0.1:${sinkPort}`,
        })),
      }),
    });
    if (response.status !== 201)
      throw new Error(`creating a channel: ${response.status} ${await response.text()}`);
    const started = await api(`/api/channels/bench-${c}/start`, { method: "POST" });
    if (started.status !== 200)
      throw new Error(`starting a channel: ${started.status} ${await started.text()}`);
  }

  const source = createSocket("udp4");
  const datagrams = chunkTs(new TsGenerator({ seed: 5, bitrate: 2_000_000 }).packets(7 * 500));
  let next = 0;
  const trickle =
    options.traffic === false
      ? undefined
      : setInterval(() => {
          const datagram = datagrams[next++ % datagrams.length] as Uint8Array;
          for (const input of inputs) source.send(datagram, input, "127.0.0.1");
        }, 50);

  const readModel = await runtime.runPromise(ReadModel);
  // Two ticks, so bitrates have been sampled.
  await new Promise((resolve) => setTimeout(resolve, 2100));

  return {
    port,
    api,
    readModel,
    run: runtime.runPromise,
    stop: async () => {
      clearInterval(trickle);
      source.close();
      sink.close();
      await runtime.runPromise(Scope.close(scope, { _tag: "Success", value: undefined } as never));
      await runtime.dispose();
    },
  };
};

export const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;

/** mean, p50 and p99 of `samples` (milliseconds), shown in `unit`. */
export const describeTimes = (samples: ReadonlyArray<number>, unit: "µs" | "ms") => {
  const sorted = [...samples].sort((a, b) => a - b);
  const scale = unit === "µs" ? 1000 : 1;
  const mean = samples.reduce((sum, value) => sum + value, 0) / samples.length;
  const show = (ms: number) => (ms * scale).toFixed(unit === "µs" ? 0 : 2);
  return `mean ${show(mean)} ${unit}, p50 ${show(percentile(sorted, 50))} ${unit}, p99 ${show(percentile(sorted, 99))} ${unit}`;
};

/** Runs `run` `times` times, one after the other; the durations in milliseconds. */
export const timeIt = async (times: number, run: () => Promise<unknown>) => {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    await run();
    samples.push(performance.now() - start);
  }
  return samples;
};
