/**
 * The scheduling a forwarding thread asks the kernel for. On a busy machine a forwarding thread that is ready
 * to run waits behind whatever else is: measured with the load harness (50 channels × 4 UDP outputs on two
 * cores, the generator and the sinks sharing them), that wait was most of the added latency's p99.
 *
 * - `high` (the default): nice −10 (CAP_SYS_NICE, or RLIMIT_NICE of 30 or more). The thread gets most of a
 *   busy core when it wants it, but an ordinary thread still gets its share.
 * - `realtime`: SCHED_RR at priority 10. The thread runs as soon as a turn is due, ahead of every ordinary
 *   thread: the lowest p99 under load (about 5 ms against 8–10 ms at 50 × 4 UDP on two cores). Not the default
 *   because of what soaks showed: twice in 50 minutes at 10 × 4 both forwarding threads took a whole core
 *   each for 0.9 s while their measured loop delay stayed under 5 ms (no JavaScript of ours held them; the
 *   cause, inside the runtime, was not found), and every ordinary thread of the machine (the API, the sender
 *   of the input) stood still until the kernel's real-time throttling (95 % of each second) let them run.
 *   Needs root, CAP_SYS_NICE or an RLIMIT_RTPRIO of 10 or more (systemd `LimitRTPRIO=10`, docker
 *   `--ulimit rtprio=10`).
 * - `normal`: as the kernel gives it.
 *
 * What cannot be had falls back to the next level down, and the thread says what it got and why. The levels
 * are the thread's own (Linux schedules threads): the main thread, with the API and the pages, stays as it
 * was. SCHED_RESET_ON_FORK keeps them from what the thread starts: libsrt's threads and children such as
 * ffmpeg run as ordinary processes.
 */
import type { Priority } from "../../config/settings.ts";
import { EACCES, EPERM, errno, loadLibc } from "../ffi/libc.ts";

export type { Priority };

const SCHED_OTHER = 0;
const SCHED_RR = 2;
const SCHED_RESET_ON_FORK = 0x40000000;
const PRIO_PROCESS = 0;
const REALTIME_PRIORITY = 10;
/** The nice value of `high`. */
export const HIGH_NICE = -10;

export interface Scheduling {
  /** What the thread runs at. */
  readonly priority: Priority;
  /** Why it runs at less than it asked for, or null. */
  readonly shortfall: string | null;
}

const refused = (what: string, limit: string, code: number) =>
  // sched_setscheduler says EPERM; setpriority, lowering the nice value, EACCES.
  code === EPERM || code === EACCES
    ? `${what} was not permitted (it needs root, CAP_SYS_NICE or a raised ${limit})`
    : `${what} failed (errno ${code})`;

let raised: Priority = "normal";
/** What this thread got from raiseThisThread: a thread it starts to work for it asks for as much. */
export const thisThreadPriority = (): Priority => raised;

/** Asks for `wanted` for the calling thread, falling back level by level; Linux only. */
export const raiseThisThread = (wanted: Priority): Scheduling => {
  const got = raiseAsFarAsAllowed(wanted);
  raised = got.priority;
  return got;
};

const raiseAsFarAsAllowed = (wanted: Priority): Scheduling => {
  if (wanted === "normal") return { priority: "normal", shortfall: null };
  if (process.platform !== "linux") return { priority: "normal", shortfall: `not on ${process.platform}` };
  let libc: ReturnType<typeof loadLibc>;
  try {
    libc = loadLibc();
  } catch (cause) {
    return { priority: "normal", shortfall: `the C library could not be loaded (${String(cause)})` };
  }
  const param = new Uint8Array(4);
  const reasons: string[] = [];
  if (wanted === "realtime") {
    new DataView(param.buffer).setInt32(0, REALTIME_PRIORITY, true);
    // pid 0: the calling thread.
    if (libc.sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, param) === 0)
      return { priority: "realtime", shortfall: null };
    reasons.push(refused(`real-time scheduling (SCHED_RR ${REALTIME_PRIORITY})`, "RLIMIT_RTPRIO", errno()));
  }
  // An ordinary thread whose children start at nice 0 again; then the nice value, this thread's alone.
  new DataView(param.buffer).setInt32(0, 0, true);
  libc.sched_setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, param);
  if (libc.setpriority(PRIO_PROCESS, 0, HIGH_NICE) === 0)
    return { priority: "high", shortfall: reasons.length === 0 ? null : reasons.join("; ") };
  reasons.push(refused(`nice ${HIGH_NICE}`, "RLIMIT_NICE", errno()));
  return { priority: "normal", shortfall: reasons.join("; ") };
};
