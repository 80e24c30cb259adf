/**
 * What a Prometheus scrape costs: `GET /metrics` of 50 running channels × 2 inputs × 4 outputs (goal: under
 * 50 ms), with the number of series and every label the exposition uses — each must come from a bounded set
 * (ids, input roles, states, reasons, splice commands, segmentation types, TR 101 290 indicators, event
 * types, and the names in the _info metrics); any other label fails the run.
 *
 *   node load-tests/bench-metrics.ts [--channels 50] [--scrapes 100]
 */
import { parseArgs } from "node:util";
import { describeTimes, startBenchService, timeIt } from "./bench-service.ts";

const { values } = parseArgs({
  options: { channels: { type: "string", default: "50" }, scrapes: { type: "string", default: "100" } },
});
const CHANNELS = Number(values.channels);

/** Labels and what bounds them. */
const BOUNDED: Readonly<Record<string, string>> = {
  channel: "channel ids",
  output: "output ids",
  input: "primary | backup",
  state: "fixed states",
  reason: "silence | operator | primary_restored",
  indicator: "TR 101 290 first-priority indicators",
  command: "splice command names",
  segmentation_type: "segmentation_type_id (0-255)",
  type: "event types",
  name: "names, in the _info metrics only",
  protocol: "output protocols",
  version: "build info",
  node: "build info",
  major: "Node.js version info",
  minor: "Node.js version info",
  patch: "Node.js version info",
  runtime: "build info: node | bun | deno",
  runtime_version: "build info",
  worker: "forwarding worker index (one per core at most)",
  priority: "realtime | high | normal",
  mode: "redundancy mode: failover | merge | none",
  // prom-client's default process metrics:
  space: "V8 heap spaces",
  kind: "GC kinds",
  le: "histogram buckets",
  quantile: "summary quantiles",
};

const service = await startBenchService(CHANNELS);
const text = await (await service.api("/metrics")).text();
const samples = text.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
const labels = new Map<string, Set<string>>();
for (const line of samples) {
  const metric = line.slice(0, line.search(/[{ ]/));
  for (const [, label, value] of line.matchAll(/(\w+)="([^"]*)"/g)) {
    if (label === undefined || value === undefined) continue;
    if (label === "name" && !metric.endsWith("_info")) throw new Error(`${metric} has a name label`);
    if (!labels.has(label)) labels.set(label, new Set());
    labels.get(label)?.add(value);
  }
}
const unbounded = [...labels.keys()].filter((label) => BOUNDED[label] === undefined);

const scrapes = await timeIt(Number(values.scrapes), async () => (await service.api("/metrics")).text());
console.log(`metrics: ${CHANNELS} running channels × 2 inputs × 4 UDP outputs`);
console.log(`  GET /metrics:     ${describeTimes(scrapes, "ms")}   (goal < 50 ms)`);
console.log(`  exposition:       ${samples.length} series, ${(text.length / 1024).toFixed(0)} KiB`);
console.log(
  `  labels:           ${[...labels].map(([label, seen]) => `${label} (${seen.size})`).join(", ")}`,
);
console.log(`  unbounded labels: ${unbounded.length === 0 ? "none" : unbounded.join(", ")}`);
await service.stop();
process.exit(unbounded.length === 0 ? 0 : 1);
