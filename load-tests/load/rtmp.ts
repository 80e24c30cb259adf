/**
 * `npm run load -- --protocol rtmp`: C channels × M RTMP outputs of one real H.264 + AAC stream (made once
 * with ffmpeg at --mbps, B-frames, a keyframe every 2 s) into one nginx-rtmp that takes every publish and keeps
 * nothing (`live on`, no recording). Each contender runs alone on the same ports: the service (RTMP outputs),
 * one `ffmpeg -map 0:v -map 0:a -c copy -f tee` per channel with FLV outputs, and one GStreamer chain per
 * channel (`tsdemux ! h264parse`/`aacparse ! flvmux ! tee ! rtmp2sink`). The source is the file sent as plain UDP
 * to every channel's input (udp-source's file mode). Over the window: CPU of the contender's process tree
 * (children included), RSS, processes; at its end nginx's own statistics (streams publishing, bytes in) and,
 * for the service, the frames its outputs sent and dropped and each of its threads' CPU (where one channel's
 * cost goes). The report goes to --report-dir.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { started, stop, work } from "./children.ts";
import { type Contender, distributaryOn, eventually } from "./contenders.ts";
import { nginxStat, rtmpFrames, startNginx } from "./nginx.ts";
import {
  ANCHORS,
  C,
  M,
  MBPS,
  plan,
  REPORT_DIR,
  ROOT,
  round,
  rtmpUrl,
  SECONDS,
  sleep,
  WARMUP,
} from "./options.ts";
import { threadUsage, udpBound, usage } from "./proc.ts";
import { writeRtmpSource } from "./rtmp-source.ts";

const sourceFile = join(work, "rtmp-source.ts");

/** The stream every channel gets, long enough for the run. */
const makeSource = () => writeRtmpSource(sourceFile, Math.ceil(WARMUP + SECONDS + 2), MBPS);

/** Stops an anchor's processes, saying which of them had ended early (and why, from its last words). */
const stopAll = async (runs: ReadonlyArray<ReturnType<typeof started>>) => {
  for (const run of runs)
    if (run.child.exitCode !== null) process.stderr.write(`load: a child ended early: ${run.tail()}\n`);
  await Promise.all(runs.map((run) => stop(run.child)));
};

const ffmpegTee: Contender = {
  name: "ffmpeg -f tee",
  start: async () => {
    const runs = plan.map((channel, c) =>
      started("ffmpeg", [
        ...["-hide_banner", "-nostats", "-loglevel", "error"],
        ...["-i", `udp://127.0.0.1:${channel.input}?fifo_size=1000000&overrun_nonfatal=1`],
        // The FLV codec tags given outright: ffmpeg 5.1's tee keeps the TS stream type as the tag, which FLV refuses.
        ...["-map", "0:v", "-map", "0:a", "-c", "copy", "-tag:v", "7", "-tag:a", "10", "-f", "tee"],
        channel.outputs.map((_, o) => `[f=flv]${rtmpUrl(c, o)}`).join("|"),
      ]),
    );
    await eventually("every ffmpeg to bind its input", () =>
      plan.every((channel) => udpBound(channel.input)),
    );
    return {
      pids: () => runs.map((run) => run.child.pid ?? 0),
      stop: () => stopAll(runs),
    };
  },
};

const gstreamerTee: Contender = {
  name: "GStreamer flvmux ! rtmp2sink",
  start: async () => {
    const runs = plan.map((channel, c) =>
      started("gst-launch-1.0", [
        "-q",
        ...["udpsrc", "address=127.0.0.1", `port=${channel.input}`, "buffer-size=4194304", "!"],
        ...[
          "tsdemux",
          "name=d",
          "d.",
          "!",
          "queue",
          "!",
          "h264parse",
          "!",
          "flvmux",
          "name=m",
          "streamable=true",
        ],
        ...["d.", "!", "queue", "!", "aacparse", "!", "m.", "m.", "!", "tee", "name=t"],
        ...channel.outputs.flatMap((_, o) => [
          "t.",
          "!",
          "queue",
          "!",
          "rtmp2sink",
          `location=${rtmpUrl(c, o)}`,
        ]),
      ]),
    );
    await eventually("every GStreamer chain to bind its input", () =>
      plan.every((channel) => udpBound(channel.input)),
    );
    return {
      pids: () => runs.map((run) => run.child.pid ?? 0),
      stop: () => stopAll(runs),
    };
  },
};

interface RtmpRun {
  readonly name: string;
  readonly cpuPercentPerStream: number | null;
  readonly cpuPercent: number | null;
  readonly rssMiB: number;
  readonly processes: number;
  readonly publishing: number;
  readonly receivedMbps: number | null;
  readonly framesSent: number | null;
  readonly framesDropped: number | null;
  /** the service's threads over the window, % of a core each (the busiest first) */
  readonly threads: ReadonlyArray<{ readonly name: string; readonly cpuPercent: number | null }> | null;
}

const measureRtmp = async (contender: Contender): Promise<RtmpRun> => {
  process.stderr.write(`load: ${contender.name}, ${C} × ${M} RTMP, ${SECONDS} s\n`);
  await eventually(
    "the input ports to be free",
    () => !plan.some((channel) => udpBound(channel.input)),
    30_000,
  );
  const running = await contender.start();
  const packets = Math.floor(((WARMUP + SECONDS) * MBPS * 1.1 * 1_000_000) / 8 / 1316);
  const rate = packets / (WARMUP + SECONDS);
  const source = started(join(work, "udp-source"), [
    sourceFile,
    String(rate),
    String(WARMUP + SECONDS),
    join(work, "times.txt"),
    ...plan.map((channel) => String(channel.input)),
  ]);
  await sleep(WARMUP * 1000);
  const statStart = await nginxStat();
  const start = usage(running.pids());
  const service = running.service === undefined ? null : (running.pids()[0] ?? null);
  const threadsStart = service === null ? null : threadUsage(service);
  const at = performance.now();
  let rss = 0;
  let processes = 0;
  while (performance.now() - at < SECONDS * 1000 - 500) {
    const now = usage(running.pids());
    rss = Math.max(rss, now.rss);
    processes = Math.max(processes, now.processes);
    await sleep(1000);
  }
  const end = usage(running.pids());
  const threadsEnd = service === null ? null : threadUsage(service);
  const seconds = (performance.now() - at) / 1000;
  const statEnd = await nginxStat();
  const frames = running.service === undefined ? null : await rtmpFrames(running.service);
  await stop(source.child);
  await running.stop();
  const cpuPercent = ((end.cpuSeconds - start.cpuSeconds) / seconds) * 100;
  return {
    name: contender.name,
    cpuPercent: round(cpuPercent),
    cpuPercentPerStream: round(cpuPercent / (C * M), 3),
    rssMiB: Math.round(rss / 1024 / 1024),
    processes,
    publishing: statEnd.publishing,
    receivedMbps: round(((statEnd.bytesIn - statStart.bytesIn) * 8) / seconds / 1_000_000),
    framesSent: frames?.sent ?? null,
    framesDropped: frames?.dropped ?? null,
    threads:
      threadsStart === null || threadsEnd === null
        ? null
        : [...threadsEnd]
            .map(([name, cpu]) => ({
              name,
              cpuPercent: round(((cpu - (threadsStart.get(name) ?? 0)) / seconds) * 100),
            }))
            .filter((thread) => (thread.cpuPercent ?? 0) > 0)
            .sort((a, b) => (b.cpuPercent ?? 0) - (a.cpuPercent ?? 0)),
  };
};

export const runRtmp = async (startedAt: Date) => {
  makeSource();
  const nginx = await startNginx();
  const runs: RtmpRun[] = [];
  try {
    runs.push(await measureRtmp(distributaryOn("node")));
    if (ANCHORS.includes("ffmpeg")) runs.push(await measureRtmp(ffmpegTee));
    if (ANCHORS.includes("gstreamer")) runs.push(await measureRtmp(gstreamerTee));
  } finally {
    await stop(nginx.child);
  }
  let commit = "not a git checkout";
  try {
    commit = execFileSync("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {}
  const name = `${startedAt.toISOString().slice(0, 19).replaceAll(":", "-")}-${C}x${M}-rtmp`;
  const lines = [
    `# ${C} channels × ${M} RTMP outputs, ${MBPS} Mbit/s, ${SECONDS} s (commit ${commit})`,
    "",
    `Command: \`npm run load -- --protocol rtmp --channels ${C} --outputs ${M} --seconds ${SECONDS}\``,
    "",
    "| contender | CPU % of a core | per output stream | RSS MiB | processes | streams at nginx | nginx received Mbit/s | frames sent | frames dropped |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...runs.map(
      (run) =>
        `| ${run.name} | ${run.cpuPercent} | ${run.cpuPercentPerStream} | ${run.rssMiB} | ${run.processes} | ${run.publishing} | ${run.receivedMbps} | ${run.framesSent ?? "–"} | ${run.framesDropped ?? "–"} |`,
    ),
    "",
    ...runs.flatMap((run) =>
      run.threads === null
        ? []
        : [
            `${run.name}'s threads, % of a core over the window (/proc/PID/task): ${run.threads.map((thread) => `${thread.name} ${thread.cpuPercent}`).join(", ")}`,
            "",
          ],
    ),
  ];
  mkdirSync(REPORT_DIR, { recursive: true });
  writeFileSync(
    join(REPORT_DIR, `${name}.json`),
    `${JSON.stringify({ channels: C, outputs: M, mbps: MBPS, seconds: SECONDS, commit, runs }, null, 2)}\n`,
  );
  writeFileSync(join(REPORT_DIR, `${name}.md`), lines.join("\n"));
  process.stdout.write(lines.join("\n"));
};
