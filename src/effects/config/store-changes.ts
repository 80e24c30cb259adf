/**
 * What other nodes change in the shared store, as it happens: one item per committed change of a document
 * (`{document, revision, node}`, the writer's node id), one per changed lease row (`{lease}`, its channel),
 * one per node registered or drained (`{node_changed}`), and `{reconnected: true}` after the store's listening connection came back, when changes may have been
 * missed and everything should be read again. Only the
 * PostgreSQL store provides it (postgres/layer.ts): on one box nobody else writes, and nothing asks.
 */
import { Context, type Stream } from "effect";
import type { StoreNotice } from "./postgres/database.ts";

export type { ConfigNotice, LeaseNotice, NodeNotice, StoreNotice } from "./postgres/database.ts";

export class StoreChanges extends Context.Tag("distributary/StoreChanges")<
  StoreChanges,
  { readonly changes: Stream.Stream<StoreNotice> }
>() {}
