/**
 * `/api/nodes`: the fleet's nodes (health, version, channels held, load) and the drain of one of them. On one
 * box there is no fleet: every route answers 404 and says so.
 */
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Schema from "effect/Schema";
import { notFound } from "../../domain/base/errors.ts";
import { NodeId } from "../../domain/base/ids.ts";
import { audit, type EventBus } from "../../effects/events/event-bus.ts";
import { noFleet } from "../../effects/fleet/fleet.ts";
import type { FleetShape } from "../../effects/fleet/fleet-types.ts";
import { type NodeWithStates, withStates } from "../../effects/fleet/node-states.ts";
import { type Api, makeApi, param, type Run, sameShape } from "../routes.ts";

const NodeState = Schema.Literal("up", "unreachable", "down", "draining", "drained");

const NodeViewSchema = Schema.Struct({
  id: Schema.String,
  url: Schema.String.annotations({ description: "how peers and browsers reach the node" }),
  version: Schema.String,
  boot_id: Schema.String.annotations({ description: "changes at every start of the node's process" }),
  started_at: Schema.String,
  heartbeat_age_ms: Schema.NullOr(Schema.Number).annotations({
    description: "ms since its last heartbeat, by the database's clock; null when it never beat",
  }),
  state: NodeState.annotations({
    description:
      "up: beating and answering; unreachable: beating but not answering this node; down: no heartbeat; " +
      "draining, drained: handing its channels over, or done",
  }),
  self: Schema.Boolean.annotations({ description: "whether this is the node that answered" }),
  channels_held: Schema.Number,
  load: Schema.Struct({ channels_running: Schema.Number, cpu_percent: Schema.Number }),
  drain: Schema.NullOr(
    Schema.Struct({ state: Schema.Literal("draining", "drained"), channels_left: Schema.Number }),
  ).annotations({
    description: "draining: the channels it still holds; drained: none left; null when it is not draining",
  }),
  upgrade: Schema.NullOr(
    Schema.Struct({
      upgrading: Schema.NullOr(
        Schema.Struct({
          from_version: Schema.String,
          to_version: Schema.NullOr(Schema.String).annotations({
            description: "null until the new process has said which version it runs",
          }),
          since: Schema.String,
        }),
      ).annotations({ description: "an upgrade on its box under way (distributary upgrade, SIGUSR2)" }),
      last: Schema.NullOr(
        Schema.Struct({
          at: Schema.String,
          outcome: Schema.Literal("done", "failed"),
          from_version: Schema.String,
          to_version: Schema.NullOr(Schema.String),
          duration_ms: Schema.Number,
          channels: Schema.Number.annotations({ description: "channels handed over (done)" }),
          reason: Schema.NullOr(Schema.String).annotations({ description: "why it failed, in words" }),
        }),
      ).annotations({ description: "how its last upgrade ended, since the process started" }),
    }),
  ).annotations({ description: "its upgrade on its box; null from a node of an older release" }),
}).annotations({ identifier: "Node" });

// The coordinator's view and the documented schema are the same shape, checked both ways by the compiler.
sameShape<NodeWithStates, typeof NodeViewSchema.Type>(true);

const NodeList = Schema.Struct({ nodes: Schema.Array(NodeViewSchema) }).annotations({
  identifier: "NodeList",
});
const Drained = Schema.Struct({
  node: Schema.String,
  released: Schema.Number.annotations({ description: "channels handed to their standbys" }),
}).annotations({ identifier: "Drained" });

/** The node a path names, when it is one of the fleet's; else why not. */
const knownNode = (fleet: FleetShape, text: string) => {
  if (!fleet.enabled) return Either.left(noFleet());
  const id = Schema.decodeEither(NodeId)(text);
  const node = fleet.nodes().find((candidate) => Either.isRight(id) && candidate.id === id.right);
  return node === undefined ? Either.left(notFound("node", text)) : Either.right(node);
};

/** What a drain did, in words: the audit line, and the page's message. */
export const drained = (node: string, released: number) =>
  `node ${node} drained: ${released} channel${released === 1 ? "" : "s"} handed to standbys`;

/** The drain of the node a path names, audited in the caller's name (the API's and the page's). */
export const drainNode = (fleet: FleetShape, bus: EventBus, text: string) =>
  Effect.gen(function* () {
    const node = yield* knownNode(fleet, text);
    const { released } = yield* fleet.drain(node.id);
    yield* audit(bus, "node.drain", drained(node.id, released));
    return { node: node.id, released };
  });

export const nodesApi = (fleet: FleetShape, bus: EventBus, run: Run): Api => {
  const { app, routes, on } = makeApi();

  on(
    {
      method: "get",
      path: "/",
      access: "viewer",
      summary:
        "The fleet's nodes: state, version, heartbeat age, channels held, load, drain and upgrade (404 on one box: no fleet)",
      response: NodeList,
    },
    (c) =>
      run(c, fleet.enabled ? Effect.sync(() => withStates(fleet.nodes())) : Effect.fail(noFleet()), (nodes) =>
        c.json({ nodes }),
      ),
  );

  on(
    {
      method: "post",
      path: "/{id}/drain",
      access: "admin",
      summary:
        "Hand every channel the node holds to its standbys, for an upgrade or maintenance; the node keeps " +
        "receiving and holds nothing until channels are moved back to it",
      response: Drained,
    },
    (c) => run(c, drainNode(fleet, bus, param(c, "id")), (done) => c.json(done)),
  );

  return { app, routes };
};
