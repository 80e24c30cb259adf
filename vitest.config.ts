import { availableParallelism } from "node:os";
import { configDefaults, defineConfig } from "vitest/config";
import { TIMING_LANES } from "./test/support/timing-lanes.ts";

/**
 * Tests that assert wall-clock time on real sockets (a first byte within 100 ms, a failover gap) or run the
 * network lab: machine load from files running beside them would fail them, not the service.
 */
const timing = ["test/**/*.timing.test.ts", "test/lab/**/*.test.ts"];

/**
 * Main files kept apart from the others when scripts/test.sh runs those in shared processes: those on Effect's
 * TestClock, which in a process shared with the other main files now and then found the live clock where their
 * TestClock should be (`adjust is not a function`; among themselves, in one process, they pass); the SRT
 * stream-id test, refused once for a passphrase it never sent; and srt-missing, which points the service at a
 * libsrt that is not there. Their own project, `main-apart`: one process for them all, beside the main files.
 */
const apart = [
  "test/channel/srt-stream-ids.test.ts",
  "test/core/slate-states.test.ts",
  "test/fleet/fence-clock.test.ts",
  "test/fleet/round-clock.test.ts",
  "test/medialive/cost-guard.test.ts",
  "test/medialive/guard-service.test.ts",
  "test/notify/limits.test.ts",
  "test/notify/outbox.test.ts",
  "test/notify/retries.test.ts",
  "test/outputs/retry.test.ts",
  "test/outputs/srt-missing.test.ts",
  "test/redundancy/selector.test.ts",
  "test/schedule/hold.test.ts",
  "test/schedule/runner.test.ts",
];

/**
 * The timing files of one lane (test/support/timing-lanes.ts) when DISTRIBUTARY_TIMING_LANE names it, as
 * scripts/test.sh runs them: `labs` and `light` side by side, then `alone`. Unset: every timing file.
 */
const timingFiles = (lane: string | undefined) => {
  const exclude = configDefaults.exclude;
  if (lane === undefined || lane === "") return { include: timing, exclude };
  if (lane === "alone")
    return { include: timing, exclude: [...exclude, ...TIMING_LANES.labs, ...TIMING_LANES.light] };
  if (lane === "labs" || lane === "light") return { include: [...TIMING_LANES[lane]], exclude };
  throw new Error(`DISTRIBUTARY_TIMING_LANE is "${lane}": the lanes are labs, light and alone`);
};

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Vitest's default, one worker fewer than the cores, is one worker on a 2-core machine: the main project's
    // files, which mostly wait on sockets, child processes and time, would run one after another. Three at
    // least: its 16 slowest files and test/fleet's, 772 s of CI time, used 386 CPU-seconds in all (measured
    // in a cgroup: half a core each), so three at once use about three quarters of two cores.
    maxWorkers: Math.max(3, availableParallelism() - 1),
    projects: [
      {
        extends: true,
        test: {
          name: "main",
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, ...timing, ...apart],
          // scripts/test.sh runs these files with `--isolate=false`: three worker processes take every file in
          // turn, which saves a third of the project's time (a new process and its imports for each of 240
          // files). What a file leaves running then ends with it all the same.
          setupFiles: ["test/support/file-leftovers.ts"],
        },
      },
      // One shared process under scripts/test.sh (`--isolate=false`): what a file leaves running ends with it.
      {
        extends: true,
        test: { name: "main-apart", include: apart, setupFiles: ["test/support/file-leftovers.ts"] },
      },
      // After the others (groupOrder); scripts/test.sh runs it on its own, one file at a time per lane.
      {
        extends: true,
        test: {
          name: "timing",
          ...timingFiles(process.env.DISTRIBUTARY_TIMING_LANE),
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
