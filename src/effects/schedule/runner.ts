/**
 * The schedules' runner: for each channel with a schedule, a loop (channel-loop.ts) that runs only while this
 * node holds the channel's lease (on one box, always), restarted when the channel's schedule (or its MediaLive
 * link) changes and when this node takes the lease over, so that it reads the stored progress again. Besides,
 * what the API and the pages ask: the schedule's view (its next occurrences and their phases), its calendar,
 * and the operator's commands (go-live, extend, end, skip), audited in the token's name.
 */
import * as Clock from "effect/Clock";
import * as Effect from "effect/Effect";
import * as FiberMap from "effect/FiberMap";
import * as Queue from "effect/Queue";
import { ControlError } from "../../domain/base/errors.ts";
import type { ChannelId } from "../../domain/base/ids.ts";
import { scheduleIcs } from "../../domain/schedule/schedule-ics.ts";
import type { ScheduleCommand } from "../../domain/schedule/schedule-steps.ts";
import { stepOccurrence } from "../../domain/schedule/schedule-steps.ts";
import { nextOccurrences } from "../../domain/schedule/schedule-times.ts";
import { occurrenceView, type ScheduleView } from "../../domain/schedule/schedule-view.ts";
import type { Schedule } from "../../domain/schedule/schedule-window.ts";
import { newProgress } from "../../domain/schedule/schedule-window.ts";
import { ConfigState } from "../config/config-state.ts";
import { Placement } from "../config/placement.ts";
import { ScheduleStore, type StoredProgress } from "../config/schedule-progress.ts";
import { Control } from "../control/control.ts";
import { audit, EventBus } from "../events/event-bus.ts";
import { MediaLive } from "../medialive/medialive.ts";
import { command, KEEP_MS, type LoopServices, type LoopState, runLoop, withOpen } from "./channel-loop.ts";

/** How many occurrences the view shows. */
const SHOWN = 5;

/** What restarts a channel's loop when it changes: its schedule and whether MediaLive is linked. */
const loopKey = (schedule: Schedule, linked: boolean) => JSON.stringify([schedule, linked]);

export class ScheduleRunner extends Effect.Service<ScheduleRunner>()("distributary/ScheduleRunner", {
  scoped: Effect.gen(function* () {
    const configs = yield* ConfigState;
    const placement = yield* Placement;
    const store = yield* ScheduleStore;
    const bus = yield* EventBus;
    const control = yield* Control;
    const medialive = yield* MediaLive;
    const loops = yield* FiberMap.make<ChannelId>();
    /** Each running loop's key and state. */
    const running = new Map<ChannelId, { readonly key: string; readonly state: LoopState }>();

    const servicesFor = (id: ChannelId): LoopServices => ({
      bus,
      store,
      channel: () => configs.channel(id),
      act: { control, medialive },
      windowOpen: (open) => medialive.setWindowOpen(id, open),
    });

    /**
     * A loop's state, with the progress stored for the channel (read afresh: a takeover joins from it). `seen`:
     * the occurrences the loop it replaces (the schedule changed, the lease stayed) had seen, not joined again.
     */
    const begin = (id: ChannelId, seen: ReadonlySet<string> = new Set()) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis;
        const stored = yield* store.load(id);
        const since = stored.since ?? now;
        if (stored.since === null) yield* store.saveSince(id, since);
        yield* store.prune(id, now - KEEP_MS);
        return {
          id,
          joinedAt: now,
          since,
          progress: new Map(stored.occurrences),
          steps: new Map(),
          seen: new Set(seen),
          byOperator: new Set(),
          retryAt: 0,
          wake: yield* Queue.sliding<void>(1),
          lock: yield* Effect.makeSemaphore(1),
        } satisfies LoopState;
      });

    /** Loops for the channels with a schedule that this node holds now, and none for the others. */
    const reconcile = Effect.gen(function* () {
      const wanted = new Map<ChannelId, string>();
      for (const channel of configs.current().channels)
        if (channel.schedule != null && placement.holds(channel.id))
          wanted.set(channel.id, loopKey(channel.schedule, channel.medialive != null));
      /** What the loops restarted for a changed schedule had seen: no takeover of their own occurrences. */
      const carried = new Map<ChannelId, ReadonlySet<string>>();
      for (const [id, loop] of running) {
        if (wanted.get(id) === loop.key) continue;
        if (wanted.has(id)) carried.set(id, loop.state.seen);
        running.delete(id);
        yield* FiberMap.remove(loops, id);
        medialive.setWindowOpen(id, false);
      }
      for (const [id, key] of wanted) {
        if (running.has(id)) continue;
        const state = yield* Effect.either(begin(id, carried.get(id)));
        if (state._tag === "Left") {
          yield* Effect.logWarning(
            `channel ${id}: its schedule's progress could not be read: ${state.left.message}`,
          );
          continue;
        }
        running.set(id, { key, state: state.right });
        yield* FiberMap.run(loops, id, runLoop(servicesFor(id), state.right));
      }
    });
    // On the service's clock (a TestClock in tests): once a second, cheap while nothing changed.
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(reconcile, Effect.sleep(1000))));

    const withSchedule = (id: ChannelId) =>
      Effect.flatMap(configs.find(id), (channel) =>
        channel.schedule == null
          ? Effect.fail(
              new ControlError({
                reason: "not_found",
                message: `channel '${channel.name}' has no schedule; set one with PATCH /api/channels/${channel.id} {"schedule": {"windows": [...]}}`,
              }),
            )
          : Effect.succeed([channel, channel.schedule] as const),
      );

    /** The stored progress: the loop's when it runs here, else the store's (a fleet node that does not hold it). */
    const progressOf = (id: ChannelId) =>
      Effect.gen(function* () {
        const loop = running.get(id);
        if (loop !== undefined) return loop.state.progress as ReadonlyMap<string, StoredProgress>;
        return (yield* Effect.orElseSucceed(store.load(id), () => ({ occurrences: new Map() }))).occurrences;
      });

    const view = Effect.fn("ScheduleRunner.view")(function* (id: ChannelId) {
      const [channel, schedule] = yield* withSchedule(id);
      const now = yield* Clock.currentTimeMillis;
      const progress = yield* progressOf(id);
      const linked = channel.medialive != null;
      const shown = withOpen(schedule, progress, nextOccurrences(schedule, now, SHOWN)).slice(0, SHOWN);
      const next = shown.map((occurrence) => {
        const stored = progress.get(occurrence.key);
        const step =
          stored === undefined && occurrence.warm_at > now
            ? null
            : stepOccurrence(occurrence, stored ?? newProgress(occurrence), occurrence.staging, now, {
                linked,
              });
        return occurrenceView(occurrence, {
          progress: stored,
          phase: stored?.closed === true ? "idle" : (step?.phase ?? "idle"),
          waiting: step?.waiting ?? null,
        });
      });
      const current = next.find((occurrence) => occurrence.phase !== "idle") ?? null;
      return {
        channel: channel.id,
        windows: schedule.windows,
        phase: current?.phase ?? "idle",
        current,
        next,
      } satisfies ScheduleView;
    });

    const ics = Effect.fn("ScheduleRunner.ics")(function* (id: ChannelId) {
      const [channel, schedule] = yield* withSchedule(id);
      return scheduleIcs(channel, schedule, yield* Clock.currentTimeMillis);
    });

    const operate = Effect.fn("ScheduleRunner.command")(function* (id: ChannelId, cmd: ScheduleCommand) {
      const [channel, schedule] = yield* withSchedule(id);
      yield* reconcile;
      const loop = running.get(id);
      if (loop === undefined)
        return yield* new ControlError({
          reason: "conflict",
          message: `channel '${channel.name}' is not run by this node: its lease holder runs its schedule`,
        });
      const outcome = yield* command(servicesFor(id), loop.state, schedule, cmd).pipe(
        Effect.mapError(
          (error) =>
            new ControlError({
              reason: "store_failed",
              message: `the schedule's progress: ${error.message}`,
            }),
        ),
      );
      if (outcome.error !== null)
        return yield* new ControlError({ reason: "conflict", message: outcome.error });
      const what = cmd.kind === "extend" ? `extended by ${cmd.seconds} s` : cmd.kind;
      yield* audit(
        bus,
        `schedule.${cmd.kind}`,
        `channel ${id} (${channel.name}): ${outcome.occurrence.key} ${what}`,
        {
          channel: id,
        },
      );
      return yield* view(id);
    });

    return {
      view,
      ics,
      command: operate,
      /** The phase of a channel's occurrence in progress, for the overview (idle when none, or not run here). */
      phase: (id: string) => {
        const loop = running.get(id as ChannelId);
        if (loop === undefined) return "idle" as const;
        for (const step of loop.state.steps.values()) if (step.phase !== "idle") return step.phase;
        return "idle" as const;
      },
    } as const;
  }),
}) {}
