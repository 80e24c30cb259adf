/**
 * What a resting loop costs a round, the way the service can write it: `Effect.repeat` with a
 * `Schedule.spaced`, `Effect.forever` over an `Effect.sleep`, a plain timer that forks an effect
 * (runtime/timers/quiet-timer.ts when there is work), and a plain timer alone (quiet-timer.ts when there is none).
 * Each way runs in a process of its own: L loops, each on its own period near a second, with nothing to do;
 * it prints the process's CPU per round. A node of a fleet at rest runs a handful of such loops, and dozens of
 * nodes may share a machine.
 *
 *   node load-tests/bench-timers.ts [--loops 100] [--seconds 20]
 */
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { Effect, Schedule } from "effect";

const { values } = parseArgs({
  options: {
    loops: { type: "string", default: "100" },
    seconds: { type: "string", default: "20" },
    way: { type: "string" },
  },
});
const LOOPS = Number(values.loops);
const SECONDS = Number(values.seconds);
const WAYS = {
  "Effect.repeat + Schedule.spaced": (i: number) =>
    Effect.runFork(
      Effect.repeat(
        Effect.sync(() => i),
        Schedule.spaced(`${1000 + i * 7} millis`),
      ),
    ),
  "Effect.forever + Effect.sleep": (i: number) =>
    Effect.runFork(
      Effect.forever(
        Effect.zipRight(
          Effect.sync(() => i),
          Effect.sleep(`${1000 + i * 7} millis`),
        ),
      ),
    ),
  "plain timer forking an effect": (i: number) =>
    setInterval(() => Effect.runFork(Effect.sync(() => i)), 1000 + i * 7),
  "plain timer": (i: number) => setInterval(() => i, 1000 + i * 7),
} as const;
type Way = keyof typeof WAYS;

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

if (values.way !== undefined) {
  // One way, in this process: start the loops, let them settle, then count.
  const way = values.way as Way;
  for (let i = 0; i < LOOPS; i++) WAYS[way](i);
  await new Promise((done) => setTimeout(done, 3000));
  const [cpu, at] = [cpuMs(), performance.now()];
  await new Promise((done) => setTimeout(done, SECONDS * 1000));
  const elapsed = performance.now() - at;
  let rounds = 0;
  for (let i = 0; i < LOOPS; i++) rounds += elapsed / (1000 + i * 7);
  process.stdout.write(`${((cpuMs() - cpu) * 1000) / rounds}\n`);
  process.exit(0);
}

process.stdout.write(`${LOOPS} resting loops, ${SECONDS} s each way, one process per way:\n`);
for (const way of Object.keys(WAYS) as Way[]) {
  const run = spawnSync(
    process.execPath,
    [
      "--disable-warning=ExperimentalWarning",
      process.argv[1] ?? "",
      "--way",
      way,
      "--loops",
      String(LOOPS),
      "--seconds",
      String(SECONDS),
    ],
    { encoding: "utf8" },
  );
  if (run.status !== 0) throw new Error(`${way}: ${run.stderr}`);
  process.stdout.write(
    `  ${way.padEnd(34)} ${Number(run.stdout).toFixed(0).padStart(4)} µs of CPU a round\n`,
  );
}
