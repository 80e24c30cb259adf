/**
 * A forwarding worker: a thread that runs the channels placed on it (receivers, packet cores, selector,
 * merge, FEC and writers, as channel.ts builds them) and answers the supervisor's commands (protocol.ts).
 * Its channels' events go to the supervisor as they happen; their counters only when it asks (`sync`).
 */
import { parentPort, workerData } from "node:worker_threads";
import * as Cause from "effect/Cause";
import * as Deferred from "effect/Deferred";
import * as Effect from "effect/Effect";
import * as Exit from "effect/Exit";
import * as FiberId from "effect/FiberId";
import * as Layer from "effect/Layer";
import * as Logger from "effect/Logger";
import * as LogLevel from "effect/LogLevel";
import * as ManagedRuntime from "effect/ManagedRuntime";
import * as Option from "effect/Option";
import * as Scope from "effect/Scope";
import { PacketCore } from "../../../core/packet-core.ts";
import type { ChannelId } from "../../../domain/base/ids.ts";
import type { HlsServed } from "../../outputs/hls.ts";
import { continueRtp, rtpStates } from "../../outputs/rtp.ts";
import { closeLibSrt } from "../../runtime/ffi/libsrt.ts";
import { readingInTurns, turnLateness } from "../../runtime/sockets/batch-reader.ts";
import { adoptOwnPorts } from "../../runtime/sockets/own-ports.ts";
import { adoptSendGates } from "../../runtime/sockets/send-gates.ts";
import { makeLoopDelay } from "../../runtime/threads/loop-delay.ts";
import { newCopyStarted, oldCopyDone, whenNewCopyStarts } from "../../runtime/threads/move-word.ts";
import { raiseThisThread } from "../../runtime/threads/priority.ts";

import { makeChannelHost } from "../channel-host.ts";
import type { ChannelError, RunningChannel } from "../channel-types.ts";
import { ChannelError as ChannelErrorClass } from "../channel-types.ts";
import type { CueRecord, Scte35Watcher } from "../scte35-watcher.ts";
import type {
  ChannelSample,
  Command,
  Request,
  SyncReply,
  WorkerMessage,
  WorkerSettings,
} from "./protocol.ts";

const port = parentPort;
if (port === null) throw new Error("workers/worker.ts runs as a worker thread");
const settings = workerData as WorkerSettings;
const post = (message: WorkerMessage) => port.postMessage(message);

// First of all, before any socket or child: the scheduling this thread forwards at (runtime/threads/priority.ts),
// and the process-wide record of the outputs' sending ports that its inputs and outputs share.
const scheduling = raiseThisThread(settings.priority);
adoptOwnPorts(settings.ownPorts);
adoptSendGates(settings.sendGates);

// The few lines channel code logs (a listener that threw) go to the supervisor's log.
const forwardLogs = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ logLevel, message }) => {
    const text = Array.isArray(message) ? message.map(String).join(" ") : String(message);
    post({
      kind: "log",
      level: LogLevel.greaterThanEqual(logLevel, LogLevel.Error) ? "error" : "warning",
      message: text,
    });
  }),
);
const runtime = ManagedRuntime.make(Layer.merge(forwardLogs, Logger.minimumLogLevel(LogLevel.Warning)));

// How late the loop ran beyond a 20 ms timer (src/effects/runtime/threads/loop-delay.ts, per runtime). Each timer wakes
// the thread, which was most of what an idle worker cost, so it runs only while some channel here receives
// datagrams (checked at each sync): a worker whose channels have no input sleeps. While its inputs are read in
// turns (batch-reader.ts), the turns' own lateness is the figure and this timer rests too: a second timer would
// wake the thread as often again, for nothing the turns do not tell.
const loopDelay = makeLoopDelay(20);
loopDelay.measure(false);

// The channels' scope lives as long as the thread; `shutdown` closes it (every channel stopped, every child
// reaped) before the supervisor ends the thread.
const scope = await runtime.runPromise(Scope.make());
const host = await runtime.runPromise(
  Scope.extend(
    makeChannelHost({
      outputs: settings.outputs,
      previewIdleMs: settings.previewIdleMs,
      emit: (event) => post({ kind: "event", event }),
      onFailed: (channel, message) => post({ kind: "failed", channel, message }),
    }),
    scope,
  ),
);

/** Each channel's cue log mark as of the last sync: only cues added or changed since cross in the next. */
const cueMarks = new Map<ChannelId, number>();

/** The channel stopped in this thread (stopped, or moved away): its cue mark goes with it. */
const stopHere = (id: ChannelId) =>
  Effect.zipRight(
    Effect.sync(() => cueMarks.delete(id)),
    host.stop(id),
  );

const newCues = (id: ChannelId, watcher: Scte35Watcher): ReadonlyArray<CueRecord> => {
  const { cues, mark } = watcher.changedSince(cueMarks.get(id) ?? 0);
  cueMarks.set(id, mark);
  return cues;
};

/** An input heard within the last sync period: the worker is forwarding. */
const FLOWING_MS = 1500;

const threadCpuMicros = () => {
  const { user, system } = process.threadCpuUsage();
  return user + system;
};

const sync = (): SyncReply => {
  const channels: ChannelSample[] = [];
  for (const id of host.running()) {
    const channel = host.get(id);
    if (channel === undefined) continue;
    channels.push({
      id,
      summary: channel.summary(),
      cueCounts: channel.watcher.counts(),
      newCues: newCues(id, channel.watcher),
      previewActive: channel.previewActive(),
    });
  }
  // A second in which both measured (the turns began or ended) reports the worse of the two.
  const turns = turnLateness();
  const reply = {
    channels,
    loopDelay: {
      p99: Math.max(loopDelay.percentile(99) / 1e6, turns?.p99 ?? 0),
      max: Math.max(loopDelay.max() / 1e6, turns?.max ?? 0),
    },
    cpuMicros: threadCpuMicros(),
  };
  loopDelay.reset();
  loopDelay.measure(
    !readingInTurns() &&
      channels.some((channel) =>
        channel.summary.inputs.some(
          (input) => input.lastPacketAgeMs !== null && input.lastPacketAgeMs < FLOWING_MS,
        ),
      ),
  );
  return reply;
};

/** The releases of moving channels under way here: each runs once, whoever asks first (move-word.ts). */
const releasing = new Map<ChannelId, Deferred.Deferred<number, ChannelError>>();

/** The TS packets the channel's active input had brought when it let go: the hand-over's `packets_at_cut`. */
const packetsAtCut = (channel: RunningChannel): number => {
  const active = channel.activeInput();
  const inputs = channel.summary().inputs;
  const input = inputs.find((each) => each.role === active) ?? inputs[0];
  return Math.floor((input?.core.bytes ?? 0) / 188);
};

/**
 * What follows waits for a task of its own (a timer's), so that this thread's read turns due meanwhile run
 * first: Effect yields to microtasks only, and a copy's release and stop in one task held every other channel
 * of the thread for their 2–6 ms of CPU together.
 */
const afterTurns = Effect.async<void>((resume) => {
  const timer = setTimeout(() => resume(Effect.void), 0);
  return Effect.sync(() => clearTimeout(timer));
});

/**
 * A move's second half: inputs closed, outputs drained, the new copy told in its thread (it sends from then
 * on), then, in a task of its own (`afterTurns`), the channel stopped. Asked by the new copy's start
 * (`whenNewCopyStarts`) or by the supervisor. Answers the TS packets its active input had brought
 * (`packetsAtCut`).
 */
const release = (id: ChannelId, word: SharedArrayBuffer | undefined) =>
  Effect.suspend(() => {
    const under = releasing.get(id);
    if (under !== undefined) return Deferred.await(under);
    const done = Deferred.unsafeMake<number, ChannelError>(FiberId.none);
    releasing.set(id, done);
    return host
      .with(id, (channel) => Effect.as(channel.release(500), channel))
      .pipe(
        Effect.map((channel) => {
          if (word !== undefined) oldCopyDone(word);
          return packetsAtCut(channel);
        }),
        Effect.tap(() => Effect.zipRight(afterTurns, stopHere(id))),
        Effect.exit,
        Effect.flatMap((exit) => Deferred.done(done, exit)),
        Effect.zipRight(Deferred.await(done)),
        Effect.ensuring(Effect.sync(() => releasing.delete(id))),
      );
  });

const served = (channel: RunningChannel, output: string | null): Effect.Effect<HlsServed | null> =>
  output === null ? channel.preview : Effect.succeed(channel.hls(output));

const run = (command: Command): Effect.Effect<unknown, ChannelError> => {
  switch (command.op) {
    case "start":
      return host.start(command.spec, command.handover, command.handedOver).pipe(
        Effect.tap(() => {
          if (command.handedOver !== undefined) newCopyStarted(command.handedOver);
        }),
      );
    case "stop":
      return stopHere(command.channel);
    case "senders":
      return host.with(command.channel, (channel) =>
        Effect.sync(() => {
          const word = command.handedOver;
          if (word !== undefined)
            whenNewCopyStarts(word, () => {
              // The cut at once, in this task: the old copy's last datagrams sent and the new copy told, before
              // the release's fiber and the sockets' closing take their turns of this thread's loop.
              const cut = host.get(command.channel)?.cut() === true;
              if (cut) oldCopyDone(word);
              // After a cut the new copy sends already, and the rest waits for the turns due now; without one,
              // the release closes the inputs and says done at once.
              const rest = release(command.channel, word);
              runtime.runFork(Effect.ignore(cut ? Effect.zipRight(afterTurns, rest) : rest));
            });
          return channel.senders();
        }),
      );
    case "release":
      return release(command.channel, command.handedOver);
    case "rtpStates":
      return Effect.sync(() => rtpStates(command.channel, command.outputs));
    case "handedOver":
      return Effect.sync(() => {
        continueRtp(command.channel, command.rtp);
        oldCopyDone(command.handedOver);
      });
    case "prepare":
      return Effect.sync(() => PacketCore.prepare(command.cores));
    case "settle":
      return host.with(command.channel, (channel) => channel.settle);
    case "fleetCut":
      return host.with(command.channel, (channel) => Effect.promise(() => channel.fleetCut()));
    case "fleetResume":
      return host.with(command.channel, (channel) => Effect.sync(() => channel.fleetResume(command.how)));
    case "fleetResumed":
      return host.with(command.channel, (channel) =>
        Effect.promise(() => channel.fleetResumed(command.withinMs)),
      );
    case "applyOutput":
      return host.with(command.channel, (channel) => channel.applyOutput(command.output));
    case "removeOutput":
      return host.with(command.channel, (channel) => channel.removeOutput(command.output));
    case "reconfigure":
      return host.with(command.spec.id, (channel) => channel.reconfigure(command.spec));
    case "switchInput":
      return host.with(command.channel, (channel) => channel.switchInput(command.role));
    case "insertCue":
      return host.with(command.channel, (channel) =>
        channel.insertCue(command.section, command.program, command.by),
      );
    case "sync":
      return Effect.sync(sync);
    case "shutdown":
      // Every channel stopped, then libsrt let go while this thread still runs (LibSrt.release).
      return Scope.close(scope, Exit.void).pipe(Effect.zipRight(Effect.promise(closeLibSrt)));
    case "status":
      return Effect.sync(() => host.get(command.channel)?.status() ?? null);
    case "capture":
      return Effect.suspend(() => {
        const channel = host.get(command.channel);
        return channel === undefined
          ? Effect.succeed(new Uint8Array(0))
          : channel.capture(command.ms, command.maxBytes);
      });
    case "hls":
      return Effect.suspend(() => {
        const channel = host.get(command.channel);
        if (channel === undefined) return Effect.succeed(null);
        return Effect.map(served(channel, command.output), (hls) => {
          if (hls === null) return null;
          const file = command.file;
          if (file === null) return true;
          return file.kind === "playlist" ? hls.playlist() : hls.segment(file.name);
        });
      });
  }
};

port.on("message", (request: Request) => {
  runtime.runCallback(run(request.command), {
    onExit: (exit) => {
      if (Exit.isSuccess(exit)) {
        post({ kind: "reply", id: request.id, value: exit.value });
        return;
      }
      const failure = Cause.failureOption(exit.cause);
      const error = Option.isSome(failure)
        ? failure.value
        : new ChannelErrorClass({
            reason: "crashed",
            message: `internal error: ${Cause.pretty(exit.cause)}`,
          });
      post({ kind: "reply", id: request.id, error: { reason: error.reason, message: error.message } });
    },
  });
});

post({ kind: "ready", scheduling });
