/**
 * The hand-overs' metrics, counted from the bus's `handover` events (handover/report.ts):
 * `distributary_handovers_total{kind,mode}` and `distributary_handover_packets_total{kind,result}`, the TS
 * packets the outputs lost or carried twice at hand-overs. The promise is 0: each kind's two series exist
 * from the start at 0, so an alert can say `increase(distributary_handover_packets_total[1h]) > 0`.
 */
import { Counter, type Registry } from "prom-client";
import { HANDOVER_KINDS } from "../../domain/channel/handover.ts";
import type { ChannelEvent } from "../../domain/events/events.ts";

export const handoverMetrics = (registry: Registry) => {
  const handovers = new Counter({
    name: "distributary_handovers_total",
    help: "Hand-overs of a channel from one holder to another (a process at an upgrade, a node at a move or a drain, a forwarding thread), by kind and by how the cut was made",
    labelNames: ["kind", "mode"],
    registers: [registry],
  });
  const packets = new Counter({
    name: "distributary_handover_packets_total",
    help: "TS packets the outputs lost or carried twice at hand-overs (0 is the promise), by kind",
    labelNames: ["kind", "result"],
    registers: [registry],
  });
  for (const kind of HANDOVER_KINDS) {
    packets.inc({ kind, result: "lost" }, 0);
    packets.inc({ kind, result: "repeated" }, 0);
  }
  return (event: ChannelEvent) => {
    if (event.type !== "handover") return;
    handovers.inc({ kind: event.kind, mode: event.mode });
    packets.inc({ kind: event.kind, result: "lost" }, event.lost);
    packets.inc({ kind: event.kind, result: "repeated" }, event.repeated);
  };
};
