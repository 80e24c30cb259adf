/**
 * The main project's files share their worker processes when scripts/test.sh runs them (`--isolate=false`), so
 * what one file leaves running would outlive it there, where a process of its own would have taken it along
 * on exit: a caller still calling a port the next file listens on. After each file this ends every process the
 * file started and left (the worker's children, and theirs), and names them on stderr, so that a leak is seen
 * and mended in the file that made it rather than failing another.
 */
import { afterAll, expect } from "vitest";
import { childProcesses, type ProcessEntry } from "./peers.ts";

/** Every descendant of `root` still running (zombies have ended: nothing runs). */
const descendants = async (root: number): Promise<ReadonlyArray<ProcessEntry>> => {
  const found: ProcessEntry[] = [];
  let parents = [root];
  while (parents.length > 0) {
    const children = (await Promise.all(parents.map((parent) => childProcesses(parent))))
      .flat()
      .filter((child) => child.state !== "Z");
    found.push(...children);
    parents = children.map((child) => child.pid);
  }
  return found;
};

// Registered before the file's own hooks, so it runs after them: after the file's own clean-up.
afterAll(async () => {
  const left = await descendants(process.pid);
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
      .map((proc) => `${proc.pid} ${proc.command}`)
      .join("; ")}\n`,
  );
});
