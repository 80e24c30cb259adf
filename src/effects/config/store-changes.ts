/**
 * What other nodes change in the shared store, as it happens: one item per committed change of a document
 * (`{document, revision, node}`, the writer's node id), and `{reconnected: true}` after the store's listening
 * connection came back, when changes may have been missed and everything should be read again. One box has
 * nobody else writing: its stream never emits.
 */
import { Context, Layer, Stream } from "effect";
import type { StoreNotice } from "./postgres/database.ts";

export type { ConfigNotice, StoreNotice } from "./postgres/database.ts";

export class StoreChanges extends Context.Tag("distributary/StoreChanges")<
  StoreChanges,
  { readonly changes: Stream.Stream<StoreNotice> }
>() {}

export const layerNoChanges: Layer.Layer<StoreChanges> = Layer.succeed(StoreChanges, {
  changes: Stream.never,
});
