/**
 * What an idle channel costs: N started channels with no input (a primary, and with `--backup` a backup
 * input too) and M UDP outputs each, in this process under the Channels supervisor. Measures this process's
 * CPU over the same window with no channel and with the N channels, and prints the difference as % of one
 * core per channel. Goal: under 0.05 % (issue #13): an idle channel's cost must come from work, not from
 * time passing.
 *
 * With `--service` the whole service runs instead (HTTP API, read model, cue history; bench-service.ts), its
 * channels made through the API with a primary, a backup and 4 UDP outputs each: what the service's own
 * timers cost per channel too.
 *
 *   node load-tests/bench-idle.ts [--channels 50] [--outputs 4] [--seconds 10] [--backup] [--service]
 */
import { parseArgs } from "node:util";
import { Effect, Layer, Logger, LogLevel, ManagedRuntime } from "effect";
import { ChannelId, OutputId } from "../src/domain/base/ids.ts";
import { Channels } from "../src/effects/channel/channels.ts";
import { startBenchService } from "./bench-service.ts";

const { values } = parseArgs({
  options: {
    channels: { type: "string", default: "50" },
    outputs: { type: "string", default: "4" },
    seconds: { type: "string", default: "10" },
    backup: { type: "boolean", default: false },
    service: { type: "boolean", default: false },
  },
});
const C = Number(values.channels);
const M = Number(values.outputs);
const SECONDS = Number(values.seconds);
const basePort = 30_000 + Math.floor(Math.random() * 10_000);

/** CPU of this whole process (every thread) over `seconds`, in % of one core. */
const cpuOver = async (seconds: number) => {
  const before = process.cpuUsage();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const used = process.cpuUsage(before);
  const elapsedUs = (performance.now() - started) * 1000;
  return (100 * (used.user + used.system)) / elapsedUs;
};

/** The CPU of the service with `channels` idle channels, once start-up has settled. */
const serviceCpu = async (channels: number) => {
  const service = await startBenchService(channels, { traffic: false });
  await cpuOver(2);
  const cpu = await cpuOver(SECONDS);
  await service.stop();
  return cpu;
};

/** The same with the Channels supervisor alone: the runtime up, then `C` channels started in it. */
const channelsCpu = async () => {
  const runtime = ManagedRuntime.make(Layer.merge(Channels.Test, Logger.minimumLogLevel(LogLevel.Warning)));
  await runtime.runPromise(Channels);
  await cpuOver(1);
  const empty = await cpuOver(SECONDS);
  await runtime.runPromise(
    Effect.gen(function* () {
      const channels = yield* Channels;
      for (let c = 0; c < C; c++) {
        const input = basePort + c * (M + 2);
        yield* channels.start({
          id: ChannelId.make(`idle-${c}`),
          name: `idle ${c}`,
          primary: { ip: "127.0.0.1", port: input },
          backup: values.backup ? { ip: "127.0.0.1", port: input + 1 } : null,
          outputs: Array.from({ length: M }, (_, o) => ({
            id: OutputId.make(`out-${o}`),
            name: `out ${o}`,
            url: `udp://127.0.0.1:${input + 2 + o}`,
            enabled: true,
          })),
        });
      }
    }),
  );
  // Let start-up settle (outputs connected, first timers run) before measuring.
  await cpuOver(2);
  const idle = await cpuOver(SECONDS);
  await runtime.dispose();
  return { empty, idle };
};

const { empty, idle } = values.service
  ? { empty: await serviceCpu(0), idle: await serviceCpu(C) }
  : await channelsCpu();
const perChannel = Math.max(0, idle - empty) / C;

const what = values.service
  ? `channels in the whole service, each with primary and backup inputs and 4 UDP outputs`
  : `channels with ${values.backup ? "primary and backup inputs" : "a primary input"} and ${M} UDP outputs each`;
console.log(`idle: ${C} ${what}, no data; ${SECONDS} s per measurement`);
console.log(`  process CPU, no channel:      ${empty.toFixed(3)} % of one core`);
console.log(`  process CPU, ${C} idle channels: ${idle.toFixed(3)} % of one core`);
console.log(`  per idle channel:             ${perChannel.toFixed(4)} % of one core   (goal < 0.05 %)`);
process.exit(0);
