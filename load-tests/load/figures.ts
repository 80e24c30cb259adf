/**
 * A measured run's figures: loss, continuity, cues, latency and silences per TS protocol, whether each output
 * is byte-identical to its input (or its media packets are), streams and frames of the RTMP outputs, CPU per
 * stream, RSS and its growth, event-loop lag, REST latency.
 */
import { dvblast, ffmpegTee } from "./contenders.ts";
import type { Measured } from "./measure.ts";
import { C, M, outputCount, percentile, plan, round, SOAK, type TsProtocol } from "./options.ts";
import { rebalanceFigures } from "./rebalance.ts";

const sum = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0);

/**
 * A soak's RSS growth once warm: the first sixth of the run is warm-up (5 minutes of a 30-minute soak: heaps
 * growing to their working size, buffer pools, JIT), then the median RSS of the last sixth against the median
 * of the sixth right after the warm-up, in percent. Medians, so that one sample caught before a GC does not
 * decide it; a leak shows as a later median above the earlier one.
 */
const soakGrowth = (samples: ReadonlyArray<{ at: number; rss: number }>): number | null => {
  const end = samples.at(-1)?.at ?? 0;
  const sixth = end / 6;
  const median = (from: number, to: number) => {
    const values = samples
      .filter((sample) => sample.at >= from && sample.at <= to)
      .map((sample) => sample.rss)
      .sort((a, b) => a - b);
    return values.length === 0 ? null : (values[Math.floor(values.length / 2)] ?? null);
  };
  const early = median(sixth, 2 * sixth);
  const late = median(end - sixth, end);
  return early === null || late === null || early <= 0 ? null : ((late - early) / early) * 100;
};

/** Which channel each sink port listens for (its input's digests are what the port's are set against). */
const channelOfPort = new Map(
  plan.flatMap((channel, c) => channel.outputs.map((output) => [output.sink, c] as const)),
);

/** The channels whose forwarding worker changed in the window (moved), or null when that is not known. */
const movedIn = (run: Measured): ReadonlySet<number> | null => {
  if (run.placements === null) return null;
  const { start, end } = run.placements;
  return new Set([...end].flatMap(([c, worker]) => (start.has(c) && start.get(c) !== worker ? [c] : [])));
};

/** The longest silence at each output, in ms: a distribution over the outputs, those of moved channels apart. */
const silencesOf = (
  ports: ReadonlyArray<{
    readonly port: number;
    readonly longestSilenceUs: number;
    readonly longestSilenceEndUs: number;
  }>,
  moved: ReadonlySet<number> | null,
) => {
  const spread = (us: ReadonlyArray<number>) => {
    const ms = us.map((value) => value / 1000).sort((a, b) => a - b);
    return ms.length === 0
      ? null
      : {
          outputs: ms.length,
          p50: round(percentile(ms, 50), 1),
          p90: round(percentile(ms, 90), 1),
          max: round(ms.at(-1) ?? 0, 1),
          over_20_ms: ms.filter((value) => value > 20).length,
        };
  };
  const isMoved = (port: number) => moved?.has(channelOfPort.get(port) ?? -1) === true;
  return {
    all: spread(ports.map((p) => p.longestSilenceUs)),
    moved_channels: moved === null ? null : moved.size,
    moved:
      moved === null ? null : spread(ports.filter((p) => isMoved(p.port)).map((p) => p.longestSilenceUs)),
    stayed:
      moved === null ? null : spread(ports.filter((p) => !isMoved(p.port)).map((p) => p.longestSilenceUs)),
    /** each output: its channel, its longest silence and when that ended (ms since the epoch, the kernel's clock) */
    each: ports.map((p) => ({
      channel: channelOfPort.get(p.port) ?? null,
      port: p.port,
      moved: isMoved(p.port),
      ms: round(p.longestSilenceUs / 1000, 1),
      ended_at_ms: p.longestSilenceEndUs === 0 ? null : round(p.longestSilenceEndUs / 1000, 1),
    })),
  };
};

export const figures = (run: Measured) => {
  const remuxed = run.name === ffmpegTee.name;
  // dvblast rebuilds the PAT and PMT (its own versions, counters and cadence) and may pad with null packets:
  // its loss is counted on the media and cue packets, which it passes as they came.
  const psiRebuilt = run.name === dvblast.name;
  const perProtocol = (protocol: TsProtocol) => {
    const sink = run.sinks[protocol];
    if (sink === null) return null;
    const outputs = outputCount(protocol);
    const sent = (counts: typeof run.source.whole, pick: (c: { packets: number; media: number }) => number) =>
      sum(counts.channels.map(pick)) * outputs;
    const sentWhole = sent(run.source.whole, (c) => c.packets);
    const mediaSentWhole = sent(run.source.whole, (c) => c.media);
    // the window's figure counts what the loss counts: every TS packet, or for rebuilt PSI the media packets
    const counted = (c: { packets: number; media: number }) => (psiRebuilt ? c.media : c.packets);
    const sentWindow = sent(run.source.whole, counted) - sent(run.source.windowStart, counted);
    const cuesSent = sum(run.source.whole.channels.map((c) => c.cues)) * outputs;
    const receivedWhole = sum(sink.end.ports.map((p) => p.packets));
    const mediaReceivedWhole = sum(sink.end.ports.map((p) => p.media));
    const receivedWindow = sum(sink.windowEnd.ports.map(counted)) - sum(sink.start.ports.map(counted));
    const packetsLost = Math.max(0, sentWhole - receivedWhole);
    const mediaLost = Math.max(0, mediaSentWhole - mediaReceivedWhole);
    const lost = psiRebuilt ? mediaLost : packetsLost;
    const lossBase = psiRebuilt ? mediaSentWhole : sentWhole;
    // Each output against its channel's input: the digest of every TS packet in order (byte-identical), and
    // the count and order-free digest of the media packets (video, audio and SCTE-35 passed unchanged).
    const inputOf = (port: number) => run.source.whole.channels[channelOfPort.get(port) ?? -1];
    const byteIdentical = sink.end.ports.filter(
      (p) => p.digest !== "" && p.digest === inputOf(p.port)?.digest,
    );
    const mediaIdentical = sink.end.ports.filter((p) => {
      const input = inputOf(p.port);
      return p.mediaDigest !== "" && p.media === input?.media && p.mediaDigest === input.mediaDigest;
    });
    const latency = sink.end.latency;
    return {
      outputs: outputs * C,
      packets_sent: sentWhole,
      packets_received: receivedWhole,
      // a remuxer re-cuts the TS, so its packets cannot be counted against those sent: see delivered_in_window
      packets_lost: remuxed ? null : lost,
      /** what packets_lost counts: every TS packet, or (rebuilt PSI) the media and cue packets alone */
      loss_counts: remuxed ? null : psiRebuilt ? "media and cue packets" : "TS packets",
      loss_percent: round(remuxed || lossBase === 0 ? null : (lost / lossBase) * 100, 4),
      delivered_in_window_percent: round(sentWindow === 0 ? 0 : (receivedWindow / sentWindow) * 100, 2),
      /** the packets of every PID but PAT, PMT, other PSI/SI and null packets: video, audio and SCTE-35 */
      media_packets_sent: mediaSentWhole,
      media_packets_received: mediaReceivedWhole,
      media_packets_lost: remuxed ? null : mediaLost,
      psi_packets_sent: sentWhole - mediaSentWhole,
      psi_packets_received: sum(sink.end.ports.map((p) => p.psi)),
      null_packets_received: sum(sink.end.ports.map((p) => p.nulls)),
      /** outputs whose every TS packet, in order, is the input's, byte for byte */
      byte_identical_outputs: byteIdentical.length,
      /** outputs whose media packets are all the input's, unchanged (whatever became of the PSI) */
      media_identical_outputs: mediaIdentical.length,
      continuity_errors: sum(sink.end.ports.map((p) => p.ccErrors)),
      cues_sent: cuesSent,
      cues_received: sum(sink.end.ports.map((p) => p.cues)),
      latency_ms:
        latency === null
          ? null
          : {
              samples: latency.count,
              p50: round(latency.p50Us / 1000, 3),
              p99: round(latency.p99Us / 1000, 3),
              max: round(latency.maxUs / 1000, 3),
            },
      longest_silence_ms: round(Math.max(0, ...sink.end.ports.map((p) => p.longestSilenceUs)) / 1000, 1),
      longest_silence_per_output: silencesOf(sink.end.ports, movedIn(run)),
    };
  };
  const rtmpOutputs = outputCount("rtmp") * C;
  const rtmp =
    run.rtmp === null
      ? null
      : {
          outputs: rtmpOutputs,
          streams_at_nginx: run.rtmp.windowEnd.publishing,
          nginx_received_mbps: round(
            ((run.rtmp.windowEnd.bytesIn - run.rtmp.start.bytesIn) * 8) / run.windowSeconds / 1_000_000,
          ),
          frames_sent: run.rtmp.frames?.sent ?? null,
          frames_dropped: run.rtmp.frames?.dropped ?? null,
        };
  const streams = C * M;
  const cpuPercent = (run.cpuSeconds / run.windowSeconds) * 100;
  const mainLag = run.lag.filter((sample) => sample.series === "nodejs_eventloop_lag");
  const lagSeries = [...new Set(run.lag.map((sample) => sample.series))].map((series) => {
    const of = run.lag.filter((sample) => sample.series === series);
    const p99s = of.map((sample) => sample.p99).sort((a, b) => a - b);
    return {
      series,
      samples: of.length,
      p99_median_ms: round(percentile(p99s, 50), 1),
      p99_worst_ms: round(p99s.at(-1) ?? null, 1),
      max_ms: round(Math.max(0, ...of.map((sample) => sample.max)), 1),
    };
  });
  const first = run.samples[0];
  const last = run.samples.at(-1);
  const warmGrowth = soakGrowth(run.samples);
  const durations = [...(run.rest?.durations ?? [])].sort((a, b) => a - b);
  return {
    contender: run.name,
    api_clients: run.apiClients,
    window_seconds: round(run.windowSeconds, 1),
    processes: run.usageEnd.processes,
    udp: perProtocol("udp"),
    srt: perProtocol("srt"),
    rist: perProtocol("rist"),
    rtmp,
    health: run.health,
    // --rebalance: each output's longest silence during the moves, and the moves' hand-overs
    rebalance: run.rebalance === null ? null : rebalanceFigures(run.rebalance, run.windowSeconds),
    cpu: {
      percent_of_a_core: round(cpuPercent, 1),
      per_channel_percent: round(cpuPercent / C, 3),
      per_output_stream_percent: round(cpuPercent / streams, 3),
    },
    rss_mib: round(run.usageEnd.rss / 1048576, 1),
    rss_growth_percent:
      first && last && first.rss > 0 ? round(((last.rss - first.rss) / first.rss) * 100, 2) : null,
    // a soak's figure: what RSS did once the heaps, pools and JIT had settled (see soakGrowth)
    rss_growth_after_warmup_percent: warmGrowth === null ? null : round(warmGrowth, 2),
    open_files: { start: run.usageStart.fds, end: run.usageEnd.fds },
    event_loop_lag: mainLag.length === 0 ? null : lagSeries,
    // where the service's CPU went: each thread's share of a core over the window, the busiest first
    threads:
      run.threads === null
        ? null
        : [...run.threads.end]
            .map(([name, cpu]) => ({
              name,
              percent_of_a_core: round(
                ((cpu - (run.threads?.start.get(name) ?? 0)) / run.windowSeconds) * 100,
                1,
              ),
            }))
            .filter((thread) => (thread.percent_of_a_core ?? 0) >= 0.1)
            .sort((a, b) => (b.percent_of_a_core ?? 0) - (a.percent_of_a_core ?? 0)),
    rest:
      run.rest === null
        ? null
        : {
            requests: run.rest.requests,
            per_second: round(run.rest.requests / run.windowSeconds, 1),
            p50_ms: round(percentile(durations, 50), 2),
            p99_ms: round(percentile(durations, 99), 2),
          },
    samples: SOAK
      ? run.samples.map((s) => ({ at_s: round(s.at, 0), rss_mib: round(s.rss / 1048576, 1), fds: s.fds }))
      : undefined,
    load_average_after: run.loadAverage.map((value) => round(value, 2)),
  };
};
export type Figures = ReturnType<typeof figures>;
