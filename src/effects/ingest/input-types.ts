/**
 * The shapes of a channel's input path (input-path.ts): what the channel hands it, the handle it gets back,
 * how it fails, and what it reports: a summary (counters only) that the read model samples for every channel
 * each second, and the detail (PID tables, FEC and merge figures, recent switches) as its extension, built
 * only for one channel at a time. The channel adds its name, its outputs and its start time to either. And
 * `InputRuntime`, one input's live state inside the path.
 */

import type { RemoteInfo, Socket } from "node:dgram";
import * as Data from "effect/Data";
import type * as Effect from "effect/Effect";
import type * as Scope from "effect/Scope";
import type { PacketCore } from "../../core/packet-core.ts";
import type { CoreEvent } from "../../core/packet-core-events.ts";
import type { CoreCounters, CoreSnapshot } from "../../core/packet-core-snapshot.ts";
import type { FecSnapshot, MergeSnapshot } from "../../core/redundancy-core.ts";
import type { ChannelId } from "../../domain/base/ids.ts";
import type {
  InputEndpoint,
  InputRole,
  Redundancy,
  RedundancyMode,
} from "../../domain/channel/redundancy.ts";
import type { NewEvent } from "../../domain/events/events.ts";
import type { RistLinkFigures } from "../runtime/links/rist-link.ts";
import type { ReadPace } from "../runtime/sockets/batch-reader.ts";
import type { InputHealth, RedundancyEvent, SwitchReason } from "./failover.ts";
import type { FecInput } from "./fec.ts";
import type { InputHealthStatus } from "./input-health.ts";
import type { SequenceMerger } from "./merge.ts";
import type { RtmpInputFigures } from "./rtmp-receiver.ts";
import type { Selector } from "./selector.ts";
import type { SrtInputFigures } from "./srt-receiver.ts";

export class InputPathError extends Data.TaggedError("InputPathError")<{
  /** `core_failed`: a packet core could not be loaded; `input_failed`: a socket could not listen. */
  readonly reason: "input_failed" | "core_failed";
  readonly message: string;
}> {}

/** Where each UDP input hears its sender: what a moving channel's new copy takes over. */
export type Senders = Partial<Record<InputRole, { readonly address: string; readonly port: number }>>;

/** What an input's UDP socket calls with each datagram. */
type Receive = (datagram: Buffer, sender: RemoteInfo) => void;

/** Seams for tests that must make the path fail or feed it directly; read once, when an input starts. */
export interface InputSeams {
  readonly loadCore?: () => PacketCore;
  readonly onDatagram?: (channelId: string) => void;
  /** Hands over each input's receive function as it starts listening. */
  readonly onListen?: (channelId: string, role: InputRole, receive: Receive) => void;
}

/** An input's traffic counters: its bytes, and a RIST listener's EAP-SRP refusals (read-model events). */
export interface InputTraffic {
  readonly role: InputRole;
  readonly bytes: number;
  /** A RIST input's callers turned away by its srpfile, and the last one asked about; absent for the others. */
  readonly srp?: { readonly refusals: number; readonly user: string | null; readonly unknown: boolean };
}

/** A RIST listener's EAP-SRP refusals as its traffic carries them (the read model's events); null: none yet. */
export const srpRefusalsOf = (figures: RistLinkFigures | null) =>
  figures === null || figures.srpRefusals === 0
    ? null
    : {
        refusals: figures.srpRefusals,
        user: figures.srpAttempt?.user ?? null,
        unknown: figures.srpAttempt?.outcome === "unknown",
      };

export interface InputPathOptions {
  readonly channel: ChannelId;
  readonly primary: InputEndpoint;
  readonly backup: InputEndpoint | null;
  readonly redundancy: Redundancy;
  /** The fan-out, once per datagram that reaches the outputs, with the core that read it (the TS's place). */
  readonly forward: (datagram: Uint8Array, core: PacketCore) => void;
  /**
   * The fan-out of a whole read of a UDP input at once: the TS payloads its core accepted, one after the other
   * (PacketCore `uniformRun`, `runPayloads`). Used while `takesRuns` says the outputs take nothing one datagram
   * at a time, and the input has no FEC or merge; otherwise each datagram goes to `forward`.
   */
  readonly forwardRun?: ((core: PacketCore) => void) | undefined;
  readonly takesRuns?: (() => boolean) | undefined;
  /** What the forwarded core found (SCTE-35 sections); a standby input's findings are dropped. */
  readonly onCoreEvent: (event: CoreEvent) => void;
  /** Switches, losses and recoveries, for the event bus. */
  readonly emit: (event: NewEvent) => void;
  /**
   * Wraps each socket callback (two arguments at most) so that a throw ends the channel alone: the channel
   * owns that guard.
   */
  readonly guarded: <A, B>(where: string, callback: (a: A, b: B) => void) => (a: A, b?: B) => void;
  readonly seams?: InputSeams | undefined;
  /** Starting as a moving channel's new copy: each UDP input joins its port connected to this sender. */
  readonly handover?: Senders | undefined;
  /** How long the channel's outputs let its UDP inputs' datagrams wait to be read; the channel changes it. */
  readonly pace?: ReadPace | undefined;
  /** DISTRIBUTARY_RIST_SRP_DIR: where a RIST input's srpfile may be; null or absent: none may be read. */
  readonly ristSrpDir?: string | null | undefined;
}

/**
 * A part of the channel made after its input path that follows what the path says (the slate): it watches in
 * its own scope (`InputPath.watch`), from the moment it is made.
 */
export interface InputWatcher {
  /** What the path emits (switches, losses, recoveries), after the channel's `emit` has had it. */
  readonly onEvent: (event: NewEvent) => void;
  /** The forwarded input's PMT, as its core found it. */
  readonly onPmt: () => void;
  /** Every input unhealthy by the channel's health rules, or no longer (input-health.ts). */
  readonly onHealth: (allUnhealthy: boolean) => void;
  /** Whether the picture and sound health rules are suspended now (the channel's slate is on). */
  readonly suspendsContent: () => boolean;
}

export interface InputPath {
  readonly selector: Selector;
  /** `watcher` hears the path until the current scope closes. */
  readonly watch: (watcher: InputWatcher) => Effect.Effect<void, never, Scope.Scope>;
  readonly redundancy: () => Redundancy;
  /**
   * New inputs or redundancy settings, live: timers and mode apply from the next datagram, FEC sockets come
   * and go beside their input, and only an input whose address changed is bound again.
   */
  readonly reconfigure: (
    next: { readonly primary: InputEndpoint; readonly backup: InputEndpoint | null },
    redundancy: Redundancy,
  ) => Effect.Effect<void, InputPathError>;
  /** Closes every input's sockets (a move's end on the old copy). */
  readonly close: Effect.Effect<void>;
  /**
   * A move's cut on the old copy, at once: every input's socket read one last time and no more (they stay
   * bound until `close`). True when that is all the inputs will ever give: plain UDP inputs read in batches,
   * without FEC, reordering or merge; otherwise nothing is done and false says so.
   */
  readonly readLast: () => boolean;
  /** Inputs that took a sender over take any sender again (a move's end on the new copy). */
  readonly takeAnySender: () => void;
  /** The sender each UDP input heard last. */
  readonly senders: () => Senders;
  /** Each input's TS bytes so far: what the read model samples for every channel each second. */
  readonly traffic: () => ReadonlyArray<InputTraffic>;
  /** Counters only, for every channel each second. */
  readonly summary: () => InputsSummary;
  /** The summary with PID tables, FEC and merge figures and recent switches: for one channel at a time. */
  readonly status: () => InputsStatus;
}

/** An input as the read model samples it every second: counters only, no PID tables. */
export interface InputSummaryStatus {
  readonly role: InputRole;
  readonly endpoint: InputEndpoint;
  /** Its datagrams reach the outputs: the selected input in failover, every input in merge. */
  readonly active: boolean;
  /** ms since the last datagram; null before the first. */
  readonly lastPacketAgeMs: number | null;
  /** Times the channel switched away from this input, for any reason. */
  readonly failovers: number;
  /** With FEC enabled on this input. */
  readonly fec: { readonly recovered: number; readonly unrecoverable: number } | null;
  readonly core: CoreCounters;
  /** By the channel's health rules; null without rules. */
  readonly health: InputHealthStatus | null;
  /** A RIST input's link (librist's readings added up); null for any other input. */
  readonly rist: RistLinkFigures | null;
  /** An RTMP input's publisher and refusals; null for any other input. */
  readonly rtmp: RtmpInputFigures | null;
  /** An SRT listener input's on a port shared by stream id; null for any other input. */
  readonly srt?: SrtInputFigures | null;
}

export interface InputStatus extends InputSummaryStatus {
  readonly fec: FecSnapshot | null;
  readonly core: CoreSnapshot;
}

export interface MergeStatus extends Omit<MergeSnapshot, "received" | "firstCopies"> {
  /** Packets each input delivered first: its share of the merged stream. */
  readonly firstCopies: { readonly primary: number; readonly backup: number };
}

export interface RedundancySummary {
  readonly mode: RedundancyMode;
  readonly failover_after_ms: number;
  readonly revert: Redundancy["revert"];
  readonly revert_after_ms: number;
  readonly merge_window_ms: number;
  readonly active: InputRole;
  /** Switches between inputs since the channel started. */
  readonly failovers: number;
  readonly failoversByReason: Readonly<Record<SwitchReason, number>>;
}

export interface RedundancyStatus extends RedundancySummary {
  /** Recent switches and input losses, oldest first. */
  readonly events: ReadonlyArray<RedundancyEvent>;
  readonly merge: MergeStatus | null;
}

export interface InputsSummary {
  /** "lost" while no input receives anything; the outputs stay connected meanwhile. */
  readonly input: InputHealth;
  readonly redundancy: RedundancySummary;
  /** The last switch between inputs, shown beside the status. */
  readonly lastSwitch: Extract<RedundancyEvent, { readonly type: "switch" }> | null;
  /** Primary first, then the backup. */
  readonly inputs: ReadonlyArray<InputSummaryStatus>;
}

export interface InputsStatus extends InputsSummary {
  readonly redundancy: RedundancyStatus;
  readonly inputs: ReadonlyArray<InputStatus>;
}

/** One input as the input path keeps it while it listens: its core, its scope, its socket and FEC. */
export interface InputRuntime {
  readonly role: InputRole;
  endpoint: InputEndpoint;
  readonly core: PacketCore;
  /** Holds the input's socket and FEC: closing it ends this input alone. */
  readonly scope: Scope.CloseableScope;
  /** The sender allow-list as the socket callbacks ask it; null for every sender. Changed live. */
  accepts: ((address: string) => boolean) | null;
  fec: { readonly input: FecInput; readonly scope: Scope.CloseableScope } | null;
  /** Puts recovered packets back in sequence; only with FEC outside merge mode. */
  reorder: SequenceMerger | null;
  /** A UDP input's socket (null for SRT), and the sender it heard last. */
  socket: Socket | null;
  sender: RemoteInfo | null;
  /** The sender the core takes datagrams from without asking (the vector path, `takeRun`); null for none. */
  trusted: RemoteInfo | null;
  /** A RIST input's link figures (librist's readings added up); null for any other input. */
  rist: (() => RistLinkFigures) | null;
  /** An RTMP input's publisher, refusals and muxer counts; null for any other input. */
  rtmp: (() => RtmpInputFigures) | null;
  /** An SRT listener input's on a port shared by stream id: its route and refusals; null for any other. */
  srt: (() => SrtInputFigures) | null;
}

/** An input as it starts listening: nothing bound, no sender heard yet. */
export const newInput = (
  role: InputRole,
  endpoint: InputEndpoint,
  core: PacketCore,
  scope: Scope.CloseableScope,
): InputRuntime => ({
  role,
  endpoint,
  core,
  scope,
  accepts: null,
  fec: null,
  reorder: null,
  socket: null,
  sender: null,
  trusted: null,
  rist: null,
  rtmp: null,
  srt: null,
});
