/**
 * The fleet's coordinator as the rest of the service sees it (fleet-types.ts): on one box a `Fleet` that is
 * not enabled; with `DISTRIBUTARY_DATABASE_URL`, the coordinator (coordinator.ts).
 */
import * as Context from "effect/Context";
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import { ControlError } from "../../domain/base/errors.ts";
import type { FleetShape } from "./fleet-types.ts";

export class Fleet extends Context.Tag("distributary/Fleet")<Fleet, FleetShape>() {}

/** What every fleet-only request answers on one box. */
export const noFleet = () =>
  new ControlError({
    reason: "not_found",
    message: "this service runs alone (no DISTRIBUTARY_DATABASE_URL): it has no fleet of nodes",
  });

/** One box: no nodes, no leases; drain and move answer that there is no fleet. */
export const layerOneBox: Layer.Layer<Fleet> = Layer.succeed(
  Fleet,
  Fleet.of({
    enabled: false,
    self: null,
    ready: () => true,
    nodes: () => [],
    leases: () => [],
    held: () => new Map(),
    onRenewal: () => {},
    databaseReachable: () => true,
    databaseLastOkMsAgo: () => 0,
    databaseReach: async () => ({ reachable: true, lastOkMsAgo: 0, intervalMs: 0 }),
    isolated: () => false,
    leaseHolds: () => true,
    onNodeDown: () => {},
    takeovers: () => ({ expired: 0, holder_gone: 0, holder_restarted: 0, drain: 0, move: 0 }),
    holder: async () => null,
    drain: () => Effect.fail(noFleet()),
    move: () => Effect.fail(noFleet()),
    peerToken: () => null,
  }),
);
