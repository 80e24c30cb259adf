/**
 * Which timing files may run beside another (vitest.config.ts, DISTRIBUTARY_TIMING_LANE; scripts/test.sh).
 *
 * The timing project's files assert wall-clock time, so each was written to run alone. Most of them wait far
 * more than they compute, and the suite's time is mostly theirs, so `npm test` runs two lanes side by side,
 * one file of each at a time, then every other timing file alone. A file is in a lane only when, run alone,
 * it used at most about six tenths of one core over its whole time (a cgroup's CPU time over the file's wall
 * time, Vitest's start included), so that two files side by side together use a little over one of the two
 * cores and leave the other free. Files of one lane never run beside each other: the fleet labs, which start
 * PostgreSQL and two or three nodes each, only ever run beside a lighter file of the other lane.
 *
 * Measured alone on the 2-core machine (wall s, CPU s), 28 November 2026. A file missing from both lanes runs
 * alone: the safe place for a new file until it is measured the same way.
 */
export const TIMING_LANES = {
  /** Long labs, each beside one file of `light` at a time. */
  labs: [
    "test/lab/fleet-chaos.test.ts", //        131.2 s, 77.6 CPU s
    "test/lab/fleet-partition.test.ts", //    129.9 s, 49.2 CPU s
    "test/lab/fleet-takeover.test.ts", //      86.7 s, 53.6 CPU s
    "test/lab/fleet-database.test.ts", //      65.6 s, 31.8 CPU s
    "test/lab/srt.test.ts", //                 65.4 s, 27.0 CPU s
  ],
  /** The lightest timing files, each beside one of `labs`. */
  light: [
    "test/lab/health-failover.test.ts", //     55.7 s, 25.5 CPU s
    "test/channel/slate.timing.test.ts", //    51.4 s, 21.3 CPU s
    "test/schedule/window.timing.test.ts", //  48.8 s, 19.0 CPU s
    "test/schedule/fleet-takeover.timing.test.ts", // 44.5 s, 20.6 CPU s
    "test/lab/rtmp.test.ts", //                41.8 s, 22.7 CPU s
    "test/lab/rist.test.ts", //                36.8 s, 21.9 CPU s
    "test/schedule/hold.timing.test.ts", //    34.8 s, 13.8 CPU s
    "test/lab/failover.test.ts", //            24.0 s, 13.0 CPU s
    "test/lab/fec.test.ts", //                 23.7 s, 13.4 CPU s
    "test/channel/cue-insert-slate.timing.test.ts", // 23.6 s, 10.5 CPU s
    "test/lab/merge.test.ts", //               23.5 s, 12.9 CPU s
    "test/lab/multicast.test.ts", //           20.4 s, 12.2 CPU s
    "test/channel/slate-rist.timing.test.ts", // 20.8 s, 10.6 CPU s
  ],
} as const;
