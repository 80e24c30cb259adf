/**
 * The service's Effect services wired together, given a document store: one event bus, the channel
 * supervisor, the configuration, the cue history, the read model over them, the commands, import/export
 * and the tokens.
 * The service and the tests build the same graph from here.
 */
import { ConfigProvider, Layer } from "effect";
import { Auth } from "./auth.ts";
import { Channels } from "./channels.ts";
import { ConfigState } from "./config-state.ts";
import { ConfigTransfer } from "./config-transfer.ts";
import { Control } from "./control.ts";
import { CueHistory } from "./cue-history.ts";
import { EventBus } from "./event-bus.ts";
import { EventLogLive } from "./event-log.ts";
import { Metrics } from "./metrics.ts";
import { ReadModel } from "./read-model.ts";
import { type DocumentStore, layerMemory } from "./store.ts";
import { Thumbnails } from "./thumbnails.ts";

export const ServicesLive = Layer.mergeAll(
  ConfigTransfer.Default,
  Auth.Default,
  Metrics.Default,
  Thumbnails.Default,
  Layer.scopedDiscard(EventLogLive),
).pipe(
  Layer.provideMerge(Control.Default),
  Layer.provideMerge(ReadModel.Default),
  Layer.provideMerge(CueHistory.Default),
  Layer.provideMerge(Layer.mergeAll(Channels.Default, ConfigState.Default)),
  Layer.provideMerge(EventBus.Default),
);

/**
 * The same graph for tests and benchmarks: a memory store unless another is given, and `adminToken` as the
 * admin token (as `DISTRIBUTARY_ADMIN_TOKEN` would give it).
 */
export const ServicesTest = (
  adminToken: string,
  store: Layer.Layer<DocumentStore> = layerMemory,
  /** Further settings, as environment variables would give them. */
  settings: Readonly<Record<string, string>> = {},
) =>
  ServicesLive.pipe(
    Layer.provideMerge(store),
    Layer.provide(
      Layer.setConfigProvider(
        ConfigProvider.fromMap(
          new Map([["DISTRIBUTARY_ADMIN_TOKEN", adminToken], ...Object.entries(settings)]),
        ),
      ),
    ),
  );
