/**
 * The snapshot families write their own series (metric-families.ts) instead of prom-client's counters and
 * gauges: the exposition must be what prom-client writes for the same values, byte for byte, in the same order
 * among the registry's other metrics, whatever the label values hold.
 */
import { Counter, Gauge, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { StatusSnapshot } from "../../src/domain/views/views.ts";
import { FamilyRegistry, type Labels, snapshotFamilies } from "../../src/effects/status/metric-families.ts";

type Series = ReadonlyArray<readonly [Labels, number]>;
interface Declared {
  readonly kind: "counter" | "gauge";
  readonly name: string;
  readonly help: string;
  readonly labelNames: ReadonlyArray<string>;
  readonly series: Series;
}

const DECLARED: ReadonlyArray<Declared> = [
  {
    kind: "gauge",
    name: "t_info",
    help: 'Names with "quotes", a back\\slash and a\nnew line',
    labelNames: ["channel", "name"],
    series: [
      [{ channel: "c1", name: 'say "hi"' }, 1],
      [{ channel: "c2", name: "C:\\path\nnext" }, 1],
      [{ channel: "c3", name: "plain é ü 中" }, 1],
    ],
  },
  {
    kind: "counter",
    name: "t_packets_total",
    help: "Counted, with one series set twice (summed)",
    labelNames: ["channel", "output"],
    series: [
      [{ channel: "c1", output: "o1" }, 5],
      [{ channel: "c1", output: "o2" }, 0],
      [{ channel: "c1", output: "o1" }, 7],
      [{ channel: "c2", output: "o1" }, 1.5],
    ],
  },
  {
    kind: "gauge",
    name: "t_ratio",
    help: "Odd values, one series set twice (the last wins)",
    labelNames: ["channel"],
    series: [
      [{ channel: "nan" }, Number.NaN],
      [{ channel: "inf" }, Number.POSITIVE_INFINITY],
      [{ channel: "-inf" }, Number.NEGATIVE_INFINITY],
      [{ channel: "small" }, 1e-7],
      [{ channel: "big" }, 12345678901234],
      [{ channel: "twice" }, 1],
      [{ channel: "twice" }, -2.5],
    ],
  },
  { kind: "gauge", name: "t_ready", help: "No labels", labelNames: [], series: [[{}, 1]] },
  { kind: "gauge", name: "t_empty", help: "Nothing set", labelNames: ["channel"], series: [] },
];

const snapshot: StatusSnapshot = { seq: 1, at: 0, channels: [] };

/** A metric of prom-client's own, registered after the second declaration in both registries. */
const between = (registry: Registry) =>
  new Counter({ name: "t_events_total", help: "prom-client's own", registers: [registry] }).inc(3);

/** What prom-client writes for the same declarations and values, with a metric of its own between them. */
const promClientText = async (): Promise<string> => {
  const registry = new Registry();
  for (const [index, { kind, name, help, labelNames, series }] of DECLARED.entries()) {
    const metric =
      kind === "counter"
        ? new Counter({ name, help, labelNames, registers: [registry] })
        : new Gauge({ name, help, labelNames, registers: [registry] });
    for (const [labels, value] of series) {
      if (metric instanceof Counter) metric.inc(labels, value);
      else metric.set(labels, value);
    }
    if (index === 1) between(registry);
  }
  return registry.metrics();
};

const familiesText = async (scrapes: number): Promise<string> => {
  const registry = new FamilyRegistry();
  const families = snapshotFamilies(registry, () => []);
  for (const [index, { kind, name, help, labelNames, series }] of DECLARED.entries()) {
    families.family(kind, name, help, labelNames, (_s, set) => {
      for (const [labels, value] of series) set(labels, value);
    });
    if (index === 1) between(registry);
  }
  let text = "";
  // Each scrape starts from nothing: a counter's series are not added to the last scrape's.
  for (let scrape = 0; scrape < scrapes; scrape++) {
    families.fill(snapshot);
    text = await registry.metrics();
  }
  return text;
};

describe("snapshot families", () => {
  it("write the exposition prom-client writes for the same series, in the registry's order", async () => {
    const expected = await promClientText();
    expect(expected).toContain('t_info{channel="c2",name="C:\\\\path\\nnext"} 1');
    expect(expected).toContain('t_packets_total{channel="c1",output="o1"} 12');
    expect(await familiesText(1)).toBe(expected);
    expect(await familiesText(3)).toBe(expected);
  });

  it("refuse what prom-client refuses: an undeclared label, a counter going down", () => {
    const families = snapshotFamilies(new FamilyRegistry(), () => []);
    families.family("gauge", "t_a", "a", ["channel"], (_s, set) => set({ other: "x" }, 1));
    expect(() => families.fill(snapshot)).toThrow(/label 'other' is not declared/);
    const counters = snapshotFamilies(new FamilyRegistry(), () => []);
    counters.family("counter", "t_b_total", "b", [], (_s, set) => set({}, -1));
    expect(() => counters.fill(snapshot)).toThrow(/not a valid value for a counter/);
  });
});
