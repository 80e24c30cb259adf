/**
 * What the schedule runner's tests share: the service graph on Effect's TestClock over a document store the
 * test keeps (so a second graph, a restart, reads what the first stored), the clock moved on a second at a
 * time with every loop given the chance to answer, and the channel's schedule events.
 */
import { Chunk, Effect, Layer, Option, TestClock, TestContext } from "effect";
import type { ChannelEvent } from "../../src/domain/events/events.ts";
import { DocumentStore } from "../../src/effects/config/store.ts";
import { EventBus } from "../../src/effects/events/event-bus.ts";
import { ServicesTest } from "../../src/effects/services.ts";
import { ADMIN_TOKEN } from "../support/app.ts";

/** A memory store that outlives the graphs built over it, its documents in the test's reach. */
export const documentStore = () => {
  const documents = new Map<string, string>();
  const layer = Layer.succeed(
    DocumentStore,
    DocumentStore.of({
      locate: (name) => `memory:${name}`,
      read: (name) => Effect.sync(() => Option.fromNullable(documents.get(name))),
      write: (name, text) => Effect.sync(() => void documents.set(name, text)),
    }),
  );
  return { layer, documents };
};

/** A memory store that outlives the graphs built over it. */
export const keptStore = () => documentStore().layer;

export const graph = (store: Layer.Layer<DocumentStore>, settings: Readonly<Record<string, string>> = {}) =>
  ServicesTest(ADMIN_TOKEN, store, { DISTRIBUTARY_WORKERS: "0", ...settings });

/**
 * `program` in the service graph over `store`, its TestClock at `startAt` before the graph is built (moving
 * it later would run every loop's sleeps in between).
 */
export const run = <A, E>(
  store: Layer.Layer<DocumentStore>,
  startAt: number,
  // biome-ignore lint/suspicious/noExplicitAny: what the service graph provides
  program: Effect.Effect<A, E, any>,
  settings = {},
) =>
  Effect.runPromise(
    Effect.zipRight(
      TestClock.setTime(startAt),
      program.pipe(Effect.provide(graph(store, settings) as never), Effect.scoped),
    ).pipe(Effect.provide(TestContext.TestContext)) as Effect.Effect<A, E, never>,
  );

const realPause = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)));

/**
 * Real time until the TestClock has at least `count` sleepers: every loop has done what its last wake asked
 * (MediaLive's answers are real HTTP) and waits again.
 */
const asleep = (count: number) =>
  Effect.gen(function* () {
    for (let tries = 0; Chunk.size(yield* TestClock.sleeps()) < count && tries < 2000; tries++)
      yield* realPause(2);
  });

/**
 * The number of sleepers once the service has settled, a second on (the runner's reconcile has started the
 * loops of the channels there are): every loop waiting.
 */
export const settledSleepers = Effect.gen(function* () {
  yield* TestClock.adjust(1000);
  yield* realPause(300);
  return Chunk.size(yield* TestClock.sleeps());
});

/**
 * The clock moved on to `at`, `stepMs` at a time and the last two seconds a second at a time (the runner's
 * longest wait), each step's wakes answered before the next.
 */
export const advanceTo = (at: number, sleepers: number, stepMs = 15_000) =>
  Effect.gen(function* () {
    for (;;) {
      const now = yield* TestClock.currentTimeMillis;
      if (now >= at) return;
      const remaining = at - now;
      yield* TestClock.adjust(remaining > stepMs + 2000 ? stepMs : Math.min(1000, remaining));
      yield* asleep(sleepers);
    }
  });

/** The channel's schedule events, oldest first. */
export const scheduleEvents = (channel: string) =>
  Effect.map(EventBus, (bus) =>
    bus
      .recent({ channel, limit: 2000 })
      .filter(
        (event): event is Extract<ChannelEvent, { type: "schedule_phase" | "schedule_missed" }> =>
          event.type === "schedule_phase" || event.type === "schedule_missed",
      )
      .sort((a, b) => a.seq - b.seq),
  );

/** The channel's schedule phases as "live by schedule", a missed occurrence as "missed". */
export const phases = (channel: string) =>
  Effect.map(scheduleEvents(channel), (events) =>
    events.map((event) => (event.type === "schedule_phase" ? `${event.phase} by ${event.by}` : "missed")),
  );

export const eventsOf = <T extends ChannelEvent["type"]>(channel: string, type: T) =>
  Effect.map(EventBus, (bus) =>
    bus
      .recent({ channel, limit: 2000 })
      .filter((event): event is Extract<ChannelEvent, { type: T }> => event.type === type)
      .sort((a, b) => a.seq - b.seq),
  );
