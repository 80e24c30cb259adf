/**
 * Channels on forwarding workers: N threads (threads.ts), each running the channels placed on it. The
 * supervisor here keeps, for every channel, the spec it last gave and a mirror of what the last `sync`
 * reported (counters, cue counts, new cues: mirror.ts), so that the read model, the pages and the metrics read
 * plain values on the main thread; everything else is a request to the worker (remote-reads.ts for the reads).
 *
 * - Placement: one worker runs while it has room. A new channel goes to the started worker with the fewest
 *   channels among those under the busy line (`DISTRIBUTARY_WORKER_BUSY_PERCENT` of a core over 5 s); with none,
 *   the next worker starts and takes it. Running channels move off a worker past the move line
 *   (`DISTRIBUTARY_WORKER_MOVE_PERCENT`, the busy line by default; a move costs the moved channel's outputs a
 *   short silence): a part of them (a move each, below) to a clearly less busy worker, or to the next one,
 *   which starts, as many as would even the two out. A worker is judged on a whole window since it last took a
 *   channel, not on the cost of starting channels. With the busy line at 0 every worker starts at once and a
 *   new channel goes to the one with the fewest channels.
 * - A worker that dies is started again (threads.ts), counted, reported as a `worker_restarted` event, and
 *   given back its channels (their latest specs).
 * - A move (`move`, and the rebalance's moves: moves.ts) starts the channel's new copy beside the old one, and
 *   the two hand the stream over between two datagrams; each is a `handover` event.
 * - The requests about one channel go to its worker (commands.ts); an upgrade's new process adopts a channel
 *   from the old one (`start` with an adoption, handover/peer.ts) and its old process hands one off (`handOff`).
 */
import * as Effect from "effect/Effect";
import type { ChannelId } from "../../../domain/base/ids.ts";
import { EventBus } from "../../events/event-bus.ts";
import { adoptionFor, letGo, splitForHandOver } from "../../handover/peer.ts";
import type { RtpState } from "../../outputs/rtp.ts";
import type { OutputOptions } from "../../outputs/writer.ts";
import { makeMoveWord } from "../../runtime/threads/move-word.ts";
import type { Priority } from "../../runtime/threads/priority.ts";
import type { ChannelSpec, ChannelsService, Handover, WorkerStatus } from "../channel-types.ts";
import { type ChannelError, notRunning } from "../channel-types.ts";
import { channelCommands } from "./commands.ts";
import { applySync, type Entry, mirrorReads, portMate, runningEntry } from "./mirror.ts";
import { makeMoves } from "./moves.ts";
import { placeChannel } from "./placement.ts";
import type { SyncReply } from "./protocol.ts";
import { makeRemoteReads } from "./remote-reads.ts";
import { judgeAfresh, makeThreads, request, type Slot, worstLoopDelay } from "./threads.ts";

const SYNC_TIMEOUT = "2 seconds";

export const makeWorkerChannels = (
  count: number,
  {
    busyPercent,
    movePercent,
    ...options
  }: {
    readonly outputs: OutputOptions;
    readonly previewIdleMs: number;
    readonly priority: Priority;
    readonly busyPercent: number;
    readonly movePercent: number;
  },
) =>
  Effect.gen(function* () {
    const bus = yield* EventBus;
    const runtime = yield* Effect.runtime<never>();
    /** The pool's own scope: a rebalance's moves run in it, and end with the service. */
    const scope = yield* Effect.scope;
    const entries = new Map<ChannelId, Entry>();
    const failures = new Map<ChannelId, string>();

    const failed = (id: ChannelId, message: string) => {
      entries.delete(id);
      failures.set(id, message);
      bus.emit({ type: "channel_failed", channel: id, message });
    };

    /** A worker died and has a new thread: its channels started there again. */
    const restarted = (slot: Slot, reason: string) =>
      Effect.gen(function* () {
        const carried = [...entries.entries()].filter(([, entry]) => entry.worker === slot.index);
        bus.emit({
          type: "worker_restarted",
          worker: slot.index,
          channels: carried.map(([id]) => id),
          reason: `stopped (${reason})`,
        });
        yield* Effect.forEach(
          carried,
          ([id, entry]) =>
            Effect.gen(function* () {
              entry.running = false;
              entry.summary = null;
              yield* request(slot, { op: "start", spec: entry.spec }).pipe(
                Effect.matchEffect({
                  onFailure: (error) => Effect.sync(() => failed(id, error.message)),
                  onSuccess: () =>
                    Effect.sync(() => {
                      entry.running = true;
                      bus.emit({ type: "channel_started", channel: id });
                    }),
                }),
              );
            }),
          { discard: true },
        );
      });

    const line = busyPercent / 100;
    const moveLine = Math.max(line, movePercent / 100);
    const { slots, wake } = yield* makeThreads(count, line === 0 ? count : 1, options, {
      channelFailed: (slot, channel, message) => {
        const entry = entries.get(channel);
        // A copy left behind by a move is not the channel.
        if (entry !== undefined && entry.worker === slot.index) failed(channel, message);
      },
      restarted,
    });
    const slotOf = (entry: Entry): Slot => slots[entry.worker] as Slot;
    const running = (id: ChannelId) => runningEntry(entries, id);

    const withEntry = <A>(id: ChannelId, use: (entry: Entry, slot: Slot) => Effect.Effect<A, ChannelError>) =>
      Effect.suspend(() => {
        const entry = entries.get(id);
        return entry === undefined || !entry.running
          ? Effect.fail(notRunning(id))
          : use(entry, slotOf(entry));
      });

    /** The workers as placement.ts weighs them, each with its share of a core as `share` says. */
    const seats = (share: (slot: Slot) => number | null) => {
      const channels = slots.map(() => 0);
      for (const entry of entries.values()) channels[entry.worker] = (channels[entry.worker] ?? 0) + 1;
      return slots.map((slot) => ({
        slot,
        index: slot.index,
        started: slot.worker !== null,
        share: share(slot),
        channels: channels[slot.index] ?? 0,
      }));
    };
    const started = () => slots.filter((slot) => slot.worker !== null);
    /** Where a new channel goes (its thread started if it was not). */
    const place = (spec: ChannelSpec): Slot => {
      const mate = portMate(entries, spec);
      const slot =
        (mate === undefined ? undefined : slots[mate.worker]) ??
        placeChannel(
          seats((slot) => slot.lastShare),
          line,
        )?.slot ??
        (slots[0] as Slot);
      wake(slot);
      judgeAfresh(slot);
      return slot;
    };

    const start = Effect.fn("Channels.start")(function* (spec: ChannelSpec) {
      if (entries.has(spec.id)) return;
      const entry: Entry = {
        spec,
        worker: place(spec).index,
        running: false,
        summary: null,
        cueCounts: null,
        cues: [],
        previewActive: false,
      };
      entries.set(spec.id, entry);
      // An upgrade's new process takes the channel from the old one (handover/peer.ts) rather than binding anew.
      const adoption = yield* Effect.promise(() => adoptionFor(spec.id));
      const handedOver = adoption === null ? undefined : makeMoveWord();
      const split = splitForHandOver(spec);
      yield* request(
        slotOf(entry),
        adoption === null
          ? { op: "start", spec }
          : { op: "start", spec: split.now, handover: adoption.senders, handedOver },
      ).pipe(
        Effect.tapError((error) =>
          Effect.sync(() => {
            adoption?.abandon();
            failed(spec.id, error.message);
          }),
        ),
      );
      entry.running = true;
      failures.delete(spec.id);
      bus.emit({ type: "channel_started", channel: spec.id });
      if (adoption === null || handedOver === undefined) return;
      const rtp = yield* letGo(adoption, spec.id).pipe(Effect.tapError(() => stop(spec.id)));
      yield* request(slotOf(entry), { op: "handedOver", channel: spec.id, rtp, handedOver });
      for (const output of split.after)
        yield* request(slotOf(entry), { op: "applyOutput", channel: spec.id, output });
      yield* request(slotOf(entry), { op: "settle", channel: spec.id });
    });

    /** An upgrade's old process gives a channel to the new one (handover/upgrade.ts); see handover/peer.ts. */
    const handOff = (id: ChannelId) =>
      withEntry(id, (entry, from) =>
        Effect.gen(function* () {
          // No move word: the new copy is in another process, and hears that the old one is done by its answer.
          const senders = yield* request<Handover>(from, { op: "senders", channel: id });
          const letGo = Effect.gen(function* () {
            yield* request(from, { op: "release", channel: id });
            entries.delete(id);
            return yield* request<Record<string, RtpState>>(from, {
              op: "rtpStates",
              channel: id,
              outputs: entry.spec.outputs.map((output) => output.id),
            });
          });
          return { spec: entry.spec, senders, letGo };
        }),
      );

    const stop = Effect.fn("Channels.stop")(function* (id: ChannelId) {
      failures.delete(id);
      const entry = entries.get(id);
      if (entry === undefined) return;
      entries.delete(id);
      yield* Effect.ignore(request(slotOf(entry), { op: "stop", channel: id }));
      bus.emit({ type: "channel_stopped", channel: id });
    });

    const { move, rebalance } = makeMoves({
      bus,
      scope,
      entries,
      slots,
      wake,
      withEntry,
      seats,
      lines: { busy: line, move: moveLine },
    });

    const sync = Effect.suspend(() =>
      Effect.forEach(
        started(),
        (slot) =>
          // A worker too busy to answer within the tick keeps its last figures; the read model goes on.
          request<SyncReply>(slot, { op: "sync" }).pipe(
            Effect.timeout(SYNC_TIMEOUT),
            Effect.map((reply) => applySync(entries, slot, reply)),
            Effect.ignore,
          ),
        { concurrency: "unbounded", discard: true },
      ),
    ).pipe(Effect.zipRight(rebalance));

    return {
      start,
      stop,
      ...channelCommands(withEntry),
      sync,
      ...mirrorReads(entries, failures),
      ...makeRemoteReads(runtime, running, slotOf),
      workers: (): ReadonlyArray<WorkerStatus> => {
        const load = seats((slot) => slot.lastShare).map((seat) => seat.channels);
        const now = Date.now();
        return started().map((slot) => {
          const delay = worstLoopDelay(slot.loopDelays, now);
          return {
            index: slot.index,
            channels: load[slot.index] ?? 0,
            cpuShare: slot.lastShare,
            restarts: slot.restarts,
            loopDelayP99Ms: delay.p99,
            loopDelayMaxMs: delay.max,
            priority: slot.scheduling?.priority ?? null,
          };
        });
      },
      move,
      handOff,
      killWorker: (index: number) =>
        Effect.promise(async () => {
          await slots[index]?.worker?.terminate();
        }),
    } satisfies ChannelsService;
  });
