/**
 * The fleet's commands on one node: where a channel's holder is (the API forwards changes there), a drain, and
 * an operator's move of a channel to another node. The coordinator gives them what it knows and holds.
 */
import * as Effect from "effect/Effect";
import { ControlError } from "../../domain/base/errors.ts";
import type { HolderCut } from "../channel/cut-stage.ts";
import type { FleetShape } from "./fleet-types.ts";
import type { Known } from "./lease-book.ts";
import * as L from "./leases.ts";
import type { NodeContext } from "./node-context.ts";
import * as N from "./nodes.ts";

interface CommandsContext extends NodeContext {
  /** Whether this node's probes connect to node `id`. */
  readonly reachable: (id: string) => boolean;
  readonly databaseReachable: () => boolean;
  /** Hands every lease this node holds to the standbys: how many since it began to drain. */
  readonly drainSelf: Effect.Effect<number, unknown>;
  /** Whether this node's own drain is under way now. */
  readonly drainRunning: () => boolean;
  /**
   * Runs `effect` while the coordinator decides nothing: a decision made from the lease as it was before a
   * move (this node's, so start sending it) must not land after the move gave it away.
   */
  readonly exclusive: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>;
  /** The channel's outputs stop at a cut the next holder begins after (handover.ts). */
  readonly cut: (id: string) => Effect.Effect<HolderCut | null>;
}

const unavailable = () =>
  new ControlError({
    reason: "unavailable",
    message: "the database cannot be reached: changes are refused until it is back; reads keep working",
  });

export const makeCommands = (ctx: CommandsContext): Pick<FleetShape, "holder" | "drain" | "move"> => {
  const { me, bootId, q, book, held, sql, reachable, clock } = ctx;
  /** The boot of each node a drain was asked for here. */
  const drainsAsked = new Map<string, string>();

  /** Whether the database names this process the channel's holder (a move it has not started yet). */
  const handedHere = (channelId: string) =>
    sql("lease", () => L.lease(q, channelId)).pipe(
      Effect.map(
        (row) =>
          row !== undefined &&
          row.holder === me &&
          row.holderBoot === bootId &&
          book.expiresAt({ row, readAt: clock.now() }) > clock.now(),
      ),
      Effect.mapError(unavailable),
    );

  return {
    holder: async (channelId) => {
      if (held.has(channelId)) return null;
      const otherHolder = (entry: Known | undefined) =>
        entry !== undefined &&
        entry.row.holder !== null &&
        entry.row.holder !== me &&
        book.expiresAt(entry) > clock.now()
          ? entry.row.holder
          : null;
      const found = (id: string) => {
        const node = book.node(id);
        return { node: id, url: node !== undefined && reachable(node.id) ? node.url : null };
      };
      const cached = otherHolder(book.get(channelId));
      if (cached !== null) return found(cached);
      // A channel another node has just taken may still read as free here. Not while the database is out
      // of reach: the request is answered here at once.
      if (!ctx.databaseReachable()) return null;
      const sent = clock.now();
      const fresh = await L.lease(q, channelId).catch(() => undefined);
      const holder = otherHolder(fresh === undefined ? undefined : { row: fresh, readAt: sent });
      return holder === null ? null : found(holder);
    },
    drain: (id) =>
      Effect.gen(function* () {
        const node = book.node(id);
        if (node === undefined) {
          return yield* new ControlError({
            reason: "not_found",
            message: `node '${id}' is not in the fleet`,
          });
        }
        const holds = id === me ? held.size : book.holding(id);
        // One drain at a time: a second one, while a node still hands its channels over, says what it would
        // wait for instead of a count of none.
        const asked = node.draining || drainsAsked.get(id) === node.bootId;
        if (holds > 0 && (asked || (id === me && ctx.drainRunning()))) {
          return yield* new ControlError({
            reason: "conflict",
            message:
              `node ${id} is already draining: it waits for ${holds} channel${holds === 1 ? "" : "s"} to be ` +
              "handed to their standbys; GET /api/nodes shows it drained once they are",
          });
        }
        yield* sql("drain", () => N.setDraining(q, id, true)).pipe(Effect.mapError(unavailable));
        // Known here at once, before the next round reads the node's flag.
        drainsAsked.set(id, node.bootId);
        if (id === me) return { released: yield* Effect.mapError(ctx.drainSelf, unavailable) };
        return { released: holds };
      }),
    move: (channelId, to) =>
      ctx.exclusive(
        Effect.gen(function* () {
          const channel = ctx.stored(channelId);
          const term = held.get(channelId);
          if (channel === undefined)
            return yield* new ControlError({
              reason: "not_found",
              message: `channel '${channelId}' does not exist`,
            });
          // Already here, or handed here and starting at this node's next tick: nothing to move.
          if (to === me && (term !== undefined || (yield* handedHere(channelId)))) return null;
          const target = book.node(to);
          if (target === undefined || book.nodeState(target, reachable(to)) !== "up") {
            return yield* new ControlError({
              reason: "conflict",
              message: `node '${to}' is not up in the fleet: a channel moves only to a live node`,
            });
          }
          if (
            channel.nodes !== undefined &&
            channel.nodes.length > 0 &&
            !channel.nodes.includes(to as never)
          ) {
            return yield* new ControlError({
              reason: "invalid",
              message: `node: '${to}' does not receive channel '${channel.name}' (its nodes are ${channel.nodes.join(", ")})`,
            });
          }
          if (term === undefined) {
            return yield* new ControlError({
              reason: "conflict",
              message: `node ${me} does not hold channel '${channel.name}': ask its holder`,
            });
          }
          const cut = yield* ctx.cut(channelId);
          yield* ctx.stopSending(channelId, `moved to node ${to} by an operator`);
          const moved = yield* sql("move", () =>
            L.handOver(q, me, term, channelId, to, cut && { ...cut, at: clock.wallMs() }),
          ).pipe(Effect.mapError(unavailable));
          if (moved !== null) book.wrote(channelId, to, moved.boot, moved.term);
          if (moved === null) {
            return yield* new ControlError({
              reason: "conflict",
              message: `the lease of '${channel.name}' changed meanwhile`,
            });
          }
          return { from: me };
        }),
      ),
  };
};
