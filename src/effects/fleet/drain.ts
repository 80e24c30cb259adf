/**
 * A node's drain of itself (coordinator.ts): every channel it holds cut at once (handover.ts), then each lease
 * let go with its cut, so that the standbys begin where it stopped. One drain at a time, however it was asked
 * for (the API on this node, the flag another node set, seen by a round, or a clean stop): one that comes
 * while another runs waits for it and answers with the same count, the channels handed over since this node
 * began to drain. The API's refuses instead, in words (commands.ts), while channels are still to be handed over.
 */
import * as Effect from "effect/Effect";
import type { FleetHandover } from "./handover.ts";
import * as L from "./leases.ts";
import type { NodeContext } from "./node-context.ts";

interface DrainContext extends NodeContext {
  readonly handover: Pick<FleetHandover, "cut">;
}

export const makeDrain = (ctx: DrainContext) =>
  Effect.gen(function* () {
    const { me, clock, q, book, held, sql, handover } = ctx;
    const lock = yield* Effect.makeSemaphore(1);
    let draining = false;
    let releasedSinceDrain = 0;
    let running = false;
    const self = lock.withPermits(1)(
      Effect.gen(function* () {
        draining = true;
        running = true;
        if (held.size === 0) return releasedSinceDrain;
        const cuts = yield* Effect.forEach([...held], ([id]) => handover.cut(id), {
          concurrency: "unbounded",
        });
        for (const [[id, term], cut] of [...held].map((lease, i) => [lease, cuts[i] ?? null] as const)) {
          yield* ctx.stopSending(id, "this node is draining");
          if (
            yield* sql("release", () => L.release(q, me, id, term, cut && { ...cut, at: clock.wallMs() }))
          ) {
            book.wrote(id, null, null, term);
            releasedSinceDrain += 1;
          }
        }
        yield* Effect.logInfo(
          `fleet: node ${me} drained: ${releasedSinceDrain} channels handed to their standbys`,
        );
        return releasedSinceDrain;
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            running = false;
          }),
        ),
      ),
    );
    return {
      /** Hands every lease this node holds to the standbys: how many since it began to drain. */
      self,
      /** Whether this node drains (it takes nothing from then on). */
      draining: () => draining,
      /** Whether its drain is under way now. */
      running: () => running,
    } as const;
  });
