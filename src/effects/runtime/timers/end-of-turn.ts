/**
 * Work that waits for the end of this turn of the event loop: the datagrams an output was handed during one
 * turn leave together (src/effects/runtime/sockets/segmented.ts). Normally the turn ends with a setImmediate; code
 * that hands over a whole batch itself (the batch reader) runs it inside `asOneTurn`, which ends the turn when
 * it returns, without another pass of the event loop.
 */
import * as Effect from "effect/Effect";
import * as Runtime from "effect/Runtime";

/**
 * The runtime a fault here is logged through: the thread's, set by its channel host (reportThrough), so that in
 * a forwarding thread the line reaches the service's log, masked, as the thread's other lines do. Every thread
 * of the service that runs channels has a host; a test or a benchmark that drives a sender by hand has no
 * service log to reach, and its fault goes to stderr as plain words.
 */
let reporting: Runtime.Runtime<never> | null = null;
export const reportThrough = (runtime: Runtime.Runtime<never>): void => {
  reporting = runtime;
};

const reportFault = (thrown: unknown) => {
  const line = `work at the end of a turn failed: ${thrown instanceof Error ? thrown.message : String(thrown)}`;
  if (reporting === null) process.stderr.write(`${line}\n`);
  else Runtime.runFork(reporting)(Effect.logError(line));
};

/**
 * The work of this turn, in the order asked, and whether each still waits (a cancelled one stays in the list,
 * skipped). Arrays and a WeakMap whose keys are the same few functions turn after turn: a Set emptied each turn
 * grew again from nothing in the next, and that garbage was a forwarding thread's largest after its reads.
 * Two lists: the sends (`atEndOfTurn`), then what may wait for them (`afterTheSends`).
 */
interface Work {
  readonly list: Array<(() => void) | null>;
  /** The next to run, and the end of the list. */
  head: number;
  count: number;
}
const sends: Work = { list: [], head: 0, count: 0 };
const later: Work = { list: [], head: 0, count: 0 };
const waits = new WeakMap<() => void, boolean>();
let scheduled = false;
let holding = 0;
/** Set while the end of a turn runs: what it asks for joins this run rather than another turn. */
let running = false;

/** Runs the next of `work`'s list, unless it was cancelled. */
const runNext = (work: Work) => {
  const run = work.list[work.head] as () => void;
  work.list[work.head++] = null;
  if (waits.get(run) !== true) return;
  waits.set(run, false);
  // One output's work that throws must not keep the others' from going, nor reach the input path that
  // ended the turn (another channel's, maybe): each guards itself, and this is the last line.
  try {
    run();
  } catch (thrown) {
    reportFault(thrown);
  }
};

const runAll = () => {
  scheduled = false;
  running = true;
  try {
    // Work may ask for more at the end of the same turn (an output's batch for the thread's one send, an RTMP
    // write for the remux's frames): it joins its list and runs in this pass too, the sends first.
    do {
      while (sends.head < sends.count) runNext(sends);
      sends.head = sends.count = 0;
      if (later.head < later.count) runNext(later);
    } while (later.head < later.count || sends.count > 0);
    later.head = later.count = 0;
  } finally {
    running = false;
  }
};

const ask = (work: Work, run: () => void) => {
  if (waits.get(run) === true) return;
  waits.set(run, true);
  work.list[work.count++] = run;
  if (!scheduled && holding === 0 && !running) {
    scheduled = true;
    setImmediate(runAll);
  }
};

/** Runs `run` once at the end of this turn of the event loop (asking again in the same turn changes nothing). */
export const atEndOfTurn = (run: () => void): void => ask(sends, run);

/**
 * Runs `run` once at the end of this turn, after everything asked with `atEndOfTurn` has run: work that no
 * datagram of the turn waits for (the TS → FLV remux, the RTMP writes), so that the thread's sends leave before
 * it.
 */
export const afterTheSends = (run: () => void): void => ask(later, run);

export const cancelEndOfTurn = (run: () => void): void => {
  if (waits.get(run) === true) waits.set(run, false);
};

/**
 * Runs `work`, then at once what it left for the end of the turn, with whatever else waited for it (the
 * setImmediate asked for earlier then finds nothing to do). A move's cut relies on it: what the old copy read
 * last has left when it says "done", and the new copy sends from then on (test/workers/move-cut-order.test.ts).
 */
export const asOneTurn = (work: () => void): void => {
  holding += 1;
  try {
    work();
  } finally {
    holding -= 1;
    if (holding === 0 && !running) runAll();
  }
};
