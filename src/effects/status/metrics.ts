/**
 * `/metrics` for Prometheus. Every channel, input and output figure is read from the read model at scrape
 * time (its counters as they are at that moment), so the packet path never touches prom-client; the few
 * counts the snapshot does not keep (events by type, hand-overs: handover-metrics.ts) come from the event bus. Names follow Prometheus
 * practice: prefix `distributary_`, base units (seconds, bytes), `_total` on counters, `_info` for names.
 * Labels are bounded: `channel` and `output` ids, `input` (primary|backup), and fixed sets (`state`,
 * `reason`, `indicator`, `command`, `segmentation_type`, event `type`) — never a URL, an address or a name
 * other than in the `_info` metrics. Here: the registry, the service's and its forwarding workers' series and
 * the events; each channel's and input's series are declared in channel-metrics.ts, each output's in
 * output-metrics.ts, in the order the exposition lists them.
 */
import * as Effect from "effect/Effect";
import * as Stream from "effect/Stream";
import { Counter, collectDefaultMetrics } from "prom-client";
import type { ChannelEvent } from "../../domain/events/events.ts";
import type { StatusSnapshot } from "../../domain/views/views.ts";
import { version } from "../../version.ts";
import type { WorkerStatus } from "../channel/channel-types.ts";
import { Channels } from "../channel/channels.ts";
import { EventBus } from "../events/event-bus.ts";
import { runtimeName, runtimeVersion } from "../runtime/process/runtime.ts";
import { channelMetrics } from "./channel-metrics.ts";
import { handoverMetrics } from "./handover-metrics.ts";
import { FamilyRegistry, loopDelayGauges, snapshotFamilies } from "./metric-families.ts";
import { outputMetrics } from "./output-metrics.ts";
import { ReadModel } from "./read-model.ts";
import { Readiness } from "./readiness.ts";
import { ristMetrics } from "./rist-metrics.ts";
import { rtmpMetrics } from "./rtmp-metrics.ts";

/** The registry over a snapshot source; `countEvent` counts bus events by type. */
export const makeMetrics = (
  current: () => StatusSnapshot,
  ready: () => boolean,
  workers: () => ReadonlyArray<WorkerStatus> = () => [],
) => {
  const registry = new FamilyRegistry();
  const families = snapshotFamilies(registry, workers);
  const { family, perWorker, fill } = families;

  // --- service ------------------------------------------------------------------------------------------------
  // prom-client's own delay monitor is left to sample once a minute: its series are replaced just after.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 60_000 });
  loopDelayGauges(registry);
  family(
    "gauge",
    "distributary_build_info",
    "Version of the running service and the runtime that runs it (always 1)",
    ["version", "node", "runtime", "runtime_version"],
    (_s, set) =>
      set({ version, node: process.versions.node, runtime: runtimeName, runtime_version: runtimeVersion }, 1),
  );
  family(
    "gauge",
    "distributary_ready",
    "1 once the stored channels were resumed after start",
    [],
    (_s, set) => set({}, ready() ? 1 : 0),
  );

  // --- forwarding workers (none when forwarding runs in the main thread) ---------------------------------------
  perWorker(
    "gauge",
    "distributary_worker_channels",
    "Channels a forwarding worker thread carries",
    [],
    (worker, set) => set({}, worker.channels),
  );
  perWorker(
    "gauge",
    "distributary_worker_cpu_ratio",
    "A forwarding worker thread's CPU time over the last 5 s as a share of one core (the next worker starts when one passes DISTRIBUTARY_WORKER_BUSY_PERCENT)",
    [],
    (worker, set) => {
      if (worker.cpuShare !== null) set({}, worker.cpuShare);
    },
  );
  perWorker(
    "counter",
    "distributary_worker_restarts_total",
    "Times a forwarding worker thread died and was started again with its channels",
    [],
    (worker, set) => set({}, worker.restarts),
  );
  perWorker(
    "gauge",
    "distributary_worker_scheduling_info",
    "The scheduling a forwarding worker thread runs at: realtime (SCHED_RR), high (nice −10) or normal (always 1)",
    ["priority"],
    (worker, set) => {
      if (worker.priority !== null) set({ priority: worker.priority }, 1);
    },
  );
  perWorker(
    "gauge",
    "distributary_worker_event_loop_delay_seconds",
    "A forwarding worker's event-loop delay over the last 15 s: quantile 0.99 (the worst second's), and 1 for the longest",
    ["quantile"],
    (worker, set) => {
      set({ quantile: "0.99" }, worker.loopDelayP99Ms / 1000);
      set({ quantile: "1" }, worker.loopDelayMaxMs / 1000);
    },
  );

  // --- channels and their inputs (channel-metrics.ts), outputs (output-metrics.ts) ------------------------------
  channelMetrics(families);
  outputMetrics(families);
  ristMetrics(families);
  rtmpMetrics(families);

  const events = new Counter({
    name: "distributary_events_total",
    help: "Events on the event bus, by type",
    labelNames: ["type"],
    registers: [registry],
  });
  const countHandover = handoverMetrics(registry);

  return {
    registry,
    /** Counts a bus event by type, and a hand-over's packets. */
    countEvent: (event: ChannelEvent) => {
      events.inc({ type: event.type });
      countHandover(event);
    },
    /** The exposition text; fills every family from the current snapshot first. */
    render: async (): Promise<string> => {
      fill(current());
      return registry.metrics();
    },
    contentType: registry.contentType,
  };
};

export class Metrics extends Effect.Service<Metrics>()("distributary/Metrics", {
  scoped: Effect.gen(function* () {
    const readModel = yield* ReadModel;
    const bus = yield* EventBus;
    const readiness = yield* Readiness;
    const channels = yield* Channels;
    const metrics = makeMetrics(readModel.fresh, readiness.ready, channels.workers);
    yield* Effect.forkScoped(
      bus.stream.pipe(Stream.runForEach((event) => Effect.sync(() => metrics.countEvent(event)))),
    );
    return {
      render: Effect.zipRight(readModel.sync, Effect.promise(metrics.render)).pipe(
        Effect.withSpan("Metrics.render"),
      ),
      contentType: metrics.contentType,
      /** For the rooms above (the fleet's figures) to add their own families to the same exposition. */
      registry: metrics.registry,
    } as const;
  }),
}) {}
