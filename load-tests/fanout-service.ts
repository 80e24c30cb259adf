/**
 * The service side of bench:fanout: a Channels supervisor with the channels described on the command line,
 * in a process of its own so that its CPU and memory can be read apart from the load generator's. On SIGTERM
 * it prints how long its event loop was held up while it ran ("event loop delay ..."), before it stops.
 *
 *   node load-tests/fanout-service.ts '{"channels":[{"input":5000,"outputs":[6000,6001]}]}'
 *
 * An output is a UDP port on 127.0.0.1, or a whole URL (`srt://127.0.0.1:7000`).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { runMain } from "@effect/platform-node/NodeRuntime";
import { Effect, Logger, LogLevel, Schedule } from "effect";
import { ChannelId, OutputId } from "../src/domain/base/ids.ts";
import { Channels } from "../src/effects/channel/channels.ts";

interface Plan {
  readonly channels: ReadonlyArray<{
    readonly input: number;
    readonly outputs: ReadonlyArray<number | string>;
  }>;
}
const plan: Plan = JSON.parse(process.argv[2] ?? '{"channels":[]}');

const program = Effect.gen(function* () {
  const channels = yield* Channels;
  for (const [index, channel] of plan.channels.entries()) {
    yield* channels.start({
      id: ChannelId.make(`bench-${index}`),
      name: `bench ${index}`,
      primary: { ip: "127.0.0.1", port: channel.input },
      backup: null,
      outputs: channel.outputs.map((output, o) => ({
        id: OutputId.make(`out-${o}`),
        name: `out ${o}`,
        url: typeof output === "string" ? output : `udp://127.0.0.1:${output}`,
        enabled: true,
      })),
    });
  }
  // Counters cross from the forwarding workers when asked: once a second, as the read model does.
  yield* Effect.forkDaemon(Effect.repeat(channels.sync, Schedule.spaced("1 second")));
  // As the service samples its own (prom-client, 20 ms): a finer timer would wake this thread a thousand
  // times a second and add its own CPU to the figure the benchmark compares.
  const RESOLUTION_MS = 20;
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  process.once("SIGTERM", () => {
    // The monitor records the timer's whole interval; what the loop added is what lies beyond it.
    const ms = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS).toFixed(1);
    const srt = plan.channels.flatMap((_, index) =>
      (channels.summary(ChannelId.make(`bench-${index}`))?.outputs ?? []).flatMap((output) =>
        output.srt === null ? [] : [output.srt],
      ),
    );
    if (srt.length > 0) {
      const total = (of: (link: (typeof srt)[number]) => number) =>
        srt.reduce((sum, link) => sum + of(link), 0);
      process.stdout.write(
        `SRT retransmits ${total((link) => link.retransmits)}, lost ${total((link) => link.lossPackets)}, dropped ${total((link) => link.droppedPackets)}\n`,
      );
    }
    process.stdout.write(
      `event loop delay p50 ${ms(delay.percentile(50))} ms, p99 ${ms(delay.percentile(99))} ms, max ${ms(delay.max)} ms\n`,
    );
  });
  process.stdout.write("ready\n");
  return yield* Effect.never;
});

runMain(program.pipe(Effect.provide(Channels.Test), Logger.withMinimumLogLevel(LogLevel.Warning)));
