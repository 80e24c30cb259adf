/**
 * Work that waits for the end of this turn of the event loop: the datagrams an output was handed during one
 * turn leave together (src/effects/outputs/segmented.ts). Normally the turn ends with a setImmediate; code
 * that hands over a whole batch itself (the batch reader) runs it inside `asOneTurn`, which ends the turn when
 * it returns, without another pass of the event loop.
 */
const waiting = new Set<() => void>();
let scheduled = false;
let holding = 0;

const runAll = () => {
  scheduled = false;
  if (waiting.size === 0) return;
  const work = [...waiting];
  waiting.clear();
  for (const run of work) run();
};

/** Runs `run` once at the end of this turn of the event loop (asking again in the same turn changes nothing). */
export const atEndOfTurn = (run: () => void): void => {
  waiting.add(run);
  if (!scheduled && holding === 0) {
    scheduled = true;
    setImmediate(runAll);
  }
};

export const cancelEndOfTurn = (run: () => void): void => {
  waiting.delete(run);
};

/** Runs `work`, then at once what it left for the end of the turn. */
export const asOneTurn = (work: () => void): void => {
  holding += 1;
  try {
    work();
  } finally {
    holding -= 1;
    if (holding === 0 && !scheduled) runAll();
  }
};
