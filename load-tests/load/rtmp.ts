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
import { cpus, loadavg, setPriority } from "node:os";
import { join } from "node:path";
import { openSink, started, stop, work } from "./children.ts";
import { type Contender, distributaryOn, eventually } from "./contenders.ts";
import { rtmpConnected, rtmpFrames } from "./nginx.ts";
import {
  ANCHORS,
  besidePorts,
  C,
  CUE_EVERY,
  M,
  MBPS,
  plan,
  RECEIVER,
  REPORT_DIR,
  ROOT,
  round,
  rtmpUrl,
  SECONDS,
  sleep,
  UDP_BESIDE,
  WARMUP,
} from "./options.ts";
import { raiseSessionGroup, threadWaits, udpBound, usage } from "./proc.ts";
import { CONNECT_ALLOWANCE, DATAGRAMS_A_SECOND, makeSource, startReceiver } from "./rtmp-receiver.ts";

const sourceFile = join(work, "rtmp-source.ts");
/** The source's video frame rate (rtmp-source.ts). */
const FRAME_RATE = 25;

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
  /** streams publishing at the receiver at the window's end */
  readonly streams: number;
  readonly receivedMbps: number | null;
  /** video frames received in the window against 25 a second for every stream: below 100, the window ran late */
  readonly pacePercent: number | null;
  /** counted by the receiver over the whole run (null for nginx, which does not count them) */
  readonly videoReceived: number | null;
  readonly audioReceived: number | null;
  readonly cuesReceived: number | null;
  /** what our outputs say they sent and dropped (null for the anchors) */
  readonly framesSent: number | null;
  readonly framesDropped: number | null;
  readonly cuesSent: number | null;
  /** ours: seconds from the stream's first datagram to every RTMP output publishing */
  readonly connectedAfter: number | null;
  /** --udp-beside: our UDP outputs' latency over the window (stamps in the stream's null packets) */
  readonly udpBeside: {
    readonly p50: number;
    readonly p99: number;
    readonly max: number;
    readonly stamps: number;
  } | null;
  /**
   * the service's threads over the window, % of a core each (the busiest first), and how long each stood ready to
   * run but waiting for a core (% of the window): the one shows work, the other the machine's other load
   */
  readonly threads: ReadonlyArray<{
    readonly name: string;
    readonly cpuPercent: number | null;
    readonly waitPercent: number | null;
  }> | null;
  /** the receiver's CPU over the window, % of a core (the harness's, never the contender's; null for nginx) */
  readonly receiverCpuPercent: number | null;
}

const measureRtmp = async (contender: Contender): Promise<RtmpRun> => {
  process.stderr.write(`load: ${contender.name}, ${C} × ${M} RTMP, ${SECONDS} s\n`);
  await eventually(
    "the input ports to be free",
    () => !plan.some((channel) => udpBound(channel.input)),
    30_000,
  );
  const receiver = await startReceiver();
  const beside =
    UDP_BESIDE && contender.name.startsWith("distributary") ? await openSink(besidePorts()) : null;
  try {
    const running = await contender.start();
    const source = started(join(work, "udp-source"), [
      sourceFile,
      String(DATAGRAMS_A_SECOND),
      String(WARMUP + SECONDS + CONNECT_ALLOWANCE),
      join(work, "times.txt"),
      ...plan.map((channel) => String(channel.input)),
    ]);
    const sourceEnded = new Promise<void>((done) => source.child.once("exit", () => done()));
    // Our outputs call their server once the stream's PMT says what it carries: the warm-up counts from when
    // every one publishes (how long that took is reported), so that the window sees the stream at its pace.
    const sourceAt = performance.now();
    const service = running.service;
    if (service !== undefined)
      await eventually(
        "every RTMP output to connect",
        async () => (await rtmpConnected(service).catch(() => 0)) === C * M,
        CONNECT_ALLOWANCE * 1000,
      );
    const connectedAfter = round((performance.now() - sourceAt) / 1000, 1);
    // The generator stands for an encoder elsewhere: a busy machine must not slow the stream it sends.
    try {
      setPriority(source.child.pid ?? 0, -19);
    } catch {}
    await sleep(WARMUP * 1000);
    beside?.restartWindow();
    const countsStart = await receiver.counts();
    const start = usage(running.pids());
    const pid = running.service === undefined ? null : (running.pids()[0] ?? null);
    const threadsStart = pid === null ? null : threadWaits(pid);
    const receiverStart = receiver.pid === null ? null : usage([receiver.pid]);
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
    const threadsEnd = pid === null ? null : threadWaits(pid);
    const receiverEnd = receiver.pid === null ? null : usage([receiver.pid]);
    const seconds = (performance.now() - at) / 1000;
    const countsWindow = await receiver.counts();
    const latency = (await beside?.report())?.latency ?? null;
    // The generator stops; what is in flight lands before the frames are counted.
    await stop(source.child);
    await sourceEnded;
    await sleep(1500);
    const frames = running.service === undefined ? null : await rtmpFrames(running.service);
    const counts = await receiver.counts();
    await running.stop();
    const cpuPercent = ((end.cpuSeconds - start.cpuSeconds) / seconds) * 100;
    return {
      name: contender.name,
      cpuPercent: round(cpuPercent),
      cpuPercentPerStream: round(cpuPercent / (C * M), 3),
      rssMiB: Math.round(rss / 1024 / 1024),
      processes,
      streams: countsWindow.streams,
      receivedMbps: round(((countsWindow.bytes - countsStart.bytes) * 8) / seconds / 1_000_000),
      pacePercent:
        countsWindow.video === null || countsStart.video === null
          ? null
          : round(((countsWindow.video - countsStart.video) / (FRAME_RATE * seconds * C * M)) * 100, 1),
      videoReceived: counts.video,
      audioReceived: counts.audio,
      cuesReceived: counts.cues,
      framesSent: frames?.sent ?? null,
      framesDropped: frames?.dropped ?? null,
      cuesSent: frames?.cues ?? null,
      connectedAfter: running.service === undefined ? null : connectedAfter,
      udpBeside:
        latency === null
          ? null
          : {
              p50: latency.p50Us / 1000,
              p99: latency.p99Us / 1000,
              max: latency.maxUs / 1000,
              stamps: latency.count,
            },
      threads:
        threadsStart === null || threadsEnd === null
          ? null
          : [...threadsEnd]
              .map(([name, { run, wait }]) => ({
                name,
                cpuPercent: round(((run - (threadsStart.get(name)?.run ?? 0)) / seconds) * 100),
                waitPercent: round(((wait - (threadsStart.get(name)?.wait ?? 0)) / seconds) * 100),
              }))
              .filter((thread) => (thread.cpuPercent ?? 0) > 0)
              .sort((a, b) => (b.cpuPercent ?? 0) - (a.cpuPercent ?? 0)),
      receiverCpuPercent:
        receiverStart === null || receiverEnd === null
          ? null
          : round(((receiverEnd.cpuSeconds - receiverStart.cpuSeconds) / seconds) * 100),
    };
  } finally {
    await receiver.stop();
    await beside?.close();
  }
};

const show = (value: number | null | undefined) =>
  value === null || value === undefined ? "–" : String(value);

/** The verdicts the issue asks of a run: ours against ffmpeg's tee, and every frame and cue at the receiver. */
const verdicts = (runs: ReadonlyArray<RtmpRun>): string[] => {
  const ours = runs[0];
  const ffmpeg = runs.find((run) => run.name === "ffmpeg -f tee");
  if (ours === undefined) return [];
  const yes = (met: boolean | null) => (met === null ? "n/a" : met ? "yes" : "**no**");
  const media = (run: RtmpRun) =>
    run.videoReceived === null || run.audioReceived === null ? null : run.videoReceived + run.audioReceived;
  return [
    "| goal | met | figures |",
    "| --- | --- | --- |",
    `| CPU per output stream at or below ffmpeg -f tee's | ${yes(ffmpeg === undefined ? null : (ours.cpuPercentPerStream ?? 0) <= (ffmpeg.cpuPercentPerStream ?? 0))} | ${show(ours.cpuPercentPerStream)} % against ${show(ffmpeg?.cpuPercentPerStream)} % |`,
    `| RSS at or below ffmpeg's (all its processes) | ${yes(ffmpeg === undefined ? null : ours.rssMiB <= ffmpeg.rssMiB)} | ${ours.rssMiB} MiB against ${show(ffmpeg?.rssMiB)} MiB |`,
    `| every stream publishing | ${yes(ours.streams === C * M)} | ${ours.streams} of ${C * M} |`,
    // CPU over a window is comparable only where each contender's streams kept up with the generator.
    ...runs.map(
      (run) =>
        `| ${run.name}'s streams at the stream's pace in the window (95 % or more) | ${yes(run.pacePercent === null ? null : run.pacePercent >= 95)} | ${show(run.pacePercent)} % of ${FRAME_RATE} video frames a second a stream |`,
    ),
    `| every frame our outputs sent received, none dropped | ${yes(media(ours) === null ? null : media(ours) === ours.framesSent && ours.framesDropped === 0)} | ${show(media(ours))} received, ${show(ours.framesSent)} sent, ${show(ours.framesDropped)} dropped |`,
    ...(UDP_BESIDE
      ? [
          `| the forwarding path's UDP p99 beside the RTMP outputs within 5 ms | ${yes(ours.udpBeside === null ? null : ours.udpBeside.p99 <= 5)} | ${ours.udpBeside === null ? "no stamps" : `p50 ${ours.udpBeside.p50} / p99 ${ours.udpBeside.p99} / max ${ours.udpBeside.max} ms (${ours.udpBeside.stamps} stamps)`} |`,
        ]
      : []),
    `| every cue our outputs sent received | ${yes(ours.cuesReceived === null ? null : ours.cuesReceived === ours.cuesSent)} | ${show(ours.cuesReceived)} received, ${show(ours.cuesSent)} sent; those before an output published are not counted |`,
    `| our outputs publishing within 2 s of the stream's start (a keyframe interval: nothing of the stream lost before) | ${yes(ours.connectedAfter === null ? null : ours.connectedAfter <= 2)} | ${show(ours.connectedAfter)} s |`,
  ];
};

export const runRtmp = async (startedAt: Date, loadBefore: ReadonlyArray<number>) => {
  // On a shared machine each busy session takes as much of the CPU as this one, whatever the nice values inside
  // it: at 100 × 2 among a dozen other sessions the service's forwarding thread (nice −10) stood ready to run for
  // more of the window than it ran, and the receiver fell seconds behind. The run's session asks for more.
  const group = raiseSessionGroup(-10);
  process.once("exit", group.restore);
  const source = makeSource(sourceFile, CUE_EVERY);
  const runs: RtmpRun[] = [];
  try {
    runs.push(await measureRtmp(distributaryOn("node")));
    if (ANCHORS.includes("ffmpeg")) runs.push(await measureRtmp(ffmpegTee));
    if (ANCHORS.includes("gstreamer")) runs.push(await measureRtmp(gstreamerTee));
  } finally {
    group.restore();
  }
  let commit = "not a git checkout";
  try {
    commit = execFileSync("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {}
  const name = `${startedAt.toISOString().slice(0, 19).replaceAll(":", "-")}-${C}x${M}-rtmp`;
  const command = `npm run load -- ${process.argv.slice(2).join(" ")}`;
  const lines = [
    `# ${C} channels × ${M} RTMP outputs, ${MBPS} Mbit/s, ${SECONDS} s (commit ${commit})`,
    "",
    `Command: \`${command}\``,
    "",
    `Scheduling: ${group.said}; the generator and the receiver at nice −19 inside it, as machines of their own would be. Load average before ${loadBefore.map((load) => load.toFixed(1)).join(", ")}, after ${loadavg()
      .map((load) => load.toFixed(1))
      .join(", ")} (${cpus().length} cores).`,
    "",
    `Receiver: ${RECEIVER === "nginx" ? "nginx-rtmp (streams and bytes; it counts no frames or cue messages)" : "the counting receiver (load-tests/load/rtmp-counter.ts), one for each contender"}. The stream carries an SCTE-35 splice_insert every ${CUE_EVERY} s; frames and cues are counted over the whole run (our outputs from when each publishes, ffmpeg's from when it has probed its input), CPU, RSS and Mbit/s over the ${SECONDS} s window, which begins ${WARMUP} s after every one of our outputs publishes.`,
    "",
    "| contender | CPU % of a core | CPU % per output stream | RSS MiB | processes | streams | received Mbit/s | pace in the window | video frames received | audio frames received | cue messages received | frames sent / dropped (ours) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...runs.map(
      (run) =>
        `| ${run.name} | ${show(run.cpuPercent)} | ${show(run.cpuPercentPerStream)} | ${run.rssMiB} | ${run.processes} | ${run.streams} | ${show(run.receivedMbps)} | ${run.pacePercent === null ? "–" : `${run.pacePercent} %`} | ${show(run.videoReceived)} | ${show(run.audioReceived)} | ${show(run.cuesReceived)} | ${run.framesSent === null ? "–" : `${run.framesSent} / ${show(run.framesDropped)}`} |`,
    ),
    "",
    ...runs.flatMap((run) =>
      run.threads === null
        ? []
        : [
            `${run.name}'s threads, % of a core over the window (/proc/PID/task), and in brackets the share of the window each stood ready to run with no core to run on: ${run.threads.map((thread) => `${thread.name} ${thread.cpuPercent} (${show(thread.waitPercent)})`).join(", ")}`,
            "",
          ],
    ),
    `The receiver's CPU over each window (the harness's, no contender's): ${runs.map((run) => `${run.name} ${show(run.receiverCpuPercent)} %`).join(", ")}.`,
    "",
    ...verdicts(runs),
    "",
  ];
  mkdirSync(REPORT_DIR, { recursive: true });
  writeFileSync(
    join(REPORT_DIR, `${name}.json`),
    `${JSON.stringify({ command, channels: C, outputs: M, mbps: MBPS, seconds: SECONDS, commit, receiver: RECEIVER, scheduling: group.said, loadBefore, loadAfter: loadavg(), source, runs }, null, 2)}\n`,
  );
  writeFileSync(join(REPORT_DIR, `${name}.md`), lines.join("\n"));
  process.stdout.write(lines.join("\n"));
};
