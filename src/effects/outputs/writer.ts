/**
 * One output: its queue, its status and its writer (which one its protocol runs: protocol-attempt.ts). The
 * channel's fan-out calls `offer` (synchronous, never blocks); the channel supervisor runs `run` as one FiberMap
 * entry per output id, so adding, changing or removing an output restarts only that output's fiber.
 *
 *   const output = yield* makeOutput(url)           // validates the URL; nothing starts yet
 *   fanOut.set(id, output.offer)
 *   yield* FiberMap.run(writers, id, output.run)     // connects, writes, reconnects; interrupt to stop
 *
 * `run` never succeeds: it fails only when the reconnect budget is spent or the error cannot be fixed by
 * retrying. Running it again on the same output resumes (queue and counters kept); it first waits for an
 * earlier run to finish releasing its socket or child process.
 */
import * as Cause from "effect/Cause";
import * as Duration from "effect/Duration";
import * as Effect from "effect/Effect";
import * as Exit from "effect/Exit";
import { FlvRemux, type RemuxDropReason } from "../../core/flv/remux.ts";
import type { PushAddressPolicy } from "../../domain/channel/addresses.ts";
import {
  OutputError,
  type OutputErrorReason,
  outputInternalError,
} from "../../domain/channel/output-error.ts";
import type { WriterState } from "../../domain/channel/states.ts";
import { recordingPlaceProblem } from "../../domain/url/recording.ts";
import type { CueMode } from "../../domain/url/rtmp-rtsp.ts";
import { type OutputProtocol, parseOutputUrl } from "../../domain/url/url.ts";
import { REFUSAL_EVENT_MS, type SrtRefusal, throttledRefusals } from "../runtime/links/srt-listeners.ts";
import { termOf } from "../runtime/sockets/send-gates.ts";
import type { BatchSink } from "../runtime/sockets/thread-sender.ts";
import type { TurnBatch } from "../runtime/sockets/turn-batch.ts";
import type { RistPeerLink, SrtLinkStats, WriterContext } from "./context.ts";
import { type HlsServed, makeHlsState } from "./hls.ts";
import { attemptFor, type RtmpWriting } from "./protocol-attempt.ts";
import { makeChunkQueue, TS_PACKET_SIZE } from "./queue.ts";
import { type ReconnectOptions, reconnectSchedule, runWithReconnects } from "./retry.ts";
import type { RtmpCounters } from "./rtmp.ts";

export interface OutputStatus {
  readonly protocol: OutputProtocol;
  /** Masked: safe for logs, API and pages. */
  readonly url: string;
  readonly state: WriterState;
  /** TS bytes handed to the destination's transport (socket, or the child that speaks the protocol). */
  readonly bytesSent: number;
  readonly packetsSent: number;
  /**
   * TS packets dropped because the destination did not keep up or was lost; what was let go while nobody
   * could be sent it (before the first connection, or a listener with no receiver) is not counted.
   */
  readonly queueDrops: number;
  readonly queuedBytes: number;
  readonly reconnects: number;
  /** Failed attempts: one per failure, whether another attempt follows or not. */
  readonly errors: number;
  readonly lastError: string | null;
  readonly lastErrorReason: OutputErrorReason | null;
  readonly lastErrorAt: number | null;
  /** When `run` last started (epoch ms). */
  readonly startedAt: number | null;
  /** When the current connection was made (epoch ms); null when not connected. */
  readonly connectedAt: number | null;
  readonly uptimeMs: number;
  readonly srt: SrtLinkStats | null;
  /**
   * An SRT listener output: the receivers it refused since it started (a stream id it does not serve, a wrong
   * passphrase, no room) and the latest of them; null for any other output.
   */
  readonly srtRefusals: {
    readonly refusals: number;
    readonly lastRefusal: (SrtRefusal & { readonly atEpochMs: number }) | null;
  } | null;
  /** RIST outputs: each peer's figures (librist's readings added up over the current attempt). */
  readonly rist: ReadonlyArray<RistPeerLink> | null;
  /**
   * RTMP outputs: FLV frames sent and dropped, SCTE-35 cues sent, bytes the server acknowledged; what of the
   * channel it leaves out (its audio, when RTMP cannot carry it), in words.
   */
  readonly rtmp:
    | (RtmpCounters & {
        readonly cues: CueMode;
        readonly leftOut: string | null;
        /** What the channel's remux could not frame and left out, by reason (shared by its RTMP outputs). */
        readonly remuxDropped: Readonly<Record<RemuxDropReason, number>>;
        /** What was wrong with the latest of them, in words. */
        readonly remuxLastDrop: string | null;
      })
    | null;
}

/** What an output tells its channel as it happens: state changes and reconnects, for the event bus. */
export type OutputEvent =
  | { readonly type: "state"; readonly state: WriterState; readonly error: string | null }
  | {
      readonly type: "reconnect";
      readonly reconnects: number;
      readonly error: string;
      readonly delayMs: number;
    }
  /**
   * A listener output on a port shared by stream id refused a receiver (`node`: one asking for a stream id no
   * channel on the port has), told at most once per reason every REFUSAL_EVENT_MS with the count since.
   */
  | {
      readonly type: "srt_refused";
      readonly refusal: SrtRefusal;
      readonly refusals: number;
      readonly node: boolean;
    };

/** An output's counters alone: what the read model samples each second, without the whole status. */
export interface OutputTraffic {
  readonly bytesSent: number;
  readonly queueDrops: number;
  readonly rtmp: OutputStatus["rtmp"];
}

export interface Output {
  readonly protocol: OutputProtocol;
  readonly maskedUrl: string;
  readonly offer: (chunk: Uint8Array) => void;
  readonly status: () => OutputStatus;
  readonly traffic: () => OutputTraffic;
  readonly run: Effect.Effect<never, OutputError>;
  /** An HLS output's playlist and segments, for the service to serve; null for other protocols. */
  readonly hls: HlsServed | null;
  /** An RTMP output's remux: the channel's shared one (its `offer` then does nothing), or its own. */
  readonly flv: FlvRemux | null;
  /**
   * While the output sends its channel's turn batches (OutputOptions.turnBatch), where to send them: its
   * `offer` then gets nothing to send, and the channel leaves it out of the per-datagram fan-out.
   */
  readonly batchSink: () => BatchSink | null;
}

export interface OutputOptions {
  /** Queue capacity; the oldest data beyond it is dropped. Default 4 MiB, about 6 s at 5 Mb/s. */
  readonly queueBytes?: number;
  readonly reconnect?: ReconnectOptions;
  /** How often SRT outputs read libsrt's statistics. Default 1 s. */
  readonly srtStatsIntervalMs?: number;
  /** On a fleet node, the channel's send gate (runtime/sockets/send-gates.ts), where the lease's term is read. */
  readonly sendGate?: number | undefined;
  /**
   * Where recordings may be written (absolute); a file:// output elsewhere is refused. null: recording is off.
   * Left out (tests of one writer), a file output may write anywhere.
   */
  readonly recordingsRoot?: string | null;
  /** DISTRIBUTARY_RIST_SRP_DIR: where a RIST listener's srpfile (an output's or an input's) may be; null: none. */
  readonly ristSrpDir?: string | null;
  /**
   * Which addresses an HLS push may reach: the service's comes from DISTRIBUTARY_HLS_PUSH_ALLOW_PRIVATE. Left
   * out, public addresses only.
   */
  readonly pushAddresses?: PushAddressPolicy;
  /** The channel's TS → FLV remux, shared by its RTMP outputs; left out, an RTMP output makes its own. */
  readonly flv?: FlvRemux;
  /** Where an RTMP output's own remux starts its timeline (ms): tests start it just before 2^24. */
  readonly flvStartMs?: number;
  /**
   * The output's id: an RTMP output names it when it reports a cue it sent (the channel's cue log), an RTP
   * output's stream goes on under it through an upgrade (rtp.ts).
   */
  readonly id?: string;
  /** The RTP key of an RTP output (rtp.ts rtpKey), so that its stream goes on through a hand-over. */
  readonly rtpKey?: string;
  /**
   * An RTMP output's SCTE-35 policy: whether it sends a cue (a splice_info_section). Asked at each cue, so a
   * changed policy applies at once. Left out, every cue.
   */
  readonly cueKept?: (section: Uint8Array) => boolean;
  /**
   * The channel's turn batch: a plain UDP output sends it whole instead of taking each datagram through its
   * queue. Left out, every output takes single chunks.
   */
  readonly turnBatch?: TurnBatch;
}

const zeroSrt: SrtLinkStats = {
  rttMs: 0,
  retransmits: 0,
  lossPackets: 0,
  droppedPackets: 0,
  sendRateMbps: 0,
  flightSize: 0,
  sendBufferMs: 0,
  peers: [],
};

export const makeOutput = (
  url: string,
  options: OutputOptions = {},
  onEvent: (event: OutputEvent) => void = () => {},
): Effect.Effect<Output, OutputError> =>
  Effect.gen(function* () {
    const target = yield* parseOutputUrl(url);
    // Files go only under the recordings directory: recordings, and an HLS output's dir.
    const directory =
      target.protocol === "file" ? target.directory : target.protocol === "hls" ? target.dir : null;
    if (directory !== null && options.recordingsRoot !== undefined) {
      const problem = recordingPlaceProblem(directory, options.recordingsRoot);
      if (problem !== null) return yield* new OutputError({ reason: "invalid_url", message: problem });
    }
    const queueBytes = options.queueBytes ?? 4 * 1024 * 1024;
    const queue = makeChunkQueue(queueBytes);
    const isRtmp = target.protocol === "rtmp" || target.protocol === "rtmps";
    const ownRemux = isRtmp && options.flv === undefined;
    const rtmp: RtmpWriting | null = isRtmp
      ? {
          remux: options.flv ?? new FlvRemux({ startMs: options.flvStartMs ?? 0, reuseMemory: true }),
          counters: { framesSent: 0, framesDropped: 0, cuesSent: 0, acknowledgedBytes: 0, queuedBytes: 0 },
          id: options.id ?? "",
          cueKept: options.cueKept,
        }
      : null;
    const runLock = yield* Effect.makeSemaphore(1);
    const hls =
      target.protocol === "hls"
        ? makeHlsState(target, {
            ...(options.recordingsRoot === undefined ? {} : { recordingsRoot: options.recordingsRoot }),
            ...(options.pushAddresses === undefined ? {} : { pushAddresses: options.pushAddresses }),
          })
        : null;

    let state: WriterState = "starting";
    let bytesSent = 0;
    let reconnects = 0;
    let errors = 0;
    // Since the last connection (or the run's start), an attempt failed: the next ones are reconnecting.
    let failing = false;
    // Until the first connection nothing the queue lets go counts as dropped.
    queue.countDrops(false);
    let lastError: OutputError | null = null;
    let lastErrorAt: number | null = null;
    let startedAt: number | null = null;
    let connectedAt: number | null = null;
    // SRT counters restart with each connection attempt; earlier attempts' totals are kept here.
    let srtEarlier: SrtLinkStats | null = null;
    let srtCurrent: SrtLinkStats | null = null;
    let ristPeers: ReadonlyArray<RistPeerLink> | null = null;
    const listening = target.protocol === "srt" && target.mode === "listener";
    let srtRefusals = 0;
    let lastSrtRefusal: (SrtRefusal & { readonly atEpochMs: number }) | null = null;
    /** Counted and kept for the status at once; the event is throttled. */
    const counted = (tell: (refusal: SrtRefusal) => void) => (refusal: SrtRefusal) => {
      srtRefusals += 1;
      lastSrtRefusal = { ...refusal, atEpochMs: Date.now() };
      tell(refusal);
    };

    /** `fault` is whether an error led here, so the event names the last one. */
    const setState = (next: WriterState, fault = next !== "connected") => {
      const changed = next !== state;
      state = next;
      connectedAt = next === "connected" ? Date.now() : null;
      if (changed)
        onEvent({ type: "state", state: next, error: fault ? (lastError?.message ?? null) : null });
    };

    let batchSink: BatchSink | null = null;
    const context: WriterContext = {
      queue,
      queueBytes,
      markConnected: Effect.sync(() => {
        failing = false;
        queue.countDrops(true);
        setState("connected");
      }),
      markWaiting: Effect.sync(() => {
        queue.countDrops(false);
        setState("connecting", false);
      }),
      countSent: (bytes) => {
        bytesSent += bytes;
      },
      reportSrt: (stats) => {
        srtCurrent = stats;
      },
      reportRist: (peers) => {
        ristPeers = peers;
      },
      srtRefused: counted(
        throttledRefusals(REFUSAL_EVENT_MS, (refusal, refusals) =>
          onEvent({ type: "srt_refused", refusal, refusals, node: false }),
        ),
      ),
      srtUnrouted: throttledRefusals(REFUSAL_EVENT_MS, (refusal, refusals) =>
        onEvent({ type: "srt_refused", refusal, refusals, node: true }),
      ),
      srtStatsIntervalMs: options.srtStatsIntervalMs ?? 1000,
      rtpKey: options.rtpKey ?? "",
      term: () => (options.sendGate === undefined ? null : termOf(options.sendGate)),
      batches: options.turnBatch !== undefined,
      joinBatches: (sink) => {
        const turnBatch = options.turnBatch;
        if (turnBatch === undefined || sink === batchSink) return;
        // What waits in the batch still reaches this output when it leaves, and not when it joins.
        turnBatch.flush();
        batchSink = sink;
        turnBatch.changed();
      },
    };

    const beginAttempt = Effect.sync(() => {
      ristPeers = null;
      if (srtCurrent !== null) {
        const earlier = srtEarlier ?? zeroSrt;
        srtEarlier = {
          ...srtCurrent,
          retransmits: earlier.retransmits + srtCurrent.retransmits,
          lossPackets: earlier.lossPackets + srtCurrent.lossPackets,
          droppedPackets: earlier.droppedPackets + srtCurrent.droppedPackets,
          peers: [],
        };
        srtCurrent = null;
      }
      setState(failing ? "reconnecting" : "connecting");
    });

    /** Each failed attempt, once, as it fails (an interrupted one did not fail). */
    const recordError = (error: OutputError) =>
      Effect.sync(() => {
        errors += 1;
        failing = true;
        lastError = error;
        lastErrorAt = Date.now();
      });

    const onRetry = (error: OutputError, delay: Duration.Duration) =>
      Effect.sync(() => {
        setState("reconnecting");
        onEvent({
          type: "reconnect",
          reconnects: reconnects + 1,
          error: error.message,
          delayMs: Duration.toMillis(delay),
        });
      });

    const run: Effect.Effect<never, OutputError> = runLock.withPermits(1)(
      Effect.suspend(() => {
        startedAt = Date.now();
        failing = false;
        return runWithReconnects(
          Effect.zipRight(beginAttempt, attemptFor(target, context, hls, options, rtmp)).pipe(
            // A defect in this output's own code (its segmenter, its session) ends the attempt like a lost
            // connection: the output tries again, alone, and the channel goes on.
            Effect.catchAllDefect((defect) => Effect.fail(outputInternalError(defect))),
            Effect.tapError(recordError),
          ),
          reconnectSchedule(options.reconnect),
          {
            onRetry,
            onReconnect: Effect.sync(() => {
              reconnects += 1;
            }),
          },
        );
      }).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() =>
            setState(Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? "error" : "stopped"),
          ),
        ),
      ),
    );

    const status = (): OutputStatus => {
      const srt =
        srtCurrent === null
          ? srtEarlier
          : {
              ...srtCurrent,
              retransmits: (srtEarlier?.retransmits ?? 0) + srtCurrent.retransmits,
              lossPackets: (srtEarlier?.lossPackets ?? 0) + srtCurrent.lossPackets,
              droppedPackets: (srtEarlier?.droppedPackets ?? 0) + srtCurrent.droppedPackets,
            };
      return {
        protocol: target.protocol,
        url: target.masked,
        state,
        bytesSent,
        packetsSent: Math.floor(bytesSent / TS_PACKET_SIZE),
        queueDrops: queue.droppedPackets(),
        // An RTMP output's queue holds FLV frames; its TS queue is not used.
        queuedBytes: rtmp === null ? queue.queuedBytes() : rtmp.counters.queuedBytes,
        reconnects,
        errors,
        lastError: lastError?.message ?? null,
        lastErrorReason: lastError?.reason ?? null,
        lastErrorAt,
        startedAt,
        connectedAt,
        uptimeMs: connectedAt === null ? 0 : Date.now() - connectedAt,
        srt,
        srtRefusals: listening ? { refusals: srtRefusals, lastRefusal: lastSrtRefusal } : null,
        rist: ristPeers,
        rtmp:
          rtmp === null || !(target.protocol === "rtmp" || target.protocol === "rtmps")
            ? null
            : {
                ...rtmp.counters,
                cues: target.cues,
                leftOut: rtmp.remux.leftOut,
                remuxDropped: { ...rtmp.remux.dropped },
                remuxLastDrop: rtmp.remux.lastDrop,
              },
      };
    };

    const remux = rtmp?.remux ?? null;
    // An RTMP output reads the channel's TS through its remux: its own (fed here) or the channel's (fed once by
    // the channel for all its RTMP outputs).
    const offer =
      remux === null ? queue.offer : ownRemux ? (chunk: Uint8Array) => remux.push(chunk) : () => {};
    // An RTMP output's figures include its remux's (rare, and read in full); the others', two numbers.
    const traffic = (): OutputTraffic => {
      if (rtmp === null) return { bytesSent, queueDrops: queue.droppedPackets(), rtmp: null };
      const { bytesSent: sent, queueDrops, rtmp: remuxed } = status();
      return { bytesSent: sent, queueDrops, rtmp: remuxed };
    };
    return {
      protocol: target.protocol,
      maskedUrl: target.masked,
      offer,
      status,
      traffic,
      run,
      hls,
      flv: remux,
      batchSink: () => batchSink,
    };
  });
