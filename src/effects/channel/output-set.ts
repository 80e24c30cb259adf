/**
 * A channel's outputs. Each is made from its URL (validated even while it is disabled) and, while enabled, its
 * writer runs as its own FiberMap entry, so changing one output restarts only that output; a new policy alone
 * applies live, the output keeping its connection. The TS → FLV remux every RTMP output of the channel shares
 * lives here too: made with the first RTMP output, dropped at the rebuild that finds none left
 * (core/flv/remux.ts).
 */
import * as Effect from "effect/Effect";
import * as FiberMap from "effect/FiberMap";
import type * as Scope from "effect/Scope";
import { FlvRemux } from "../../core/flv/remux.ts";
import { cueVerdict } from "../../core/ts-policy/cue-verdict.ts";
import type { OutputError } from "../../domain/channel/output-error.ts";
import { samePolicy } from "../../domain/channel/output-policy.ts";
import type { NewEvent } from "../../domain/events/events.ts";
import { rtpKey } from "../outputs/rtp.ts";
import {
  makeOutput,
  type Output,
  type OutputEvent,
  type OutputOptions,
  type OutputTraffic,
} from "../outputs/writer.ts";
import { refusalFields } from "../runtime/links/srt-listeners.ts";
import { readPaceMs } from "../runtime/sockets/batch-reader.ts";
import type { TurnBatch } from "../runtime/sockets/turn-batch.ts";
import { afterTheSends, asOneTurn } from "../runtime/timers/end-of-turn.ts";
import { ChannelError, type OutputEntryStatus, type OutputSpec } from "./channel-types.ts";

interface OutputEntry {
  readonly spec: OutputSpec;
  /** Made (URL validated) even while disabled; only enabled outputs are fed and run. */
  readonly output: Output;
}

/** The remux's waiting TS: its first size, and the most that waits before the remux reads it at once. */
const PENDING_START = 64 * 1024;
const PENDING_MAX = 1024 * 1024;
/** How often the remux reads what waits (ms): the read pace of a channel whose outputs all send whole frames. */
const REMUX_PACE_MS = readPaceMs(false, Number.POSITIVE_INFINITY);

export interface OutputSet {
  readonly all: () => ReadonlyArray<OutputEntry>;
  readonly enabled: () => ReadonlyArray<OutputEntry>;
  readonly get: (outputId: string) => OutputEntry | undefined;
  /** The shared remux, while an output of the channel uses it, once it has read the TS that waits for it. */
  readonly remux: () => FlvRemux | null;
  /**
   * At each rebuild of the fan-out: what offers the enabled outputs' remux its TS, or null while none of them
   * runs one (the remux is let go once no output of the channel has it).
   */
  readonly remuxOffer: (enabled: ReadonlyArray<OutputEntry>) => ((chunk: Uint8Array) => void) | null;
  /** The remux threw out of its own guard: counted as a frame it lost, its outputs go on. */
  readonly remuxFailed: (thrown: unknown) => void;
  /** Adds or changes an output (a new URL or enabling restarts it; a new policy applies live). */
  readonly apply: (next: OutputSpec) => Effect.Effect<void, ChannelError>;
  /** Stops and removes an output: its socket or child process is released before this returns. */
  readonly remove: (outputId: string) => Effect.Effect<void>;
  /** Whether an enabled, connected output still has bytes queued (a release waits for them). */
  readonly queued: () => boolean;
  readonly statuses: (policy: (spec: OutputSpec) => OutputEntryStatus["policy"]) => OutputEntryStatus[];
  readonly traffic: () => ReadonlyArray<OutputTraffic & { readonly id: string }>;
}

export const makeOutputSet = (options: {
  readonly channelId: () => string;
  readonly emit: (event: NewEvent) => void;
  readonly outputOptions: OutputOptions;
  readonly sendGate: number | undefined;
  readonly turnBatch: TurnBatch;
  /** The outputs the fan-out feeds changed: it is rebuilt. */
  readonly changed: () => void;
  readonly contained: (where: string, thrown: unknown) => void;
  /** A fault injected into the remux for a test (DISTRIBUTARY_TEST_REMUX_FAULT). */
  readonly remuxFault: boolean;
}): Effect.Effect<OutputSet, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { channelId, emit, changed } = options;
    const writers = yield* FiberMap.make<string, never, OutputError>();
    const entries = new Map<string, OutputEntry>();
    let flv: FlvRemux | null = null;

    const remuxFailed = (thrown: unknown) => {
      if (flv !== null) {
        flv.dropped.internal_error++;
        flv.lastDrop = `the remux failed: ${thrown instanceof Error ? thrown.message : String(thrown)}`;
      }
      options.contained("the RTMP remux", thrown);
    };
    /**
     * What the fan-out offered the remux, read by it after the thread's sends of a turn (end-of-turn.ts
     * `afterTheSends`), so that the TS outputs' datagrams never wait for the remux's work or its RTMP writes,
     * and at the remux's own pace: once every `REMUX_PACE_MS` (the read pace of a channel whose outputs all
     * send whole frames, 40 ms), not at every read of the UDP outputs' 3 ms, so that each RTMP output writes
     * a few frames at once rather than one at a time. Each channel at a phase of its own, so that a thread's
     * channels take their turns one after another rather than all in one. A copy, since the offer may be a
     * view into memory the next read reuses; at most `PENDING_MAX` bytes wait (more feeds the remux at once).
     */
    let pending = new Uint8Array(0);
    let pendingLength = 0;
    /** The remux reads what waits: a throw stays with the remux's outputs. */
    const feed = () => {
      if (pendingLength === 0) return;
      const bytes = pending.subarray(0, pendingLength);
      pendingLength = 0;
      try {
        flv?.push(bytes);
      } catch (thrown) {
        remuxFailed(thrown);
      }
    };
    const phase = Math.random() * REMUX_PACE_MS;
    /** The pace's period in which the remux last read (performance.now() + phase, in periods). */
    let fedIn = -1;
    /** Feeds what waits once the input stops sending (no turn asks any more). */
    let late: ReturnType<typeof setTimeout> | null = null;
    /** Whether this turn asked for `feedWhenDue` already: one ask a turn, not one per datagram. */
    let asked = false;
    const feedWhenDue = () => {
      asked = false;
      if (pendingLength === 0) return;
      // Both read paces set to 0: the remux reads at every turn.
      const period = REMUX_PACE_MS > 0 ? Math.floor((performance.now() + phase) / REMUX_PACE_MS) : fedIn + 1;
      if (period === fedIn) {
        if (late === null) {
          late = setTimeout(feedLate, REMUX_PACE_MS);
          late.unref();
        }
        return;
      }
      fedIn = period;
      feed();
    };
    const feedLate = () => {
      late = null;
      // As a turn of its own: the RTMP writes of what it made go at its end.
      asOneTurn(feedWhenDue);
    };
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (late !== null) clearTimeout(late);
      }),
    );
    const offer = (chunk: Uint8Array) => {
      if (options.remuxFault) {
        // As a remux with a bug would throw at what it is offered.
        remuxFailed(new Error("a fault injected for a test (DISTRIBUTARY_TEST_REMUX_FAULT)"));
        return;
      }
      if (pendingLength + chunk.length > PENDING_MAX) feed();
      if (pendingLength + chunk.length > pending.length) {
        const larger = new Uint8Array(
          Math.max(PENDING_START, 2 * pending.length, pendingLength + chunk.length),
        );
        larger.set(pending.subarray(0, pendingLength));
        pending = larger;
      }
      if (!asked) {
        asked = true;
        afterTheSends(feedWhenDue);
      }
      pending.set(chunk, pendingLength);
      pendingLength += chunk.length;
    };

    const remove = (outputId: string) =>
      Effect.gen(function* () {
        if (!entries.delete(outputId)) return;
        changed();
        yield* FiberMap.remove(writers, outputId);
      });

    const outputEvents =
      (outputId: string) =>
      (event: OutputEvent): void => {
        if (event.type === "reconnect") {
          const { reconnects, error, delayMs } = event;
          const channel = channelId();
          emit({ type: "output_reconnect", channel, output: outputId, reconnects, error, delay_ms: delayMs });
          return;
        }
        if (event.type === "srt_refused") {
          const { refusal, node } = event;
          emit({
            type: "srt_caller_refused",
            channel: node ? null : channelId(),
            output: node ? null : outputId,
            input: null,
            ...refusalFields(refusal, event.refusals),
            message: node ? refusal.message : `SRT listener output: ${refusal.message}`,
          });
          return;
        }
        emit({
          type: "output_state",
          channel: channelId(),
          output: outputId,
          state: event.state,
          error: event.error,
        });
      };

    const apply = (next: OutputSpec) =>
      Effect.gen(function* () {
        const current = entries.get(next.id);
        if (current !== undefined && current.spec.url === next.url && current.spec.enabled === next.enabled) {
          entries.set(next.id, { ...current, spec: next });
          // A new policy applies live: the output keeps its connection and moves to its new group.
          if (!samePolicy(current.spec.policy, next.policy)) changed();
          return;
        }
        if (flv === null && /^rtmps?:/i.test(next.url)) {
          flv = new FlvRemux({ startMs: options.outputOptions.flvStartMs ?? 0, reuseMemory: true });
        }
        const made = {
          ...options.outputOptions,
          sendGate: options.sendGate,
          turnBatch: options.turnBatch,
          // An RTMP output's SCTE-35 policy, read at each cue: a change applies at once.
          cueKept: (section: Uint8Array) => {
            const scte35 = entries.get(next.id)?.spec.policy?.scte35;
            return scte35 === undefined || scte35 === "pass" || cueVerdict(scte35, section).kept;
          },
        };
        const output = yield* makeOutput(
          next.url,
          flv === null
            ? { ...made, id: next.id, rtpKey: rtpKey(channelId(), next.id) }
            : { ...made, flv, id: next.id, rtpKey: rtpKey(channelId(), next.id) },
          outputEvents(next.id),
        ).pipe(
          Effect.mapError((error) => new ChannelError({ reason: "invalid_output", message: error.message })),
        );
        // The new output takes the old one's place before the old one stops: an RTMP output replaced is never
        // missing from the set, or the rebuild in between would let go of the remux the new one shares.
        const replaced = entries.has(next.id);
        entries.set(next.id, { spec: next, output });
        if (replaced) yield* FiberMap.remove(writers, next.id);
        if (replaced || next.enabled) changed();
        if (!next.enabled) return;
        yield* FiberMap.run(writers, next.id, output.run);
      });

    const all = () => [...entries.values()];
    return {
      all,
      enabled: () => all().filter((entry) => entry.spec.enabled),
      get: (outputId) => entries.get(outputId),
      remux: () => {
        // A cue reaches the remux after the TS that came before it.
        feed();
        return flv;
      },
      remuxOffer: (enabled) => {
        const remuxed = enabled.some((entry) => entry.output.flv !== null);
        if (!remuxed && all().every((entry) => entry.output.flv === null)) flv = null;
        return remuxed && flv !== null ? offer : null;
      },
      remuxFailed,
      apply,
      remove,
      queued: () =>
        all().some((entry) => {
          const status = entry.output.status();
          return entry.spec.enabled && status.state === "connected" && status.queuedBytes > 0;
        }),
      traffic: () => all().map((entry) => ({ ...entry.output.traffic(), id: entry.spec.id })),
      statuses: (policy) =>
        all().map((entry) => ({
          ...entry.output.status(),
          id: entry.spec.id,
          name: entry.spec.name,
          enabled: entry.spec.enabled,
          policy: entry.spec.policy == null ? null : policy(entry.spec),
        })),
    };
  });
