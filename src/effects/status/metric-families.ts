/**
 * The shapes `/metrics` is declared in: a family of series filled from the read model's snapshot at each scrape
 * (per channel, input, output or forwarding worker), so a metric is one declaration in metrics.ts (the service
 * and its workers), channel-metrics.ts (channels and inputs) or output-metrics.ts. Also the event-loop gauges
 * Deno needs in place of prom-client's own.
 */
import { Gauge, type Metric, Registry } from "prom-client";
import type { ChannelView, OutputView, StatusSnapshot } from "../../domain/views/views.ts";
import type { InputSummary } from "../../domain/views/views-input.ts";
import type { WorkerStatus } from "../channel/channel-types.ts";
import { makeLoopDelay } from "../runtime/threads/loop-delay.ts";

export type Labels = Record<string, string>;

/**
 * A family's series as the text exposition writes them, set from the snapshot at each scrape. prom-client's
 * own counters and gauges hash and sort every label set when a value is set and format every label again when
 * the registry writes them: at 100 channels × 4 outputs, a scrape of about 12,000 series made some 28 MB of
 * garbage on the main thread, its largest. Here a series is one line built once per scrape (its labels in the
 * order given, values escaped as prom-client escapes them), and `FamilyRegistry` writes the family's lines
 * where the registry would have written its own: the exposition is the same, in the same order.
 */
class SnapshotFamily {
  readonly type: "counter" | "gauge";
  readonly name: string;
  readonly help: string;
  readonly labelNames: ReadonlyArray<string>;
  readonly aggregator = "sum";
  /** Each series' label text (`{a="x"}`, or empty) and value, in the order first set in this scrape. */
  private series = new Map<string, number>();
  private labels = new Map<string, Labels>();

  constructor(type: "counter" | "gauge", name: string, help: string, labelNames: ReadonlyArray<string>) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name '${name}'`);
    for (const label of labelNames)
      if (!LABEL_NAME.test(label)) throw new Error(`invalid label name '${label}'`);
    this.type = type;
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  reset(): void {
    this.series.clear();
    this.labels.clear();
  }

  /** A gauge's series takes the last value set, a counter's the sum, as prom-client's do. */
  set(labels: Labels, value: number): void {
    if (typeof value !== "number" || (this.type === "counter" && (value < 0 || value === Infinity)))
      throw new TypeError(`${this.name}: not a valid value for a ${this.type}: ${String(value)}`);
    let text = "";
    for (const label in labels) {
      if (!this.labelNames.includes(label)) throw new Error(`${this.name}: label '${label}' is not declared`);
      text += `${text === "" ? "{" : ","}${label}="${escapeLabel(labels[label] as string)}"`;
    }
    if (text !== "") text += "}";
    const before = this.series.get(text);
    if (before === undefined) this.labels.set(text, labels);
    this.series.set(text, this.type === "counter" && before !== undefined ? before + value : value);
  }

  /** The family as the text exposition writes it, as prom-client's registry writes a metric. */
  exposition(): string {
    let text = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}`;
    for (const [labels, value] of this.series) text += `\n${this.name}${labels} ${valueText(value)}`;
    return text;
  }

  /** The series as prom-client's `get()` gives them (its registry's JSON). */
  get() {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: [...this.series].map(([text, value]) => ({ labels: this.labels.get(text) ?? {}, value })),
    };
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const NEEDS_ESCAPE = /[\\\n"]/;
const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const escapeLabel = (text: string) =>
  typeof text !== "string" || !NEEDS_ESCAPE.test(text) ? text : escapeHelp(text).replace(/"/g, '\\"');
const valueText = (value: number) =>
  Number.isNaN(value) ? "Nan" : Number.isFinite(value) ? `${value}` : value < 0 ? "-Inf" : "+Inf";

/**
 * A registry that writes the snapshot families' series itself (`SnapshotFamily`) and every other metric
 * (prom-client's process metrics, the events, the fleet's) as prom-client does. prom-client's `metrics()`
 * asks `getMetricsAsString` for each metric in the order they were registered. The registry's default labels
 * (`setDefaultLabels`) would not reach the families' lines: the service sets none.
 */
export class FamilyRegistry extends Registry {
  getMetricsAsString(metric: unknown): Promise<string> {
    if (metric instanceof SnapshotFamily) return Promise.resolve(metric.exposition());
    return promClientWrites.call(this, metric);
  }
}
const promClientWrites = (
  Registry.prototype as unknown as { getMetricsAsString?: (metric: unknown) => Promise<string> }
).getMetricsAsString as (this: Registry, metric: unknown) => Promise<string>;
if (typeof promClientWrites !== "function")
  throw new Error("prom-client's Registry has no getMetricsAsString: metric-families.ts needs it");

/** What a collector fills in each scrape from the snapshot. */
interface Family {
  readonly fill: (snapshot: StatusSnapshot) => void;
}

export const snapshotFamilies = (registry: FamilyRegistry, workers: () => ReadonlyArray<WorkerStatus>) => {
  const families: Family[] = [];

  /** A counter or gauge whose values are set from the snapshot at each scrape. */
  const family = (
    kind: "counter" | "gauge",
    name: string,
    help: string,
    labelNames: ReadonlyArray<string>,
    each: (snapshot: StatusSnapshot, set: (labels: Labels, value: number) => void) => void,
  ) => {
    const metric = new SnapshotFamily(kind, name, help, labelNames);
    registry.registerMetric(metric as unknown as Metric);
    const set = (labels: Labels, value: number) => metric.set(labels, value);
    families.push({
      fill: (snapshot) => {
        metric.reset();
        each(snapshot, set);
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
 * prom-client's event-loop delay series, from our own monitor (src/effects/runtime/threads/loop-delay.ts), reset at
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
