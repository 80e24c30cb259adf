/**
 * The forwarding threads themselves (workers/worker.ts), apart from the channels placed on them (pool.ts): each
 * thread's slot, requests and their answers, its messages, its event-loop delay and CPU time, its start, its
 * restart and its shutdown.
 *
 * Slot 0's thread starts at once; each other one when the pool first needs it (`wake`): a thread costs memory
 * and wake-ups, and one thread that has room forwards for less CPU than two that share the work.
 *
 * A thread that dies is started again in its slot, a second later if it died as it started, and the pool is
 * told so that it gives the thread back its channels. Its children died with it (setpriv --pdeathsig follows
 * the thread that started them) and Node closed its sockets.
 */
import { Worker } from "node:worker_threads";
import * as Effect from "effect/Effect";
import * as Runtime from "effect/Runtime";
import type * as Scope from "effect/Scope";
import type { ChannelId } from "../../../domain/base/ids.ts";
import { EventBus } from "../../events/event-bus.ts";
import type { OutputOptions } from "../../outputs/writer.ts";
import { forWorker, releaseWorker } from "../../runtime/sockets/own-ports.ts";
import { gatesForWorker } from "../../runtime/sockets/send-gates.ts";
import type { Priority, Scheduling } from "../../runtime/threads/priority.ts";
import { ChannelError } from "../channel-types.ts";
import type { Command, Request, WorkerMessage, WorkerSettings } from "./protocol.ts";

/** How long a stopping worker may take to stop its channels before its thread is ended anyway. */
const SHUTDOWN_MS = 10_000;
/**
 * A worker's event-loop delay is reported as the worst of its syncs over this window: the default scrape
 * interval of Prometheus, so a scrape sees every second since the one before, not one second in fifteen.
 */
const LOOP_DELAY_WINDOW_MS = 15_000;
/** A worker's CPU time is judged over this window (pool.ts): long enough that a burst is not a load. */
const CPU_WINDOW_MS = 5000;

interface LoopDelaySample {
  /** When the sync brought it (ms since the epoch). */
  readonly at: number;
  readonly p99: number;
  readonly max: number;
}
const inWindow = (sample: LoopDelaySample, now: number) => now - sample.at < LOOP_DELAY_WINDOW_MS;
/** The worst p99 and the longest delay of the samples inside the window at `now`; 0 and 0 with none. */
export const worstLoopDelay = (
  samples: ReadonlyArray<LoopDelaySample>,
  now: number,
): { readonly p99: number; readonly max: number } => {
  let p99 = 0;
  let max = 0;
  for (const sample of samples) {
    if (!inWindow(sample, now)) continue;
    p99 = Math.max(p99, sample.p99);
    max = Math.max(max, sample.max);
  }
  return { p99, max };
};

export interface Slot {
  readonly index: number;
  /** The thread; null until the pool first needs this slot. */
  worker: Worker | null;
  /** Requests waiting for their answer, by id. */
  readonly pending: Map<number, (result: Effect.Effect<unknown, ChannelError>) => void>;
  restarts: number;
  startedAt: number;
  /** Why the thread ended, when it failed with an error. */
  lastError: string | null;
  /** The worker's event-loop delay of each sync (about one a second) within the last LOOP_DELAY_WINDOW_MS. */
  loopDelays: LoopDelaySample[];
  /** What the thread runs at, once it is up. */
  scheduling: Scheduling | null;
  /**
   * The thread's CPU time (µs since it started) as each sync brought it, within the last CPU_WINDOW_MS, since
   * the thread last took a channel (`judgeAfresh`).
   */
  cpu: Array<{ readonly at: number; readonly micros: number }>;
  /** Its share of a core over the last whole window it had (`cpuShare`); null before the first. */
  lastShare: number | null;
}

/** Keeps a sync's event-loop delay, dropping the samples that left the window. */
export const noteLoopDelay = (slot: Slot, loopDelay: { readonly p99: number; readonly max: number }) => {
  const now = Date.now();
  slot.loopDelays = slot.loopDelays.filter((sample) => inWindow(sample, now));
  slot.loopDelays.push({ at: now, ...loopDelay });
};

/** Keeps a sync's reading of the thread's CPU time, dropping the readings that left the window. */
export const noteCpu = (slot: Slot, micros: number) => {
  const at = performance.now();
  slot.cpu = slot.cpu.filter((sample) => at - sample.at <= CPU_WINDOW_MS);
  slot.cpu.push({ at, micros });
  slot.lastShare = cpuShare(slot) ?? slot.lastShare;
};

/**
 * The thread's CPU time over the window as a share of one core: null until its readings span most of the
 * window since it last took a channel (a thread is not judged on a second, nor on the cost of starting
 * channels).
 */
export const cpuShare = (slot: Slot): number | null => {
  const [first] = slot.cpu;
  const last = slot.cpu.at(-1);
  if (first === undefined || last === undefined || last.at - first.at < CPU_WINDOW_MS * 0.75) return null;
  return (last.micros - first.micros) / 1000 / (last.at - first.at);
};

/** The thread takes a channel (a start, a move, a restart): its share is measured again from now. */
export const judgeAfresh = (slot: Slot) => {
  slot.cpu = [];
};

let nextRequest = 1;

/** Sends `command` to the slot's thread and waits for its answer (a thread that ends fails it). */
export const request = <A>(slot: Slot, command: Command): Effect.Effect<A, ChannelError> =>
  Effect.async<A, ChannelError>((resume) => {
    const worker = slot.worker;
    if (worker === null) {
      resume(
        Effect.fail(
          new ChannelError({
            reason: "not_running",
            message: `forwarding worker ${slot.index} is not started`,
          }),
        ),
      );
      return;
    }
    const id = nextRequest++;
    slot.pending.set(id, resume as (result: Effect.Effect<unknown, ChannelError>) => void);
    worker.postMessage({ id, command } satisfies Request);
    return Effect.sync(() => slot.pending.delete(id));
  });

/** What the threads tell the pool, which knows the channels. */
interface ThreadHooks {
  /** A channel on the slot's thread failed on its own. */
  readonly channelFailed: (slot: Slot, channel: ChannelId, message: string) => void;
  /** The slot has a new thread in place of one that died for `reason`: its channels go back to it. */
  readonly restarted: (slot: Slot, reason: string) => Effect.Effect<void>;
}

interface Threads {
  readonly slots: ReadonlyArray<Slot>;
  /** Starts the slot's thread if it is not running yet. */
  readonly wake: (slot: Slot) => void;
}

/**
 * `count` slots, the first `eager` with their thread started now, the others when woken; each thread restarted
 * when it dies, and stopped with the scope.
 */
export const makeThreads = (
  count: number,
  eager: number,
  options: { readonly outputs: OutputOptions; readonly previewIdleMs: number; readonly priority: Priority },
  hooks: ThreadHooks,
): Effect.Effect<Threads, never, EventBus | Scope.Scope> =>
  Effect.gen(function* () {
    const bus = yield* EventBus;
    const runFork = Runtime.runFork(yield* Effect.runtime<never>());
    const slots: Slot[] = [];
    let closing = false;

    const gone = (slot: Slot) =>
      new ChannelError({ reason: "crashed", message: `forwarding worker ${slot.index} stopped` });

    const logScheduling = (index: number, { priority, shortfall }: Scheduling) =>
      shortfall === null
        ? Effect.logInfo(`forwarding worker ${index} runs at ${priority} priority`)
        : Effect.logWarning(
            `forwarding worker ${index} runs at ${priority} priority, not ${options.priority}: ${shortfall}`,
          );

    const onMessage = (slot: Slot) => (message: WorkerMessage) => {
      switch (message.kind) {
        case "ready": {
          const first = slot.scheduling === null;
          slot.scheduling = message.scheduling;
          // Said once per worker: a restarted thread asks again and gets the same.
          if (first) runFork(logScheduling(slot.index, message.scheduling));
          return;
        }
        case "reply": {
          const resume = slot.pending.get(message.id);
          slot.pending.delete(message.id);
          if (resume === undefined) return;
          if ("error" in message) resume(Effect.fail(new ChannelError(message.error)));
          else resume(Effect.succeed(message.value));
          return;
        }
        case "event":
          return bus.emit(message.event);
        case "failed":
          return hooks.channelFailed(slot, message.channel, message.message);
        case "log":
          runFork(
            message.level === "error" ? Effect.logError(message.message) : Effect.logWarning(message.message),
          );
          return;
      }
    };

    const spawn = (slot: Pick<Slot, "index">): Worker => {
      const settings: WorkerSettings = {
        index: slot.index,
        ...options,
        ownPorts: forWorker(),
        sendGates: gatesForWorker(),
      };
      const worker = new Worker(new URL("./start.mjs", import.meta.url), {
        workerData: settings,
        name: `forwarding-${slot.index}`,
      });
      // A thread that died did not close its outputs' sockets itself: their ports are no longer ours.
      worker.once("exit", () => releaseWorker(settings.ownPorts));
      return worker;
    };

    const attach = (slot: Slot, worker: Worker) => {
      worker.on("message", onMessage(slot));
      worker.on("error", (error) => {
        slot.lastError = error.message;
      });
      worker.once("exit", (code) => {
        for (const resume of slot.pending.values()) resume(Effect.fail(gone(slot)));
        slot.pending.clear();
        if (closing) return;
        const reason = slot.lastError ?? `ended with code ${code}`;
        runFork(restart(slot, reason));
      });
    };

    const restart = (slot: Slot, reason: string) =>
      Effect.gen(function* () {
        // A thread that dies as it starts is not restarted in a tight loop.
        if (Date.now() - slot.startedAt < 1000) yield* Effect.sleep("1 second");
        if (closing) return;
        slot.restarts += 1;
        slot.lastError = null;
        begin(slot);
        yield* hooks.restarted(slot, reason);
      });

    const begin = (slot: Slot) => {
      slot.startedAt = Date.now();
      slot.cpu = [];
      slot.lastShare = null;
      slot.worker = spawn(slot);
      attach(slot, slot.worker);
    };
    const wake = (slot: Slot) => {
      if (slot.worker === null && !closing) begin(slot);
    };

    for (let index = 0; index < count; index++) {
      const slot: Slot = {
        index,
        worker: null,
        pending: new Map(),
        restarts: 0,
        startedAt: Date.now(),
        lastError: null,
        loopDelays: [],
        scheduling: null,
        cpu: [],
        lastShare: null,
      };
      if (index < eager) begin(slot);
      slots.push(slot);
    }
    // Closing: no thread is restarted from here on; each stops its channels (children reaped), then ends.
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(
        Effect.sync(() => {
          closing = true;
        }),
        Effect.forEach(
          slots,
          (slot) =>
            request(slot, { op: "shutdown" }).pipe(
              Effect.timeout(SHUTDOWN_MS),
              Effect.ignore,
              Effect.zipRight(Effect.promise(async () => slot.worker?.terminate())),
            ),
          { concurrency: "unbounded", discard: true },
        ),
      ),
    );
    return { slots, wake };
  });
