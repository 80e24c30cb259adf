/**
 * A channel's fan-out: what its input path forwards goes, untouched, to every enabled output — the plain UDP
 * outputs through the turn's batch, the others through their queues, the RTMP outputs through the shared
 * remux, the outputs with a policy through their group's rewriter (policy-groups.ts) — and to the taps that run
 * (taps.ts: the pages' preview, a capture for a still). While the slate is on air the input's packets go to the
 * slate instead; on the way they pass the channel's TS filters, in the order filters.ts lists them.
 *
 * The per-datagram part is plain synchronous code: it allocates nothing beyond the chunk it forwards (one copy
 * of the datagram's TS, shared by every output that keeps it) and never waits on an output. What it offers to
 * is rebuilt, as a plain array, whenever an output, a policy, a tap, the send gate or the read pace changes.
 */
import * as Effect from "effect/Effect";
import type * as Scope from "effect/Scope";
import type { CueInserter } from "../../core/cue-insert/inserter.ts";
import type { PacketCore } from "../../core/packet-core.ts";
import { moveBridges, type Route, untouchedRoute } from "../../core/ts-policy/move-bridges.ts";
import { isUntouched } from "../../domain/channel/output-policy.ts";
import type { OutputProtocol } from "../../domain/url/url.ts";
import { type ReadPace, readPaceMs } from "../runtime/sockets/batch-reader.ts";
import type { BatchSink } from "../runtime/sockets/thread-sender.ts";
import type { TurnBatch } from "../runtime/sockets/turn-batch.ts";
import { doneReader, whenOldCopyDone } from "../runtime/threads/move-word.ts";
import { asOneTurn } from "../runtime/timers/end-of-turn.ts";
import { type CutStage, makeCutStage } from "./cut-stage.ts";
import { makeChannelFilters } from "./filters.ts";
import { makeLeaseFence } from "./lease-fence.ts";
import type { OutputSet } from "./output-set.ts";
import { makePolicyGroups, type PolicyGroups, type PolicyMember } from "./policy-groups.ts";
import type { FanOutTaps } from "./taps.ts";

/** What a moved copy holds at most until the old copy is done: ~5 s of a 7 Mbit/s stream. */
const MAX_HELD = 4096;

/**
 * Outputs that send the TS packets as they come, for whom every millisecond a datagram waits to be read is
 * added latency; the others (RTMP, RTSP, HLS, files) send whole frames or segments.
 */
const AS_THEY_COME: ReadonlySet<OutputProtocol> = new Set(["udp", "rtp", "srt", "rist"]);

export interface FanOut {
  /** Offers the TS packets `core` just found in `datagram` to every output (or to the slate's return). */
  readonly forward: (datagram: Uint8Array, core: PacketCore) => void;
  /** Offers the TS payloads `core` accepted from one whole read to the turn batch, as one run. */
  readonly forwardRun: (core: PacketCore) => void;
  /**
   * Whether the plain UDP outputs' turn batch and the RTMP outputs' remux are all that take the inputs'
   * datagrams now (no queue, policy group, tap or held copy): a UDP input's whole read then comes at once, to
   * `forwardRun`.
   */
  readonly takesRuns: () => boolean;
  /** Offers TS packets to every output: the input's, or the slate's; after an operator's cue, through its stage. */
  readonly deliver: (view: Uint8Array) => void;
  /** Offers TS packets to every output as they are (the cue stage's own). */
  readonly send: (view: Uint8Array) => void;
  /** Sends what a moved copy held, in order, and forwards as usual from then on. */
  readonly letGo: () => void;
  readonly rebuild: () => void;
  /** How long the inputs' datagrams may wait to be read (the input path reads it). */
  readonly pace: ReadPace;
  readonly setFailoverAfterMs: (ms: number) => void;
  readonly groups: PolicyGroups;
  readonly taps: FanOutTaps;
  /** The input's packets go to `to` instead (the slate's, while it is on air), or to the outputs again (null). */
  readonly divert: (to: ((view: Uint8Array) => void) | null) => void;
  /** On a fleet node, the channel's hand-over between holders (cut-stage.ts). */
  readonly cutStage: CutStage | null;
}

export const makeFanOut = (options: {
  readonly channelId: () => string;
  /** On a fleet node, the channel's send gate (lease-fence.ts). */
  readonly sendGate: number | undefined;
  readonly outputs: OutputSet;
  /** The plain UDP outputs' batch (runtime/sockets/turn-batch.ts): its sinks are set at each rebuild. */
  readonly turnBatch: TurnBatch;
  readonly inserter: CueInserter;
  /** Started by a move: hold what it forwards until the old copy is done (`letGo`). */
  readonly holds: boolean;
  /** The move's word (ChannelOptions.handedOver): once the old copy says it is done, no `letGo` is waited for. */
  readonly handedOver?: SharedArrayBuffer | undefined;
  /** Each PID's last continuity counter as it left the channel (the bridges of an output that moves). */
  readonly lastCcOut: () => Map<number, number>;
  readonly log: (line: Effect.Effect<void>) => void;
}): Effect.Effect<FanOut, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { inserter, outputs, turnBatch } = options;
    /** The preview and captures running now: they get what the outputs get. */
    const tapping = new Set<(chunk: Uint8Array) => void>();
    // The fan-out reads a plain array: cheaper per datagram than iterating a Map.
    let offers: ReadonlyArray<(chunk: Uint8Array) => void> = [];
    /** Whether an offer keeps the chunk it is given (a queue, a tap); the remux copies what it needs. */
    let kept = false;
    /** The remux's offer, while it is the only one (no queue, policy group or tap): it takes whole reads too. */
    let remuxAlone: ((chunk: Uint8Array) => void) | null = null;
    let failoverAfterMs = 0;
    /** The outputs with a policy, one rewriter per distinct policy (policy-groups.ts). */
    const groups = makePolicyGroups(() => rebuild());
    /** The path each enabled output took at the last rebuild: an output that changes path gets bridges. */
    let routes = new Map<string, Route>();
    /** On a fleet node, the hand-over between holders (made below, once what it passes datagrams to is). */
    let cutStage: CutStage | null = null;
    const lease = makeLeaseFence({
      gate: options.sendGate,
      channelId: options.channelId,
      log: options.log,
      rebuild: (at) => rebuild(at),
    });
    const pace: ReadPace = {
      ms: readPaceMs(true, 0),
      ...(lease.fence === undefined ? {} : { fence: lease.fence }),
    };

    const rebuild = (at = lease.now()) => {
      const sending = lease.sends(at);
      const enabled = sending ? outputs.enabled() : [];
      const remuxOffer = outputs.remuxOffer(enabled);
      const sinks: BatchSink[] = [];
      const queued: Array<(chunk: Uint8Array) => void> = [];
      const members: PolicyMember[] = [];
      for (const { spec: outputSpec, output } of enabled) {
        const policy = outputSpec.policy;
        if (output.flv === null && policy != null && !isUntouched(policy)) {
          members.push({ id: outputSpec.id, name: outputSpec.name, policy, output });
          continue;
        }
        const sink = output.batchSink();
        if (sink !== null) sinks.push(sink);
        else if (output.flv === null) queued.push(output.offer);
      }
      turnBatch.sinks = sinks;
      const rewritten = groups.rebuild(members);
      const before = routes;
      routes = new Map();
      let lastCc: Map<number, number> | undefined;
      for (const { spec: outputSpec, output } of enabled) {
        const now = groups.route(outputSpec.id) ?? untouchedRoute;
        routes.set(outputSpec.id, now);
        const was = before.get(outputSpec.id);
        if (was === undefined || was === now) continue;
        lastCc ??= options.lastCcOut();
        const bridges = moveBridges(was, now, lastCc);
        if (bridges === null) continue;
        const sink = output.batchSink();
        if (sink !== null) sink(Buffer.from(bridges), bridges.length);
        else output.offer(bridges);
      }
      offers = [...queued, ...(remuxOffer === null ? [] : [remuxOffer]), ...rewritten, ...tapping];
      remuxAlone = remuxOffer !== null && offers.length === 1 ? remuxOffer : null;
      kept = queued.length > 0 || tapping.size > 0;
      pace.ms = readPaceMs(
        enabled.some((entry) => AS_THEY_COME.has(entry.output.protocol)),
        failoverAfterMs,
      );
      // Last: a new holder's first datagrams (from its ring) go to the outputs just set.
      cutStage?.gate(sending);
    };

    /**
     * A copy started by a move holds what it forwards until the old copy has sent its last datagrams (`letGo`):
     * the old copy's inputs still hold datagrams older than the new copy's first, and two threads sending at
     * once would reorder them at the destination.
     */
    let held: Uint8Array[] | null = options.holds ? [] : null;
    const oldCopyDone = options.handedOver === undefined ? null : doneReader(options.handedOver);
    /** Where the input's packets go instead of the outputs: the slate, while on air. */
    let diverted: ((view: Uint8Array) => void) | null = null;

    const addAndRemux = (payload: Uint8Array) => {
      turnBatch.add(payload);
      remuxAlone?.(payload);
    };
    const offerAll = (chunk: Uint8Array) => {
      for (let i = 0; i < offers.length; i++) offers[i]?.(chunk);
    };
    const letGo = () => {
      const waiting = held;
      held = null;
      if (waiting !== null)
        asOneTurn(() => {
          for (const chunk of waiting) {
            if (turnBatch.sinks.length > 0) turnBatch.add(chunk);
            offerAll(chunk);
          }
        });
    };
    if (held !== null && options.handedOver !== undefined) {
      // Woken in this thread when the old copy says it is done: what was held leaves then, not with the next
      // datagram's read turn. A copy stopped meanwhile (its start failed) sends nothing.
      let open = true;
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          open = false;
        }),
      );
      whenOldCopyDone(options.handedOver, () => {
        if (open) letGo();
      });
    }
    const send = (view: Uint8Array) => {
      // The old copy said it is done, in its thread: what was held leaves first, then this.
      if (held !== null && oldCopyDone?.() === true) letGo();
      if (held === null) {
        // The plain UDP outputs take it in the turn's batch, which copies it.
        if (turnBatch.sinks.length > 0) turnBatch.add(view);
        // Only the remux reads it (it copies what it keeps): the view itself will do.
        if (!kept) return offerAll(view);
      }
      // The queues keep chunks by reference, and a datagram is a view into memory that is reused (the
      // socket's batch, a WebAssembly buffer): it is copied once, into Node's buffer pool, for all outputs.
      const chunk = Buffer.allocUnsafe(view.length);
      chunk.set(view);
      if (held !== null) {
        held.push(chunk);
        // Bounded: a settle that never comes lets go after a few seconds of stream rather than holding it.
        if (held.length >= MAX_HELD) letGo();
        return;
      }
      offerAll(chunk);
    };
    /** The channel's TS filters, in order (filters.ts: the one list). */
    const filters = makeChannelFilters({ inserter });
    const deliver = (view: Uint8Array) => {
      const out = filters.active() ? filters.run(view) : view;
      if (out !== null) send(out);
    };
    /** An input's datagram on its way: to the slate while it is on air, else to the outputs. */
    const passOn = (view: Uint8Array) => {
      if (diverted !== null) return diverted(view);
      deliver(view);
    };
    cutStage =
      options.sendGate === undefined
        ? null
        : makeCutStage({
            pass: passOn,
            channelId: options.channelId,
            rtpOutputs: () =>
              outputs
                .enabled()
                .filter((entry) => entry.output.protocol === "rtp")
                .map((entry) => entry.spec.id),
          });
    yield* lease.watch;

    return {
      forward: (datagram, core) => {
        const start = core.payloadOffset;
        const end = start + core.payloadLength;
        const view = start === 0 && end === datagram.length ? datagram : datagram.subarray(start, end);
        if (cutStage !== null && !cutStage.take(view)) return;
        passOn(view);
      },
      forwardRun: (core) => {
        const batched = turnBatch.sinks.length > 0;
        const run = core.uniformRun();
        if (run !== null) {
          if (batched) turnBatch.addRun(run);
          remuxAlone?.(run);
        } else if (remuxAlone === null) {
          if (batched) core.runPayloads(turnBatch.add);
        } else core.runPayloads(batched ? addAndRemux : remuxAlone);
      },
      // A fleet channel's datagrams go one by one: its cut stage keeps each. A cue found in a whole read
      // reaches the remux after the read's TS (read-run.ts drains the core's events after forwardRun).
      takesRuns: () =>
        cutStage === null &&
        held === null &&
        (offers.length === 0 || remuxAlone !== null) &&
        diverted === null &&
        !filters.active(),
      deliver,
      send,
      letGo,
      rebuild: () => rebuild(),
      pace,
      setFailoverAfterMs: (ms) => {
        failoverAfterMs = ms;
      },
      groups,
      taps: {
        attach: (offer) => {
          tapping.add(offer);
          rebuild();
        },
        detach: (offer) => {
          if (tapping.delete(offer)) rebuild();
        },
      },
      divert: (to) => {
        diverted = to;
      },
      cutStage,
    };
  });
