/**
 * The RTMP runs' receiver side: the stream each channel is sent (frames and cues in the part the generator
 * sends), and the receiver the outputs publish to, read as one set of counts: the counting receiver
 * (rtmp-counter.ts: video and audio frames, AMF cue messages and bytes per stream) or nginx-rtmp (streams and
 * bytes alone).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { setPriority } from "node:os";
import { join } from "node:path";
import { started, stop } from "./children.ts";
import { eventually } from "./contenders.ts";
import { nginxStat, startNginx } from "./nginx.ts";
import { MBPS, RECEIVER, ROOT, RTMP_PORT, SECONDS, UDP_BESIDE, WARMUP } from "./options.ts";
import { addCues, writeRtmpSource } from "./rtmp-source.ts";

/**
 * The TS rate over the video's: with --udp-beside more, so that null packets (where the generator puts its
 * latency stamps) come all through the stream, not only where the video runs short.
 */
const MUX_FACTOR = UDP_BESIDE ? 1.3 : 1.1;
/**
 * Seconds the stream goes on beyond the warm-up and the window: room for our outputs to connect before the
 * warm-up starts (they call their server once the stream's PMT is seen). The generator is stopped at the
 * window's end.
 */
export const CONNECT_ALLOWANCE = 30;
/** Datagrams of seven TS packets a second to each channel, and the most the generator sends each. */
export const DATAGRAMS_A_SECOND = (MBPS * MUX_FACTOR * 1_000_000) / 8 / 1316;
export const DATAGRAMS = Math.floor((WARMUP + SECONDS + CONNECT_ALLOWANCE) * DATAGRAMS_A_SECOND);
const VIDEO_PID = 0x100;

/** What the generator sends each channel of the stream made here: its video frames and its cues. */
export interface SourceFigures {
  readonly videoFrames: number;
  readonly cues: number;
}

/** Makes the stream (long enough for the run, with a cue every `cueEvery` s) and counts what will be sent. */
export const makeSource = (file: string, cueEvery: number): SourceFigures => {
  writeRtmpSource(file, Math.ceil(WARMUP + SECONDS + CONNECT_ALLOWANCE + 2), MBPS, MUX_FACTOR);
  const cueAt = addCues(file, cueEvery, MBPS, MUX_FACTOR);
  const ts = readFileSync(file);
  // --udp-beside: the padding moves off the null PID (udp-sink.c skips null packets) to 0x1ffe, which no
  // PMT names, for the generator's stamps; every contender leaves it out of FLV as it does null packets.
  if (UDP_BESIDE) {
    for (let at = 0; at + 188 <= ts.length; at += 188)
      if (((ts[at + 1] ?? 0) & 0x1f) === 0x1f && ts[at + 2] === 0xff) ts[at + 2] = 0xfe;
    writeFileSync(file, ts);
  }
  const sent = Math.min(DATAGRAMS * 7, Math.floor(ts.length / 188));
  let videoFrames = 0;
  for (let i = 0; i < sent; i++) {
    const at = i * 188;
    const pid = ((ts[at + 1] ?? 0) & 0x1f) * 256 + (ts[at + 2] ?? 0);
    if (pid === VIDEO_PID && (ts[at + 1] ?? 0) & 0x40) videoFrames++;
  }
  return { videoFrames, cues: cueAt.filter((at) => at < sent).length };
};

/** A receiver's counts, summed over its streams. */
export interface ReceiverCounts {
  readonly streams: number;
  readonly bytes: number;
  /** null where the receiver does not count them (nginx) */
  readonly video: number | null;
  readonly audio: number | null;
  readonly cues: number | null;
}

export interface Receiver {
  readonly counts: () => Promise<ReceiverCounts>;
  /** the counting receiver's process (its CPU is the harness's), null for nginx */
  readonly pid: number | null;
  readonly stop: () => Promise<void>;
}

const startCounter = async (): Promise<Receiver> => {
  const run = started(process.execPath, [join(ROOT, "load-tests/load/rtmp-counter.ts"), String(RTMP_PORT)]);
  // It stands for the destinations, on machines of their own: as the generator, it must not fall behind for want
  // of the CPU the contender takes (at 100 × 2 it is about a third of a core; behind, its sockets fill and the
  // contender's outputs wait on it).
  try {
    setPriority(run.child.pid ?? 0, -19);
  } catch {}
  let text = "";
  const waiting: Array<(line: string) => void> = [];
  run.child.stdout?.on("data", (chunk: Buffer) => {
    text += chunk.toString();
    for (let end = text.indexOf("\n"); end >= 0; end = text.indexOf("\n")) {
      const line = text.slice(0, end);
      text = text.slice(end + 1);
      waiting.shift()?.(line);
    }
  });
  const next = () => new Promise<string>((done) => waiting.push(done));
  const ready = next();
  await eventually(
    () => `the counting receiver to listen (${run.tail()})`,
    () => Promise.race([ready.then(() => true), new Promise<boolean>((done) => setTimeout(done, 50, false))]),
  );
  return {
    counts: async () => {
      const answer = next();
      run.child.kill("SIGUSR1");
      const streams = Object.values(JSON.parse(await answer) as Record<string, Record<string, number>>);
      const sum = (field: string) => streams.reduce((total, stream) => total + (stream[field] ?? 0), 0);
      return {
        streams: streams.length,
        bytes: sum("bytes"),
        video: sum("video"),
        audio: sum("audio"),
        cues: sum("cues"),
      };
    },
    stop: () => stop(run.child),
    pid: run.child.pid ?? null,
  };
};

const startNginxReceiver = async (): Promise<Receiver> => {
  const nginx = await startNginx();
  return {
    counts: async () => {
      const stat = await nginxStat();
      return { streams: stat.publishing, bytes: stat.bytesIn, video: null, audio: null, cues: null };
    },
    stop: () => stop(nginx.child),
    pid: null,
  };
};

/** A fresh receiver for each contender: its counts are that contender's alone. */
export const startReceiver = (): Promise<Receiver> =>
  RECEIVER === "nginx" ? startNginxReceiver() : startCounter();
