/**
 * Channels that should run, running: on start every channel whose desired state is running is started, and
 * readiness turns true once that is done (listing those that could not start). A channel that should run but
 * could not start, or that stopped after an error (`channel_failed`), is started again on the outputs'
 * reconnect schedule until it runs, or until it is stopped, deleted or changed so that it can. An import
 * resumes through here too; before channels start, outputs a schedule owns that are on outside its windows are
 * stored off (one box). In a fleet, a change another node stored is applied here by `converge`, and a
 * change of lease holder by `hold`.
 */
import * as Clock from "effect/Clock";
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import * as FiberMap from "effect/FiberMap";
import * as Schedule from "effect/Schedule";
import * as Stream from "effect/Stream";
import type { ChannelId } from "../../domain/base/ids.ts";
import { sameValue } from "../../domain/base/same.ts";
import type { ChannelConfig, ConfigDocument } from "../../domain/channel/channel.ts";
import { inputChanged } from "../../domain/channel/rules.ts";
import { holdOutputs, windowsOnAir } from "../../domain/schedule/schedule-outputs.ts";
import { Channels, OutputDefaults } from "../channel/channels.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { ScheduleStore } from "../config/schedule-progress.ts";
import { EventBus } from "../events/event-bus.ts";
import { backoff } from "../outputs/retry.ts";
import { ReadModel } from "../status/read-model.ts";
import { Readiness } from "../status/readiness.ts";
import { controlShared } from "./shared.ts";

/** Failures in a row (each within CRASH_WINDOW_MS of the last) that are started again at once. */
const CRASHES_IN_A_ROW = 3;
const CRASH_WINDOW_MS = 60_000;
const CRASH_BACKOFF_FIRST_MS = 10_000;
const CRASH_BACKOFF_MAX_MS = 300_000;

export class Resume extends Effect.Service<Resume>()("distributary/Resume", {
  scoped: Effect.gen(function* () {
    const channels = yield* Channels;
    const configs = yield* ConfigState;
    const readModel = yield* ReadModel;
    const bus = yield* EventBus;
    const readiness = yield* Readiness;
    const reconnect = (yield* OutputDefaults).reconnect;
    const placement = yield* Placement;
    const schedules = yield* ScheduleStore;
    const { locked, startChannel, isRunning, outputSpec, spec } = yield* controlShared;
    const stored = (id: ChannelId) => configs.byId(configs.current()).get(id);

    /**
     * Starts a channel that should run but does not, after each wait of the reconnect schedule, until it runs
     * or nobody wants it to: each try reads the stored channel afresh, so a corrected port is used at once.
     */
    const retries = yield* FiberMap.make<ChannelId, void>();
    /** Each channel's failures in a row, each within CRASH_WINDOW_MS of the one before. */
    const crashes = new Map<ChannelId, { inARow: number; lastAt: number; message: string }>();
    const countFailure = (id: ChannelId, message: string) => {
      const now = Date.now();
      const before = crashes.get(id);
      const inARow = before !== undefined && now - before.lastAt < CRASH_WINDOW_MS ? before.inARow + 1 : 1;
      crashes.set(id, { inARow, lastAt: now, message });
    };
    /**
     * A channel that fails again and again (a fault its input keeps triggering) is not started again at once
     * each time: past CRASHES_IN_A_ROW failures each within a minute of the last, it waits, doubling from
     * 10 s to 5 minutes, and says so.
     */
    const crashLoopWait = (id: ChannelId) =>
      Effect.gen(function* () {
        const loop = crashes.get(id);
        if (loop === undefined || loop.inARow <= CRASHES_IN_A_ROW) return;
        const delayMs = Math.min(
          CRASH_BACKOFF_MAX_MS,
          CRASH_BACKOFF_FIRST_MS * 2 ** (loop.inARow - CRASHES_IN_A_ROW - 1),
        );
        bus.emit({
          type: "channel_backing_off",
          channel: id,
          failures: loop.inARow,
          delay_ms: delayMs,
          message: loop.message,
        });
        yield* Effect.sleep(Duration.millis(delayMs));
      });
    const keepStarting = (id: ChannelId) =>
      FiberMap.run(
        retries,
        id,
        Effect.gen(function* () {
          yield* crashLoopWait(id);
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
          const channel = configs.byId(configs.current()).get(event.channel ?? "");
          if (channel === undefined || event.type !== "channel_failed") return Effect.void;
          countFailure(channel.id, event.message);
          return channel.desired === "running" ? keepStarting(channel.id) : Effect.void;
        }),
      ),
    );

    /**
     * A schedule owns the outputs it names: before channels start, those on outside a window on air (a
     * configuration stored before schedules owned them, a window that ended while the service was down) are
     * stored off. On one box only: in a fleet the holder's runner does it, which alone knows the window's
     * progress is not being written that moment.
     */
    const holdScheduled = Effect.gen(function* () {
      if (placement.node() !== null) return;
      const config = configs.current();
      const now = yield* Clock.currentTimeMillis;
      const next: ChannelConfig[] = [];
      const held: string[] = [];
      for (const channel of config.channels) {
        if (channel.schedule == null || !channel.outputs.some((output) => output.enabled)) {
          next.push(channel);
          continue;
        }
        const stored = yield* schedules.load(channel.id);
        const kept = holdOutputs(channel, windowsOnAir(channel, stored.occurrences.values(), now));
        if (kept !== channel) held.push(channel.id);
        next.push(kept);
      }
      if (held.length === 0) return;
      yield* configs.commit({ ...config, channels: next });
      yield* Effect.logWarning(
        `channels ${held.join(", ")}: outputs their schedules own were on outside a window: stored off`,
      );
    }).pipe(
      Effect.catchAll((error) =>
        Effect.logWarning(`the schedules' outputs could not be held off: ${error.message}`),
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
    ).pipe((starting) => Effect.zipRight(holdScheduled, starting), Effect.withSpan("Resume.resume"));

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

    // A channel another node did not change is the same object (ConfigState keeps it): no text made of it.
    const same = (a: unknown, b: unknown) => a === b || sameValue(a, b);
    const wanted = (channel: ChannelConfig | undefined): channel is ChannelConfig =>
      channel !== undefined && channel.desired === "running" && placement.runsHere(channel);

    /**
     * Brings the runtime from `before` to `after`, two versions of the stored configuration (a change another
     * fleet node stored, read back here): channels start and stop, changed inputs apply live, and only the
     * outputs that changed restart. The caller holds the lock; a channel that cannot start is retried.
     */
    const converge = (before: ConfigDocument, after: ConfigDocument) =>
      Effect.gen(function* () {
        const [olds, nexts] = [configs.byId(before), configs.byId(after)];
        for (const id of new Set([...before.channels, ...after.channels].map((channel) => channel.id))) {
          const old = olds.get(id);
          const next = nexts.get(id);
          if (!wanted(next)) {
            if (isRunning(id)) yield* channels.stop(id);
            continue;
          }
          if (!isRunning(id)) {
            const started = yield* startChannel(next).pipe(
              Effect.as(true),
              Effect.catchAll((error) => Effect.as(Effect.logWarning(error.message), false)),
            );
            if (!started) yield* keepStarting(id);
            continue;
          }
          if (old === undefined || same(old, next)) continue;
          if (inputChanged(old, next) || old.name !== next.name) {
            yield* channels.reconfigure(spec(next)).pipe(
              Effect.catchAll(() => Effect.zipRight(channels.stop(id), startChannel(next))),
              Effect.ignoreLogged,
            );
          }
          for (const output of next.outputs) {
            const was = old.outputs.find((candidate) => candidate.id === output.id);
            if (was !== undefined && same(was, output)) continue;
            yield* channels.applyOutput(id, outputSpec(id, output)).pipe(Effect.ignoreLogged);
          }
          for (const output of old.outputs) {
            if (next.outputs.some((candidate) => candidate.id === output.id)) continue;
            yield* channels.removeOutput(id, output.id).pipe(Effect.ignoreLogged);
          }
        }
        yield* readModel.refresh;
      });

    /**
     * This fleet node now holds (or no longer holds) a channel's lease: its enabled outputs start (or go
     * idle), its inputs and the rest of the channel untouched. Taking over is starting outputs, not a channel.
     */
    const hold = (id: ChannelId, holds: boolean) =>
      Effect.gen(function* () {
        if (placement.holds(id) === holds) return;
        placement.setHeld(id, holds);
        const channel = stored(id);
        if (channel === undefined || !isRunning(id)) return;
        yield* Effect.forEach(
          channel.outputs.filter((output) => output.enabled),
          (output) => channels.applyOutput(id, outputSpec(id, output)).pipe(Effect.ignoreLogged),
          { concurrency: "unbounded", discard: true },
        );
      });

    return {
      /** Starts the channels the configuration wants running; the caller holds the lock. */
      resume,
      converge,
      hold,
      /** For a fleet node: one command at a time with the API's commands. */
      locked,
    } as const;
  }),
}) {}
