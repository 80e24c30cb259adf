/**
 * What other nodes change in the shared store, as it happens: one item per committed change of a document
 * (`{document, revision, node}`, the writer's node id), one per changed lease row (`{lease}`, its channel),
 * one per node registered or drained (`{node_changed}`), and `{reconnected: true}` after the store's listening connection came back, when changes may have been
 * missed and everything should be read again. Only the
 * PostgreSQL store provides it (postgres/layer.ts): on one box nobody else writes, and nothing asks.
 */
import * as Context from "effect/Context";
import * as Effect from "effect/Effect";
import * as Option from "effect/Option";
import * as Stream from "effect/Stream";
import type { ConfigNotice, StoreNotice } from "./postgres/database.ts";

export class StoreChanges extends Context.Tag("distributary/StoreChanges")<
  StoreChanges,
  { readonly changes: Stream.Stream<StoreNotice> }
>() {}

/**
 * Runs `reload` (in the current scope) each time another node changes `document`, or the listening connection
 * came back; nothing on one box, where nobody else writes.
 */
export const reloadOnChange = <E>(document: ConfigNotice["document"], reload: Effect.Effect<unknown, E>) =>
  Effect.gen(function* () {
    const changes = yield* Effect.serviceOption(StoreChanges);
    if (Option.isNone(changes)) return;
    yield* Effect.forkScoped(
      Stream.runForEach(changes.value.changes, (notice) =>
        ("document" in notice && notice.document === document) || "reconnected" in notice
          ? Effect.ignore(reload)
          : Effect.void,
      ),
    );
  });
