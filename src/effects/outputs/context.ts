/**
 * What an output's writer hands to a protocol's connection attempt (udp, rtp, srt, rtmp): the queue to drain
 * and the callbacks that report progress. Its own module so that the protocol modules and writer.ts, which
 * picks among them, do not import each other.
 */
import type { Effect } from "effect";
import type { ChunkQueue } from "./queue.ts";

/** SRT link figures as srt-live-transmit reports them; counters add up over reconnects. */
export interface SrtLinkStats {
  readonly rttMs: number;
  readonly retransmits: number;
  readonly lossPackets: number;
  readonly sendRateMbps: number;
}

/** What a protocol's attempt may do to the output it serves. */
export interface WriterContext {
  readonly queue: ChunkQueue;
  /** The destination accepts data from now on. */
  readonly markConnected: Effect.Effect<void>;
  readonly countSent: (bytes: number) => void;
  /** Cumulative link figures for the current connection. */
  readonly reportSrt: (stats: SrtLinkStats) => void;
  readonly srtStatsEveryPackets: number;
}
