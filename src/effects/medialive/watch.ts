/**
 * What the link knows of one linked MediaLive channel, and the loop that keeps it current: DescribeChannel on
 * a schedule (5 s while the state is changing, 15 s when steady, backing off to 5 minutes while the calls
 * fail), each answer checked and handed to the cost guard, which may stop the channel. A command or a change
 * wakes the loop at once. The figures here are plain fields: the read model samples them every second.
 */
import * as Clock from "effect/Clock";
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import * as Queue from "effect/Queue";
import {
  type GuardState,
  type GuardVerdict,
  guardDeadline,
  idleGuard,
  stepGuard,
} from "../../domain/medialive/cost-guard.ts";
import {
  type DescribedChannel,
  egressAddresses,
  guardLingerMs,
  type MediaLiveLink,
} from "../../domain/medialive/medialive.ts";
import type { MediaLiveCalls, MediaLiveFailure } from "./client.ts";

const STEADY = Duration.seconds(15);
const CHANGING = Duration.seconds(5);
const BACKOFF_MAX = Duration.minutes(5);
/** States that turn into another by themselves within minutes. */
const CHANGING_STATES = new Set(["CREATING", "STARTING", "STOPPING", "RECOVERING", "UPDATING", "DELETING"]);

export interface Watched {
  readonly link: MediaLiveLink;
  described: DescribedChannel | null;
  state: string | null;
  pipelines: number | null;
  egress: ReadonlyArray<string>;
  /** Clock milliseconds: when this service first saw it running, or asked it to start. */
  runningSince: number | null;
  checkedAt: number | null;
  error: string | null;
  failures: number;
  guard: GuardState;
  verdict: GuardVerdict;
  /** Each output's bytes at the previous look: "sending" is bytes that grew since. */
  bytes: ReadonlyMap<string, number>;
  /** Poll now: a command or a change wants a fresh answer. */
  readonly wake: Queue.Queue<void>;
}

export const newWatched = (link: MediaLiveLink): Effect.Effect<Watched> =>
  Effect.map(Queue.sliding<void>(1), (wake) => ({
    link,
    described: null,
    state: null,
    pipelines: null,
    egress: [],
    runningSince: null,
    checkedAt: null,
    error: null,
    failures: 0,
    guard: idleGuard,
    verdict: { kind: "none" },
    bytes: new Map(),
    wake,
  }));

/** What the loop asks of the rest of the service. */
interface WatchHooks {
  /** An output of the channel is enabled and sending; `bytes` is updated with what was read. */
  readonly sending: (previous: ReadonlyMap<string, number>) => {
    readonly sending: boolean;
    readonly bytes: ReadonlyMap<string, number>;
  };
  /** The state changed: an event. */
  readonly stateChanged: (state: string, previous: string | null) => void;
  /** The egress addresses changed: the inputs' allow-lists follow when the link asks. */
  readonly egressChanged: () => Effect.Effect<void>;
  /** Whether the cost guard runs here: in a fleet, only the node holding the channel sends, and knows it. */
  readonly guards: () => boolean;
  /** The cost guard's stop. */
  readonly guardStop: (idleMinutes: number) => Effect.Effect<void>;
}

/** Records an answer (or a failure) of DescribeChannel. */
export const record = (
  watched: Watched,
  now: number,
  answer: DescribedChannel | MediaLiveFailure,
  hooks: Pick<WatchHooks, "stateChanged">,
): boolean => {
  if ("_tag" in answer) {
    watched.error = answer.message;
    watched.failures += 1;
    return false;
  }
  const state = answer.State ?? null;
  const egress = egressAddresses(answer);
  const egressMoved = egress.join(",") !== watched.egress.join(",");
  if (state !== null && state !== watched.state) hooks.stateChanged(state, watched.state);
  if (state === "RUNNING" || state === "RECOVERING") watched.runningSince ??= now;
  else if (state !== "STARTING") watched.runningSince = null;
  watched.described = answer;
  watched.state = state;
  watched.pipelines = answer.PipelinesRunningCount ?? null;
  watched.egress = egress;
  watched.checkedAt = now;
  watched.error = null;
  watched.failures = 0;
  return egressMoved;
};

/** How long until the next look. */
const nextDelay = (watched: Watched, now: number): Duration.Duration => {
  if (watched.failures > 0) {
    const backoff = Duration.times(STEADY, 2 ** Math.min(watched.failures - 1, 5));
    return Duration.min(backoff, BACKOFF_MAX);
  }
  const base = watched.state !== null && CHANGING_STATES.has(watched.state) ? CHANGING : STEADY;
  const deadline = guardDeadline(watched.verdict);
  return deadline === null ? base : Duration.min(base, Duration.millis(Math.max(0, deadline - now)));
};

/** One look: describe, record, run the guard. */
export const look = (watched: Watched, calls: MediaLiveCalls, hooks: WatchHooks) =>
  Effect.gen(function* () {
    const answer = yield* Effect.merge(calls.describe(watched.link));
    const now = yield* Clock.currentTimeMillis;
    if (record(watched, now, answer, hooks)) yield* hooks.egressChanged();
    // Without an answer the state is not known: the guard neither counts nor forgets, and never stops.
    if (watched.failures > 0) return;
    const seen = hooks.sending(watched.bytes);
    watched.bytes = seen.bytes;
    const { next, verdict } = stepGuard(watched.guard, {
      now,
      lingerMs: hooks.guards() ? guardLingerMs(watched.link) : null,
      state: watched.state,
      sending: seen.sending,
    });
    watched.guard = next;
    watched.verdict = verdict;
    if (verdict.kind === "stop") {
      yield* hooks.guardStop(Math.round((now - (next.idleSince ?? now)) / 60_000));
      watched.guard = idleGuard;
      watched.verdict = { kind: "none" };
    }
  });

/** The loop, until interrupted: a look, then a wait that a wake-up cuts short. */
export const watch = (watched: Watched, calls: MediaLiveCalls, hooks: WatchHooks) =>
  Effect.forever(
    Effect.gen(function* () {
      yield* look(watched, calls, hooks);
      const now = yield* Clock.currentTimeMillis;
      yield* Effect.raceFirst(Effect.sleep(nextDelay(watched, now)), Queue.take(watched.wake));
    }),
  );
