/**
 * The notifications alone, for tests of their deliveries: the notifiers, the deliveries and the event bus over
 * a store (memory unless given), notifiers allowed to reach 127.0.0.1; `runOnTestClock` runs a program with
 * them on Effect's TestClock, in a scope of its own (closed, as a stop would, when it ends).
 */
import { ConfigProvider, Effect, Layer, TestContext } from "effect";
import { type DocumentStore, layerMemory } from "../../src/effects/config/store.ts";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { Notifications } from "../../src/effects/notify/deliveries.ts";
import { Notifiers } from "../../src/effects/notify/notifiers.ts";

export const notifyLayer = (store: Layer.Layer<DocumentStore> = layerMemory) =>
  Notifications.Default.pipe(
    Layer.provideMerge(Notifiers.Default),
    Layer.provideMerge(EventBus.Default),
    Layer.provideMerge(store),
    Layer.provide(
      Layer.setConfigProvider(
        ConfigProvider.fromMap(new Map([["DISTRIBUTARY_NOTIFY_ALLOW_PRIVATE", "true"]])),
      ),
    ),
  );

export const runOnTestClock = <A>(
  program: Effect.Effect<A, unknown, Notifications | Notifiers | EventBus>,
  store?: Layer.Layer<DocumentStore>,
) =>
  Effect.runPromise(
    program.pipe(
      Effect.provide(notifyLayer(store)),
      Effect.scoped,
      Effect.provide(TestContext.TestContext),
    ) as Effect.Effect<A>,
  );
