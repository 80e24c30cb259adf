/**
 * What the supervisor and a forwarding worker say to each other. Commands and answers are messages; status
 * crosses once per read-model tick as one batch per worker (`sync`), and events as they happen. Nothing per
 * datagram crosses threads.
 */

import type { ChannelId, OutputId } from "../../../domain/base/ids.ts";
import type { InputRole } from "../../../domain/channel/redundancy.ts";
import type { NewEvent } from "../../../domain/events/events.ts";
import type { RtpState } from "../../outputs/rtp.ts";
import type { OutputOptions } from "../../outputs/writer.ts";
import type { OwnPortsShare } from "../../runtime/sockets/own-ports.ts";
import type { Priority, Scheduling } from "../../runtime/threads/priority.ts";
import type {
  ChannelError,
  ChannelRuntimeSummary,
  ChannelSpec,
  Handover,
  OutputSpec,
} from "../channel-types.ts";
import type { Resumption } from "../cut-stage.ts";
import type { CueCounts, CueRecord } from "../scte35-watcher.ts";

/** What a worker is started with (structured-cloned: plain data only). */
export interface WorkerSettings {
  readonly index: number;
  readonly outputs: OutputOptions;
  readonly previewIdleMs: number;
  /** The scheduling the thread asks for (DISTRIBUTARY_FORWARDING_PRIORITY). */
  readonly priority: Priority;
  /** The ports the service's outputs send from, shared by every thread (runtime/sockets/own-ports.ts). */
  readonly ownPorts: OwnPortsShare;
  /** Until when each fleet channel may send, shared by every thread (runtime/sockets/send-gates.ts). */
  readonly sendGates: SharedArrayBuffer;
}

export type Command =
  | {
      readonly op: "start";
      readonly spec: ChannelSpec;
      readonly handover?: Handover;
      /** A move's word (move-word.ts): the new copy says it runs, the old one that it is done. */
      readonly handedOver?: SharedArrayBuffer;
    }
  | { readonly op: "stop"; readonly channel: ChannelId }
  /**
   * A move's first half on the old worker: where its inputs hear their senders. With `handedOver`, the old
   * copy lets go as soon as the new one says it runs (move-word.ts), without waiting for `release`.
   */
  | { readonly op: "senders"; readonly channel: ChannelId; readonly handedOver?: SharedArrayBuffer }
  /**
   * A move's second half on the old worker: inputs closed, outputs drained, `handedOver` set (the new copy
   * sends from then on, without waiting for this reply), then stopped.
   */
  | { readonly op: "release"; readonly channel: ChannelId; readonly handedOver?: SharedArrayBuffer }
  /** An upgrade's old process, after `release`: where the given RTP outputs' streams stand (rtp.ts). */
  | { readonly op: "rtpStates"; readonly channel: ChannelId; readonly outputs: ReadonlyArray<string> }
  /**
   * An upgrade's new process: the old one sent its last datagram; the RTP outputs go on from `rtp`, then the
   * move's word says done (the new copy sends what it held).
   */
  | {
      readonly op: "handedOver";
      readonly channel: ChannelId;
      readonly rtp: Record<string, RtpState>;
      readonly handedOver: SharedArrayBuffer;
    }
  /** A fleet hand-over (RunningChannel.fleetCut, fleetResume, fleetResumed). */
  | { readonly op: "fleetCut"; readonly channel: ChannelId }
  | { readonly op: "fleetResume"; readonly channel: ChannelId; readonly how: Resumption }
  | { readonly op: "fleetResumed"; readonly channel: ChannelId; readonly withinMs: number }
  /**
   * Before a rebalance's moves, on the worker that takes them: the memories of the packet cores their inputs
   * will load, made now (PacketCore.prepare; 0 lets go of those left unused).
   */
  | { readonly op: "prepare"; readonly cores: number }
  /** A move's last step on the new worker: its inputs take any sender again. */
  | { readonly op: "settle"; readonly channel: ChannelId }
  | { readonly op: "applyOutput"; readonly channel: ChannelId; readonly output: OutputSpec }
  | { readonly op: "removeOutput"; readonly channel: ChannelId; readonly output: OutputId }
  | { readonly op: "reconfigure"; readonly spec: ChannelSpec }
  | { readonly op: "switchInput"; readonly channel: ChannelId; readonly role: InputRole }
  | {
      readonly op: "insertCue";
      readonly channel: ChannelId;
      readonly section: Uint8Array;
      readonly program: number | null;
      readonly by: string;
    }
  | { readonly op: "sync" }
  /** Every channel stopped and every child reaped: the thread may end. */
  | { readonly op: "shutdown" }
  | { readonly op: "status"; readonly channel: ChannelId }
  | { readonly op: "capture"; readonly channel: ChannelId; readonly ms: number; readonly maxBytes: number }
  | {
      readonly op: "hls";
      readonly channel: ChannelId;
      /** An HLS output's id, or null for the channel's preview rendition (started by asking). */
      readonly output: string | null;
      /** null asks only whether it is there. */
      readonly file:
        | { readonly kind: "playlist" }
        | { readonly kind: "segment"; readonly name: string }
        | null;
    };

/** One channel as a sync reports it. */
export interface ChannelSample {
  readonly id: ChannelId;
  readonly summary: ChannelRuntimeSummary;
  readonly cueCounts: CueCounts;
  /**
   * Cues seen since the previous sync, oldest first, and earlier ones an RTMP output has sent since (the same
   * id, a longer `rtmp` list): they take the place of the copy with their id.
   */
  readonly newCues: ReadonlyArray<CueRecord>;
  readonly previewActive: boolean;
}

export interface SyncReply {
  readonly channels: ReadonlyArray<ChannelSample>;
  /** The worker's event-loop delay since the previous sync, in ms. */
  readonly loopDelay: { readonly p99: number; readonly max: number };
  /** The thread's CPU time, user and system, since it started, in µs. */
  readonly cpuMicros: number;
}

export type WorkerMessage =
  /** The thread is up, running at `scheduling`. */
  | { readonly kind: "ready"; readonly scheduling: Scheduling }
  | { readonly kind: "reply"; readonly id: number; readonly value: unknown }
  | {
      readonly kind: "reply";
      readonly id: number;
      readonly error: { readonly reason: ChannelError["reason"]; readonly message: string };
    }
  | { readonly kind: "event"; readonly event: NewEvent }
  /** A channel that had started ended with an error. */
  | { readonly kind: "failed"; readonly channel: ChannelId; readonly message: string }
  | { readonly kind: "log"; readonly level: "warning" | "error"; readonly message: string };

export interface Request {
  readonly id: number;
  readonly command: Command;
}
