/**
 * The health of a channel's inputs by its rules (`redundancy.health`, domain/health/health.ts): for each input, a judge
 * (domain/health/health-judge.ts) handed a sample of the input's packet core every `SAMPLE_MS`, and, when a rule names
 * black, frozen or silent, a content watcher (content-watcher.ts) fed a copy of the input's TS. Each input's
 * verdict goes to the selector (healthy, or unhealthy by which rules), which fails over on it.
 *
 * The datagram path only copies into the watcher's current chunk (`feeds`); the watcher gets whole chunks,
 * never waits and drops what its ffmpeg cannot take. While the channel is on its slate for another reason than
 * its inputs' health (an operator's, or silence), the picture and sound rules are suspended: they read unknown,
 * which neither fails an input over nor clears it.
 */
import { Buffer } from "node:buffer";
import * as Effect from "effect/Effect";
import * as ExecutionStrategy from "effect/ExecutionStrategy";
import * as Exit from "effect/Exit";
import * as Fiber from "effect/Fiber";
import * as Scope from "effect/Scope";
import type { PacketCore } from "../../core/packet-core.ts";
import type { CoreSnapshot } from "../../core/packet-core-snapshot.ts";
import { VIDEO_STREAM_TYPES } from "../../core/ts/stream-types.ts";
import type { InputRole } from "../../domain/channel/redundancy.ts";
import { type Health, isContentRule, namesIn, showExpression } from "../../domain/health/health.ts";
import {
  type ContentVerdict,
  type HealthView,
  type InputSample,
  makeHealthJudge,
} from "../../domain/health/health-judge.ts";
import { type ContentWatcher, type ContentWatcherCost, makeContentWatcher } from "./content-watcher.ts";

/** How often each input is judged. */
export const SAMPLE_MS = 100;
/** How often the watcher's cost is read from /proc. */
const COST_EVERY_MS = 2000;
/** The watcher's chunks: about 90 ms of a 6 Mbit/s stream, whole TS packets. */
const CHUNK_BYTES = 348 * 188;
/** The audio stream types a `pid_missing: "audio"` rule looks for. */
const AUDIO_STREAM_TYPES: ReadonlySet<number> = new Set([0x03, 0x04, 0x0f, 0x11, 0x81, 0x87]);

/** One input's health as the status tells it; `sinceMs` on the input path's monotonic clock. */
export interface InputHealthStatus extends HealthView {
  /** `sinceMs` on the wall clock (epoch ms), read once when the verdict changed. */
  readonly sinceEpochMs: number;
  /** The content watcher, while the rules need one: whether its ffmpeg runs, and what it costs. */
  readonly watcher:
    | (ContentWatcherCost & {
        readonly running: boolean;
        /** The spacing of the pictures it decodes (key frames: the GOP), once measured. */
        readonly gopMs: number | null;
      })
    | null;
}

export interface InputsHealth {
  /** Per input, the watcher's feed (a copy of each TS payload), or null: read on the datagram path. */
  readonly feeds: Readonly<Record<InputRole, ((payload: Uint8Array) => void) | null>>;
  /** An input's core is listening (again): it is judged from now on. */
  readonly attach: (role: InputRole, core: PacketCore) => Effect.Effect<void>;
  readonly detach: (role: InputRole) => Effect.Effect<void>;
  /** New rules (null: none): every input is judged afresh, healthy until its rules say otherwise. */
  readonly setHealth: (health: Health | null) => Effect.Effect<void>;
  readonly status: (role: InputRole) => InputHealthStatus | null;
}

interface Entry {
  readonly core: PacketCore;
  readonly scope: Scope.CloseableScope;
  readonly judge: ReturnType<typeof makeHealthJudge>;
  readonly watcher: ContentWatcher | null;
  readonly flush: () => void;
  view: HealthView;
  sinceEpochMs: number;
  cost: ContentWatcherCost | null;
  costAtMs: number;
  readonly pids: ProgrammePids;
}

/** Gathers the payloads into whole chunks for the watcher, which keeps what it is given. */
const makeFeeder = (watcher: ContentWatcher) => {
  let chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let used = 0;
  const flush = () => {
    if (used === 0) return;
    watcher.offer(chunk.subarray(0, used));
    chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    used = 0;
  };
  const feed = (payload: Uint8Array) => {
    if (used + payload.length > CHUNK_BYTES) flush();
    if (payload.length > CHUNK_BYTES) return watcher.offer(Buffer.from(payload));
    chunk.set(payload, used);
    used += payload.length;
  };
  return { feed, flush };
};

/** The programme's video and audio PIDs as the PMT last listed them: kept when a PMT drops them. */
export interface ProgrammePids {
  video: number | null;
  audio: number | null;
}

/** One sample of an input for its judge: the packet core's figures at `atMs`, the watcher's verdicts. */
export const sampleOf = (
  snapshot: CoreSnapshot,
  pids: ProgrammePids,
  atMs: number,
  content: InputSample["content"],
): InputSample => {
  const byPid = new Map(snapshot.pids.map((pid) => [pid.pid, pid]));
  const listed = snapshot.pids.filter((pid) => pid.referenced && pid.streamType !== null);
  pids.video = listed.find((pid) => VIDEO_STREAM_TYPES.has(pid.streamType ?? -1))?.pid ?? pids.video;
  pids.audio = listed.find((pid) => AUDIO_STREAM_TYPES.has(pid.streamType ?? -1))?.pid ?? pids.audio;
  const { tr101290 } = snapshot;
  return {
    atMs,
    bytes: snapshot.bytes,
    ccErrors: tr101290.ccErrors,
    p2: {
      Transport_error: tr101290.transportErrors,
      CRC_error: tr101290.crcErrors,
      PCR_repetition_error: tr101290.pcrRepetitionErrors,
      PCR_discontinuity_indicator_error: tr101290.pcrDiscontinuityErrors,
      PTS_error: tr101290.ptsErrors,
    },
    lastPcrAtMs: snapshot.lastPcrMs,
    lastPtsAtMs: pids.video === null ? null : (byPid.get(pids.video)?.lastPtsMs ?? null),
    lastSeenAtMs: (pid) => {
      const number = pid === "video" ? pids.video : pid === "audio" ? pids.audio : pid;
      if (number === null) return undefined;
      return byPid.get(number)?.lastSeenMs ?? null;
    },
    content,
  };
};

/** The PCR_repetition_error limit the rules ask of the packet core: DVB's 40 ms when any rule says "dvb". */
const pcrLimit = (health: Health | null): "default" | "dvb" =>
  Object.values(health?.rules ?? {}).some((rule) => "tr101290" in rule && rule.limits === "dvb")
    ? "dvb"
    : "default";

/**
 * What an unhealthy input's switch names: the expression's rules that hold, e.g. "black && silent" (the
 * expression itself when it holds by what does not: "!tone").
 */
const holding = (health: Health, view: HealthView): string =>
  [...new Set(namesIn(health.unhealthyWhen))]
    .filter((name) => view.rules[name]?.state === true)
    .join(" && ") || showExpression(health.unhealthyWhen);

export const makeInputsHealth = (options: {
  readonly initial: Health | null;
  /** The input path's monotonic clock (the packet cores' push times). */
  readonly nowMs: () => number;
  /** An input's verdict: the rules that make it unhealthy, or null once it is healthy again. */
  readonly judged: (role: InputRole, rule: string | null) => void;
  /** Whether the picture and sound rules are suspended now (the channel is on its slate for another reason). */
  readonly contentSuspended: () => boolean;
  /** Every input is unhealthy by its rules (or silent, with at least one unhealthy), or no longer. */
  readonly onAllUnhealthy?: (all: boolean) => void;
  /** Whether `role` receives now (silence is the selector's business, but counts for "all unhealthy"). */
  readonly receiving: (role: InputRole) => boolean;
}): Effect.Effect<InputsHealth, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope;
    let health = options.initial;
    const entries = new Map<InputRole, Entry>();
    /** Every listening input's core, judged or not (rules may come later). */
    const cores = new Map<InputRole, PacketCore>();
    const feeds: Record<InputRole, ((payload: Uint8Array) => void) | null> = { primary: null, backup: null };
    let allUnhealthy = false;

    const detach = (role: InputRole) =>
      Effect.suspend(() => {
        const entry = entries.get(role);
        feeds[role] = null;
        cores.delete(role);
        if (entry === undefined) return Effect.void;
        entries.delete(role);
        options.judged(role, null);
        return Scope.close(entry.scope, Exit.void);
      });

    const attach = (role: InputRole, core: PacketCore) =>
      Effect.gen(function* () {
        yield* detach(role);
        cores.set(role, core);
        core.pcrRepetition(pcrLimit(health));
        if (health === null) return;
        const own = yield* Scope.fork(scope, ExecutionStrategy.sequential);
        // None unless a rule names black, frozen or silent.
        const watcher = yield* makeContentWatcher({ rules: health.rules, mode: health.decode }).pipe(
          Scope.extend(own),
        );
        const feeder = watcher === null ? null : makeFeeder(watcher);
        const start = options.nowMs();
        entries.set(role, {
          core,
          scope: own,
          judge: makeHealthJudge(health, start),
          watcher,
          flush: feeder?.flush ?? (() => {}),
          view: { state: "healthy", sinceMs: start, rules: {} },
          sinceEpochMs: Date.now(),
          cost: null,
          costAtMs: start,
          pids: { video: null, audio: null },
        });
        feeds[role] = feeder?.feed ?? null;
      });

    /** The watcher's verdicts, or why the picture and sound rules cannot judge now. */
    const contentOf = (entry: Entry): InputSample["content"] => {
      const suspended = options.contentSuspended();
      const verdicts = entry.watcher === null || suspended ? {} : entry.watcher.verdicts();
      const content: Record<string, ContentVerdict> = {};
      for (const [name, rule] of Object.entries(health?.rules ?? {}))
        if (isContentRule(rule))
          content[name] = suspended
            ? { state: null, reason: "suspended while the channel is on its slate" }
            : (verdicts[name] ?? { state: null, reason: "the watcher has not judged yet" });
      return content;
    };

    const sampleAll = Effect.sync(() => {
      if (health === null) return;
      const atMs = options.nowMs();
      for (const [role, entry] of entries) {
        entry.flush();
        const before = entry.view.sinceMs;
        entry.view = entry.judge.sample(sampleOf(entry.core.snapshot(), entry.pids, atMs, contentOf(entry)));
        if (entry.view.sinceMs !== before) entry.sinceEpochMs = Date.now() - (atMs - entry.view.sinceMs);
        options.judged(role, entry.view.state === "unhealthy" ? holding(health, entry.view) : null);
        if (entry.watcher !== null && (entry.cost === null || atMs - entry.costAtMs >= COST_EVERY_MS)) {
          entry.cost = entry.watcher.cost();
          entry.costAtMs = atMs;
        }
      }
      const states = [...entries.entries()];
      const all =
        states.length > 0 &&
        states.some(([, entry]) => entry.view.state === "unhealthy") &&
        states.every(([role, entry]) => entry.view.state === "unhealthy" || !options.receiving(role));
      if (all !== allUnhealthy) {
        allUnhealthy = all;
        options.onAllUnhealthy?.(all);
      }
    });
    // A sample that throws is said and the next one taken: the rules never stop judging for one bad reading.
    const sampled = sampleAll.pipe(
      Effect.catchAllDefect((defect) => Effect.logError("the input health rules' sample failed", defect)),
    );
    const loop = Effect.forever(Effect.zipRight(Effect.sleep(SAMPLE_MS), sampled));
    // Only while there are rules: a channel without them (or without input) leaves its thread asleep.
    let sampler: Fiber.RuntimeFiber<never> | null = null;
    const sampling = Effect.suspend(() => {
      if (health !== null && sampler === null)
        return Effect.map(Effect.forkIn(loop, scope), (fiber) => {
          sampler = fiber;
        });
      if (health === null && sampler !== null) {
        const running = sampler;
        sampler = null;
        return Fiber.interrupt(running);
      }
      return Effect.void;
    });
    yield* sampling;

    return {
      feeds,
      attach,
      detach,
      setHealth: (next) =>
        Effect.gen(function* () {
          health = next;
          yield* sampling;
          for (const [role, core] of [...cores]) yield* attach(role, core);
          if (allUnhealthy) {
            allUnhealthy = false;
            options.onAllUnhealthy?.(false);
          }
        }),
      status: (role) => {
        const entry = entries.get(role);
        if (entry === undefined) return null;
        return {
          ...entry.view,
          sinceEpochMs: entry.sinceEpochMs,
          watcher:
            entry.watcher === null
              ? null
              : {
                  running: entry.watcher.pid() !== undefined,
                  gopMs: entry.watcher.pictureSpacingMs(),
                  ...(entry.cost ?? { cpuPercent: null, droppedChunks: 0, restarts: 0 }),
                },
        };
      },
    } satisfies InputsHealth;
  });
