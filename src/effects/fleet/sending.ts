/**
 * What a node sends: the channels whose leases it holds, each with its term, and the send gates
 * (runtime/sockets/send-gates.ts) that let their outputs go on. The coordinator starts and stops sending here as its
 * leases come and go, and moves the gates on at each renewal made in time; the guard (guard.ts) stops every
 * held channel at once and starts them again, or keeps their gates moving while the node is isolated.
 */
import * as Effect from "effect/Effect";
import type { ChannelId } from "../../domain/base/ids.ts";
import type { Resume } from "../control/resume.ts";
import { sendUntil, setTerm } from "../runtime/sockets/send-gates.ts";
import type { FleetClock } from "./fleet-clock.ts";
import type { TakeoverReason } from "./fleet-types.ts";
import { fenceMarginMs } from "./guard.ts";
import type { FleetHandover, HandoverPlan } from "./handover.ts";

/**
 * A lease this node now holds: its channel, its term, why it came here (null: it was free, or handed), and
 * how its outputs begin when it was handed over or let go (handover.ts; none: live).
 */
interface HeldLease {
  readonly channel: string;
  readonly term: number;
  readonly reason: TakeoverReason | null;
  readonly plan?: HandoverPlan | null;
}

export const makeSending = (
  me: string,
  ttl: number,
  /** The fleet's clock: a gate's instant is reckoned on it and carried over to the threads' (`sharedInstant`). */
  clock: FleetClock,
  resume: Resume,
  /** Whether the guard stopped the held channels for want of renewals (guard.ts). */
  fenced: () => boolean,
  handover: Pick<FleetHandover, "prepare" | "begun">,
) => {
  /** The terms this node holds, by channel. */
  const held = new Map<string, number>();
  /** When each held lease came here (the fleet's clock, once the statement that took it had answered). */
  const takenAt = new Map<string, number>();
  /**
   * Until when the last renewal lets the held channels send, on the fleet's clock (−∞: none yet); each gate
   * (runtime/sockets/send-gates.ts) is given it as an instant of the threads' clock.
   */
  let gateUntil = Number.NEGATIVE_INFINITY;
  const takeovers: Record<TakeoverReason, number> = {
    expired: 0,
    holder_gone: 0,
    holder_restarted: 0,
    drain: 0,
    move: 0,
  };

  const startSendingAll = (leases: ReadonlyArray<HeldLease>) =>
    Effect.gen(function* () {
      // The wall clock: the old holder's cut time, which the report measures from, is its wall clock too.
      const askedAt = clock.wallMs();
      // Before any gate opens: each handed channel's thread knows how to begin.
      for (const { channel: id, plan } of leases) if (plan != null) yield* handover.prepare(id, plan);
      for (const { channel: id, term, reason } of leases) {
        held.set(id, term);
        takenAt.set(id, clock.now());
        setTerm(id, term);
        if (!fenced()) sendUntil(id, clock.sharedInstant(gateUntil));
        if (reason !== null) takeovers[reason] += 1;
      }
      if (!fenced())
        yield* resume.locked(
          Effect.forEach(leases, ({ channel: id }) => resume.hold(id as ChannelId, true), {
            concurrency: "unbounded",
            discard: true,
          }),
        );
      // The outputs run: each handed channel begins where the old holder cut, and the hand-over is reported.
      for (const { channel: id, plan } of leases)
        if (plan != null) yield* Effect.forkDaemon(handover.begun(id, plan, askedAt));
      for (const { channel: id, term, reason } of leases)
        yield* Effect.logInfo(
          `fleet: node ${me} holds channel ${id} (term ${term}${reason === null ? "" : `, ${reason}`})`,
        );
    });

  return {
    held: held as ReadonlyMap<string, number>,
    /** When the lease of channel `id` came here; −∞ for one not held. */
    takenAt: (id: string) => takenAt.get(id) ?? Number.NEGATIVE_INFINITY,
    takeovers: () => ({ ...takeovers }),
    startSendingAll,
    startSending: (
      id: string,
      term: number,
      reason: TakeoverReason | null,
      plan: HandoverPlan | null = null,
    ) => startSendingAll([{ channel: id, term, reason, plan }]),
    /** Stops at once, without waiting for the API's lock. */
    stopSending: (id: string, why: string) =>
      Effect.gen(function* () {
        held.delete(id);
        takenAt.delete(id);
        sendUntil(id, 0);
        yield* resume.hold(id as ChannelId, false);
        yield* Effect.logWarning(`fleet: node ${me} no longer sends channel ${id}: ${why}`);
      }),
    /** Every held channel's outputs stop, never behind the API's lock; the terms are kept (the guard's fence). */
    stopAll: Effect.suspend(() =>
      Effect.forEach(
        [...held.keys()],
        (id) =>
          Effect.zipRight(
            Effect.sync(() => sendUntil(id, 0)),
            resume.hold(id as ChannelId, false),
          ),
        { discard: true },
      ),
    ),
    /** Every held channel's outputs start again, behind the API's lock (`stopAll` undone). */
    resumeAll: resume.locked(
      Effect.suspend(() =>
        Effect.forEach([...held.keys()], (id) => resume.hold(id as ChannelId, true), { discard: true }),
      ),
    ),
    /**
     * The held channels may send until a lease time, less the fence margin, from `agoMs` before now: a renewal
     * sent then, or now (the guard's, while isolated). The forwarding threads stop each by themselves once that
     * instant passes without another.
     */
    sendFor: (agoMs: number) => {
      gateUntil = clock.now() - agoMs + ttl - fenceMarginMs(ttl);
      const instant = clock.sharedInstant(gateUntil);
      for (const id of held.keys()) sendUntil(id, instant);
    },
  } as const;
};

export type Sending = ReturnType<typeof makeSending>;
