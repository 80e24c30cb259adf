/**
 * The seeded fault schedule of `npm run chaos` (test/lab/fleet-chaos.test.ts), and what its report is made of.
 * Pure: the same seed and length give the same schedule, so a run that found something is replayed by its
 * seed; test/fleet/chaos.test.ts checks the schedule and the judgements on made-up arrivals and writes.
 */
import { doubleSending, type Received } from "./fleet-analysis.ts";
import { prng } from "./ts-generator.ts";

export const FAULT_KINDS = [
  "kill",
  "stop",
  "cut from the database",
  "backends terminated",
  "PostgreSQL restarted",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface PlannedFault {
  readonly kind: FaultKind;
  /** The node it strikes (kill, stop, cut); null for the database's faults. */
  readonly node: string | null;
  /** From the run's start to the fault's. */
  readonly atMs: number;
  /** How long the fault is held: the killed node stays down, the stopped one stopped, the cut one cut. */
  readonly holdMs: number;
}

/**
 * Faults over `minutes`, one after another with 8–30 s of calm between them: kills held 1–4 s, stops of
 * 1.3–9.1 s (about half of them shorter than `leaseMs`, half longer), cuts from the database of 2–9 s, backends
 * terminated and PostgreSQL restarted. The first five are the five kinds in a seeded order, so even a short run
 * meets each; the rest are drawn with the weights of the 20-minute run that found the double senders.
 */
export const faultSchedule = (
  seed: number,
  minutes: number,
  nodes: ReadonlyArray<string>,
  leaseMs: number,
): ReadonlyArray<PlannedFault> => {
  const random = prng(seed);
  const between = (low: number, high: number) => low + random() * (high - low);
  const pick = <A>(items: ReadonlyArray<A>) => items[Math.floor(random() * items.length)] as A;
  const weighted: ReadonlyArray<FaultKind> = [
    ...Array<FaultKind>(11).fill("kill"),
    ...Array<FaultKind>(11).fill("stop"),
    ...Array<FaultKind>(8).fill("cut from the database"),
    ...Array<FaultKind>(6).fill("backends terminated"),
    ...Array<FaultKind>(5).fill("PostgreSQL restarted"),
  ];
  const first = [...FAULT_KINDS].sort(() => random() - 0.5);
  const faults: PlannedFault[] = [];
  const endMs = minutes * 60_000;
  for (let atMs = between(5000, 10_000), n = 0; atMs < endMs; n++) {
    const kind = n < first.length ? (first[n] as FaultKind) : pick(weighted);
    const holdMs =
      kind === "kill"
        ? between(1000, 4000)
        : kind === "stop"
          ? random() < 0.5
            ? between(1300, Math.min(9100, leaseMs * 0.8))
            : between(Math.max(1300, leaseMs * 1.1), Math.max(9100, leaseMs * 1.5))
          : kind === "cut from the database"
            ? between(2000, 9000)
            : kind === "PostgreSQL restarted"
              ? between(500, 3000)
              : 0;
    const node = kind === "backends terminated" || kind === "PostgreSQL restarted" ? null : pick(nodes);
    faults.push({ kind, node, atMs: Math.round(atMs), holdMs: Math.round(holdMs) });
    atMs += holdMs + between(8000, 30_000);
  }
  return faults;
};

/** Who sent a datagram: the node's address, its source port and, for RTP, its SSRC. */
export const senderOf = (arrival: Received): string =>
  `${arrival.source}:${arrival.sourcePort ?? 0}/${(arrival.ssrc ?? 0).toString(16).padStart(8, "0")}`;

/**
 * Time without the stream between `fromMs` and `untilMs`: the sum of the gaps between arrivals longer than
 * `gapMs` (the stream sends a datagram every few tens of milliseconds), edges included.
 */
export const offAirMs = (
  arrivals: ReadonlyArray<Received>,
  fromMs: number,
  untilMs: number,
  gapMs = 250,
): number => {
  const times = [
    fromMs,
    ...arrivals.filter((a) => a.atMs >= fromMs && a.atMs <= untilMs).map((a) => a.atMs),
    untilMs,
  ];
  let off = 0;
  for (let i = 1; i < times.length; i++) {
    const gap = (times[i] as number) - (times[i - 1] as number);
    if (gap > gapMs) off += gap;
  }
  return off;
};

export interface DoubleWindow {
  readonly atMs: number;
  readonly untilMs: number;
  /** The senders (address:port/SSRC) that interleaved. */
  readonly senders: ReadonlyArray<string>;
}

/**
 * Windows in which two senders delivered to one output: their datagrams interleave. A sender is the address,
 * source port and SSRC together, so two processes of one node (a stale one and its restart) count as two.
 */
export const doubleSenders = (arrivals: ReadonlyArray<Received>): ReadonlyArray<DoubleWindow> =>
  doubleSending(arrivals.map((arrival) => ({ ...arrival, source: senderOf(arrival) }))).map((window) => ({
    atMs: window.atMs,
    untilMs: window.untilMs,
    senders: window.sources,
  }));

/** One write of the client: the value it sent, and whether the service acknowledged it (null: no answer). */
export interface Write {
  readonly object: string;
  readonly value: string;
  readonly via: string;
  readonly atMs: number;
  acknowledged: boolean | null;
}

export interface WriteProblem {
  readonly object: string;
  readonly kind: "missing" | "overwritten";
  readonly expected: string;
  readonly found: string;
}

/**
 * Every acknowledged write kept: an object's final value must be its last acknowledged write, or a write sent
 * after it whose answer never came (it may have been made). An older value is an acknowledged write
 * overwritten; a value the client never sent, or none, is one missing. Writes are made one at a time, so the
 * order of sending is the order of acknowledgement.
 */
export const lostWrites = (
  writes: ReadonlyArray<Write>,
  finalValues: ReadonlyMap<string, string | undefined>,
): ReadonlyArray<WriteProblem> => {
  const problems: WriteProblem[] = [];
  const byObject = new Map<string, Write[]>();
  for (const write of writes) byObject.set(write.object, [...(byObject.get(write.object) ?? []), write]);
  for (const [object, list] of byObject) {
    const lastAcked = list.findLastIndex((write) => write.acknowledged === true);
    if (lastAcked < 0) continue;
    const expected = (list[lastAcked] as Write).value;
    const allowed = new Set([
      expected,
      ...list
        .slice(lastAcked + 1)
        .filter((w) => w.acknowledged === null)
        .map((w) => w.value),
    ]);
    const found = finalValues.get(object);
    if (found !== undefined && allowed.has(found)) continue;
    const older = found !== undefined && list.slice(0, lastAcked).some((write) => write.value === found);
    problems.push({ object, kind: older ? "overwritten" : "missing", expected, found: found ?? "(none)" });
  }
  return problems;
};
