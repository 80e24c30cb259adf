/**
 * The report of a load run: each contender's figures with its ratios to ours, the goals, the command that
 * reproduces it, written as JSON and markdown under the report directory and printed.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { generatorPriority } from "./children.ts";
import { type Figures, figures } from "./figures.ts";
import type { Measured } from "./measure.ts";
import {
  ANCHOR_SECONDS,
  ANCHORS,
  API_CLIENTS,
  C,
  CUE_EVERY,
  GAP_EVERY,
  GAP_MS,
  HEALTH,
  JITTER,
  LOSS,
  M,
  MBPS,
  outputsOf,
  POLICY,
  PROTOCOL,
  REBALANCE,
  REPORT_DIR,
  RUNTIMES,
  round,
  SCRAPE_MS,
  SECONDS,
  SLATE_MS,
  SOAK,
  type TsProtocol,
  values,
  WARMUP,
} from "./options.ts";

type TsFigures = NonNullable<Figures["udp"]>;
/** A figure summed over the TS protocols' outputs (UDP, SRT, RIST) of one run. */
const tsSum = (
  r: Figures,
  field: "packets_lost" | "packets_sent" | "byte_identical_outputs" | "outputs",
): number =>
  (["udp", "srt", "rist"] as const).reduce((total, protocol) => {
    const figures: TsFigures | null = r[protocol];
    return total + (figures?.[field] ?? 0);
  }, 0);

export const writeReport = (
  runs: ReadonlyArray<Measured>,
  loadBefore: ReadonlyArray<number>,
  startedAt: Date,
): void => {
  const results = runs.map(figures);
  const ours = results[0] as Figures;
  /** anchor ÷ ours to two decimals, or two significant digits below 0.1 (1 MiB against 240 is 0.005×, not 0×). */
  const ratio = (anchor: number | null | undefined, our: number | null | undefined) => {
    if (anchor === null || anchor === undefined || our === null || our === undefined || our === 0)
      return null;
    const value = anchor / our;
    return value >= 0.1 ? round(value, 2) : Number(value.toPrecision(2));
  };
  const isOurs = (r: Figures) => r.contender.startsWith("distributary");
  const anchors = results.filter((r) => !isOurs(r));
  const withRatios = results.map((r) =>
    isOurs(r)
      ? r
      : {
          ...r,
          ratio_to_distributary: {
            cpu: ratio(r.cpu.percent_of_a_core, ours.cpu.percent_of_a_core),
            rss: ratio(r.rss_mib, ours.rss_mib),
          },
        },
  );
  const loaded = results.find((r) => r.api_clients > 0 && r.contender === ours.contender);
  const silence = (r: Figures | undefined) =>
    r?.udp?.longest_silence_ms ?? r?.srt?.longest_silence_ms ?? r?.rist?.longest_silence_ms ?? null;
  const ffmpegResult = anchors.find((r) => r.contender === "ffmpeg -f tee");
  const goals = [
    {
      goal: "zero packets lost",
      value: tsSum(ours, "packets_lost"),
      met: tsSum(ours, "packets_lost") === 0,
    },
    ...(ours.rtmp === null
      ? []
      : [
          {
            goal: "zero RTMP frames dropped",
            value: ours.rtmp.frames_dropped,
            met: ours.rtmp.frames_dropped === 0,
          },
        ]),
    ...(ours.health === null
      ? []
      : [
          {
            goal: "health rules on every input, none of them unhealthy (the stream is healthy)",
            value: `${ours.health.unhealthy} of ${ours.health.judged}`,
            met: ours.health.judged === C && ours.health.unhealthy === 0,
          },
        ]),
    {
      goal: "every TS output byte-identical to its input",
      value: `${tsSum(ours, "byte_identical_outputs")} of ${tsSum(ours, "outputs")}`,
      met: tsSum(ours, "byte_identical_outputs") === tsSum(ours, "outputs"),
    },
    {
      goal: "CPU per output stream at or below ffmpeg -f tee's",
      value: ours.cpu.per_output_stream_percent,
      met:
        ffmpegResult === undefined
          ? null
          : (ours.cpu.per_output_stream_percent ?? 0) <= (ffmpegResult.cpu.per_output_stream_percent ?? 0),
    },
    {
      goal: "UDP p99 added latency under 5 ms",
      value: ours.udp?.latency_ms?.p99 ?? null,
      met: ours.udp?.latency_ms ? (ours.udp.latency_ms.p99 ?? 0) < 5 : null,
    },
    {
      goal: "UDP max added latency under 20 ms",
      value: ours.udp?.latency_ms?.max ?? null,
      met: ours.udp?.latency_ms ? (ours.udp.latency_ms.max ?? 0) < 20 : null,
    },
    {
      goal: "longest output silence with API clients within 20 ms of the run without",
      value: loaded === undefined ? null : round((silence(loaded) ?? 0) - (silence(ours) ?? 0), 1),
      met: loaded === undefined ? null : (silence(loaded) ?? 0) - (silence(ours) ?? 0) <= 20,
    },
    ...(REBALANCE
      ? [
          {
            goal: "a rebalance between threads: no output silent for more than 20 ms during it beyond its input's own silence (and 0 lost, every output byte-identical: above)",
            value: ours.rebalance?.added_silence_ms.all?.max ?? null,
            met:
              ours.rebalance?.added_silence_ms.all == null ||
              ours.rebalance.outlasted_window ||
              ours.rebalance.unread_outputs > 0
                ? false
                : (ours.rebalance.added_silence_ms.all.max ?? 0) <= 20,
          },
          {
            goal: "a rebalance between threads: 0 TS packets lost and 0 repeated at its hand-overs (handover events)",
            value:
              ours.rebalance == null
                ? null
                : `${ours.rebalance.handovers.lost} / ${ours.rebalance.handovers.repeated} over ${ours.rebalance.handovers.count}`,
            met:
              ours.rebalance == null
                ? false
                : ours.rebalance.handovers.count === ours.rebalance.channels_moved &&
                  ours.rebalance.handovers.lost === 0 &&
                  ours.rebalance.handovers.repeated === 0,
          },
        ]
      : []),
    {
      goal: "RSS growth under 5 % (a soak: --seconds 1800)",
      value: SOAK ? ours.rss_growth_after_warmup_percent : ours.rss_growth_percent,
      met: SOAK ? (ours.rss_growth_after_warmup_percent ?? 0) < 5 : null,
    },
  ];

  // The forwarding settings given in the environment are part of what was run (the floors follow the batch too,
  // and a busy line or move line forces a rebalance); named one by one, so that no token or other secret of the
  // environment reaches a report.
  const settings = Object.entries(process.env)
    .filter(([name]) =>
      /^DISTRIBUTARY_(BATCH_MS|BATCH_MS_REMUXED|BATCH_READ|WORKERS|WORKER_BUSY_PERCENT|WORKER_MOVE_PERCENT|FORWARDING_PRIORITY|UDP_GSO|UDP_SENDER|RUNTIME)$/.test(
        name,
      ),
    )
    .map(([name, value]) => `${name}=${String(value)} `)
    .join("");
  const command = `${settings}npm run load -- ${process.argv.slice(2).join(" ")}`.trim();
  const report = {
    command,
    started_at: startedAt.toISOString(),
    host: {
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model ?? "unknown",
      load_average_before: loadBefore.map((value) => round(value, 2)),
      node: process.version,
    },
    workload: {
      channels: C,
      outputs_per_channel: M,
      protocol: PROTOCOL,
      outputs: {
        udp: outputsOf("udp").length,
        srt: outputsOf("srt").length,
        rist: outputsOf("rist").length,
        rtmp: outputsOf("rtmp").length,
      },
      mbps: MBPS,
      seconds: SECONDS,
      anchor_seconds: ANCHOR_SECONDS,
      warmup_seconds: WARMUP,
      api_clients: API_CLIENTS,
      rebalance: REBALANCE
        ? "a quarter into the window, half the channels of the thread holding the most move to another, one after another (POST /api/channels/{id}/move)"
        : null,
      cue_every_seconds: CUE_EVERY,
      slate_after_ms: SLATE_MS,
      health: HEALTH,
      policy: POLICY === null ? null : { policy: POLICY, outputs: "every second output of each channel" },
      runtimes: RUNTIMES,
      forwarding_workers: values.workers === undefined ? "default (one per core)" : Number(values.workers),
      faults: { loss_percent: LOSS, jitter_ms: JITTER, gap_every_seconds: GAP_EVERY, gap_ms: GAP_MS },
      input: "RTP (payload type 33), 7 TS packets a datagram",
    },
    results: withRatios,
    goals,
    notes: [
      "CPU is utime+stime of each contender's processes and their children (srt-live-transmit and ristreceiver, the sinks' peers, are the harness's: no contender's) over the measured window, as a share of one core.",
      generatorPriority.applied === false
        ? `The generator ran at the default priority (${generatorPriority.why}): a contender that raises its own priority can hold it off the CPU, and the silences then count the generator's pauses.`
        : "The generator ran at nice -19, as an encoder on another machine would: a contender's threads do not hold it off the CPU. The sinks run at the default priority (they read kernel receive times).",
      "Latency is the sink's kernel receive time less the send time stamped in the datagram by the generator: SRT figures include SRT's own latency buffer (120 ms by default).",
      "ffmpeg remuxes (-c copy): its TS packets are re-cut, so its loss is given as TS packets delivered in the window, latency only where a stamp survived intact, and SCTE-35 leaves it as PES private data, not as sections.",
      "Byte-identical: an output's digest of every TS packet it received, in order, equals that of every TS packet the generator sent its channel (udp-source.c and udp-sink.c keep the same digests); media and cue packets unchanged: the same count and order-free digest of the packets on every PID but the PAT, the PMT, other PSI/SI below 0x20 and null packets (the video, audio and SCTE-35 PIDs).",
      ...(ANCHORS.includes("dvblast")
        ? [
            "dvblast runs one process per channel with its defaults (RTP input; its output buffer, -L, paces the datagrams by the stream's clock: about 200 ms of latency here, where its help says 100 ms and its README 200), each output a `/udp` line for service 1 with every PID of the source listed (256, 257, 496: listing the service alone drops the SCTE-35 PID). It rebuilds the PAT and PMT of each output and may add null packets, so its loss and its delivered share count the media and cue packets; its byte-identity row says what differs.",
          ]
        : []),
      ...(outputsOf("rtmp").length === 0
        ? []
        : [
            "RTMP outputs publish to one nginx-rtmp that keeps nothing; its statistics page gives the streams publishing and the bytes received. They carry the source's H.264 video alone, for every contender: FLV has no codec for its MPEG-1 Layer II audio. Frames are counted by our outputs only.",
          ]),
      ...(REBALANCE
        ? [
            "Rebalance: the UDP sinks open a span (udp-sink.c, SIGHUP) just before the first move and close it 500 ms after the last; an output's longest silence during it is the longest gap between two of its datagrams (kernel receive times) that overlapped the span, one under way at either end counted whole. The goal counts what the forwarding added to it: how much later (receive time less the generator's send stamp) the stream came after the silence than before it, at most the silence (a stall of the generator, which every output repeats, adds nothing). Outputs of channels that stayed are silenced by the machine alone, those that moved by their cut too; a silence that ended within 5 ms of the longest one on most outputs, moved or not, was one stall of them all, not a cut. The times are the kernel's, so the sinks' own scheduling is not counted; the generator's is (an input that stops silences its outputs).",
          ]
        : []),
      `Event-loop lag is read from /metrics every ${SCRAPE_MS / 1000} s (the main thread's figure covers the time since the scrape before, each worker's is the worst second of the last 15 s): the main thread's and the workers' figures are how late a timer (100 ms on the main thread, 20 ms in a worker, or the worker's reading turns while its inputs flow) ran beyond its interval.`,
    ],
  };

  const name = `${startedAt.toISOString().replace(/[:.]/g, "-").slice(0, 19)}-${C}x${M}-${PROTOCOL}${API_CLIENTS > 0 ? `-api${API_CLIENTS}` : ""}${SOAK ? "-soak" : ""}`;
  mkdirSync(REPORT_DIR, { recursive: true });
  const jsonPath = join(REPORT_DIR, `${name}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);

  const show = (value: number | string | null | undefined, unit = "") =>
    value === null || value === undefined ? "n/a" : `${value}${unit}`;
  const withRatio = (r: Figures, pick: (r: Figures) => number | null | undefined, unit = "") => {
    const value = pick(r);
    if (isOurs(r) || value === null || value === undefined) return show(value, unit);
    const x = ratio(value, pick(ours));
    return `${show(value, unit)} (${x === null ? "n/a" : `${x}×`})`;
  };
  type Row = [string, (r: Figures) => string];
  /** Whether a contender's outputs are the input byte for byte, and if not, what differs. */
  const identity = (f: Figures["udp"]) => {
    if (f === null) return "n/a";
    if (f.packets_lost === null) return "no (remuxed)";
    if (f.byte_identical_outputs === f.outputs) return `yes (${f.outputs} of ${f.outputs} outputs)`;
    const psi =
      f.psi_packets_received === f.psi_packets_sent
        ? `${f.psi_packets_received} PSI packets, as many as sent but not the same bytes`
        : `${f.psi_packets_received} PSI packets for ${f.psi_packets_sent} sent`;
    return [
      `no (${f.byte_identical_outputs} of ${f.outputs} outputs)`,
      `media and cue packets unchanged at ${f.media_identical_outputs} of ${f.outputs}`,
      psi,
      `${f.null_packets_received} null packets added`,
    ].join("; ");
  };
  const protocolRows = (protocol: TsProtocol): Row[] =>
    outputsOf(protocol).length === 0
      ? []
      : [
          [
            `${protocol.toUpperCase()} TS packets lost (whole run)`,
            (r) =>
              r[protocol]?.packets_lost === null
                ? "n/a (remuxed)"
                : r[protocol]?.loss_counts === "media and cue packets"
                  ? `${show(r[protocol]?.packets_lost)} of ${show(r[protocol]?.media_packets_sent)} media and cue packets (PSI rebuilt)`
                  : `${show(r[protocol]?.packets_lost)} of ${show(r[protocol]?.packets_sent)}`,
          ],
          [`${protocol.toUpperCase()} output byte-identical to the input`, (r) => identity(r[protocol])],
          [
            `${protocol.toUpperCase()} TS packets delivered in the window`,
            (r) => show(r[protocol]?.delivered_in_window_percent, " %"),
          ],
          [`${protocol.toUpperCase()} continuity errors`, (r) => show(r[protocol]?.continuity_errors)],
          [
            `${protocol.toUpperCase()} SCTE-35 cues received / sent`,
            (r) => `${show(r[protocol]?.cues_received)} / ${show(r[protocol]?.cues_sent)}`,
          ],
          [
            `${protocol.toUpperCase()} latency p50 / p99 / max`,
            (r) => {
              const l = r[protocol]?.latency_ms;
              return l ? `${l.p50} / ${l.p99} / ${l.max} ms (${l.samples} stamps)` : "n/a";
            },
          ],
          [
            `${protocol.toUpperCase()} longest silence at an output`,
            (r) => show(r[protocol]?.longest_silence_ms, " ms"),
          ],
          [
            `${protocol.toUpperCase()} each output's longest silence: median / p90 / max, outputs over 20 ms`,
            (r) => {
              const { all, moved, stayed, moved_channels } = r[protocol]?.longest_silence_per_output ?? {};
              const spread = (s: typeof all) =>
                s == null ? "n/a" : `${s.p50} / ${s.p90} / ${s.max} ms, ${s.over_20_ms} of ${s.outputs}`;
              if (all == null) return "n/a";
              if (moved_channels == null || moved_channels === 0) return spread(all);
              return `moved (${moved_channels} channels): ${spread(moved)}; stayed: ${spread(stayed)}`;
            },
          ],
        ];
  const rtmpRows: Row[] =
    outputsOf("rtmp").length === 0
      ? []
      : [
          [
            "RTMP streams publishing at nginx",
            (r) => `${show(r.rtmp?.streams_at_nginx)} of ${show(r.rtmp?.outputs)}`,
          ],
          ["RTMP received by nginx in the window", (r) => show(r.rtmp?.nginx_received_mbps, " Mbit/s")],
          [
            "RTMP frames sent / dropped (whole run)",
            (r) =>
              r.rtmp?.frames_sent == null ? "n/a" : `${r.rtmp.frames_sent} / ${show(r.rtmp.frames_dropped)}`,
          ],
        ];
  const spreadOf = (
    s: {
      p50: number | null;
      p90: number | null;
      max: number | null;
      over_20_ms: number;
      outputs: number;
    } | null,
  ) => (s === null ? "n/a" : `${s.p50} / ${s.p90} / ${s.max} ms, ${s.over_20_ms} of ${s.outputs} over 20 ms`);
  const rebalanceRows: Row[] = !REBALANCE
    ? []
    : [
        [
          "rebalance: channels moved between threads (when, how long the moves took)",
          (r) =>
            r.rebalance === null
              ? "n/a"
              : `${r.rebalance.channels_moved} from thread ${r.rebalance.from_worker} to ${r.rebalance.to_worker}, at ${r.rebalance.at_s} s, in ${r.rebalance.moves_took_ms} ms${r.rebalance.refused.length > 0 ? `; refused: ${r.rebalance.refused.join("; ")}` : ""}${r.rebalance.outlasted_window ? " (outlasted the window: its silences count the generator's end)" : ""}`,
        ],
        [
          "rebalance: each output's longest silence during it, median / p90 / max — every output; moved; stayed",
          (r) =>
            r.rebalance === null
              ? "n/a"
              : `${spreadOf(r.rebalance.longest_silence_ms.all)}; moved: ${spreadOf(r.rebalance.longest_silence_ms.moved)}; stayed: ${spreadOf(r.rebalance.longest_silence_ms.stayed)}${r.rebalance.ended_with_the_longest === null ? "" : `; ${r.rebalance.ended_with_the_longest} of ${r.rebalance.longest_silence_ms.all?.outputs ?? 0} ended within 5 ms of the longest`}${r.rebalance.unread_outputs > 0 ? `; ${r.rebalance.unread_outputs} outputs not measured: their sink read nothing received during the moves (the sinks were held off the CPU)` : ""}`,
        ],
        [
          "rebalance: each output's longest silence beyond its input's (send stamps), median / p90 / max — every output; moved; stayed",
          (r) =>
            r.rebalance === null
              ? "n/a"
              : `${spreadOf(r.rebalance.added_silence_ms.all)}; moved: ${spreadOf(r.rebalance.added_silence_ms.moved)}; stayed: ${spreadOf(r.rebalance.added_silence_ms.stayed)}`,
        ],
        [
          "rebalance: hand-overs (handover events): lost / repeated, duration median / p90 / max",
          (r) => {
            const h = r.rebalance?.handovers;
            if (h === undefined) return "n/a";
            const d = h.duration_ms;
            return `${h.count}: ${h.lost} / ${h.repeated}${d === null ? "" : `, ${d.p50} / ${d.p90} / ${d.max} ms`}`;
          },
        ],
      ];
  const rows: Row[] = [
    ...rebalanceRows,
    ...protocolRows("udp"),
    ...protocolRows("srt"),
    ...protocolRows("rist"),
    ...rtmpRows,
    ...(HEALTH === null
      ? []
      : ([
          [
            "inputs judged by health rules: unhealthy at the last scrape (rules that held at any)",
            (r) =>
              r.health === null
                ? "n/a"
                : `${r.health.judged}: ${r.health.unhealthy} (${r.health.holding.join(", ") || "none"})`,
          ],
        ] satisfies Row[])),
    ["CPU, % of one core (ratio to ours)", (r) => withRatio(r, (x) => x.cpu.percent_of_a_core, " %")],
    ["CPU per channel", (r) => withRatio(r, (x) => x.cpu.per_channel_percent, " %")],
    ["CPU per output stream", (r) => withRatio(r, (x) => x.cpu.per_output_stream_percent, " %")],
    ["RSS (ratio to ours)", (r) => withRatio(r, (x) => x.rss_mib, " MiB")],
    ["RSS growth in the window", (r) => show(r.rss_growth_percent, " %")],
    ...(SOAK
      ? ([
          [
            "RSS growth once warm (median of the last sixth against the second)",
            (r) => show(r.rss_growth_after_warmup_percent, " %"),
          ],
        ] as Row[])
      : []),
    [
      "the service's threads, % of a core each",
      (r) =>
        r.threads === null
          ? "n/a"
          : r.threads.map((thread) => `${thread.name} ${thread.percent_of_a_core}`).join(", "),
    ],
    ["open files start → end", (r) => `${r.open_files.start} → ${r.open_files.end}`],
    ["processes", (r) => String(r.processes)],
    [
      `event-loop lag p99 (median / worst of the ${SCRAPE_MS / 1000}-s scrapes), max`,
      (r) =>
        r.event_loop_lag === null
          ? "n/a"
          : r.event_loop_lag
              .map((s) => `${s.series}: ${s.p99_median_ms} / ${s.p99_worst_ms} ms, max ${s.max_ms} ms`)
              .join("; "),
    ],
    [
      "REST GET /api/channels p50 / p99",
      (r) =>
        r.rest === null
          ? "n/a"
          : `${r.rest.p50_ms} / ${r.rest.p99_ms} ms (${r.rest.requests} requests, ${r.rest.per_second}/s)`,
    ],
    ["load average after", (r) => r.load_average_after.join(", ")],
  ];
  const headers = results.map((r) =>
    r.api_clients > 0 ? `${r.contender} + ${r.api_clients} API clients` : r.contender,
  );
  // One line per runtime (the runs without API clients): what the runtimes issue asks to compare.
  const runtimeLines = results
    .filter((r) => isOurs(r) && r.api_clients === 0)
    .map((r) => {
      const lost = tsSum(r, "packets_lost");
      const sent = tsSum(r, "packets_sent");
      const latency = (protocol: TsProtocol) => {
        const l = r[protocol]?.latency_ms;
        return l ? `${protocol.toUpperCase()} latency p50 ${l.p50} / p99 ${l.p99} / max ${l.max} ms` : null;
      };
      return `${`${r.contender}:`.padEnd(22)} ${[
        `CPU ${show(r.cpu.per_output_stream_percent, " %")} of a core per output stream (${show(r.cpu.percent_of_a_core, " %")} in all)`,
        `lost ${lost} of ${sent} TS packets (${show(round(sent === 0 ? null : (lost / sent) * 100, 4), " %")})`,
        ...[latency("udp"), latency("srt"), latency("rist")].filter((line) => line !== null),
      ].join(", ")}`;
    });
  const markdown = [
    `# Load: ${C} channels × ${M} outputs (${PROTOCOL}) at ${MBPS} Mbit/s`,
    "",
    `\`${command}\` — ${startedAt.toISOString()}, ${SECONDS} s measured after ${WARMUP} s warm-up` +
      (ANCHORS.length > 0 ? ` (anchors ${ANCHOR_SECONDS} s)` : "") +
      `; ${report.host.cpus} × ${report.host.cpu_model}; load average before ${report.host.load_average_before.join(", ")}`,
    "",
    `| | ${headers.join(" | ")} |`,
    `| --- | ${headers.map(() => "---").join(" | ")} |`,
    ...rows.map(([label, cell]) => `| ${label} | ${results.map(cell).join(" | ")} |`),
    "",
    ...(RUNTIMES.length > 1 || RUNTIMES[0] !== "node"
      ? ["## Runtimes (fan-out without API clients)", "", "```", ...runtimeLines, "```", ""]
      : []),
    "## Goals (distributary)",
    "",
    ...goals.map((g) => `- ${g.met === null ? "–" : g.met ? "✓" : "✗"} ${g.goal}: ${show(g.value)}`),
    "",
    ...report.notes.map((note) => `- ${note}`),
    "",
  ].join("\n");
  const markdownPath = join(REPORT_DIR, `${name}.md`);
  writeFileSync(markdownPath, markdown);
  process.stdout.write(`${markdown}\nreport: ${jsonPath}\n        ${markdownPath}\n`);
};
