/**
 * The pacing every test sender shares: `count` slots started at `perMs` slots per millisecond from now,
 * catching up on each 1 ms timer, then `done` once every send has completed (closing a socket before then
 * would drop the datagrams still queued in it). `slot(index, sent)` starts one slot's sends, each calling
 * `sent` when it completes, and returns how many it started.
 */
export const pace = (
  count: number,
  perMs: number,
  slot: (index: number, sent: () => void) => number,
  done: () => void,
): void => {
  const started = performance.now();
  let next = 0;
  let pending = 0;
  const finish = () => {
    if (next === count && pending === 0) done();
  };
  const sent = () => {
    pending--;
    finish();
  };
  const tick = () => {
    const due = Math.min(count, Math.floor((performance.now() - started) * perMs) + 1);
    while (next < due) pending += slot(next++, sent);
    if (next < count) setTimeout(tick, 1);
    else finish();
  };
  tick();
};
