/**
 * What the shared store tells the coordinator (coordinator.ts), and other nodes' changes applied here.
 * Notifications only raise flags: nothing they lead to (a reconcile waits for the API's lock) holds them up. A
 * lease row named is read at the next tick, at once; a node registered or drained brings a round; another
 * node's change of the configuration (its notification, or the revision a round read) is read back and the
 * runtime brought to it, changes that come together applied together, 30 ms after the first, once; after a
 * reconnection what was missed is read at once: every lease row, and the configuration.
 */
import * as Effect from "effect/Effect";
import * as Queue from "effect/Queue";
import * as Stream from "effect/Stream";
import type { ConfigState } from "../config/config-state.ts";
import type { StoreNotice } from "../config/postgres/database.ts";
import type { Auth } from "../control/auth.ts";
import type { Resume } from "../control/resume.ts";
import type { Rounds } from "./rounds.ts";

interface FollowContext {
  readonly me: string;
  readonly changes: Stream.Stream<StoreNotice>;
  readonly configs: ConfigState;
  readonly resume: Resume;
  readonly auth: Auth;
  readonly rounds: Pick<Rounds, "due" | "readAll">;
  /** A notification named the channel's lease row: it is read at the next tick. */
  readonly leaseNamed: (channel: string) => void;
  /** A tick now: something this node may have to decide at once. */
  readonly tick: () => void;
}

export const makeFollow = (ctx: FollowContext) =>
  Effect.gen(function* () {
    const { me, configs, resume, rounds } = ctx;
    /** Another node changed the configuration (a notification, or the revision a round read). */
    const reconcileDue = yield* Queue.sliding<void>(1);
    const configMoved = () => reconcileDue.unsafeOffer(undefined);

    /** Applies another node's change: the configuration is read again and the runtime brought to it. */
    const reconcile = resume
      .locked(
        Effect.gen(function* () {
          const { previous, current } = yield* configs.reload;
          yield* resume.converge(previous, current);
        }),
      )
      .pipe(
        // Tokens made or revoked on another node authenticate (or stop) here too.
        Effect.zipRight(ctx.auth.reload),
        Effect.catchAll((error) =>
          Effect.logWarning(`fleet: could not apply stored changes: ${String(error)}`),
        ),
      );

    const run = Effect.gen(function* () {
      yield* Effect.forkScoped(
        Stream.runForEach(ctx.changes, (notice) =>
          Effect.sync(() => {
            if ("lease" in notice) {
              ctx.leaseNamed(notice.lease);
              ctx.tick();
            }
            // A node registered or drains: the next tick's round reads the nodes.
            else if ("node_changed" in notice) rounds.due();
            // A change this node wrote is applied already; what it changes here (a channel started with this
            // node first in its list, say) is decided at once, not at the next pass, when a standby may act.
            else if ("document" in notice) {
              if (notice.node !== me) configMoved();
              else ctx.tick();
            } else {
              rounds.readAll();
              configMoved();
            }
          }),
        ),
      );
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.zipRight(
            Effect.zipRight(Queue.take(reconcileDue), Effect.sleep("30 millis")),
            Effect.zipRight(Queue.takeAll(reconcileDue), Effect.zipRight(reconcile, Effect.sync(ctx.tick))),
          ),
        ),
      );
    });

    return {
      configMoved,
      /** Follows the notifications and applies the changes, in fibers of the scope's. */
      run,
    } as const;
  });
