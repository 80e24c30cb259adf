/**
 * A hitless move or drain between two nodes (docs/fleet.md, "Hitless moves and drains"). The old holder cuts
 * (channel/cut-stage.ts: its outputs stop between two datagrams, and it names the last it sent and where its RTP
 * outputs stand) and writes the cut with the statement that gives its lease away (leases.ts `handOver`,
 * `release`). The new holder, having read that row, tells its channel how to begin before its send gate opens
 * (`prepare`); once its outputs run, it begins and reports the hand-over (`begun`, handover/report.ts).
 *
 * Fencing is unchanged: the old holder's outputs stopped before the statement that gave the lease away, and the
 * new holder's gate opens only after the statement that gave it the lease, so two nodes never send at once.
 */
import * as Effect from "effect/Effect";
import type { ChannelId } from "../../domain/base/ids.ts";
import type { ChannelsService } from "../channel/channel-types.ts";
import { type HolderCut, MARGIN_MS, RAP_WAIT_MS, type Resumption } from "../channel/cut-stage.ts";
import type { EventBus } from "../events/event-bus.ts";
import { reportHandoverOn } from "../handover/report.ts";
import type { FleetClock } from "./fleet-clock.ts";
import type { LeaseRow } from "./leases.ts";

/** How long the old holder's channel has to answer with its cut (it runs on to a random access point first). */
const CUT_ANSWER_MS = RAP_WAIT_MS + 1000;
/** A release seen longer ago than this (a standby ranked after another waited its turn) is begun live. */
const MARGIN_SEEN_MS = 1000;
/** How long the new holder waits to hear how its channel began, for the report. */
const BEGUN_MS = 3000;

/** How a new holder begins a channel it was handed, and what it reports of it. */
export interface HandoverPlan {
  readonly how: Resumption;
  readonly kind: "move" | "drain";
  readonly from: string;
  readonly packetsAtCut: number;
  /** The old holder's clock when it cut (epoch ms); null when it named no cut. */
  readonly cutAt: number | null;
}

export const makeFleetHandover = (
  me: string,
  channels: ChannelsService,
  bus: EventBus,
  clock: FleetClock,
) => ({
  /** On the old holder: its outputs stop at a cut, and the cut; null when its channel could not say. */
  cut: (id: string): Effect.Effect<HolderCut | null> =>
    Effect.suspend(() => {
      const askedAt = clock.now();
      return channels.fleetCut(id as ChannelId).pipe(
        Effect.timeoutTo({ duration: CUT_ANSWER_MS, onTimeout: () => null, onSuccess: (cut) => cut }),
        Effect.orElseSucceed(() => null),
        Effect.tap((cut) =>
          Effect.logInfo(
            `fleet: node ${me} cut channel ${id} after ${Math.round(clock.now() - askedAt)} ms: ${cut === null ? "no cut (its channel did not say)" : `${cut.agreed === null ? "nothing sent to name" : "its last datagrams named"}, ${cut.pts === null ? "no random access point within the bound" : `before the random access point of PTS ${cut.pts}`}, ${cut.packets} TS packets sent`}`,
          ),
        ),
      );
    }),

  /**
   * How the new holder of term `term` begins, from the lease row it read at `readAt` (the fleet's clock) that
   * handed or released the lease: at the agreed cut when the old holder named one for this term; else, when the
   * old holder let it go but named none (a node of the previous release), from `MARGIN_MS` before the row was
   * read; null (live, as before) when it was not let go, or too long ago.
   */
  plan: (
    row: LeaseRow,
    readAt: number,
    term: number,
    kind: "move" | "drain",
    from: string | null,
  ): HandoverPlan | null => {
    const cut = row.cut !== null && row.cut.term === term ? row.cut : null;
    const by = cut?.from ?? from ?? "?";
    if (cut?.agreed != null)
      return {
        how: {
          mode: "agreed",
          cut: cut.agreed,
          pts: cut.pts ?? null,
          lastPts: cut.lastPts ?? {},
          rtp: cut.rtp,
        },
        kind,
        from: by,
        packetsAtCut: cut.packets,
        cutAt: cut.at,
      };
    if (clock.now() - readAt > MARGIN_SEEN_MS) return null;
    return {
      // The channel's thread reads it on the clock the threads share.
      how: { mode: "margin", from: clock.sharedInstant(readAt - MARGIN_MS) },
      kind,
      from: by,
      packetsAtCut: cut?.packets ?? 0,
      cutAt: cut?.at ?? null,
    };
  },

  /** Before the gate opens: the channel's thread knows how to begin. */
  prepare: (id: string, plan: HandoverPlan) => Effect.ignore(channels.fleetResume(id as ChannelId, plan.how)),

  /**
   * Once the outputs run: it begins, and the hand-over is reported as it went, timed on the wall clock from the
   * old holder's cut (its wall clock: another process's) or from `askedAt` (this node's, `clock.wallMs`).
   */
  begun: (id: string, plan: HandoverPlan, askedAt: number) =>
    Effect.gen(function* () {
      const resumed = yield* channels
        .fleetResumed(id as ChannelId, BEGUN_MS)
        .pipe(Effect.orElseSucceed(() => null));
      if (resumed === null) return;
      // Agreed: every packet once. From a margin: what it sent again is at most what it replayed. Live after the
      // cut was not found: what came while it waited for the cut went nowhere.
      const lost = resumed.mode === "live" ? resumed.swallowed : 0;
      const repeated = resumed.mode === "margin" ? resumed.replayedPackets : 0;
      const durationMs = clock.wallMs() - (plan.cutAt ?? askedAt);
      reportHandoverOn(bus, {
        kind: plan.kind,
        channel: id,
        from: plan.from,
        to: me,
        packetsAtCut: plan.packetsAtCut,
        durationMs,
        lost,
        repeated,
        mode: resumed.mode === "live" ? "margin" : resumed.mode,
      });
      yield* Effect.logInfo(
        `fleet: channel ${id} handed from node ${plan.from} by a ${plan.kind}: ${resumed.mode === "live" ? "its cut was not found in this node's input within the wait, it went live" : `begun at the ${resumed.mode === "agreed" ? "agreed cut" : resumed.mode === "pts" ? "first random access point of its copy at or after the cut's PTS" : "margin"}`}, ${resumed.replayed} datagrams sent from the ring, ${resumed.waitedMs} ms waited`,
      );
    }),
});

export type FleetHandover = ReturnType<typeof makeFleetHandover>;
