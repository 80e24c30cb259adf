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
 * - A move (`move`) starts the channel's new copy beside the old one, its UDP inputs joining the old sockets'
 *   ports connected to the senders they hear (udp-receiver.ts), so the kernel hands the stream over between two
 *   datagrams; the old copy then closes its inputs, lets its outputs send what they queued, and stops. Each
 *   move is a `handover` event (handover/report.ts).
 */
import * as Effect from "effect/Effect";
import type { ChannelId, OutputId } from "../../../domain/base/ids.ts";
import type { InputRole } from "../../../domain/channel/redundancy.ts";
import { EventBus } from "../../events/event-bus.ts";
import { adoptionFor, letGo, splitForHandOver } from "../../handover/peer.ts";
import { reportHandoverOn } from "../../handover/report.ts";
import type { RtpState } from "../../outputs/rtp.ts";
import type { OutputOptions } from "../../outputs/writer.ts";
import { makeMoveWord } from "../../runtime/threads/move-word.ts";
import type { Priority } from "../../runtime/threads/priority.ts";
import type {
  ChannelSpec,
  ChannelsService,
  Handover,
  InsertedCue,
  OutputSpec,
  WorkerStatus,
} from "../channel-types.ts";
import { ChannelError, notRunning } from "../channel-types.ts";
import type { HolderCut, Resumed, Resumption } from "../cut-stage.ts";
import { applySync, type Entry, mirrorReads, portMate, runningEntry } from "./mirror.ts";
import { placeChannel, planRebalance } from "./placement.ts";
import type { SyncReply } from "./protocol.ts";
import { makeRemoteReads } from "./remote-reads.ts";
import { cpuShare, judgeAfresh, makeThreads, request, type Slot, worstLoopDelay } from "./threads.ts";

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

    const move = (id: ChannelId, to: number) =>
      withEntry(id, (entry, from) =>
        Effect.gen(function* () {
          const target = slots[to];
          if (target === undefined)
            return yield* Effect.fail(
              new ChannelError({
                reason: "not_running",
                message: `there is no forwarding worker ${to} (0–${slots.length - 1})`,
              }),
            );
          if (target === from) return;
          const mate = portMate(entries, entry.spec);
          if (mate !== undefined) {
            return yield* Effect.fail(
              new ChannelError({
                reason: "not_running",
                message: `channel ${id} shares an SRT port by stream id with channel ${mate.spec.id}: channels on one such port run on one forwarding worker, whose listener the port is`,
              }),
            );
          }
          wake(target);
          judgeAfresh(target);
          // The two copies' own word (move-word.ts): they hand the stream over between themselves, without
          // waiting for the replies to cross this thread (a silence of hundreds of ms when it is busy).
          const handedOver = makeMoveWord();
          const startedAt = performance.now();
          const handover = yield* request<Handover>(from, { op: "senders", channel: id, handedOver });
          yield* request(target, { op: "start", spec: entry.spec, handover, handedOver }).pipe(
            Effect.tapError(() => Effect.ignore(request(target, { op: "stop", channel: id }))),
          );
          entry.worker = to;
          const packets = yield* request<number>(from, { op: "release", channel: id, handedOver }).pipe(
            Effect.orElseSucceed(() => null),
          );
          // The kernel gives each datagram to one socket and the new copy holds what it reads until the old
          // one has sent its last (move-word.ts): nothing is lost or repeated that either copy could count.
          reportHandoverOn(bus, {
            kind: "thread",
            mode: "thread",
            channel: id,
            from: `thread ${from.index}`,
            to: `thread ${to}`,
            packetsAtCut: packets ?? 0,
            durationMs: performance.now() - startedAt,
            lost: 0,
            repeated: 0,
          });
          yield* request(target, { op: "settle", channel: id });
        }),
      );

    /** A rebalance's moves are under way: no other is decided meanwhile. */
    let balancing = false;
    /** A worker over the move line hands channels to a calmer one (placement.ts `planRebalance`). */
    const rebalance: Effect.Effect<unknown> = Effect.suspend(() => {
      if (balancing) return Effect.void;
      const runningOn = (index: number) =>
        [...entries.entries()].flatMap(([id, entry]) =>
          entry.worker === index && entry.running ? [id] : [],
        );
      const plan = planRebalance(
        seats((slot) => (slot.worker === null ? null : cpuShare(slot))),
        { busy: line, move: moveLine },
        (seat) => runningOn(seat.index).length,
      );
      if (plan === null) return Effect.void;
      const { share } = plan;
      const busy = plan.from.slot;
      const target = plan.to.slot;
      const ids = runningOn(busy.index);
      // Channels sharing an SRT port by stream id stay with the port's listener.
      const moving = ids
        .filter((id) => {
          const entry = entries.get(id);
          return entry === undefined || portMate(entries, entry.spec) === undefined;
        })
        .slice(-plan.count);
      balancing = true;
      return Effect.forkIn(
        Effect.logInfo(
          `forwarding worker ${busy.index} is busy (${Math.round(share * 100)} % of a core over 5 s): ` +
            `${moving.length} of its ${ids.length} channels move to worker ${target.index}` +
            (target.worker === null ? ", started for them" : ""),
        ).pipe(
          Effect.zipRight(
            Effect.forEach(
              moving,
              (id) =>
                move(id, target.index).pipe(
                  Effect.catchAll((error) =>
                    Effect.logWarning(`channel ${id} stays on worker ${busy.index}: ${error.message}`),
                  ),
                ),
              { discard: true },
            ),
          ),
          Effect.ensuring(
            Effect.sync(() => {
              judgeAfresh(busy);
              judgeAfresh(target);
              balancing = false;
            }),
          ),
        ),
        scope,
      );
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
      applyOutput: (channelId: ChannelId, output: OutputSpec) =>
        withEntry(channelId, (entry, slot) =>
          Effect.tap(request(slot, { op: "applyOutput", channel: channelId, output }), () => {
            entry.spec = {
              ...entry.spec,
              outputs: [...entry.spec.outputs.filter((o) => o.id !== output.id), output],
            };
          }),
        ),
      reconfigure: (spec: ChannelSpec) =>
        withEntry(spec.id, (entry, slot) =>
          Effect.tap(request(slot, { op: "reconfigure", spec }), () => {
            entry.spec = { ...spec, outputs: entry.spec.outputs };
          }),
        ),
      removeOutput: (channelId: ChannelId, outputId: OutputId) =>
        withEntry(channelId, (entry, slot) =>
          Effect.tap(request(slot, { op: "removeOutput", channel: channelId, output: outputId }), () => {
            entry.spec = { ...entry.spec, outputs: entry.spec.outputs.filter((o) => o.id !== outputId) };
          }),
        ),
      switchInput: (channelId: ChannelId, role: InputRole) =>
        withEntry(channelId, (_, slot) => request(slot, { op: "switchInput", channel: channelId, role })),
      insertCue: (channelId: ChannelId, section: Uint8Array, program: number | null, by: string) =>
        withEntry(channelId, (_, slot) =>
          request<InsertedCue>(slot, { op: "insertCue", channel: channelId, section, program, by }),
        ),
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
      fleetCut: (id: ChannelId) =>
        withEntry(id, (_, slot) => request<HolderCut | null>(slot, { op: "fleetCut", channel: id })),
      fleetResume: (id: ChannelId, how: Resumption) =>
        withEntry(id, (_, slot) => request<void>(slot, { op: "fleetResume", channel: id, how })),
      fleetResumed: (id: ChannelId, withinMs: number) =>
        withEntry(id, (_, slot) =>
          request<Resumed | null>(slot, { op: "fleetResumed", channel: id, withinMs }),
        ),
      killWorker: (index: number) =>
        Effect.promise(async () => {
          await slots[index]?.worker?.terminate();
        }),
    } satisfies ChannelsService;
  });
