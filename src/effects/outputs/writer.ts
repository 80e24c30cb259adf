/**
 * One output: its queue, its status and its writer. The channel's fan-out calls `offer` (synchronous, never
 * blocks); the channel supervisor runs `run` as one FiberMap entry per output id, so adding, changing or
 * removing an output restarts only that output's fiber.
 *
 *   const output = yield* makeOutput(url)           // validates the URL; nothing starts yet
 *   fanOut.set(id, output.offer)
 *   yield* FiberMap.run(writers, id, output.run)     // connects, writes, reconnects; interrupt to stop
 *
 * `run` never succeeds: it fails only when the reconnect budget is spent or the error cannot be fixed by
 * retrying. Running it again on the same output resumes (queue and counters kept); it first waits for an
 * earlier run to finish releasing its socket or child process.
 */
import { Cause, Duration, Effect, Exit } from "effect";
import type { OutputError, OutputErrorReason } from "../../domain/errors.ts";
import { type OutputProtocol, type OutputTarget, parseOutputUrl } from "../../domain/url.ts";
import { type ReconnectOptions, reconnectSchedule, runWithReconnects } from "../retry.ts";
import type { SrtLinkStats, WriterContext } from "./context.ts";
import { makeChunkQueue, TS_PACKET_SIZE } from "./queue.ts";
import { rtmpAttempt } from "./rtmp.ts";
import { srtAttempt } from "./srt.ts";
import { datagramAttempt } from "./udp.ts";

export type { SrtLinkStats, WriterContext } from "./context.ts";

export type OutputState = "stopped" | "connecting" | "connected" | "retrying" | "error";

export interface OutputStatus {
  readonly protocol: OutputProtocol;
  /** Masked: safe for logs, API and pages. */
  readonly url: string;
  readonly state: OutputState;
  /** TS bytes handed to the destination's transport (socket, or the child that speaks the protocol). */
  readonly bytesSent: number;
  readonly packetsSent: number;
  /** TS packets dropped because the destination did not keep up or was not connected. */
  readonly queueDrops: number;
  readonly queuedBytes: number;
  readonly reconnects: number;
  readonly lastError: string | null;
  readonly lastErrorReason: OutputErrorReason | null;
  readonly lastErrorAt: number | null;
  /** When `run` last started (epoch ms). */
  readonly startedAt: number | null;
  /** When the current connection was made (epoch ms); null when not connected. */
  readonly connectedAt: number | null;
  readonly uptimeMs: number;
  readonly srt: SrtLinkStats | null;
}

/** What an output tells its channel as it happens: state changes and reconnects, for the event bus. */
export type OutputEvent =
  | { readonly type: "state"; readonly state: OutputState; readonly error: string | null }
  | {
      readonly type: "reconnect";
      readonly reconnects: number;
      readonly error: string;
      readonly delayMs: number;
    };

export interface Output {
  readonly protocol: OutputProtocol;
  readonly maskedUrl: string;
  readonly offer: (chunk: Uint8Array) => void;
  readonly status: () => OutputStatus;
  readonly run: Effect.Effect<never, OutputError>;
}

export interface OutputOptions {
  /** Queue capacity; the oldest data beyond it is dropped. Default 4 MiB, about 6 s at 5 Mb/s. */
  readonly queueBytes?: number;
  readonly reconnect?: ReconnectOptions;
  /** How often SRT outputs read libsrt's statistics. Default 1 s. */
  readonly srtStatsIntervalMs?: number;
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

const attemptFor = (target: OutputTarget, context: WriterContext) => {
  switch (target.protocol) {
    case "udp":
    case "rtp":
      return datagramAttempt(target, context);
    case "srt":
      return srtAttempt(target, context);
    case "rtmp":
    case "rtmps":
      return rtmpAttempt(target, context);
  }
};

export const makeOutput = (
  url: string,
  options: OutputOptions = {},
  onEvent: (event: OutputEvent) => void = () => {},
): Effect.Effect<Output, OutputError> =>
  Effect.gen(function* () {
    const target = yield* parseOutputUrl(url);
    const queue = makeChunkQueue(options.queueBytes ?? 4 * 1024 * 1024);
    const runLock = yield* Effect.makeSemaphore(1);

    let state: OutputState = "stopped";
    let bytesSent = 0;
    let reconnects = 0;
    let lastError: OutputError | null = null;
    let lastErrorAt: number | null = null;
    let startedAt: number | null = null;
    let connectedAt: number | null = null;
    // SRT counters restart with each connection attempt; earlier attempts' totals are kept here.
    let srtEarlier: SrtLinkStats | null = null;
    let srtCurrent: SrtLinkStats | null = null;

    const setState = (next: OutputState) => {
      const changed = next !== state;
      state = next;
      connectedAt = next === "connected" ? Date.now() : null;
      if (changed)
        onEvent({
          type: "state",
          state: next,
          error: next === "connected" ? null : (lastError?.message ?? null),
        });
    };

    const context: WriterContext = {
      queue,
      markConnected: Effect.sync(() => setState("connected")),
      countSent: (bytes) => {
        bytesSent += bytes;
      },
      reportSrt: (stats) => {
        srtCurrent = stats;
      },
      srtStatsIntervalMs: options.srtStatsIntervalMs ?? 1000,
    };

    const beginAttempt = Effect.sync(() => {
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
      setState("connecting");
    });

    const recordError = (error: OutputError) =>
      Effect.sync(() => {
        lastError = error;
        lastErrorAt = Date.now();
      });

    const onRetry = (error: OutputError, delay: Duration.Duration) =>
      Effect.zipRight(
        recordError(error),
        Effect.sync(() => {
          setState("retrying");
          onEvent({
            type: "reconnect",
            reconnects: reconnects + 1,
            error: error.message,
            delayMs: Duration.toMillis(delay),
          });
        }),
      );

    const run: Effect.Effect<never, OutputError> = runLock.withPermits(1)(
      Effect.suspend(() => {
        startedAt = Date.now();
        return runWithReconnects(
          Effect.zipRight(beginAttempt, attemptFor(target, context)),
          reconnectSchedule(options.reconnect),
          {
            onRetry,
            onReconnect: Effect.sync(() => {
              reconnects += 1;
            }),
          },
        );
      }).pipe(
        Effect.tapError(recordError),
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
        packetsSent: bytesSent / TS_PACKET_SIZE,
        queueDrops: queue.droppedPackets(),
        queuedBytes: queue.queuedBytes(),
        reconnects,
        lastError: lastError?.message ?? null,
        lastErrorReason: lastError?.reason ?? null,
        lastErrorAt,
        startedAt,
        connectedAt,
        uptimeMs: connectedAt === null ? 0 : Date.now() - connectedAt,
        srt,
      };
    };

    return { protocol: target.protocol, maskedUrl: target.masked, offer: queue.offer, status, run };
  });
