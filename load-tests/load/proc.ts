/**
 * What /proc says of a contender: CPU, RSS and open files of its process tree, and whether a UDP port is bound.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

/** `root` and every process below it (children of any of its threads), from /proc. */
const processTree = (root: number): number[] => {
  const all: number[] = [];
  const visit = (pid: number) => {
    all.push(pid);
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      return;
    }
    for (const task of tasks) {
      try {
        for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim().split(/\s+/))
          if (child !== "") visit(Number(child));
      } catch {}
    }
  };
  visit(root);
  return all;
};
export interface Usage {
  readonly cpuSeconds: number;
  readonly rss: number;
  readonly fds: number;
  readonly processes: number;
}
/** utime+stime, RSS and open files of the processes given and everything below them. */
export const usage = (roots: ReadonlyArray<number>): Usage => {
  let cpuSeconds = 0;
  let rss = 0;
  let fds = 0;
  let processes = 0;
  for (const pid of roots.flatMap(processTree)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      cpuSeconds += (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ
      rss += Number(fields[21]) * 4096;
      fds += readdirSync(`/proc/${pid}/fd`).length;
      processes += 1;
    } catch {}
  }
  return { cpuSeconds, rss, fds, processes };
};
/** Whether something has bound UDP `port` (from /proc/net/udp). */
export const udpBound = (port: number) => {
  // "  sl  local_address rem_address ...": the slot number is right-aligned, so trim before splitting
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return readFileSync("/proc/net/udp", "utf8")
    .split("\n")
    .some((line) => line.trim().split(/\s+/)[1]?.endsWith(suffix) === true);
};

/** CPU seconds of each thread of `pid` by name (/proc/PID/task/TID/stat), V8's GC helpers summed as one. */
export const threadUsage = (pid: number): Map<string, number> => {
  const byName = new Map<string, number>();
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byName;
  }
  for (const task of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const seconds = (Number(fields[11]) + Number(fields[12])) / 100;
      const key = name === "V8Worker" ? "V8 workers (GC, compiler)" : name;
      byName.set(key, (byName.get(key) ?? 0) + seconds);
    } catch {}
  }
  return byName;
};

/**
 * Time each thread of `pid` spent running and waiting on a run queue, ready to run (/proc/PID/task/TID/schedstat,
 * ns), by name as `threadUsage` sums them. A thread that waits there is not slow but not given a core.
 */
export const threadWaits = (pid: number): Map<string, { readonly run: number; readonly wait: number }> => {
  const byName = new Map<string, { run: number; wait: number }>();
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byName;
  }
  for (const task of tasks) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${task}/comm`, "utf8").trim();
      const [run, wait] = readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").trim().split(" ");
      const key = name === "V8Worker" ? "V8 workers (GC, compiler)" : name;
      const sum = byName.get(key) ?? { run: 0, wait: 0 };
      byName.set(key, { run: sum.run + Number(run) / 1e9, wait: sum.wait + Number(wait) / 1e9 });
    } catch {}
  }
  return byName;
};

/**
 * Where the kernel groups processes by session (autogroup, kernel.sched_autogroup_enabled), a nice value ranks a
 * thread only against the threads of its own session: every other busy session gets as much of the CPU as this
 * one, whatever the service's forwarding threads or the generator ask for. Raises this process's session group
 * (the harness, the contenders, the generator and the receiver) to `nice` until `restore`, which puts back what
 * it was (the group is the session's: the shell that started the harness keeps it afterwards), and says what it
 * found.
 */
export const raiseSessionGroup = (nice: number): { readonly said: string; readonly restore: () => void } => {
  const unchanged = { restore: () => undefined };
  let enabled = "0";
  try {
    enabled = readFileSync("/proc/sys/kernel/sched_autogroup_enabled", "utf8").trim();
  } catch {}
  if (enabled !== "1") return { said: "the kernel does not group by session (no autogroup)", ...unchanged };
  const niceNow = () => readFileSync("/proc/self/autogroup", "utf8").trim().split(" nice ")[1] ?? "0";
  try {
    const before = niceNow();
    writeFileSync("/proc/self/autogroup", String(nice));
    return {
      said: `the run's session group (autogroup) at nice ${niceNow()} (${before} before the run, and after it)`,
      restore: () => {
        try {
          writeFileSync("/proc/self/autogroup", before);
        } catch {}
      },
    };
  } catch (cause) {
    return {
      said: `the run's session group (autogroup) left as it was: ${(cause as Error).message}`,
      ...unchanged,
    };
  }
};
