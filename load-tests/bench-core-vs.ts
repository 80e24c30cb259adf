/**
 * This checkout's packet core against another checkout's, round for round in one process: what a change to
 * the core costs the data path, measured where the machine's noise falls on both alike (a shared machine's
 * speed drifts by tens of percent over seconds; two benchmark runs one after the other compare the drift).
 * Each round pushes the same pool (core-rounds.ts) into one core, then into the other; each side's figure is
 * the median and the fastest of its rounds (pushMany's with the JavaScript that stands in for the kernel's
 * write into the read slots, the same on both sides).
 *
 *   node load-tests/bench-core-vs.ts <other checkout, its core built> [seconds per measurement, default 10]
 *
 * e.g. git worktree add /tmp/before <commit> && (cd /tmp/before && bash scripts/build-core.sh), then
 * node load-tests/bench-core-vs.ts /tmp/before
 */
import { resolve } from "node:path";
import { PacketCore } from "../src/core/packet-core.ts";
import { type BenchedCore, makePool, POOL, roundsOf, timed } from "./core-rounds.ts";

const other = process.argv[2];
if (other === undefined) {
  process.stderr.write(
    "bench-core-vs: name the other checkout: node load-tests/bench-core-vs.ts <dir> [seconds]\n",
  );
  process.exit(2);
}
const seconds = Number(process.argv[3] ?? 10);
const theirs = (await import(resolve(other, "src/core/packet-core.ts"))) as {
  readonly PacketCore: { load(): BenchedCore };
};
const pool = makePool();
const sides = [
  { name: `this checkout`, rounds: roundsOf(PacketCore.load(), pool) },
  { name: other, rounds: roundsOf(theirs.PacketCore.load(), pool) },
] as const;

const median = (values: number[]) =>
  values.sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
/** Both sides' rounds of one kind, alternating until `seconds` have passed: ns per datagram, median and fastest. */
const compare = (kind: "push" | "pushMany") => {
  const samples: [number[], number[]] = [[], []];
  const deadline = performance.now() + seconds * 1000;
  // Each goes first in turn: the second round of a pair may find the caches the first left.
  for (let turn = 0; performance.now() < deadline; turn++)
    for (const i of turn % 2 === 0 ? [0, 1] : [1, 0])
      samples[i]?.push(timed(POOL, (sides[i] ?? sides[0]).rounds[kind]));
  return samples.map((values) => ({
    median: median(values),
    fastest: Math.min(...values),
    rounds: values.length,
  }));
};

compare("push");
compare("pushMany");
console.log(
  `packet core, ${POOL} RTP datagrams of 7 TS packets a round, the two cores in turn for ${seconds} s:`,
);
for (const kind of ["push", "pushMany"] as const) {
  const [ours, them] = compare(kind);
  if (ours === undefined || them === undefined) continue;
  const change = (a: number, b: number) => `${a >= b ? "+" : ""}${(((a - b) / b) * 100).toFixed(1)} %`;
  console.log(
    `  ${kind.padEnd(8)} ns per datagram, median (fastest) of ${ours.rounds} rounds: this checkout ${ours.median.toFixed(1)} (${ours.fastest.toFixed(1)}), ` +
      `${other} ${them.median.toFixed(1)} (${them.fastest.toFixed(1)}): ${change(ours.median, them.median)} (${change(ours.fastest, them.fastest)})`,
  );
}
const sinks = sides.reduce((sum, side) => sum + side.rounds.sink(), 0);
if (sinks === -1) console.log("unreachable");
