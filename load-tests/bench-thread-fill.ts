/**
 * A forwarding thread taking channels one after another, as a rebalance's new thread does (25 at 50 × 4 in 1–2
 * s): the pauses of its full collections, with the V8 flags bin/distributary starts Node.js with, the cores
 * prepared first (as a rebalance does) or not, and with the incremental marking started at nine tenths of the
 * heap's room, as the launcher had it before. A pause stops every channel of the thread: at 50 × 4 the outputs of the moved channels were silent
 * as long as the new thread's longest pause and a turn or two more (docs/benchmarks.md, "the cut made whole").
 *
 *   node load-tests/bench-thread-fill.ts [channels, default 25] [ms between starts, default 40]
 *
 * Each setting runs in a child process of its own: a fresh worker thread there loads the channel host (its
 * modules, as a worker does when it starts), then starts the channels (a UDP input on 127.0.0.1:22100 and up,
 * four UDP outputs, no stream) with a pause between them, and counts the full collections of its isolate
 * (perf_hooks "gc" entries of the major kind) from the first start.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

const channels = Number(process.argv[2] ?? 25);
const gapMs = Number(process.argv[3] ?? 40);
const self = fileURLToPath(import.meta.url);

/** bin/distributary's flags for Node.js (V8's own marking triggers). */
const SERVICE_FLAGS = ["--max-semi-space-size=1", "--heap-growing-percent=20"];
/** The marking triggers the launcher had until the RTMP frames' memory was used again (nine tenths). */
const LATE_TRIGGERS = [
  ...SERVICE_FLAGS,
  "--incremental-marking-soft-trigger=90",
  "--incremental-marking-hard-trigger=95",
];
/**
 * Each setting: its flags, and whether the thread makes the channels' packet cores first, as a rebalance's
 * new thread does (moves.ts, the worker's `prepare`).
 */
const SETTINGS: ReadonlyArray<readonly [string, ReadonlyArray<string>, boolean]> = [
  ["the service's flags, the cores prepared first (as a rebalance does)", SERVICE_FLAGS, true],
  ["the service's flags, each core made as its channel starts", SERVICE_FLAGS, false],
  ["marking at nine tenths (the launcher's before), the cores prepared first", LATE_TRIGGERS, true],
  ["marking at nine tenths, each core made as its channel starts", LATE_TRIGGERS, false],
];

const fill = async (count: number, gap: number, prepare: boolean) => {
  const { PerformanceObserver, constants } = await import("node:perf_hooks");
  const Effect = await import("effect/Effect");
  const Scope = await import("effect/Scope");
  const Exit = await import("effect/Exit");
  const { makeChannelHost } = await import("../src/effects/channel/channel-host.ts");
  const { ChannelId, OutputId } = await import("../src/domain/base/ids.ts");
  const { PacketCore } = await import("../src/core/packet-core.ts");
  const pauses: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) pauses.push(entry.duration);
    }
  });
  const spec = (i: number) => ({
    id: ChannelId.make(`fill-${i}`),
    name: `fill ${i}`,
    primary: { ip: "127.0.0.1", port: 22100 + i },
    backup: null,
    outputs: [0, 1, 2, 3].map((o) => ({
      id: OutputId.make(`out-${o}`),
      name: `out ${o}`,
      url: `udp://127.0.0.1:${22600 + o}`,
      enabled: true,
    })),
  });
  const took = await Effect.runPromise(
    Effect.gen(function* () {
      const scope = yield* Scope.make();
      const host = yield* Scope.extend(makeChannelHost({ onFailed: () => {} }), scope);
      if (prepare) PacketCore.prepare(count);
      observer.observe({ entryTypes: ["gc"] });
      const began = performance.now();
      for (let i = 0; i < count; i++) {
        yield* host.start(spec(i));
        yield* Effect.sleep(`${gap} millis`);
      }
      const ms = performance.now() - began;
      // The collections while the channels started, not those of their stop.
      observer.disconnect();
      yield* Scope.close(scope, Exit.void);
      return ms;
    }),
  );
  return { took, pauses: [...pauses].sort((a, b) => a - b) };
};

if (process.env.BENCH_THREAD_FILL_CHILD === "1") {
  if (isMainThread) {
    const prepare = process.env.BENCH_THREAD_FILL_PREPARE === "1";
    const worker = new Worker(self, { workerData: { channels, gapMs, prepare } });
    worker.on("message", (line: string) => {
      console.log(line);
    });
  } else {
    const {
      channels: count,
      gapMs: gap,
      prepare,
    } = workerData as {
      channels: number;
      gapMs: number;
      prepare: boolean;
    };
    const { took, pauses } = await fill(count, gap, prepare);
    const longest = pauses.at(-1) ?? 0;
    parentPort?.postMessage(
      `${count} channels in ${Math.round(took)} ms: ${pauses.length} full collections, pauses ${pauses.map((p) => p.toFixed(1)).join(", ") || "none"} ms (longest ${longest.toFixed(1)})`,
    );
  }
} else {
  console.log(`A forwarding thread taking ${channels} channels, one every ${gapMs} ms:`);
  for (const [name, flags, prepare] of SETTINGS) {
    const child = spawnSync(
      process.execPath,
      [...flags, "--disable-warning=ExperimentalWarning", self, String(channels), String(gapMs)],
      {
        env: {
          ...process.env,
          BENCH_THREAD_FILL_CHILD: "1",
          BENCH_THREAD_FILL_PREPARE: prepare ? "1" : "0",
        },
        encoding: "utf8",
      },
    );
    console.log(`- ${name} (${flags.join(" ")}): ${(child.stdout || child.stderr).trim()}`);
  }
}
