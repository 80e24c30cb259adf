/**
 * Every hand-over of a channel — an upgrade on one box (upgrade.ts), a move or a drain between nodes (fleet),
 * a move between forwarding threads (channel/workers/pool.ts) — is reported here once, when the new holder
 * sends: a `handover` event in the channel's event log (and so the log, the WebSocket and the pages), the
 * metrics `distributary_handovers_total` and `distributary_handover_packets_total` (status/handover-metrics.ts,
 * from that event), and in a fleet a row of the audit trail (fleet/command-audit.ts, from that event). One box
 * keeps no audit table: its audit trail is the event log (`GET /api/events?type=handover`).
 */
import * as Effect from "effect/Effect";
import type { HandoverKind, HandoverMode } from "../../domain/channel/handover.ts";
import type { NewEvent } from "../../domain/events/events.ts";
import { EventBus } from "../events/event-bus.ts";

export interface HandoverReport {
  readonly kind: HandoverKind;
  readonly channel: string;
  /** The old holder and the new: node ids, processes ("pid 4242 (1.4.0)") or threads ("thread 2"). */
  readonly from: string;
  readonly to: string;
  /** TS packets the old holder had sent when it cut (its count, for the channel's active input). */
  readonly packetsAtCut: number;
  /** From the hand-over's start (the new holder asked) to the new holder sending. */
  readonly durationMs: number;
  /** TS packets the outputs lost, and carried twice, at this hand-over; 0 and 0 is the promise. */
  readonly lost: number;
  readonly repeated: number;
  readonly mode: HandoverMode;
}

/** Records a hand-over: the event (from which the metrics and the fleet's audit row follow). */
export const reportHandover = (h: HandoverReport): Effect.Effect<void, never, EventBus> =>
  Effect.flatMap(EventBus, (bus) => Effect.sync(() => reportHandoverOn(bus, h)));

/** The same, for callers that hold the bus already (socket callbacks, the upgrade's IPC handlers). */
export const reportHandoverOn = (bus: EventBus, h: HandoverReport): void => {
  bus.emit({
    type: "handover",
    channel: h.channel,
    kind: h.kind,
    mode: h.mode,
    from: h.from,
    to: h.to,
    packets_at_cut: Math.max(0, Math.round(h.packetsAtCut)),
    duration_ms: Math.max(0, Math.round(h.durationMs * 10) / 10),
    lost: h.lost,
    repeated: h.repeated,
  });
};

/**
 * An upgrade on one box, done: each channel it handed over, in the new process (its event log lives on). The
 * input sockets went over (mode `socket`): the old copy read what its sockets had queued and sent it before the
 * new one sent (peer.ts), so neither counts a packet lost or repeated.
 */
export const reportUpgradeHandovers = (
  bus: EventBus,
  event: Extract<NewEvent, { readonly type: "upgrade" }>,
  durations: Readonly<Record<string, number>>,
): void => {
  const { from, to } = event;
  for (const cut of event.channels)
    reportHandoverOn(bus, {
      kind: "upgrade",
      mode: "socket",
      channel: cut.channel,
      from: `pid ${from.pid} (${from.version})`,
      to: to === null ? "the new process" : `pid ${to.pid} (${to.version})`,
      packetsAtCut: cut.packets_at_cut,
      durationMs: durations[cut.channel] ?? event.duration_ms,
      lost: 0,
      repeated: 0,
    });
};
