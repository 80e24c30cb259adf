import { availableParallelism } from "node:os";
import { configDefaults, defineConfig } from "vitest/config";

/**
 * Tests that assert wall-clock time on real sockets (a first byte within 100 ms, a failover gap) or run the
 * network lab: machine load from files running beside them would fail them, not the service.
 */
const timing = ["test/**/*.timing.test.ts", "test/lab/**/*.test.ts"];

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
          exclude: [...configDefaults.exclude, ...timing],
        },
      },
      // After the others (groupOrder); scripts/test.sh also runs it on its own, one file at a time.
      { extends: true, test: { name: "timing", include: timing, sequence: { groupOrder: 1 } } },
    ],
  },
});
