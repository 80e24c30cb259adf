/**
 * The load harness's smoke run (`npm run load` at its smallest): 2 channels × 2 UDP outputs for 6 s through
 * the real service (after 1 s of warm-up), then its anchors for 3 s each (ffmpeg, GStreamer and the two floor
 * forwarders). It must write both reports with every figure, and at this tiny load distributary must lose nothing: every TS packet
 * and every SCTE-35 cue sent reaches every output, with no continuity error. Then a short `mix`: UDP, SRT and
 * RTMP outputs in each channel, the RTMP ones counted at the harness's nginx-rtmp for every contender.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";

let reportDir = "";
afterAll(async () => {
  if (reportDir !== "") await rm(reportDir, { recursive: true, force: true });
});

interface ProtocolFigures {
  readonly outputs: number;
  readonly packets_sent: number;
  readonly packets_received: number;
  readonly packets_lost: number;
  readonly delivered_in_window_percent: number;
  readonly continuity_errors: number;
  readonly cues_sent: number;
  readonly cues_received: number;
  readonly latency_ms: { samples: number; p50: number; p99: number; max: number } | null;
  readonly longest_silence_ms: number;
}
interface Result {
  readonly contender: string;
  readonly udp: ProtocolFigures | null;
  readonly cpu: { percent_of_a_core: number; per_channel_percent: number; per_output_stream_percent: number };
  readonly rss_mib: number;
  readonly open_files: { start: number; end: number };
  readonly event_loop_lag: ReadonlyArray<{ series: string; p99_worst_ms: number }> | null;
  readonly rest: { requests: number; p99_ms: number } | null;
  readonly ratio_to_distributary?: { cpu: number | null; rss: number | null };
}

describe("load harness", () => {
  it("runs 2 channels × 2 UDP outputs for 6 s, writes the JSON and markdown reports, and loses nothing", async () => {
    reportDir = await mkdtemp(join(tmpdir(), "distributary-load-report-"));
    const run = await execa(
      process.execPath,
      [
        "load-tests/load.ts",
        ...["--channels", "2", "--outputs", "2", "--protocol", "udp", "--seconds", "6"],
        ...["--anchor-seconds", "3", "--warmup", "1", "--report-dir", reportDir],
      ],
      {
        reject: false,
        all: true,
        // Settings of the run are named in its report, secrets never: a busy line the smoke run never reaches.
        env: { DISTRIBUTARY_WORKER_BUSY_PERCENT: "99", DISTRIBUTARY_ADMIN_TOKEN: "never-in-a-report" },
      },
    );
    expect(run.exitCode, run.all).toBe(0);
    const files = (await readdir(reportDir)).sort();
    expect(files).toHaveLength(2);
    const jsonFile = files.find((name) => name.endsWith("-2x2-udp.json"));
    const markdownFile = files.find((name) => name.endsWith("-2x2-udp.md"));
    expect(jsonFile).toBeDefined();
    expect(markdownFile).toBeDefined();

    const report = JSON.parse(await readFile(join(reportDir, jsonFile ?? ""), "utf8")) as {
      command: string;
      host: { cpus: number; load_average_before: number[] };
      workload: { channels: number; outputs_per_channel: number; protocol: string; mbps: number };
      results: ReadonlyArray<Result>;
      goals: ReadonlyArray<{ goal: string; met: boolean | null }>;
    };
    expect(report.command).toMatch(
      /^DISTRIBUTARY_WORKER_BUSY_PERCENT=99 npm run load -- --channels 2 --outputs 2/,
    );
    expect(report.command).not.toContain("never-in-a-report");
    expect(report.host.load_average_before).toHaveLength(3);
    expect(report.workload).toMatchObject({ channels: 2, outputs_per_channel: 2, protocol: "udp", mbps: 7 });
    expect(report.results.map((result) => result.contender)).toEqual([
      "distributary",
      "ffmpeg -f tee",
      "GStreamer tee",
      "C floor",
      "Node.js floor",
    ]);

    const [ours, ffmpeg, gstreamer, cFloor, nodeFloor] = report.results as [
      Result,
      Result,
      Result,
      Result,
      Result,
    ];
    const udp = ours.udp as ProtocolFigures;
    // 6 s + 1 s of warm-up of a 7 Mbit/s stream is ~32 500 TS packets a channel, to each of 4 outputs in all.
    expect(udp.outputs).toBe(4);
    expect(udp.packets_sent).toBeGreaterThan(4 * 28_000);
    expect(udp.packets_lost).toBe(0);
    expect(udp.packets_received).toBe(udp.packets_sent);
    expect(udp.continuity_errors).toBe(0);
    // At least one cue to each output (a cue every 4 s of the stream).
    expect(udp.cues_sent).toBeGreaterThanOrEqual(4);
    expect(udp.cues_received).toBe(udp.cues_sent);
    expect(udp.latency_ms?.samples).toBeGreaterThan(1000);
    expect(udp.latency_ms?.p50).toBeGreaterThan(0);
    expect(ours.cpu.percent_of_a_core).toBeGreaterThan(0);
    expect(ours.rss_mib).toBeGreaterThan(10);
    expect(ours.open_files.end).toBeGreaterThan(0);
    expect(ours.event_loop_lag?.map((series) => series.series)).toContain("nodejs_eventloop_lag");
    expect(ours.rest?.requests).toBeGreaterThan(0);
    expect(report.goals.find((goal) => goal.goal === "zero packets lost")?.met).toBe(true);

    // The anchors ran the same workload and carry their ratio to our figures.
    for (const anchor of [ffmpeg, gstreamer, cFloor, nodeFloor]) {
      const which = `${anchor.contender}: ${JSON.stringify(anchor.cpu)}\n${run.all}`;
      expect(anchor.udp?.packets_received, which).toBeGreaterThan(0);
      expect(anchor.cpu.percent_of_a_core, which).toBeGreaterThan(0);
      expect(anchor.ratio_to_distributary?.cpu, which).toBeGreaterThan(0);
      expect(anchor.ratio_to_distributary?.rss, which).toBeGreaterThan(0);
    }
    // GStreamer and the floors forward the bytes untouched, so they too are counted packet for packet.
    for (const anchor of [gstreamer, cFloor, nodeFloor]) {
      expect(anchor.udp?.cues_received).toBe(anchor.udp?.cues_sent);
      expect(anchor.udp?.continuity_errors).toBe(0);
    }

    const markdown = await readFile(join(reportDir, markdownFile ?? ""), "utf8");
    expect(markdown).toContain("# Load: 2 channels × 2 outputs (udp) at 7 Mbit/s");
    expect(markdown).toContain(
      "| | distributary | ffmpeg -f tee | GStreamer tee | C floor | Node.js floor |",
    );
    expect(markdown).toContain("| UDP TS packets lost (whole run) | 0 of ");
    expect(run.stdout).toContain(join(reportDir, jsonFile ?? ""));
  }, 180_000);

  it("mixes UDP, SRT and RTMP outputs in each channel and reports nginx's streams and our RTMP frames beside the TS figures", async () => {
    const dir = await mkdtemp(join(tmpdir(), "distributary-load-mix-"));
    try {
      const run = await execa(
        process.execPath,
        [
          "load-tests/load.ts",
          ...["--channels", "2", "--outputs", "3", "--protocol", "mix", "--seconds", "5"],
          ...["--anchors", "ffmpeg,gstreamer", "--anchor-seconds", "3", "--warmup", "1", "--report-dir", dir],
        ],
        { reject: false, all: true },
      );
      expect(run.exitCode, run.all).toBe(0);
      const jsonFile = (await readdir(dir)).find((name) => name.endsWith("-2x3-mix.json")) ?? "";
      const report = JSON.parse(await readFile(join(dir, jsonFile), "utf8")) as {
        workload: { outputs: { udp: number; srt: number; rist: number; rtmp: number } };
        results: ReadonlyArray<MixResult>;
        goals: ReadonlyArray<{ goal: string; met: boolean | null }>;
      };
      expect(report.workload.outputs).toEqual({ udp: 2, srt: 2, rist: 0, rtmp: 2 });
      const [ours, ffmpeg, gstreamer] = report.results as [MixResult, MixResult, MixResult];
      expect(report.results.map((result) => result.contender)).toEqual([
        "distributary",
        "ffmpeg -f tee",
        "GStreamer tee",
      ]);
      expect(ours.udp?.packets_lost).toBe(0);
      expect(ours.srt?.packets_lost).toBe(0);
      // Every RTMP output publishing at nginx for every contender, and ours sent ~25 frames a second each.
      for (const result of [ours, ffmpeg, gstreamer]) {
        expect(result.rtmp?.streams_at_nginx, result.contender).toBe(2);
        expect(result.rtmp?.nginx_received_mbps, result.contender).toBeGreaterThan(1);
      }
      expect(ours.rtmp?.frames_sent).toBeGreaterThan(2 * 5 * 20);
      expect(ours.rtmp?.frames_dropped).toBe(0);
      expect(ffmpeg.rtmp?.frames_sent).toBeNull();
      expect(report.goals.find((goal) => goal.goal === "zero RTMP frames dropped")?.met).toBe(true);
      const markdown = await readFile(join(dir, jsonFile.replace(/json$/, "md")), "utf8");
      expect(markdown).toContain("| RTMP streams publishing at nginx | 2 of 2 | 2 of 2 | 2 of 2 |");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

interface MixResult {
  readonly contender: string;
  readonly udp: { packets_lost: number | null } | null;
  readonly srt: { packets_lost: number | null } | null;
  readonly rtmp: {
    streams_at_nginx: number;
    nginx_received_mbps: number;
    frames_sent: number | null;
    frames_dropped: number | null;
  } | null;
}
