/**
 * Channels that should run, running: on start every channel whose desired state is running is started, and
 * readiness turns true once that is done (listing those that could not start). A channel that should run but
 * could not start, or that stopped after an error (`channel_failed`), is started again on the outputs'
 * reconnect schedule until it runs, or until it is stopped, deleted or changed so that it can. An import
 * resumes through here too.
 */
import { Duration, Effect, FiberMap, Schedule, Stream } from "effect";
import type { ChannelId } from "../../domain/ids.ts";
import { Channels, OutputDefaults } from "../channel/channels.ts";
import { ConfigState } from "../config/config-state.ts";
import { EventBus } from "../events/event-bus.ts";
import { backoff } from "../outputs/retry.ts";
import { ReadModel } from "../status/read-model.ts";
import { Readiness } from "../status/readiness.ts";
import { controlShared } from "./shared.ts";

export class Resume extends Effect.Service<Resume>()("distributary/Resume", {
  scoped: Effect.gen(function* () {
    const channels = yield* Channels;
    const configs = yield* ConfigState;
    const readModel = yield* ReadModel;
    const bus = yield* EventBus;
    const readiness = yield* Readiness;
    const reconnect = (yield* OutputDefaults).reconnect;
    const { locked, startChannel, isRunning } = yield* controlShared;
    const stored = (id: ChannelId) => configs.current().channels.find((candidate) => candidate.id === id);

    /**
     * Starts a channel that should run but does not, after each wait of the reconnect schedule, until it runs
     * or nobody wants it to: each try reads the stored channel afresh, so a corrected port is used at once.
     */
    const retries = yield* FiberMap.make<ChannelId, void>();
    const keepStarting = (id: ChannelId) =>
      FiberMap.run(
        retries,
        id,
        Effect.gen(function* () {
          const waits = yield* Schedule.driver(backoff(reconnect));
          while (stored(id)?.desired === "running" && !isRunning(id)) {
            const wait = yield* Effect.orDie(waits.next(undefined));
            yield* Effect.logInfo(`channel ${id} will be started again in ${Duration.format(wait)}`);
            yield* Effect.sleep(wait);
            const started = yield* locked(
              Effect.suspend(() => {
                const channel = stored(id);
                if (channel === undefined || channel.desired !== "running" || isRunning(id))
                  return Effect.succeed(true);
                return startChannel(channel).pipe(
                  Effect.as(true),
                  Effect.catchAll(() => Effect.succeed(false)),
                  Effect.zipLeft(readModel.refresh),
                );
              }),
            );
            if (started) return;
          }
        }),
        { onlyIfMissing: true },
      );
    // A channel that could not start, or whose packet path threw, says so on the bus (Channels).
    const failures = yield* bus.subscribe;
    yield* Effect.forkScoped(
      Stream.fromQueue(failures).pipe(
        Stream.filter((event) => event.type === "channel_failed"),
        Stream.runForEach((event) => {
          const channel = configs.current().channels.find((candidate) => candidate.id === event.channel);
          return channel?.desired === "running" ? keepStarting(channel.id) : Effect.void;
        }),
      ),
    );

    /** Starts every channel whose desired state is running; one that cannot start is listed and logged. */
    const resume = Effect.suspend(() =>
      Effect.forEach(
        configs.current().channels.filter((channel) => channel.desired === "running"),
        (channel) =>
          startChannel(channel).pipe(
            Effect.as(null),
            Effect.catchAll((error) =>
              Effect.as(Effect.logError(error.message), {
                id: channel.id,
                name: channel.name,
                error: error.message,
              }),
            ),
          ),
      ).pipe(
        Effect.flatMap((results) =>
          Effect.sync(() => {
            readiness.setNotResumed(results.filter((result) => result !== null));
          }),
        ),
      ),
    ).pipe(Effect.withSpan("Resume.resume"));

    yield* Effect.forkScoped(
      locked(
        Effect.gen(function* () {
          yield* resume;
          // The snapshot first: a client told "ready" must see each channel as it came out of the resume.
          yield* readModel.refresh;
          readiness.markReady();
          yield* Effect.logInfo(`store loaded, ${channels.running().length} channels resumed`);
        }),
      ),
    );

    return {
      /** Starts the channels the configuration wants running; the caller holds the lock. */
      resume,
    } as const;
  }),
}) {}
