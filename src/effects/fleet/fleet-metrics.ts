/**
 * The fleet's figures in `/metrics`, read from the coordinator at scrape time: whether this node is cut off,
 * whether it reaches the database, which nodes it sees up, the leases it holds and their terms, how long its
 * renewals take, the channels
 * that should run and have no holder, and the takeovers it made. Registered only in a fleet, so one box's
 * `/metrics` is what it always was. Every node reports what it sees, so Prometheus can compare their views:
 * a node down is one that no node sees up.
 */
import * as Effect from "effect/Effect";
import * as Layer from "effect/Layer";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import { ConfigState } from "../config/config-state.ts";
import { Metrics } from "../status/metrics.ts";
import { Fleet } from "./fleet.ts";
import { type FleetShape, TAKEOVER_REASONS } from "./fleet-types.ts";

/** Around the 100 ms a renewal should stay under, and up to the 2 s of a round's interval. */
const RENEWAL_BUCKETS = [0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2];

/** A node counts as up while it beats and answers: draining and drained nodes are up, on purpose. */
const isUp = (state: string) => state !== "down" && state !== "unreachable";

/** Channels that should run whose lease has no holder, or a holder that let it expire. */
export const withoutHolder = (
  fleet: FleetShape,
  channels: ReadonlyArray<Pick<ChannelConfig, "id" | "desired">>,
): number => {
  const leases = new Map(fleet.leases().map((lease) => [lease.channel, lease]));
  return channels.filter((channel) => {
    if (channel.desired !== "running") return false;
    const lease = leases.get(channel.id);
    return lease === undefined || lease.holder === null || lease.expires_in_ms < 0;
  }).length;
};

const registerFleetMetrics = (
  registry: Registry,
  fleet: FleetShape,
  /** The configured channels (not the status snapshot: a scrape must not make this node fetch peers' views). */
  configured: () => ReadonlyArray<Pick<ChannelConfig, "id" | "desired">>,
) => {
  const gauge = (
    name: string,
    help: string,
    labelNames: ReadonlyArray<string>,
    collect: (g: Gauge) => void,
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        collect(this);
      },
    });
  gauge(
    "distributary_cluster_isolated",
    "1 while this node holds leases it cannot renew and no peer reaches the database either: it keeps sending",
    [],
    (g) => g.set(fleet.isolated() ? 1 : 0),
  );
  gauge(
    "distributary_cluster_database_reachable",
    "1 while this node's statements reach the fleet's database",
    [],
    (g) => g.set(fleet.databaseReachable() ? 1 : 0),
  );
  gauge(
    "distributary_node_up",
    "Each node as this node sees it: 1 beating and answering, or draining, or drained (even once stopped: out of service on purpose), 0 unreachable or down",
    ["node"],
    (g) => {
      for (const node of fleet.nodes()) g.set({ node: node.id }, isUp(node.state) ? 1 : 0);
    },
  );
  // Only the leases this node holds: a series per channel per node would grow with the fleet's size squared.
  gauge(
    "distributary_lease_held",
    "1 for each channel whose lease this node holds (it runs the outputs); no series for the others",
    ["channel"],
    (g) => {
      for (const channel of fleet.held().keys()) g.set({ channel }, 1);
    },
  );
  gauge(
    "distributary_lease_term",
    "The term of each lease this node holds: grows at every change of holder (a fencing token)",
    ["channel"],
    (g) => {
      for (const [channel, term] of fleet.held()) g.set({ channel }, term);
    },
  );
  const renewals = new Histogram({
    name: "distributary_fleet_lease_renewal_seconds",
    help: "How long this node's renewals (its rounds: one statement) took",
    buckets: RENEWAL_BUCKETS,
    registers: [registry],
  });
  fleet.onRenewal((ms) => renewals.observe(ms / 1000));
  gauge(
    "distributary_channels_without_holder",
    "Channels that should run whose lease no node holds (none yet, or expired): their outputs are off air",
    [],
    (g) => g.set(withoutHolder(fleet, configured())),
  );
  new Counter({
    name: "distributary_takeovers_total",
    help: "Leases this node took since it started, by reason: expired, holder_gone, holder_restarted, drain, move",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      this.reset();
      const counts = fleet.takeovers();
      for (const reason of TAKEOVER_REASONS) this.inc({ reason }, counts[reason]);
    },
  });
};

/** Adds the fleet's families to `/metrics` in a fleet; nothing on one box. */
export const FleetMetricsLive = Layer.effectDiscard(
  Effect.gen(function* () {
    const fleet = yield* Fleet;
    if (!fleet.enabled) return;
    const metrics = yield* Metrics;
    const configs = yield* ConfigState;
    registerFleetMetrics(metrics.registry, fleet, () => configs.current().channels);
  }),
);
