/**
 * What an output's writer hands to a protocol's connection attempt (udp, rtp, srt, rtmp): the queue to drain
 * and the callbacks that report progress. Its own module so that the protocol modules and writer.ts, which
 * picks among them, do not import each other.
 */
import type * as Effect from "effect/Effect";
import type { RistLinkFigures } from "../runtime/links/rist-link.ts";
import type { SrtRefusal } from "../runtime/links/srt-listeners.ts";
import type { BatchSink } from "../runtime/sockets/thread-sender.ts";
import type { ChunkQueue } from "./queue.ts";

/** One SRT peer of an output (the listener it called, or one receiver that called our listener). */
export interface SrtPeerStats {
  /** The peer's address and port. */
  readonly peer: string;
  /** The stream id the peer asked for, masked as URLs are; null when none. */
  readonly streamId: string | null;
  readonly connectedAt: number;
  readonly rttMs: number;
  readonly sendRateMbps: number;
  readonly bandwidthMbps: number;
  readonly retransmits: number;
  /** Packets the peer reported lost. */
  readonly lossPackets: number;
  /** Packets libsrt dropped as too late to send, and messages its full send buffer refused. */
  readonly droppedPackets: number;
  readonly flightSize: number;
  readonly sendBufferPackets: number;
  readonly sendBufferMs: number;
}

/** SRT link figures of an output from libsrt's statistics; counters add up over peers and reconnects. */
export interface SrtLinkStats {
  /** The highest round-trip time among the peers. */
  readonly rttMs: number;
  readonly retransmits: number;
  readonly lossPackets: number;
  readonly droppedPackets: number;
  /** The sum over the peers. */
  readonly sendRateMbps: number;
  readonly flightSize: number;
  /** The fullest send buffer among the peers, in milliseconds of stream. */
  readonly sendBufferMs: number;
  /** The peers connected now, each with its own figures. */
  readonly peers: ReadonlyArray<SrtPeerStats>;
}

/** One RIST peer of an output: its address (librist's cname for it) and its totals since the attempt began. */
export interface RistPeerLink extends RistLinkFigures {
  readonly peer: string;
}

/** What a protocol's attempt may do to the output it serves. */
export interface WriterContext {
  readonly queue: ChunkQueue;
  /** The queue's capacity in bytes: an RTMP output's frame queue holds as much. */
  readonly queueBytes: number;
  /** The destination accepts data from now on. */
  readonly markConnected: Effect.Effect<void>;
  /**
   * The destination has nobody to send to for now, and that is no failure: a listener whose receivers all
   * left waits for the next one (state `connecting`; what the queue lets go meanwhile is no loss).
   */
  readonly markWaiting: Effect.Effect<void>;
  readonly countSent: (bytes: number) => void;
  /** Cumulative link figures for the current connection. */
  readonly reportSrt: (stats: SrtLinkStats) => void;
  /** A RIST output's peers as librist's last reading left them. */
  readonly reportRist: (peers: ReadonlyArray<RistPeerLink>) => void;
  /** A listener output on a port shared by stream id refused a receiver asking for its stream id. */
  readonly srtRefused?: (refusal: SrtRefusal) => void;
  /** It refused one asking for a stream id no channel on the port has (the node's to tell). */
  readonly srtUnrouted?: (refusal: SrtRefusal) => void;
  /** How often an SRT output reads libsrt's statistics. */
  readonly srtStatsIntervalMs: number;
  /** The output's RTP key (rtp.ts rtpKey: its channel and its id): its stream goes on under it through a hand-over. */
  readonly rtpKey: string;
  /** On a fleet node, the term of the channel's lease as the attempt starts (an RTP SSRC carries it). */
  readonly term: () => number | null;
  /**
   * Whether the output may take its channel's turn batches (runtime/sockets/turn-batch.ts) instead of single chunks:
   * a channel that makes them says so. `joinBatches(sink)` starts that (the queue's chunks no longer come),
   * `joinBatches(null)` ends it.
   */
  readonly batches: boolean;
  readonly joinBatches: (sink: BatchSink | null) => void;
}
