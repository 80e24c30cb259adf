/**
 * The shapes of a running channel: what it is started with (`ChannelSpec`), what it reports (`summary` each
 * tick, `status` on request: the input path's report with the channel's name and outputs), its handle
 * (`RunningChannel`) and how it fails (`ChannelError`). Kept apart from channel.ts, which builds the fiber
 * tree, so that readers of status need not read the packet path.
 */
import * as Context from "effect/Context";
import * as Data from "effect/Data";
import type * as Effect from "effect/Effect";
import type { ChannelId, OutputId } from "../../domain/base/ids.ts";
import type { OutputPolicy } from "../../domain/channel/output-policy-schema.ts";
import type { InputEndpoint, InputRole, RedundancyConfig } from "../../domain/channel/redundancy.ts";
import type { SlateReason } from "../../domain/channel/slate.ts";
import type { NewEvent } from "../../domain/events/events.ts";
import type { RedundancyEvent } from "../ingest/failover.ts";
import type {
  InputSeams,
  InputStatus,
  InputsStatus,
  InputsSummary,
  RedundancyStatus,
  Senders,
} from "../ingest/input-types.ts";
import { type InputTraffic, srpRefusalsOf } from "../ingest/input-types.ts";
import type { HlsServed } from "../outputs/hls.ts";
import type { RtpState } from "../outputs/rtp.ts";
import type { OutputOptions, OutputStatus, OutputTraffic } from "../outputs/writer.ts";
import type { Priority } from "../runtime/threads/priority.ts";
import type { HolderCut, Resumed, Resumption } from "./cut-stage.ts";
import type { CueCounts, CueRecord, Scte35Watcher } from "./scte35-watcher.ts";

export interface OutputSpec {
  readonly id: OutputId;
  readonly name: string;
  readonly url: string;
  /** A disabled output exists, validated, without streaming ("ready" destination). */
  readonly enabled: boolean;
  /** What it takes of the stream (domain/channel/output-policy.ts); null or absent: every packet untouched. */
  readonly policy?: OutputPolicy | null | undefined;
}

export interface ChannelSpec {
  readonly id: ChannelId;
  readonly name: string;
  readonly primary: InputEndpoint;
  readonly backup: InputEndpoint | null;
  /** How the backup is used and where FEC is taken; defaults (domain/channel/redundancy.ts) when absent. */
  readonly redundancy?: RedundancyConfig | undefined;
  readonly outputs: ReadonlyArray<OutputSpec>;
  /**
   * On a fleet node, the channel's send gate (runtime/sockets/send-gates.ts): its outputs get nothing once the
   * instant there has passed, whatever the main thread says. None on one box.
   */
  readonly sendGate?: number | undefined;
  /** The channel's slate (slate.ts); none: its outputs go silent with its inputs, as without one. */
  readonly slate?: SlateSpec | undefined;
}

/** What a running channel says of its slate. */
export interface SlateStatus {
  /** The outputs carry the slate now (or wait on it for the input's first keyframe). */
  readonly on: boolean;
  readonly reason: SlateReason | null;
  /** Epoch ms when this spell on the slate began; null when off. */
  readonly since: number | null;
  /** Seconds on the slate since the channel started, this spell included. */
  readonly seconds: number;
  /** A clip in the input's format is prepared: the slate can go on. */
  readonly ready: boolean;
  /** ffmpeg is preparing a clip now. */
  readonly preparing: boolean;
  /** The input's format the clip matches, in words; null before it was read. */
  readonly format: string | null;
  /** Why no slate can be shown (a format it cannot match, a failed preparation), in words; null when none. */
  readonly problem: string | null;
}

/** A slate as the channel runs it. */
export interface SlateSpec {
  /** Starts this long after the last input went silent (never before the failover time). */
  readonly afterMs: number;
  /** Put on by an operator: stays on, whatever the inputs do, until taken off. */
  readonly manual: boolean;
  /** Put on by the channel's schedule (preroll, postroll): stays on as an operator's does, until it lifts it. */
  readonly scheduled?: boolean;
  /** Goes on while every input is unhealthy by the channel's health rules. */
  readonly onUnhealthy: boolean;
  /** The uploaded picture (base64 and its SHA-256), or the generated card's title (the channel's name). */
  readonly picture:
    | { readonly kind: "image"; readonly data: string; readonly sha256: string }
    | { readonly kind: "card"; readonly title: string };
}

export class ChannelError extends Data.TaggedError("ChannelError")<{
  readonly reason:
    | "not_running"
    | "unknown_output"
    | "input_failed"
    | "invalid_output"
    | "invalid_redundancy"
    | "invalid_switch"
    | "invalid_cue"
    | "crashed";
  readonly message: string;
}> {}

export const notRunning = (id: string): ChannelError =>
  new ChannelError({ reason: "not_running", message: `channel ${id} is not running` });

/**
 * Seams for tests that must make a channel fail from inside: a core that cannot load, a datagram path that
 * throws. Unset in the service; the channel reads them once at start, so they cost nothing per datagram.
 */
export class ChannelFaults extends Context.Reference<ChannelFaults>()("distributary/ChannelFaults", {
  // onListen hands over each input's receive function (what its socket calls) as it starts listening, so a
  // test can push datagrams into the packet path at rates loopback cannot carry.
  defaultValue: (): InputSeams => ({}),
}) {}

/** The pages' preview rendition: ended once nobody has asked for it for `idleMs` (20 s). */
export class PreviewSettings extends Context.Reference<PreviewSettings>()("distributary/PreviewSettings", {
  defaultValue: (): { readonly idleMs: number } => ({ idleMs: 20_000 }),
}) {}

/** Where each input of a channel being moved hears its sender now: the new copy takes that sender first. */
export type Handover = Senders;

export interface ChannelOptions {
  readonly outputs?: OutputOptions;
  /** How long the preview rendition outlives the last request for it (PreviewSettings). */
  readonly previewIdleMs?: number;
  /** Test seams; the supervisor reads them once from the service's context. */
  readonly faults?: typeof ChannelFaults.Service;
  /** Where the channel's events go (the event bus). */
  readonly emit?: (event: NewEvent) => void;
  /** Starting as the new copy of a moving channel: its UDP inputs take these senders over. */
  readonly handover?: Handover;
  /**
   * With `handover`: the move's word (runtime/threads/move-word.ts), which the old copy sets in its thread once it has
   * sent its last datagram. The new copy holds what it forwards until then and reads the word with each
   * datagram, so its outputs resume within a read of that, not after the supervisor's round trips (`settle`).
   */
  readonly handedOver?: SharedArrayBuffer;
}

export interface OutputEntryStatus extends OutputStatus {
  readonly id: string;
  readonly name: string;
  readonly enabled: boolean;
  /** An output with a policy: what it cannot apply, in words, and what it kept from the output. */
  readonly policy: {
    readonly problems: ReadonlyArray<string>;
    readonly packetsDropped: number;
    readonly cuesWithheld: number;
  } | null;
}

/** Where an operator's cue went: its PID, and its id in the cue log (null if the log failed). */
export interface InsertedCue {
  readonly pid: number;
  readonly id: string | null;
}

/** Counters only: what the read model samples for every channel each second. */
export interface ChannelRuntimeSummary extends InputsSummary {
  readonly id: string;
  readonly name: string;
  readonly startedAt: number;
  /** The slate's state; null when the channel has none. */
  readonly slate: SlateStatus | null;
  readonly outputs: ReadonlyArray<OutputEntryStatus>;
}

/**
 * A channel's traffic counters alone (each input's bytes, each output's bytes and drops): what the read model
 * samples for every channel each second, without building its summary.
 */
interface ChannelTraffic {
  readonly inputs: ReadonlyArray<InputTraffic>;
  readonly outputs: ReadonlyArray<OutputTraffic & { readonly id: string }>;
}

/** The traffic counters in a summary (a worker's, as of its last sync). */
export const trafficOf = (summary: ChannelRuntimeSummary): ChannelTraffic => ({
  inputs: summary.inputs.map((input) => {
    const srp = srpRefusalsOf(input.rist);
    return { role: input.role, bytes: input.core.bytes, ...(srp === null ? {} : { srp }) };
  }),
  outputs: summary.outputs.map(({ id, bytesSent, queueDrops, rtmp }) => ({
    id,
    bytesSent,
    queueDrops,
    rtmp,
  })),
});

/** The summary with everything else: PID tables, FEC and merge figures, recent switches. */
export interface ChannelRuntimeStatus extends ChannelRuntimeSummary, InputsStatus {
  readonly redundancy: RedundancyStatus;
  readonly inputs: ReadonlyArray<InputStatus>;
}

export interface RunningChannel {
  readonly spec: () => ChannelSpec;
  /** Everything, PID tables included: for one channel's detail page or stats call. */
  readonly status: () => ChannelRuntimeStatus;
  /** Counters only: for the pages and the API. */
  readonly summary: () => ChannelRuntimeSummary;
  /** Traffic counters alone: what the read model samples for every channel each second. */
  readonly traffic: () => ChannelTraffic;
  readonly watcher: Scte35Watcher;
  readonly applyOutput: (spec: OutputSpec) => Effect.Effect<void, ChannelError>;
  readonly removeOutput: (outputId: string) => Effect.Effect<void>;
  /** Which input feeds the outputs in failover mode; the primary otherwise. */
  readonly activeInput: () => InputRole;
  /** An operator's switch, at once; only in failover mode with a backup. */
  readonly switchInput: (role: InputRole) => Effect.Effect<void, ChannelError>;
  /** An operator's cue (a splice_info_section) onto the channel's SCTE-35 PID, now: the PID and the cue log's id. */
  readonly insertCue: (
    section: Uint8Array,
    program: number | null,
    by: string,
  ) => Effect.Effect<InsertedCue, ChannelError>;
  /** Recent switches and input losses, oldest first. */
  readonly events: () => ReadonlyArray<RedundancyEvent>;
  /** The TS the outputs get over the next `ms`, at most `maxBytes` (for a still of the picture). */
  readonly capture: (ms: number, maxBytes: number) => Effect.Effect<Uint8Array>;
  /** An HLS output's playlist and segments as it serves them; null for another protocol or no such output. */
  readonly hls: (outputId: string) => HlsServed | null;
  /** The pages' preview rendition: started by the first call, kept while calls keep coming. */
  readonly preview: Effect.Effect<HlsServed | null>;
  /** Whether the preview rendition is being made now (asked for within the idle time). */
  readonly previewActive: () => boolean;
  /**
   * New inputs or redundancy settings while it runs: only an input whose address changed is bound again;
   * timers, mode and FEC apply live and the outputs go on untouched.
   */
  readonly reconfigure: (spec: ChannelSpec) => Effect.Effect<void, ChannelError>;
  /** Fails when the channel's packet path threw: the channel cannot go on and must be stopped. */
  readonly crashed: Effect.Effect<never, ChannelError>;
  /** The sender each UDP input heard last (a move's handover). */
  readonly senders: () => Handover;
  /**
   * A move's end on the old copy: the inputs close, then it waits (at most `maxMs`) until every connected
   * output has sent what it queued. The channel is stopped afterwards as usual.
   */
  readonly release: (maxMs: number) => Effect.Effect<void>;
  /**
   * A move's cut on the old copy, at once in its thread (no fiber, no event-loop round): its inputs read one
   * last time and sent (InputPath.readLast). True when that left nothing queued at an output: the new copy may
   * send from now on, before `release` closes anything.
   */
  readonly cut: () => boolean;
  /** A move's end on the new copy: inputs that took a sender over take any sender again. */
  readonly settle: Effect.Effect<void>;
  /** A fleet hand-over (cut-stage.ts), on the old holder: the outputs stop at a cut, and where; null on one box. */
  readonly fleetCut: () => Promise<HolderCut | null>;
  /** A fleet hand-over, on the new holder before its gate opens: how its outputs begin. */
  readonly fleetResume: (how: Resumption) => void;
  /** How they began, once they have. */
  readonly fleetResumed: (withinMs: number) => Promise<Resumed | null>;
}

/** The supervisor (channels.ts), wherever it runs the channels. */
export type ChannelState = "running" | "stopped" | "error";

/** An HLS output (or the preview) as the HTTP layer serves it, wherever the channel runs. */
export interface HlsSource {
  readonly playlist: () => Promise<string | null>;
  readonly segment: (name: string) => Promise<Uint8Array | null>;
}

/** A started forwarding worker as the status and metrics show it. */
export interface WorkerStatus {
  readonly index: number;
  readonly channels: number;
  /** Its thread's CPU time over its last whole 5-s window as a share of one core; null before the first. */
  readonly cpuShare: number | null;
  readonly restarts: number;
  /** Event-loop delay in ms: the worst p99 and the longest of the syncs over the last 15 s. */
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
  /** The scheduling the thread runs at (runtime/threads/priority.ts); null until it is up. */
  readonly priority: Priority | null;
}

export interface ChannelsService {
  readonly start: (spec: ChannelSpec) => Effect.Effect<void, ChannelError>;
  readonly stop: (id: ChannelId) => Effect.Effect<void>;
  /** Adds or replaces one output of a running channel; only that output restarts. */
  readonly applyOutput: (channelId: ChannelId, output: OutputSpec) => Effect.Effect<void, ChannelError>;
  /** New inputs or redundancy settings for a running channel: its outputs go on (RunningChannel.reconfigure). */
  readonly reconfigure: (spec: ChannelSpec) => Effect.Effect<void, ChannelError>;
  readonly removeOutput: (channelId: ChannelId, outputId: OutputId) => Effect.Effect<void, ChannelError>;
  /** An operator's input switch, at once; fails unless the channel runs in failover mode with a backup. */
  readonly switchInput: (channelId: ChannelId, role: InputRole) => Effect.Effect<void, ChannelError>;
  /** An operator's cue into a running channel (RunningChannel.insertCue). */
  readonly insertCue: (
    channelId: ChannelId,
    section: Uint8Array,
    program: number | null,
    by: string,
  ) => Effect.Effect<InsertedCue, ChannelError>;
  readonly state: (id: ChannelId) => ChannelState;
  readonly lastError: (id: ChannelId) => string | null;
  /** Brings every channel's counters up to now (one message per worker): the read model's tick calls it. */
  readonly sync: Effect.Effect<void>;
  /** Counters only, as of the last `sync`: what the pages and the API show. */
  readonly summary: (id: ChannelId) => ChannelRuntimeSummary | null;
  /** Traffic counters alone, as of the last `sync`: what the read model samples each tick. */
  readonly traffic: (id: ChannelId) => ChannelTraffic | null;
  /** Everything, PID tables and recent switches included: for one channel at a time. */
  readonly status: (id: ChannelId) => Effect.Effect<ChannelRuntimeStatus | null>;
  readonly cueCounts: (id: ChannelId) => CueCounts | null;
  /**
   * The channel's recent cues, newest last; the same objects from one call to the next, but for a cue an RTMP
   * output sent since: a new object with the same id takes its place.
   */
  readonly cues: (id: ChannelId) => ReadonlyArray<CueRecord>;
  /** The TS a running channel forwards over the next `ms`; empty when it is not running. */
  readonly capture: (id: ChannelId, ms: number, maxBytes: number) => Effect.Effect<Uint8Array>;
  /** A running channel's HLS output, as served at /hls/<channel>/<output>/; null when there is none. */
  readonly hls: (id: ChannelId, outputId: string) => HlsSource | null;
  /** A running channel's preview rendition for the pages (started on demand); null when not running. */
  readonly preview: (id: ChannelId) => Effect.Effect<HlsSource | null>;
  /** Whether a running channel is making its preview rendition now. */
  readonly previewActive: (id: ChannelId) => boolean;
  readonly running: () => ReadonlyArray<ChannelId>;
  /** The forwarding workers; empty when channels run in the main thread. */
  readonly workers: () => ReadonlyArray<WorkerStatus>;
  /** Which worker runs a channel; null when in the main thread or not running. */
  readonly placement: (id: ChannelId) => number | null;
  /** Moves a running channel to another worker while its stream flows (workers/pool.ts). */
  readonly move: (id: ChannelId, worker: number) => Effect.Effect<void, ChannelError>;
  /**
   * An upgrade's old process gives a running channel to the new one (src/effects/handover/): where its inputs
   * hear their senders now, and `letGo`, run once the new copy has started: the old copy closes its inputs,
   * sends its last datagrams and stops, and tells where its RTP outputs' streams stand (by output id).
   */
  readonly handOff: (id: ChannelId) => Effect.Effect<
    {
      readonly spec: ChannelSpec;
      readonly senders: Handover;
      readonly letGo: Effect.Effect<Record<string, RtpState>, ChannelError>;
    },
    ChannelError
  >;
  /** Ends a worker's thread at once, as a crash would (a drill): it is restarted with its channels. */
  readonly killWorker: (index: number) => Effect.Effect<void>;
  /** A fleet hand-over of a running channel (RunningChannel.fleetCut, fleetResume, fleetResumed). */
  readonly fleetCut: (id: ChannelId) => Effect.Effect<HolderCut | null, ChannelError>;
  readonly fleetResume: (id: ChannelId, how: Resumption) => Effect.Effect<void, ChannelError>;
  readonly fleetResumed: (id: ChannelId, withinMs: number) => Effect.Effect<Resumed | null, ChannelError>;
}
