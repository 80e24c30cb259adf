/**
 * The main project's files share their worker processes when scripts/test.sh runs them (`--isolate=false`), so
 * what one file leaves running would outlive it there, where a process of its own would have taken it along
 * on exit: a caller still calling a port the next file listens on. After each file this ends every process the
 * file started and left (the worker's children, and theirs), and names them on stderr, so that a leak is seen
 * and mended in the file that made it rather than failing another.
 */
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, expect } from "vitest";

interface Proc {
  readonly pid: number;
  readonly ppid: number;
  readonly command: string;
}

const processes = (): ReadonlyArray<Proc> =>
  readdirSync("/proc").flatMap((entry) => {
    if (!/^\d+$/.test(entry)) return [];
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "latin1");
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ")".
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (state === "Z") return []; // ended, not yet waited for: nothing runs
      const command = readFileSync(`/proc/${entry}/cmdline`, "latin1").replaceAll("\0", " ").trim();
      return [{ pid: Number(entry), ppid: Number(ppid), command }];
    } catch {
      return []; // ended while read
    }
  });

/** Every descendant of `root`. */
const descendants = (root: number): ReadonlyArray<Proc> => {
  const all = processes();
  const found: Proc[] = [];
  let parents = new Set([root]);
  while (parents.size > 0) {
    const children = all.filter((proc) => parents.has(proc.ppid));
    found.push(...children);
    parents = new Set(children.map((proc) => proc.pid));
  }
  return found;
};

// Registered before the file's own hooks, so it runs after them: after the file's own clean-up.
afterAll(() => {
  const left = descendants(process.pid);
  if (left.length === 0) return;
  for (const proc of left) {
    try {
      process.kill(proc.pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
  process.stderr.write(
    `${expect.getState().testPath ?? "a test file"} left ${left.length} process(es) running, ended: ${left
      .map((proc) => `${proc.pid} ${proc.command.slice(0, 120)}`)
      .join("; ")}\n`,
  );
});
