/**
 * A sequence merger: the merge core (ST 2022-7 first copy wins, in order) driven by the host clock. It serves
 * two places: a channel in merge mode feeds both inputs into one, and an input with FEC feeds its own
 * datagrams and the recovered ones into one, so a rebuilt packet takes its place in the stream instead of
 * arriving out of order. Gaps wait `windowMs` after the packet behind them came; `flush` on the selector's
 * tick gives them up when nothing else arrives. `onGap` hears when a gap starts to wait (with the time it
 * expires), so that the selector ticks then and only then; `deadline` says the same after a flush.
 *
 * `emit` gets a view into the core's memory: it must use the bytes before it returns.
 */
import { MergeCore, MergeInsert, type MergeSnapshot } from "../../core/redundancy-core.ts";
import type { InputRole } from "../../domain/channel/redundancy.ts";

// Merge lanes name the inputs in the merge core's counters; an input's own reorder buffer uses lane 1 for
// what FEC rebuilt.
export const LANE: Readonly<Record<InputRole, number>> = { primary: 0, backup: 1 };
export const RECOVERED_LANE = 1;

export interface SequenceMerger {
  readonly insert: (datagram: Uint8Array, path: number, nowMs: number) => void;
  readonly flush: (nowMs: number) => void;
  /** When the gap that holds the rest expires (monotonic ms), or null when nothing waits. */
  readonly deadline: () => number | null;
  readonly snapshot: () => MergeSnapshot;
}

export const makeSequenceMerger = (
  windowMs: number,
  emit: (datagram: Uint8Array) => void,
  onGap: (expiresAtMs: number) => void = () => {},
): SequenceMerger => {
  const core = MergeCore.load();
  // The expiry last reported: a gap is announced once, not on every datagram that waits behind it.
  let announced: number | null = null;
  const flush = (nowMs: number) => {
    for (
      let datagram = core.release(nowMs, windowMs);
      datagram !== null;
      datagram = core.release(nowMs, windowMs)
    )
      emit(datagram);
  };
  return {
    insert: (datagram, path, nowMs) => {
      let status = core.insert(datagram, path, nowMs);
      // The buffer is full of older packets waiting on a gap: send them on, gaps and all, to make room.
      while (status === MergeInsert.Ahead) {
        const oldest = core.release(nowMs, -1);
        if (oldest !== null) emit(oldest);
        status = core.insert(datagram, path, nowMs);
      }
      if (status !== MergeInsert.Stored) return;
      flush(nowMs);
      const expiry = core.gapExpiry(windowMs);
      if (expiry !== null && expiry !== announced) onGap(expiry);
      announced = expiry;
    },
    flush,
    deadline: () => core.gapExpiry(windowMs),
    snapshot: () => core.snapshot(),
  };
};
