/**
 * Throughput of the WebAssembly packet core on one CPU core: RTP-wrapped 1316-byte datagrams with PAT/PMT,
 * PCR, random access points and SCTE-35 cues, pushed from memory with a clock and drained of events as a
 * channel would; then the same as whole reads of 16 (pushMany). Also measures an empty call into the module, to show what crossing into WebAssembly costs,
 * and the memory 100 cores hold resident (one per input of 100 channels): new, and after a second of stream each.
 *
 *   node load-tests/bench-core.ts [seconds per measurement, default 2]
 */
import { PacketCore } from "../src/core/packet-core.ts";
import { makePool, POOL, roundsOf, timed } from "./core-rounds.ts";

const seconds = Number(process.argv[2] ?? 2);
const pool = makePool();
const { datagrams, times } = pool;
const core = PacketCore.load();
const rounds = roundsOf(core, pool);
const { slots } = rounds;

/**
 * Runs `round` (which does `per` operations) until `seconds` have passed; returns ns per operation in its
 * fastest round: a round lasts a millisecond or two, and on a shared machine the slower ones measure the
 * neighbours, not the core.
 */
const measure = (per: number, round: () => void): number => {
  const deadline = performance.now() + seconds * 1000;
  let best = Number.POSITIVE_INFINITY;
  while (performance.now() < deadline) best = Math.min(best, timed(per, round));
  return best;
};
const [pushPool, pushManyPool, landRound, pingRound] = [
  rounds.push,
  rounds.pushMany,
  rounds.landOnly,
  rounds.ping,
];

// Warm up both paths so the measurements see optimised code.
measure(POOL, pushPool);
measure(POOL, pingRound);

measure(POOL, pushManyPool);
measure(POOL, landRound);

const pushNs = measure(POOL, pushPool);
const pingNs = measure(POOL, pingRound);
const landNs = measure(POOL, landRound);
const pushManyNs = measure(POOL, pushManyPool) - landNs;

core.reset();
for (let i = 0; i < POOL; i++) core.push(datagrams[i] as Uint8Array, times[i] as number);
const snapshot = core.snapshot();

const tsBits = 7 * 188 * 8;
const packetsPerSecond = (7 * 1e9) / pushNs;
const gbps = tsBits / pushNs;
console.log(
  `packet core: ${POOL} RTP datagrams of 7 TS packets, replayed for ${seconds} s per measurement (its fastest pass)`,
);
console.log(
  `  content per pass: ${snapshot.packets} TS packets, ${snapshot.programs.length} program, ` +
    `${snapshot.pids.length} PIDs, ${snapshot.scte35Sections} SCTE-35 sections, ` +
    `${snapshot.pids.reduce((n, pid) => n + pid.randomAccess, 0)} random access points, ` +
    `CC errors ${snapshot.tr101290.ccErrors}, malformed ${snapshot.malformed}`,
);
console.log(`  push (copy into wasm + parse + events): ${pushNs.toFixed(1)} ns per 1316-byte datagram`);
console.log(
  `  pushMany, reads of ${slots} in the read slots:  ${pushManyNs.toFixed(1)} ns per datagram (parse + events + the run's copy; ` +
    `the kernel's write, done here in JavaScript, ${landNs.toFixed(1)} ns, not counted)`,
);
console.log(`  TS packets per second:                  ${(packetsPerSecond / 1e6).toFixed(2)} M`);
console.log(
  `  TS throughput:                          ${gbps.toFixed(2)} Gbit/s (goal 20 Gbit/s = 526 ns/datagram)`,
);
console.log(`  empty call into wasm (ping):            ${pingNs.toFixed(1)} ns`);
console.log(`  share of push spent crossing:           ${((100 * pingNs) / pushNs).toFixed(1)} %`);

// Resident memory: what 100 new cores add to the process, and what they hold once each has read a stream.
const rssMiB = () => process.memoryUsage().rss / 1048576;
const before = rssMiB();
const cores = Array.from({ length: 100 }, () => PacketCore.load());
const fresh = rssMiB() - before;
for (const each of cores)
  for (let i = 0; i < 600; i++) each.push(datagrams[i] as Uint8Array, times[i] as number);
console.log(
  `  100 cores resident: ${fresh.toFixed(1)} MiB new, ${(rssMiB() - before).toFixed(1)} MiB after 600 datagrams each`,
);
if (rounds.sink() === -1) console.log("unreachable");
