/**
 * What the fleet's nodes and its Prometheus ask of each node: `/api/cluster/database` (whether this node
 * reaches the database, asked by a holder that cannot renew its leases before it decides it is the one cut
 * off), `/api/cluster/sd` (Prometheus HTTP service discovery of every live node), and the peer credential: the
 * secret the nodes share through the database, taken by the API as a viewer named "peer" and by nothing else.
 */
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import * as Schema from "effect/Schema";
import type { Context, Handler } from "hono";
import type { Principal } from "../../effects/control/auth.ts";
import { noFleet } from "../../effects/fleet/fleet.ts";
import type { FleetShape, NodeView } from "../../effects/fleet/fleet-types.ts";
import { type AuthEnv, sameSecret } from "../auth.ts";
import { fromControlError, problemResponse } from "../problem.ts";
import { type Api, makeApi, type RouteDoc, type Run } from "../routes.ts";

const PEER: Principal = {
  id: "peer",
  name: "peer",
  role: "viewer",
  grants: [{ role: "viewer", channels: "*" }],
  via: "peer",
};

/** The API's token check, taking the fleet's peer credential too (as a viewer). */
export const withPeer =
  (fleet: FleetShape, authenticate: (token: string) => Option.Option<Principal>) =>
  (token: string): Option.Option<Principal> => {
    const peer = fleet.peerToken();
    return peer !== null && sameSecret(token, peer) ? Option.some(PEER) : authenticate(token);
  };

const DatabaseReach = Schema.Struct({
  reachable: Schema.Boolean.annotations({
    description: "whether the statement this node made to answer (within 300 ms) reached it",
  }),
  last_ok_ms_ago: Schema.Number.annotations({
    description:
      "milliseconds since this node's last statement that reached it: the asker takes the database as down " +
      "for this node only if the statement failed and this is longer than statement_interval_ms",
  }),
  statement_interval_ms: Schema.Number.annotations({
    description: "how often this node makes a statement at rest (a third of its lease time)",
  }),
}).annotations({ identifier: "DatabaseReach" });

export const clusterApi = (fleet: FleetShape, run: Run): Api => {
  const { app, routes, on } = makeApi();
  on(
    {
      method: "get",
      path: "/database",
      access: "viewer",
      summary:
        "Whether this node reaches the fleet's database, by a statement made to answer: a holder that cannot " +
        "renew asks its peers before it stops its outputs or keeps them on air (404 on one box)",
      response: DatabaseReach,
    },
    (c) =>
      run(
        c,
        fleet.enabled
          ? Effect.promise(fleet.databaseReach).pipe(
              Effect.map((reach) => ({
                reachable: reach.reachable,
                last_ok_ms_ago: Math.round(reach.lastOkMsAgo),
                statement_interval_ms: Math.round(reach.intervalMs),
              })),
            )
          : Effect.fail(noFleet()),
        (reach) => c.json(reach),
      ),
  );
  return { app, routes };
};

/** Scraped: every node that beats (up, unreachable from this node, or draining); not down, not drained. */
const SCRAPED: ReadonlyArray<NodeView["state"]> = ["up", "unreachable", "draining"];

const TargetGroup = Schema.Struct({
  targets: Schema.Array(Schema.String).annotations({ description: "host:port of the node" }),
  labels: Schema.Record({ key: Schema.String, value: Schema.String }).annotations({
    description: "node and version; __scheme__ https for a node reached over HTTPS",
  }),
}).annotations({ identifier: "PrometheusTargetGroup" });

export const serviceDiscoveryDoc: RouteDoc = {
  method: "get",
  path: "/api/cluster/sd",
  access: "viewer",
  summary:
    "Prometheus HTTP service discovery: one target group per live node, labelled node and version (404 on " +
    "one box). Who may read it is DISTRIBUTARY_METRICS_AUTH, as for /metrics",
  response: Schema.Array(TargetGroup),
};

/** A node's URL as a scrape target: host and port (the scheme's default port when the URL gives none). */
const target = (url: string) => {
  const parsed = new URL(url);
  const port = parsed.port !== "" ? parsed.port : parsed.protocol === "https:" ? "443" : "80";
  // An IPv6 hostname keeps its brackets in URL.hostname, as a target needs them.
  return { target: `${parsed.hostname}:${port}`, https: parsed.protocol === "https:" };
};

/** Behind the same guard as /metrics, so a Prometheus that may scrape may also discover. */
export const serviceDiscovery =
  (fleet: FleetShape): Handler<AuthEnv> =>
  (c: Context<AuthEnv>) => {
    if (!fleet.enabled) return problemResponse(fromControlError(noFleet()));
    const groups = fleet
      .nodes()
      .filter((node) => SCRAPED.includes(node.state))
      .flatMap((node) => {
        try {
          const { target: address, https } = target(node.url);
          return [
            {
              targets: [address],
              labels: { node: node.id, version: node.version, ...(https ? { __scheme__: "https" } : {}) },
            },
          ];
        } catch {
          // A node registers its URL from its own setting; one that is not a URL cannot be scraped.
          return [];
        }
      });
    return c.json(groups);
  };
