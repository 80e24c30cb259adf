/**
 * The harness's options (`npm run load -- …`), checked once at start, and the port layout they imply: each
 * channel's input and, per output, the sink's port and the SRT peer's.
 */
import { createSocket, type Socket } from "node:dgram";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { P2_INDICATORS } from "../../src/domain/health/health-schema.ts";

export const { values } = parseArgs({
  options: {
    channels: { type: "string", default: "1" },
    outputs: { type: "string", default: "4" },
    protocol: { type: "string", default: "udp" },
    seconds: { type: "string", default: "20" },
    mbps: { type: "string", default: "7" },
    warmup: { type: "string", default: "3" },
    "api-clients": { type: "string", default: "0" },
    anchors: { type: "string", default: "ffmpeg,gstreamer,floor,node-floor" },
    "anchor-seconds": { type: "string" },
    "report-dir": { type: "string", default: "load-tests/reports" },
    loss: { type: "string", default: "0" },
    jitter: { type: "string", default: "0" },
    "gap-every": { type: "string", default: "0" },
    "gap-ms": { type: "string", default: "0" },
    "cue-every": { type: "string", default: "4" },
    /** Forwarding worker threads (DISTRIBUTARY_WORKERS); the service's default when left out. */
    workers: { type: "string" },
    /** The runtimes to run the service on, one run each (bin/distributary --runtime). */
    runtimes: { type: "string", default: "node" },
    /** Give every channel a slate starting this many ms after its input went silent; 0: no slate. */
    slate: { type: "string", default: "0" },
    /** An output policy (JSON) for every second output of each channel (outputs 1, 3, …): the filtered half. */
    policy: { type: "string" },
    /**
     * Input health rules (redundancy.health, JSON) on every channel; "ts": every TS rule (a PID, the PCR, the
     * PTS, continuity, the bitrate, the TR 101 290 second-priority indicators), judged and never holding.
     */
    health: { type: "string" },
    /** Seconds between two scrapes of the service's /metrics (its event-loop lag figures). */
    "scrape-every": { type: "string", default: "5" },
    /** The RTMP runs' receiver: "counter" (load/rtmp-counter.ts: frames and cue messages counted) or "nginx". */
    receiver: { type: "string", default: "counter" },
    /**
     * A rebalance between forwarding threads a quarter into the window (load/rebalance.ts): half the channels
     * of the thread that holds the most move to another, and the report gives each output's longest silence
     * during it.
     */
    rebalance: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
    /**
     * RTMP runs: each of our channels gets one UDP output more, to a sink that reads the latency stamps the
     * generator puts in the stream's null packets: the forwarding path's p99 beside the RTMP outputs.
     */
    "udp-beside": { type: "boolean", default: false },
    /** The first UDP port of the run's block (its channels' inputs and sinks); a free block is picked when left out. */
    "port-base": { type: "string" },
  },
});

if (values.help === true) {
  process.stdout.write(
    [
      "npm run load -- [options]: the service under a paced RTP load, set against anchors (docs/benchmarks.md, Load harness)",
      "  --channels C (1) --outputs M (4) --protocol udp|srt|rist|mix|rtmp --seconds S (20) --warmup S (3) --mbps N (7)",
      "  --anchors ffmpeg,gstreamer,floor,node-floor|dvblast|none --anchor-seconds S --api-clients N --workers N",
      "  --runtimes node,bun,deno --slate MS --policy JSON --health ts|JSON --loss % --jitter MS --gap-every S --gap-ms MS",
      "  --cue-every S (4) --scrape-every S (5) --receiver counter|nginx --port-base PORT --report-dir DIR",
      "  --rebalance: a quarter into the window, half the channels of the busiest forwarding thread move to another;",
      "               the report gives each output's longest silence during the moves (goal: none over 20 ms) and",
      "               the moves' handover events (goal: 0 lost, 0 repeated). e.g.",
      "               npm run load -- --channels 50 --outputs 4 --seconds 20 --anchors none --rebalance",
      "",
    ].join("\n"),
  );
  process.exit(0);
}

const fail = (message: string): never => {
  process.stderr.write(`load: ${message}\n`);
  process.exit(2);
};
const number = (name: keyof typeof values, min: number, max: number): number => {
  const raw = values[name];
  const value = Number(raw);
  if (typeof raw !== "string" || !Number.isFinite(value) || value < min || value > max)
    return fail(`--${name} must be a number from ${min} to ${max}, got '${String(raw)}'`);
  return value;
};
export const C = number("channels", 1, 200);
export const M = number("outputs", 1, 16);
export const SECONDS = number("seconds", 1, 86_400);
export const MBPS = number("mbps", 0.5, 100);
export const WARMUP = number("warmup", 0, 60);
export const API_CLIENTS = number("api-clients", 0, 200);
export const ANCHOR_SECONDS =
  values["anchor-seconds"] === undefined ? SECONDS : number("anchor-seconds", 1, 86_400);
export const LOSS = number("loss", 0, 100);
export const JITTER = number("jitter", 0, 10_000);
export const GAP_EVERY = number("gap-every", 0, 86_400);
export const GAP_MS = number("gap-ms", 0, 86_400_000);
export const CUE_EVERY = number("cue-every", 0.1, 3600);
export const REBALANCE = values.rebalance === true;
export const SLATE_MS = number("slate", 0, 3_600_000);
export const POLICY: unknown =
  values.policy === undefined
    ? null
    : (() => {
        try {
          return JSON.parse(values.policy);
        } catch {
          return fail(`--policy must be JSON, e.g. '{"scte35": "strip"}', got '${values.policy}'`);
        }
      })();
/** What `--health ts` puts on every channel: each TS rule, with limits no healthy input reaches. */
const TS_RULES = {
  rules: {
    no_video: { pid_missing: "video", for_ms: 1000 },
    no_pcr: { pcr_missing_ms: 500 },
    no_pts: { pts_missing_ms: 1000 },
    cc: { cc_errors: 20, window_ms: 1000 },
    low: { bitrate_below_bps: 100_000, for_ms: 3000 },
    p2: {
      tr101290: P2_INDICATORS,
      count: 5,
      window_ms: 5000,
    },
  },
  unhealthy_when: "no_video || no_pcr || no_pts || cc || low || p2",
};
export const HEALTH: unknown =
  values.health === undefined
    ? null
    : values.health === "ts"
      ? TS_RULES
      : (() => {
          try {
            return JSON.parse(values.health);
          } catch {
            return fail(
              `--health must be "ts" or JSON (a channel's redundancy.health), got '${values.health}'`,
            );
          }
        })();
export const UDP_BESIDE = values["udp-beside"] === true;
export const RECEIVER = values.receiver === "nginx" ? "nginx" : "counter";
if (values.receiver !== "nginx" && values.receiver !== "counter")
  fail(`--receiver must be counter or nginx, got '${String(values.receiver)}'`);
export const PROTOCOL = values.protocol ?? "udp";
if (!["udp", "srt", "rist", "mix", "rtmp"].includes(PROTOCOL))
  fail(`--protocol must be udp, srt, rist, mix or rtmp, got '${PROTOCOL}'`);
export const ANCHORS = (values.anchors ?? "")
  .split(",")
  .map((name) => name.trim())
  .filter((name) => name !== "" && name !== "none");
// dvblast is an anchor only when asked for (not in the default list): one process per channel, UDP outputs only.
for (const anchor of ANCHORS)
  if (!["ffmpeg", "gstreamer", "dvblast", "floor", "node-floor"].includes(anchor))
    fail(`--anchors takes ffmpeg, gstreamer, dvblast, floor, node-floor or none, got '${anchor}'`);
export const RUNTIMES = (values.runtimes ?? "node")
  .split(",")
  .map((name) => name.trim())
  .filter((name) => name !== "");
for (const runtime of RUNTIMES)
  if (runtime !== "node" && runtime !== "bun" && runtime !== "deno")
    fail(`--runtimes takes node, bun or deno, got '${runtime}'`);
if (RUNTIMES.length === 0) fail("--runtimes needs at least one of node, bun, deno");
export const REPORT_DIR = resolve(values["report-dir"] ?? "load-tests/reports");
export const SOAK = SECONDS >= 600;
export const SAMPLE_MS = SOAK ? 10_000 : 1_000;
export const SCRAPE_MS = number("scrape-every", 1, 60) * 1000;
export const ROOT = resolve(import.meta.dirname, "../..");

export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
export const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0
    ? null
    : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? null);
export const round = (value: number | null, digits = 2) =>
  value === null || !Number.isFinite(value) ? null : Number(value.toFixed(digits));

/** The protocols whose outputs carry the TS as it came, counted packet for packet by a sink. */
export type TsProtocol = "udp" | "srt" | "rist";
export type Protocol = TsProtocol | "rtmp";
interface OutputPlan {
  readonly protocol: Protocol;
  /** where the sink listens (for SRT and RIST: where the srt-live-transmit or ristreceiver peer forwards to) */
  readonly sink: number;
  /** the SRT or RIST peer's listener port */
  readonly srt: number;
}
interface ChannelPlan {
  readonly input: number;
  readonly outputs: ReadonlyArray<OutputPlan>;
}

/**
 * A block of consecutive free UDP ports on 127.0.0.1, below the ephemeral range (ffmpeg's RTP input also takes
 * the port after its own, for RTCP). Each is bound once to check it, then released.
 */
const freePortBlock = async (size: number): Promise<number> => {
  if (values["port-base"] !== undefined) return number("port-base", 1024, 65_535 - size);
  const bind = (port: number) =>
    new Promise<Socket | null>((done) => {
      const socket = createSocket("udp4");
      socket.once("error", () => done(null));
      socket.bind(port, "127.0.0.1", () => done(socket));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const start = 20_000 + 2 * Math.floor(Math.random() * ((32_000 - 20_000 - size) / 2));
    const held: Socket[] = [];
    let ok = true;
    for (let port = start; port < start + size; port++) {
      const socket = await bind(port);
      if (socket === null) {
        ok = false;
        break;
      }
      held.push(socket);
    }
    await Promise.all(held.map((socket) => new Promise<void>((done) => socket.close(() => done()))));
    if (ok) return start;
  }
  return fail(`no block of ${size} free UDP ports between 20000 and 32000`);
};

/** In `mix`, a channel's outputs take UDP, SRT and RTMP in turn; otherwise all are of the one protocol. */
const MIXED: ReadonlyArray<Protocol> = ["udp", "srt", "rtmp"];
if (PROTOCOL === "mix" && M < MIXED.length)
  fail(`--protocol mix needs --outputs ${MIXED.length} or more (UDP, SRT and RTMP in turn), got ${M}`);
const protocolOf = (output: number): Protocol =>
  PROTOCOL === "mix" ? (MIXED[output % MIXED.length] ?? "udp") : (PROTOCOL as Protocol);

const stride = 2 + 2 * M;
const base = await freePortBlock(C * stride);
export const plan: ReadonlyArray<ChannelPlan> = Array.from({ length: C }, (_, c) => {
  const input = base + c * stride;
  return {
    input,
    outputs: Array.from({ length: M }, (_, o) => ({
      protocol: protocolOf(o),
      sink: input + 2 + 2 * o,
      srt: input + 3 + 2 * o,
    })),
  };
});
export const outputsOf = (protocol: Protocol) =>
  plan.flatMap((channel) => channel.outputs.filter((o) => o.protocol === protocol));
export const outputCount = (protocol: Protocol) => outputsOf(protocol).length / C;

/**
 * The one nginx-rtmp every contender's RTMP outputs publish to (load/nginx.ts), on the first RTMP output's
 * sink port (TCP; only UDP sinks bind those numbers), its statistics page on that output's SRT port.
 */
const firstRtmp = outputsOf("rtmp")[0];
export const RTMP_PORT = firstRtmp?.sink ?? 0;
export const RTMP_STAT_PORT = firstRtmp?.srt ?? 0;
/** --udp-beside: where channel c's UDP output beside its RTMP outputs sends (its first output's spare port). */
export const besideUrl = (channel: ChannelPlan) => `udp://127.0.0.1:${channel.outputs[0]?.srt ?? 0}`;
export const besidePorts = () => plan.map((channel) => channel.outputs[0]?.srt ?? 0);
/** Where channel c's output o publishes: one stream name each, so that nginx counts every stream. */
export const rtmpUrl = (c: number, o: number) => `rtmp://127.0.0.1:${RTMP_PORT}/live/c${c}o${o}`;
