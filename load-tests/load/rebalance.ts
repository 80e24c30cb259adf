/**
 * `--rebalance`: a rebalance between forwarding threads in the middle of the window, and what it cost the
 * outputs. A quarter into the window the harness opens a span in the UDP sinks (udp-sink.c, SIGHUP), then
 * moves half the channels of the thread that holds the most to another — the moves the service's own
 * rebalance makes (channel/workers/pool.ts `move`, the last half of the busy thread's channels, one after
 * another), asked through `POST /api/channels/{id}/move` so that they start at a known moment — and closes the
 * span SETTLE_MS after the last. The sinks' report at the window's end gives each output's longest silence
 * that overlapped the span (one under way at either end counted whole). The service's `handover` events give
 * each move's duration and its lost and repeated packets. The issue's promise: 0 lost, 0 repeated, no output
 * silent for more than 20 ms.
 */

import type { SinkReport } from "./children.ts";
import type { Service } from "./contenders.ts";
import { percentile, plan, round, sleep } from "./options.ts";

/** Which channel each sink port listens for. */
const channelOfPort = new Map(
  plan.flatMap((channel, c) => channel.outputs.map((output) => [output.sink, c] as const)),
);

/** Silences that ended this close together (ms) were one stall, not each output's own. */
const SAME_MOMENT_MS = 5;

/** After the last move: what a last cut or a late first send still needs to land in the sinks. */
const SETTLE_MS = 500;

interface MarkedSink {
  readonly mark: () => void;
}

export interface Rebalance {
  /** ms from the window's start at which the moves were asked, and how long they took in all */
  readonly atMs: number;
  readonly tookMs: number;
  /** ms from the window's start at which the span closed: past the window's end, the generator had stopped */
  readonly closedAtMs: number;
  readonly from: number;
  readonly to: number;
  /** channels asked to move ("load C" → C), and those whose move was refused (with why) */
  readonly moved: ReadonlyArray<number>;
  readonly refused: ReadonlyArray<string>;
  /** each output's longest silence from the mark to the report (ms), its channel and whether that moved */
  readonly silences: ReadonlyArray<{
    readonly port: number;
    readonly channel: number | null;
    readonly moved: boolean;
    readonly ms: number;
    /** the longest silence the forwarding added (the input's own silence between the same datagrams taken off) */
    readonly addedMs: number;
    /** when it ended: the kernel's receive time of the datagram that ended it (ms since the epoch), or null */
    readonly endedAtMs: number | null;
  }>;
  /** each move's hand-over as the service's `handover` event tells it */
  readonly handovers: ReadonlyArray<{
    readonly channel: number;
    readonly durationMs: number;
    readonly packetsAtCut: number;
    readonly lost: number;
    readonly repeated: number;
  }>;
}

interface ChannelRow {
  readonly id: string;
  readonly name: string;
  readonly worker: number | null;
}

const numberOf = (name: string) => Number(name.replace("load ", ""));

export const rebalance = async (
  service: Service,
  sink: MarkedSink,
  windowStartedAt: number,
): Promise<Rebalance> => {
  const api = async (path: string, init: RequestInit = {}) =>
    fetch(`${service.base}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${service.admin}`, "content-type": "application/json" },
    });
  const { channels } = (await (await api("/api/channels")).json()) as { channels: ReadonlyArray<ChannelRow> };
  const byWorker = new Map<number, ChannelRow[]>();
  for (const channel of channels)
    if (channel.worker !== null)
      byWorker.set(channel.worker, [...(byWorker.get(channel.worker) ?? []), channel]);
  const [from, held] = [...byWorker].sort((a, b) => b[1].length - a[1].length)[0] ?? [0, []];
  const to = from === 0 ? 1 : 0;
  const moving = held.slice(held.length - Math.floor(held.length / 2));
  const refused: string[] = [];
  const atMs = performance.now() - windowStartedAt;
  const since = new Date().toISOString();
  sink.mark();
  const began = performance.now();
  for (const channel of moving) {
    const response = await api(`/api/channels/${channel.id}/move`, {
      method: "POST",
      body: JSON.stringify({ worker: to }),
    });
    if (!response.ok)
      refused.push(`${channel.name}: ${response.status} ${(await response.text()).slice(0, 200)}`);
    else await response.arrayBuffer();
  }
  const tookMs = performance.now() - began;
  await sleep(SETTLE_MS);
  sink.mark();
  const closedAtMs = performance.now() - windowStartedAt;
  const moved = new Set(moving.map((channel) => numberOf(channel.name)));
  const { events } = (await (await api("/api/events?type=handover&limit=1000")).json()) as {
    events: ReadonlyArray<{
      at: string;
      channel_name: string | null;
      duration_ms: number;
      packets_at_cut: number;
      lost: number;
      repeated: number;
    }>;
  };
  return {
    atMs,
    tookMs,
    closedAtMs,
    from,
    to,
    moved: [...moved],
    refused,
    silences: [],
    handovers: events
      .filter((event) => event.at >= since)
      .map((event) => ({
        channel: numberOf(event.channel_name ?? ""),
        durationMs: event.duration_ms,
        packetsAtCut: event.packets_at_cut,
        lost: event.lost,
        repeated: event.repeated,
      })),
  };
};

/** The rebalance with each output's longest silence in its span, from the sinks' report at the window's end. */
export const withSilences = (r: Rebalance, report: SinkReport): Rebalance => {
  const moved = new Set(r.moved);
  return {
    ...r,
    silences: report.ports.map((port) => {
      const channel = channelOfPort.get(port.port) ?? null;
      return {
        port: port.port,
        channel,
        moved: channel !== null && moved.has(channel),
        // No gap that overlapped the span: the sink read nothing received after it opened (held off the CPU,
        // its sockets full of what came before): no figure, not 0.
        ms:
          port.marked === null || port.marked.endUs === 0 ? Number.NaN : port.marked.longestSilenceUs / 1000,
        addedMs: port.marked === null || port.marked.endUs === 0 ? Number.NaN : port.marked.addedUs / 1000,
        endedAtMs: port.marked === null || port.marked.endUs === 0 ? null : port.marked.endUs / 1000,
      };
    }),
  };
};

export const rebalanceFigures = (r: Rebalance, windowSeconds: number) => {
  const spread = (values: ReadonlyArray<number>) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length === 0
      ? null
      : {
          outputs: sorted.length,
          p50: round(percentile(sorted, 50), 1),
          p90: round(percentile(sorted, 90), 1),
          max: round(sorted.at(-1) ?? 0, 1),
          over_20_ms: sorted.filter((value) => value > 20).length,
        };
  };
  const read = r.silences.filter((s) => Number.isFinite(s.ms));
  // A cut silences the moved channel's outputs alone; a stall of the machine or of the whole service, every
  // output at the same moment: how many outputs' longest silence ended with the longest one's.
  const longest = read.reduce<(typeof read)[number] | null>(
    (a, s) => (a === null || s.ms > a.ms ? s : a),
    null,
  );
  const endedWithLongest =
    longest?.endedAtMs == null
      ? null
      : read.filter(
          (s) => s.endedAtMs !== null && Math.abs(s.endedAtMs - (longest.endedAtMs ?? 0)) <= SAME_MOMENT_MS,
        ).length;
  const cuts = [...r.handovers.map((h) => h.durationMs)].sort((a, b) => a - b);
  return {
    from_worker: r.from,
    to_worker: r.to,
    at_s: round(r.atMs / 1000, 1),
    moves_took_ms: round(r.tookMs, 0),
    /** the sinks were read after the generator stopped: a silence under way then is the generator's */
    outlasted_window: r.closedAtMs > windowSeconds * 1000,
    channels_moved: r.moved.length,
    refused: r.refused,
    longest_silence_ms: {
      all: spread(read.map((s) => s.ms)),
      moved: spread(read.filter((s) => s.moved).map((s) => s.ms)),
      stayed: spread(read.filter((s) => !s.moved).map((s) => s.ms)),
    },
    /**
     * each output's longest silence less what its input was silent between the same two datagrams (the
     * generator's send stamps): what the forwarding added, a stall of the generator taken off
     */
    added_silence_ms: {
      all: spread(read.map((s) => s.addedMs)),
      moved: spread(read.filter((s) => s.moved).map((s) => s.addedMs)),
      stayed: spread(read.filter((s) => !s.moved).map((s) => s.addedMs)),
    },
    /** how many outputs' longest silence ended within SAME_MOMENT_MS of the longest one's (null: unknown) */
    ended_with_the_longest: endedWithLongest,
    /** outputs whose sink read nothing received during the span (the sinks were held off the CPU) */
    unread_outputs: r.silences.length - read.length,
    handovers: {
      count: r.handovers.length,
      lost: r.handovers.reduce((sum, h) => sum + h.lost, 0),
      repeated: r.handovers.reduce((sum, h) => sum + h.repeated, 0),
      duration_ms:
        cuts.length === 0
          ? null
          : {
              p50: round(percentile(cuts, 50), 1),
              p90: round(percentile(cuts, 90), 1),
              max: round(cuts.at(-1) ?? 0, 1),
            },
    },
    each: r.silences.map((s) => ({
      ...s,
      ms: round(s.ms, 1),
      endedAtMs: s.endedAtMs === null ? null : round(s.endedAtMs, 1),
    })),
  };
};
