/**
 * One channel's schedule, run where this node holds the channel's lease: at every wake the wall clock is read
 * again (Clock.currentTimeMillis; a wait is never longer than a second, so a clock that jumped is seen at
 * once), each occurrence that has begun is stepped by the domain's rules (`stepOccurrence`), its due actions
 * are done in order and each is stored in its progress right after it succeeded (so a restart or a takeover
 * neither repeats nor skips one), and a change of phase is a `schedule_phase` event, a window that passed
 * with nothing done a `schedule_missed`. A node that takes the channel over reads the stored progress and
 * joins the phase (`by: "takeover"`). The operator's commands go through the same lock.
 */
import * as Clock from "effect/Clock";
import * as Effect from "effect/Effect";
import * as Queue from "effect/Queue";
import type { ChannelId, OutputId } from "../../domain/base/ids.ts";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import { heldOutputs, windowsOnAir } from "../../domain/schedule/schedule-outputs.ts";
import type { SchedulePhase } from "../../domain/schedule/schedule-phases.ts";
import type { ScheduleCommand, Step } from "../../domain/schedule/schedule-steps.ts";
import { applyCommand, stepOccurrence } from "../../domain/schedule/schedule-steps.ts";
import { nextOccurrences, occurrences } from "../../domain/schedule/schedule-times.ts";
import type {
  Occurrence,
  Schedule,
  ScheduleAction,
  ScheduleWindow,
} from "../../domain/schedule/schedule-window.ts";
import { newProgress } from "../../domain/schedule/schedule-window.ts";
import type { ScheduleStore, StoredProgress } from "../config/schedule-progress.ts";
import type { EventBus } from "../events/event-bus.ts";
import { holdOff, perform } from "./actions.ts";

/** How long the stored progress of past occurrences is kept (and how far back a missed one is looked for). */
export const KEEP_MS = 7 * 24 * 3_600_000;
/** The longest wait: the wall clock is read at least this often. */
const MAX_WAIT_MS = 1000;
/** After a failed action, how long until it is tried again. */
const RETRY_MS = 5000;
/** An occurrence that began this long before this node joined was joined, not begun, here. */
const JOIN_SLACK_MS = 2000;

export interface LoopServices {
  readonly bus: EventBus;
  readonly store: typeof ScheduleStore.Service;
  readonly channel: () => ChannelConfig | undefined;
  readonly act: Parameters<typeof perform>[0];
  readonly windowOpen: (open: boolean) => void;
}

/** What one channel's loop knows: the stored progress (read when it began here) and the last steps. */
export interface LoopState {
  readonly id: ChannelId;
  readonly joinedAt: number;
  readonly since: number;
  readonly progress: Map<string, StoredProgress>;
  readonly steps: Map<string, Step>;
  /** Occurrences seen since this node joined: the first sight of one begun earlier is a takeover. */
  readonly seen: Set<string>;
  /** Occurrences whose next change of phase an operator's command made. */
  readonly byOperator: Set<string>;
  retryAt: number;
  readonly wake: Queue.Queue<void>;
  readonly lock: Effect.Semaphore;
}

const isoOf = (ms: number) => new Date(ms).toISOString();

/** The stored progress of an occurrence (nothing yet: a new one), as the domain's rules take it. */
const progressOf = (state: LoopState, occurrence: Occurrence): StoredProgress =>
  state.progress.get(occurrence.key) ?? { ...newProgress(occurrence), closed: false };

/** `found` with the occurrences whose stored progress is still open beside it (an extend moved them on). */
export const withOpen = (
  schedule: Schedule,
  progress: ReadonlyMap<string, StoredProgress>,
  found: Occurrence[],
): Occurrence[] => {
  const keys = new Set(found.map((occurrence) => occurrence.key));
  for (const stored of progress.values()) {
    if (stored.closed || keys.has(stored.key)) continue;
    const again = occurrences(schedule, stored.t0 - 1, stored.t0 + 1).find((o) => o.key === stored.key);
    if (again !== undefined) found.push(again);
  }
  return found.sort((a, b) => a.warm_at - b.warm_at);
};

/**
 * The occurrences to look at now: those the rules find around now (and back to when the schedule began to run
 * here, for the missed ones), those that warm up within `ahead` ms (the loop wakes at their very millisecond),
 * and those whose stored progress is still open.
 */
export const openOccurrences = (schedule: Schedule, state: LoopState, now: number, ahead = 0): Occurrence[] =>
  withOpen(
    schedule,
    state.progress,
    occurrences(schedule, Math.max(state.since, now - KEEP_MS), now + ahead + 1),
  );

/**
 * The due actions in the order they are done: the domain's, but for the slate, which goes up before the
 * outputs are enabled so that the first packet they send is the slate's, not the programme's.
 */
const upFirst = (due: ReadonlyArray<ScheduleAction>): ReadonlyArray<ScheduleAction> =>
  due.includes("slate_on") ? ["slate_on", ...due.filter((action) => action !== "slate_on")] : due;

const windowOf = (schedule: Schedule, occurrence: Occurrence): ScheduleWindow | undefined =>
  schedule.windows.find((window) => window.id === occurrence.window);

const save = (services: LoopServices, state: LoopState, progress: StoredProgress) =>
  Effect.tap(services.store.save(state.id, progress), () =>
    Effect.sync(() => state.progress.set(progress.key, progress)),
  );

const phaseEvent = (
  services: LoopServices,
  state: LoopState,
  occurrence: Occurrence,
  previous: SchedulePhase,
  phase: SchedulePhase,
  by: "schedule" | "operator" | "takeover",
  message: string,
) =>
  services.bus.emit({
    type: "schedule_phase",
    channel: state.id,
    window: occurrence.window,
    occurrence: isoOf(occurrence.t0),
    phase,
    previous,
    by,
    message,
  });

/** One occurrence at `now`: its step, its event, its actions. */
const stepOne = (
  services: LoopServices,
  state: LoopState,
  channel: ChannelConfig,
  window: ScheduleWindow,
  occurrence: Occurrence,
  now: number,
) =>
  Effect.gen(function* () {
    let progress = progressOf(state, occurrence);
    const step = stepOccurrence(occurrence, progress, occurrence.staging, now, {
      linked: channel.medialive != null,
    });
    state.steps.set(occurrence.key, step);
    const firstSight = !state.seen.has(occurrence.key);
    state.seen.add(occurrence.key);
    if (step.missed !== null) {
      services.bus.emit({
        type: "schedule_missed",
        channel: state.id,
        window: occurrence.window,
        occurrence: isoOf(occurrence.t0),
        message: step.missed,
      });
      yield* save(services, state, { ...progress, phase: "idle", closed: true });
      return step;
    }
    const joined = firstSight && occurrence.warm_at < state.joinedAt - JOIN_SLACK_MS && step.phase !== "idle";
    const moved = step.phase !== progress.phase || joined;
    if (moved) {
      const by = joined ? "takeover" : state.byOperator.has(occurrence.key) ? "operator" : "schedule";
      state.byOperator.delete(occurrence.key);
      const words =
        by === "takeover"
          ? "taken over: its stored progress goes on"
          : by === "operator"
            ? "by an operator"
            : "on time";
      phaseEvent(services, state, occurrence, progress.phase, step.phase, by, words);
      progress = { ...progress, phase: step.phase };
      // Stored with the first action it does (a write less before MediaLive's start), or below without one.
      state.progress.set(progress.key, progress);
    }
    if (moved && (step.due.length === 0 || now < state.retryAt)) yield* save(services, state, progress);
    if (now < state.retryAt) return step;
    // The cost guard stands down before MediaLive is started: its first look after the start finds it open.
    if (step.phase !== "idle") services.windowOpen(true);
    for (const action of upFirst(step.due)) {
      const outcome = yield* Effect.either(perform(services.act, channel, window, action));
      if (outcome._tag === "Left") {
        state.retryAt = now + RETRY_MS;
        yield* Effect.logWarning(
          `channel ${state.id}: the schedule's ${action.replaceAll("_", " ")} of ${occurrence.key} failed: ${outcome.left.message}; trying again in ${RETRY_MS / 1000} s`,
        );
        return step;
      }
      progress = { ...progress, done: [...progress.done, action] };
      yield* save(services, state, progress);
    }
    if (step.phase === "idle" && step.wake_at === null && now >= occurrence.warm_at)
      yield* save(services, state, { ...progress, closed: true });
    return step;
  });

/**
 * The schedule owns the outputs its windows name: one found on outside a window on air (by the progress as the
 * steps above left it) was enabled other than by the commands, which store them off; it is switched off.
 */
const holdOwned = (services: LoopServices, state: LoopState, now: number) =>
  Effect.gen(function* () {
    const channel = services.channel();
    if (channel?.schedule == null) return;
    const held = heldOutputs(channel, windowsOnAir(channel, state.progress.values(), now));
    if (held.length === 0) return;
    const ids = held.map((output) => output.id as OutputId);
    const outcome = yield* Effect.either(holdOff(services.act, channel, ids));
    yield* outcome._tag === "Left"
      ? Effect.logWarning(
          `channel ${state.id}: outputs ${ids.join(", ")} are on outside the schedule's windows and could not be switched off: ${outcome.left.message}`,
        )
      : Effect.logWarning(
          `channel ${state.id}: outputs ${ids.join(", ")} were on outside the schedule's windows: switched off (the schedule owns them)`,
        );
  });

/** One look at the clock: every open occurrence stepped; the time of the next look. */
export const tick = (services: LoopServices, state: LoopState) =>
  state.lock.withPermits(1)(
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis;
      const channel = services.channel();
      const schedule = channel?.schedule;
      let wakeAt = now + MAX_WAIT_MS;
      let open = false;
      if (channel === undefined || schedule == null) return wakeAt;
      for (const occurrence of openOccurrences(schedule, state, now, MAX_WAIT_MS)) {
        const window = windowOf(schedule, occurrence);
        if (window === undefined || progressOf(state, occurrence).closed) continue;
        if (occurrence.warm_at > now && !state.progress.has(occurrence.key)) {
          wakeAt = Math.min(wakeAt, occurrence.warm_at);
          continue;
        }
        const step = yield* stepOne(services, state, channel, window, occurrence, now);
        if (step.phase !== "idle") open = true;
        if (step.wake_at !== null) wakeAt = Math.min(wakeAt, step.wake_at);
      }
      services.windowOpen(open);
      yield* holdOwned(services, state, now);
      return wakeAt;
    }),
  );

/** The loop, until interrupted: a look, then a wait (at most a second) that a command's wake-up cuts short. */
export const runLoop = (services: LoopServices, state: LoopState) =>
  Effect.forever(
    Effect.gen(function* () {
      const wakeAt = yield* tick(services, state).pipe(
        Effect.catchAll((error) =>
          Effect.as(
            Effect.logWarning(
              `channel ${state.id}: the schedule's progress could not be stored: ${error.message}`,
            ),
            0,
          ),
        ),
      );
      const now = yield* Clock.currentTimeMillis;
      const wait = Math.min(MAX_WAIT_MS, Math.max(wakeAt === 0 ? MAX_WAIT_MS : wakeAt - now, 0));
      yield* Effect.raceFirst(Effect.sleep(wait), Queue.take(state.wake));
    }),
  );

/**
 * An operator's command on the occurrence in progress (or, for a skip or an extend, the next one): the
 * domain's rules say whether it fits its phase (a sentence when not), the progress is stored, and the loop
 * wakes to do what is now due.
 */
type CommandOutcome = { readonly error: string } | { readonly error: null; readonly occurrence: Occurrence };
const refused = (error: string): CommandOutcome => ({ error });

export const command = (services: LoopServices, state: LoopState, schedule: Schedule, cmd: ScheduleCommand) =>
  state.lock.withPermits(1)(
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis;
      const candidates = openOccurrences(schedule, state, now)
        .concat(nextOccurrences(schedule, now, 2))
        .filter((occurrence) => !progressOf(state, occurrence).closed);
      const begun = candidates.filter((occurrence) => occurrence.warm_at <= now);
      const target = begun[0] ?? candidates[0];
      if (target === undefined) return refused("no occurrence of the schedule is in progress or to come");
      const following = candidates.find((occurrence) => occurrence.warm_at > target.warm_at) ?? null;
      const before = progressOf(state, target);
      const result = applyCommand(target, before, cmd, now, {
        next: following,
        staging: target.staging,
      });
      if ("error" in result) return refused(result.error);
      yield* save(services, state, { ...result.progress, closed: false });
      state.byOperator.add(target.key);
      if (result.progress.phase !== before.phase) {
        phaseEvent(
          services,
          state,
          target,
          before.phase,
          result.progress.phase,
          "operator",
          `by an operator: ${cmd.kind}`,
        );
        state.byOperator.delete(target.key);
      }
      yield* Queue.offer(state.wake, undefined);
      return { error: null, occurrence: target } as CommandOutcome;
    }),
  );
