/**
 * On a fleet node, what a channel's lease lets its outputs send (runtime/sockets/send-gates.ts). The send gate is open
 * while the lease was renewed in time; it is checked on the thread that forwards, before each read of an input
 * socket (the reader's `Fence`), when a timer finds its instant passed, and at each rebuild of the fan-out;
 * closed, the outputs get nothing (the preview still does). What queued in an input socket while the thread
 * stalled past the limit, or while the lease had lapsed, is read and dropped, not sent late: it is said at once,
 * with why and the total so far, and then at most once per 10 s while it goes on.
 */
import * as Effect from "effect/Effect";
import type * as Scope from "effect/Scope";
import type { Fence } from "../runtime/sockets/batch-reader.ts";
import {
  gateLapsed,
  gateOpen,
  monotonicMs,
  staleAfterMs,
  takeDroppedMidTurn,
  watchGate,
} from "../runtime/sockets/send-gates.ts";

interface LeaseFence {
  /** What the channel's reads ask before each read of a socket; none on one box. */
  readonly fence: Fence | undefined;
  /** The instant a rebuild judges the gate at (the shared monotonic clock; 0 on one box). */
  readonly now: () => number;
  /** Whether the outputs may be fed, judged at `at`, at a rebuild of the fan-out. */
  readonly sends: (at: number) => boolean;
  /** Watches the gate for as long as the scope lasts: a change rebuilds the fan-out (at once, if due). */
  readonly watch: Effect.Effect<void, never, Scope.Scope>;
}

export const makeLeaseFence = (options: {
  readonly gate: number | undefined;
  readonly channelId: () => string;
  /** Runs a log line on the channel's runtime (on a forwarding thread, the service's logger and masking). */
  readonly log: (line: Effect.Effect<void>) => void;
  /** Rebuilds the fan-out, judging the gate at `at` when given. */
  readonly rebuild: (at?: number) => void;
}): LeaseFence => {
  const { gate, channelId, log, rebuild } = options;
  if (gate === undefined) return { fence: undefined, now: () => 0, sends: () => true, watch: Effect.void };
  /** Whether the gate was open at the last rebuild of the fan-out. */
  let gateWasOpen = true;
  /** Set while a read's whole backlog is dropped as stale: the outputs get none of it. */
  let muted = false;
  /** Datagrams dropped as stale (a stalled thread, a lapsed lease), and when that was last logged. */
  const stale = { datagrams: 0, loggedAt: Number.NEGATIVE_INFINITY };
  const staleDropped = (datagrams: number, stalledMs: number) => {
    stale.datagrams += datagrams;
    const now = Date.now();
    if (datagrams === 0 || now - stale.loggedAt < 10_000) return;
    stale.loggedAt = now;
    const why =
      stalledMs > staleAfterMs()
        ? `its forwarding thread stalled for ${Math.round(stalledMs)} ms (more than ${staleAfterMs()} ms)`
        : "its lease lapsed unrenewed";
    log(
      Effect.logWarning(
        `channel ${channelId()}: ${datagrams} datagrams that waited in its inputs were dropped, not sent late: ${why} (${stale.datagrams} so far)`,
      ),
    );
  };
  const fence: Fence = {
    stale: (at, stalledMs) => {
      const open = gateOpen(gate, at);
      if (open !== gateWasOpen) rebuild(at);
      // A standby's outputs send nothing: its reads go on as ever.
      if (!open && !gateLapsed(gate)) return false;
      if (open && stalledMs <= staleAfterMs()) return false;
      // After a stall longer than the limit, or while the lease has lapsed (the process stalled, its main
      // thread at least), what waits in the socket queued while nobody could say whether it may be sent: it is
      // dropped, whatever the gate says once the main thread runs again.
      if (open) {
        muted = true;
        rebuild(at);
      }
      return true;
    },
    dropped: (datagrams, stalledMs) => {
      if (muted) {
        muted = false;
        rebuild();
      }
      // With what the thread's senders dropped when the same stall caught them in the middle of a turn.
      staleDropped(datagrams + takeDroppedMidTurn(), stalledMs);
    },
  };
  const watch = Effect.asVoid(
    Effect.acquireRelease(
      Effect.sync(() =>
        watchGate(gate, (open, lapsed) => {
          rebuild();
          // A gate the node closed itself (a release, a hand-over, a drain) is said by the node, with why.
          if (!open && !lapsed) return;
          log(
            open
              ? Effect.logInfo(`channel ${channelId()}: its lease was renewed: its outputs send again`)
              : Effect.logWarning(
                  `channel ${channelId()}: its lease was not renewed in time: its outputs stopped on the forwarding thread`,
                ),
          );
        }),
      ),
      (stop) => Effect.sync(stop),
    ),
  );
  return {
    fence,
    now: monotonicMs,
    sends: (at) => {
      gateWasOpen = gateOpen(gate, at);
      return gateWasOpen && !muted;
    },
    watch,
  };
};
