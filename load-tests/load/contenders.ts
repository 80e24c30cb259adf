/**
 * The contenders: the service on a runtime, `ffmpeg -f tee`, a GStreamer `tee` chain, VideoLAN's dvblast and
 * the two floor forwarders, each started on the same port layout and stopped with everything it started.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Effect } from "effect";
import { freeTcpPort } from "../../test/support/peers.ts";
import { floorBinary, started, stop, work } from "./children.ts";
import {
  besideUrl,
  C,
  HEALTH,
  M,
  POLICY,
  PROTOCOL,
  plan,
  ROOT,
  RUNTIMES,
  rtmpUrl,
  SLATE_MS,
  sleep,
  UDP_BESIDE,
  values,
} from "./options.ts";
import { udpBound } from "./proc.ts";

interface Running {
  readonly pids: () => ReadonlyArray<number>;
  readonly stop: () => Promise<void>;
  /** the service only: its HTTP address and tokens */
  readonly service?: Service;
}
export interface Service {
  readonly base: string;
  readonly admin: string;
  readonly viewerTokens: (count: number) => Promise<ReadonlyArray<string>>;
}
export interface Contender {
  readonly name: string;
  readonly start: () => Promise<Running>;
}

export const eventually = async (
  what: string | (() => string),
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await sleep(100);
  }
};

/** Ours on `runtime`; named plain "distributary" on Node.js alone, as in the reports before runtimes. */
export const distributaryOn = (runtime: string): Contender => ({
  name: RUNTIMES.length === 1 && runtime === "node" ? "distributary" : `distributary (${runtime})`,
  start: async () => {
    const port = await Effect.runPromise(freeTcpPort);
    const admin = randomBytes(24).toString("base64url");
    const { child, tail } = started(
      join(ROOT, "bin/distributary"),
      [
        "--runtime",
        runtime,
        "serve",
        "--port",
        String(port),
        "--host",
        "127.0.0.1",
        "--config-dir",
        mkdtempSync(join(work, "config-")),
      ],
      {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        // The service's settings given to the harness (DISTRIBUTARY_BATCH_MS, DISTRIBUTARY_UDP_SENDER, ...) to
        // compare them, and DISTRIBUTARY_NODE_OPTIONS as the service's NODE_OPTIONS (to profile it: --cpu-prof,
        // --perf-basic-prof); the ones below are the harness's own.
        ...Object.fromEntries(
          Object.entries(process.env).filter(([name]) => name.startsWith("DISTRIBUTARY_")),
        ),
        ...(process.env.DISTRIBUTARY_NODE_OPTIONS
          ? { NODE_OPTIONS: process.env.DISTRIBUTARY_NODE_OPTIONS }
          : {}),
        DISTRIBUTARY_ADMIN_TOKEN: admin,
        DISTRIBUTARY_LOG_LEVEL: "warn",
        DISTRIBUTARY_METRICS_AUTH: "loopback",
        ...(values.workers === undefined ? {} : { DISTRIBUTARY_WORKERS: values.workers }),
      },
    );
    const base = `http://127.0.0.1:${port}`;
    const api = async (path: string, init: RequestInit = {}) => {
      const response = await fetch(`${base}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${response.status} ${text}`);
      return JSON.parse(text) as Record<string, unknown>;
    };
    await eventually(`the service to answer (${tail()})`, async () => {
      if (child.exitCode !== null) throw new Error(`the service ended: ${tail()}`);
      return (await fetch(`${base}/api/health`).catch(() => null))?.ok === true;
    });
    for (const [c, channel] of plan.entries()) {
      const created = await api("/api/channels", {
        method: "POST",
        body: JSON.stringify({
          name: `load ${c}`,
          rtp_ip: "127.0.0.1",
          rtp_port: channel.input,
          ...(SLATE_MS > 0 ? { slate: { after_ms: SLATE_MS } } : {}),
          ...(HEALTH === null ? {} : { redundancy: { health: HEALTH } }),
          outputs: [
            ...channel.outputs.map((output, o) => ({
              name: `out ${o}`,
              protocol: output.protocol,
              ...(POLICY !== null && o % 2 === 1 ? { policy: POLICY } : {}),
              url:
                output.protocol === "udp"
                  ? `udp://127.0.0.1:${output.sink}`
                  : output.protocol === "srt"
                    ? `srt://127.0.0.1:${output.srt}?mode=caller`
                    : output.protocol === "rist"
                      ? `rist://127.0.0.1:${output.srt}`
                      : // RTMP runs count cue messages at the receiver: ours send them as onCuePoint
                        `${rtmpUrl(c, o)}${PROTOCOL === "rtmp" ? "?cues=oncuepoint" : ""}`,
            })),
            ...(UDP_BESIDE ? [{ name: "udp beside", protocol: "udp", url: besideUrl(channel) }] : []),
          ],
        }),
      });
      await api(`/api/channels/${String(created.id)}/start`, { method: "POST" });
    }
    await eventually("every output to run", async () => {
      const { channels } = (await api("/api/channels")) as {
        channels?: ReadonlyArray<{ outputs: ReadonlyArray<{ status: string }> }>;
      };
      const all = (channels ?? []).flatMap((channel) => channel.outputs);
      return (
        all.length === C * (M + (UDP_BESIDE ? 1 : 0)) && all.every((output) => output.status === "running")
      );
    });
    return {
      pids: () => [child.pid ?? 0],
      stop: () => stop(child),
      service: {
        base,
        admin,
        viewerTokens: async (count) => {
          const tokens: string[] = [];
          for (let i = 0; i < count; i++) {
            const created = await api("/api/tokens", {
              method: "POST",
              body: JSON.stringify({ name: `load-viewer-${i}`, role: "viewer" }),
            });
            tokens.push(String(created.token));
          }
          return tokens;
        },
      },
    };
  },
});

/**
 * A contender that runs one process per channel (`runs`, in the plan's order), once every one has bound its
 * channel's input; a process that ends before fails the start with what it printed.
 */
const onePerChannel = async (
  name: string,
  runs: ReadonlyArray<ReturnType<typeof started>>,
): Promise<Running> => {
  const processes = runs.map((run) => run.child);
  await eventually(
    () =>
      `every ${name} to bind its input (unbound: ${plan
        .filter((channel) => !udpBound(channel.input))
        .map((channel) => channel.input)
        .join(", ")}; ${runs.map((run) => run.tail()).join(" | ")})`,
    () => {
      const gone = runs.find((run) => run.child.exitCode !== null);
      if (gone !== undefined) throw new Error(`${name} ended: ${gone.tail()}`);
      return plan.every((channel) => udpBound(channel.input));
    },
    30_000,
  );
  return {
    pids: () => processes.map((child) => child.pid ?? 0),
    stop: async () => {
      await Promise.all(processes.map(stop));
    },
  };
};

export const ffmpegTee: Contender = {
  name: "ffmpeg -f tee",
  start: async () => {
    const runs = plan.map((channel, c) => {
      // FLV has no codec for the source's MPEG-1 Layer II audio: an RTMP output takes the video alone, as ours do.
      const tee = channel.outputs
        .map((output, o) =>
          output.protocol === "udp"
            ? `[f=mpegts]udp://127.0.0.1:${output.sink}?pkt_size=1316`
            : output.protocol === "srt"
              ? `[f=mpegts]srt://127.0.0.1:${output.srt}?mode=caller&pkt_size=1316`
              : output.protocol === "rist"
                ? `[f=mpegts]rist://127.0.0.1:${output.srt}?pkt_size=1316`
                : `[f=flv:select=v]${rtmpUrl(c, o)}`,
        )
        .join("|");
      const rtmp = channel.outputs.some((output) => output.protocol === "rtmp");
      return started("ffmpeg", [
        ...["-hide_banner", "-nostats", "-loglevel", "fatal", "-probesize", "1000000"],
        ...["-i", `rtp://127.0.0.1:${channel.input}?fifo_size=1000000&overrun_nonfatal=1`],
        // ffmpeg 5.1's tee keeps the TS stream type as the codec tag, which FLV refuses: H.264's FLV tag outright
        ...["-map", "0", "-c", "copy", ...(rtmp ? ["-tag:v", "7"] : []), "-f", "tee", tee],
      ]);
    });
    return onePerChannel("ffmpeg", runs);
  },
};

/**
 * A channel's RTMP outputs in the GStreamer chain: its TS demuxed once, the H.264 muxed into FLV once and
 * teed to one rtmp2sink per output (video alone: flvmux takes no MPEG-1 Layer II audio).
 */
const flvBranch = (c: number, outputs: ReadonlyArray<{ readonly protocol: string }>) => {
  const rtmp = outputs.flatMap((output, o) => (output.protocol === "rtmp" ? [o] : []));
  if (rtmp.length === 0) return [];
  return [
    ...[`t${c}.`, "!", "queue", "!", "tsdemux", `name=d${c}`, `d${c}.`, "!", "queue", "!", "h264parse"],
    ...["!", "flvmux", "streamable=true", "!", "tee", `name=f${c}`],
    ...rtmp.flatMap((o) => [`f${c}.`, "!", "queue", "!", "rtmp2sink", `location=${rtmpUrl(c, o)}`]),
  ];
};

export const gstreamerTee: Contender = {
  name: "GStreamer tee",
  start: async () => {
    const chains = plan.flatMap((channel, c) => [
      "udpsrc",
      "address=127.0.0.1",
      `port=${channel.input}`,
      "buffer-size=4194304",
      "caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=MP2T,payload=33",
      "!",
      "rtpmp2tdepay",
      "!",
      "tee",
      `name=t${c}`,
      ...channel.outputs.flatMap((output) =>
        output.protocol === "rtmp"
          ? []
          : [
              `t${c}.`,
              "!",
              ...(output.protocol === "udp"
                ? ["udpsink", "host=127.0.0.1", `port=${output.sink}`]
                : ["srtsink", `uri=srt://127.0.0.1:${output.srt}?mode=caller`, "wait-for-connection=false"]),
              "sync=false",
              "async=false",
            ],
      ),
      ...flvBranch(c, channel.outputs),
    ]);
    const { child, tail } = started("gst-launch-1.0", ["-q", ...chains]);
    await eventually(
      `gst-launch-1.0 to bind its inputs (${tail()})`,
      () => {
        if (child.exitCode !== null) throw new Error(`gst-launch-1.0 ended: ${tail()}`);
        return plan.every((channel) => udpBound(channel.input));
      },
      30_000,
    );
    return {
      pids: () => [child.pid ?? 0],
      stop: async () => {
        // A chain that failed mid-run shows as a contender with no CPU: its last words say why.
        if (child.exitCode !== null) process.stderr.write(`load: gst-launch-1.0 ended early: ${tail()}\n`);
        await stop(child);
      },
    };
  },
};

/**
 * librist's own tools doing the same fan-out: one ristsender per channel, its RTP input taken as the TS it carries
 * and sent over RIST (main profile) to each output's ristreceiver as one peer of weight 0 (a whole copy each),
 * as our RIST outputs send. RIST outputs only.
 */
export const ristsenders: Contender = {
  name: "ristsender",
  start: async () => {
    const runs = plan.map((channel) =>
      started("ristsender", [
        ...["-i", `rtp://127.0.0.1:${channel.input}`, "-p", "1", "-S", "0", "-v", "-1"],
        ...["-o", channel.outputs.map((output) => `rist://127.0.0.1:${output.srt}?weight=0`).join(",")],
      ]),
    );
    return onePerChannel("ristsender", runs);
  },
};

/**
 * The floors: the service's forwarding design with nothing else, so that each figure can be set against what
 * the kernel and the machine alone cost at the same latency budget (`floor`: load-tests/floor-forwarder.c,
 * recvmmsg every DISTRIBUTARY_BATCH_MS and one sendmmsg a turn carrying every output's segmented batch) and
 * against what Node.js adds to that (`node-floor`: load-tests/floor-forwarder.ts, the service's own batch reader
 * and segmented sender on one thread, no packet core, selector, Effect, API or metrics). UDP outputs only.
 */
const floorForwarder = (name: string, command: string, args: ReadonlyArray<string>): Contender => ({
  name,
  start: async () => {
    const specs = plan.map(
      (channel) => `${channel.input}:${channel.outputs.map((output) => output.sink).join(",")}`,
    );
    const { child, tail } = started(command, [...args, ...specs]);
    await eventually(
      `${name} to bind its inputs (${tail()})`,
      () => {
        if (child.exitCode !== null) throw new Error(`${name} ended: ${tail()}`);
        return plan.every((channel) => udpBound(channel.input));
      },
      30_000,
    );
    return { pids: () => [child.pid ?? 0], stop: () => stop(child) };
  },
});
export const cFloor = floorForwarder("C floor", floorBinary, [process.env.DISTRIBUTARY_BATCH_MS ?? "3"]);
export const nodeFloor = floorForwarder("Node.js floor", process.execPath, [
  "--max-semi-space-size=1",
  join(ROOT, "load-tests/floor-forwarder.ts"),
]);

/**
 * The PIDs of udp-source.c's synthetic channel beside its PAT and PMT (0x1000), all of them: video (0x100, the
 * PCR PID too), MPEG audio (0x101) and SCTE-35 (0x1f0), in service 1. dvblast given the service alone passes
 * only the PIDs it knows to be audio, video or subtitles and drops the SCTE-35 PID; listed, it passes them all.
 */
export const SOURCE_SERVICE = 1;
export const SOURCE_PIDS: ReadonlyArray<number> = [0x100, 0x101, 0x1f0];

/**
 * VideoLAN's dvblast, one process per channel as it is run: its input the channel's RTP stream (`-D
 * @127.0.0.1:PORT`, RTP being its default), its outputs one line each in its configuration file (`-c`): plain UDP
 * (`/udp`) with seven TS packets a datagram (its default for a 1500-byte MTU), service 1 with every PID of the
 * source listed. It demultiplexes and rebuilds the PAT and PMT of each output (the media packets pass as they
 * came); its own defaults otherwise, whose output buffer (`-L`, `-E`) paces the datagrams by the stream's
 * clock. UDP outputs only.
 */
export const dvblast: Contender = {
  name: "dvblast",
  start: async () => {
    const runs = plan.map((channel, c) => {
      const config = join(work, `dvblast-${c}.conf`);
      writeFileSync(
        config,
        channel.outputs
          .map((output) => `127.0.0.1:${output.sink}/udp\t1\t${SOURCE_SERVICE}\t${SOURCE_PIDS.join(",")}\n`)
          .join(""),
      );
      return started("dvblast", ["-q", "-D", `@127.0.0.1:${channel.input}`, "-c", config]);
    });
    return onePerChannel("dvblast", runs);
  },
};
