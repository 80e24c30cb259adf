/**
 * The shapes `/metrics` is declared in: a family of series filled from the read model's snapshot at each scrape
 * (per channel, input, output or forwarding worker), so a metric is one declaration in metrics.ts (the service
 * and its workers), channel-metrics.ts (channels and inputs) or output-metrics.ts. Also the event-loop gauges
 * Deno needs in place of prom-client's own.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { ChannelView, InputSummary, OutputView, StatusSnapshot } from "../../domain/views.ts";
import type { WorkerStatus } from "../channel/channels.ts";
import { makeLoopDelay } from "../runtime/loop-delay.ts";

export type Labels = Record<string, string>;

/** What a collector fills in each scrape from the snapshot. */
interface Family {
  readonly fill: (snapshot: StatusSnapshot) => void;
}

export const snapshotFamilies = (registry: Registry, workers: () => ReadonlyArray<WorkerStatus>) => {
  const families: Family[] = [];

  /** A counter or gauge whose values are set from the snapshot at each scrape. */
  const family = (
    kind: "counter" | "gauge",
    name: string,
    help: string,
    labelNames: ReadonlyArray<string>,
    each: (snapshot: StatusSnapshot, set: (labels: Labels, value: number) => void) => void,
  ) => {
    const metric =
      kind === "counter"
        ? new Counter({ name, help, labelNames, registers: [registry] })
        : new Gauge({ name, help, labelNames, registers: [registry] });
    families.push({
      fill: (snapshot) => {
        metric.reset();
        each(snapshot, (labels, value) => {
          if (metric instanceof Counter) metric.inc(labels, value);
          else metric.set(labels, value);
        });
      },
    });
  };

  const perChannel = (
    kind: "counter" | "gauge",
    name: string,
    help: string,
    extra: ReadonlyArray<string>,
    each: (channel: ChannelView, set: (labels: Labels, value: number) => void) => void,
  ) =>
    family(kind, name, help, ["channel", ...extra], (snapshot, set) => {
      for (const channel of snapshot.channels)
        each(channel, (labels, value) => set({ channel: channel.id, ...labels }, value));
    });

  const perInput = (
    kind: "counter" | "gauge",
    name: string,
    help: string,
    value: (input: InputSummary) => number | null,
    extra?: {
      readonly label: string;
      readonly values: (input: InputSummary) => ReadonlyArray<[string, number]>;
    },
  ) =>
    family(
      kind,
      name,
      help,
      ["channel", "input", ...(extra === undefined ? [] : [extra.label])],
      (snapshot, set) => {
        for (const channel of snapshot.channels) {
          for (const input of channel.inputs) {
            const labels = { channel: channel.id, input: input.role };
            if (extra === undefined) {
              const v = value(input);
              if (v !== null) set(labels, v);
            } else {
              for (const [key, v] of extra.values(input)) set({ ...labels, [extra.label]: key }, v);
            }
          }
        }
      },
    );

  const perOutput = (
    kind: "counter" | "gauge",
    name: string,
    help: string,
    value: (output: OutputView) => number | null,
  ) =>
    family(kind, name, help, ["channel", "output"], (snapshot, set) => {
      for (const channel of snapshot.channels) {
        for (const output of channel.outputs) {
          const v = value(output);
          if (v !== null) set({ channel: channel.id, output: output.id }, v);
        }
      }
    });

  /** A series per forwarding worker: none when forwarding runs in the main thread. */
  const perWorker = (
    kind: "counter" | "gauge",
    name: string,
    help: string,
    extra: ReadonlyArray<string>,
    each: (worker: WorkerStatus, set: (labels: Labels, value: number) => void) => void,
  ) =>
    family(kind, name, help, ["worker", ...extra], (_s, set) => {
      for (const worker of workers())
        each(worker, (labels, value) => set({ worker: `${worker.index}`, ...labels }, value));
    });

  return {
    family,
    perChannel,
    perInput,
    perOutput,
    perWorker,
    /** Sets every family's series from `snapshot`. */
    fill: (snapshot: StatusSnapshot) => {
      for (const f of families) f.fill(snapshot);
    },
  };
};

/** The declarations of one registry's families. */
export type SnapshotFamilies = ReturnType<typeof snapshotFamilies>;

/**
 * How often the main thread's event-loop delay is sampled. A timer of 20 ms (prom-client's monitor as the
 * service ran it before) woke an idle service 50 times a second, which cost 0.4 % of a core on its own; the
 * lateness of a 100-ms timer still sees every stall of 100 ms or more, what DistributaryEventLoopLag watches.
 */
export const MAIN_LOOP_RESOLUTION_MS = 100;

/**
 * prom-client's event-loop delay series, from our own monitor (src/effects/runtime/loop-delay.ts), reset at
 * each scrape: how late a timer ran beyond its interval, what the loop added, as the workers report theirs.
 * On Deno, whose perf_hooks monitor does not see a held loop, a plain timer measures it.
 */
export const loopDelayGauges = (registry: Registry) => {
  const delay = makeLoopDelay(MAIN_LOOP_RESOLUTION_MS);
  const series: ReadonlyArray<[string, () => number]> = [
    ["min", delay.min],
    ["max", delay.max],
    ["mean", delay.mean],
    ["stddev", delay.stddev],
    ["p50", () => delay.percentile(50)],
    ["p90", () => delay.percentile(90)],
    ["p99", () => delay.percentile(99)],
  ];
  for (const [index, [name, read]] of series.entries()) {
    const metricName = `nodejs_eventloop_lag_${name}_seconds`;
    registry.removeSingleMetric(metricName);
    new Gauge({
      name: metricName,
      help: `The ${name} of the recorded event loop delays (how late a ${MAIN_LOOP_RESOLUTION_MS} ms timer ran).`,
      registers: [registry],
      collect() {
        this.set(read() / 1e9);
        if (index === series.length - 1) delay.reset();
      },
    });
  }
};
