/**
 * The harness's child processes: the C generator and sink (built here), every child's start, stop and output
 * blocks, and the load's source and sinks as the measured run drives them.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { setPriority, tmpdir } from "node:os";
import { join } from "node:path";
import { ANCHORS, CUE_EVERY, GAP_EVERY, GAP_MS, JITTER, LOSS, MBPS, plan, ROOT } from "./options.ts";

export const work = mkdtempSync(join(tmpdir(), "distributary-load-"));
const sinkBinary = join(work, "udp-sink");
const sourceBinary = join(work, "udp-source");
execFileSync("cc", ["-O2", "-o", sinkBinary, join(ROOT, "load-tests/udp-sink.c")]);
execFileSync("cc", ["-O2", "-o", sourceBinary, join(ROOT, "load-tests/udp-source.c")]);
export const floorBinary = join(work, "floor-forwarder");
if (ANCHORS.includes("floor"))
  execFileSync("cc", ["-O2", "-o", floorBinary, join(ROOT, "load-tests/floor-forwarder.c")]);

const children = new Set<ChildProcess>();
export const started = (command: string, args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv) => {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...(env ? { env } : {}) });
  children.add(child);
  child.once("exit", () => children.delete(child));
  // keep stdout flowing (a full pipe would stall the child); readers attach their own listener right away
  child.stdout?.on("data", () => undefined);
  let tail = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-2000);
  });
  return { child, tail: () => tail };
};
const ended = (child: ChildProcess) =>
  new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done();
    else child.once("exit", () => done());
  });
export const stop = async (child: ChildProcess) => {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await ended(child);
  clearTimeout(timer);
};
// Ctrl-C or a SIGTERM still stops every child started here (the exit handler below runs)
process.once("SIGINT", () => process.exit(130));
process.once("SIGTERM", () => process.exit(143));
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
});

/**
 * The generator stands for an encoder on another machine: its pace must not depend on how busy a contender
 * keeps the cores. It runs at nice -19 where the harness may raise a priority (root): a contender that raises
 * its own threads' (ours, to nice -10) would otherwise hold it off the CPU, and the contender's outputs would
 * fall silent for the generator's pause. The sinks keep the default: they read kernel receive times, so when
 * they run does not change what they measure, and at a higher priority each datagram's wake-up would preempt
 * the contender in the middle of its sends.
 */
export const generatorPriority: { applied: boolean | null; why?: string } = { applied: null };
const asEncoder = (child: ChildProcess) => {
  if (child.pid === undefined || generatorPriority.applied === false) return;
  try {
    setPriority(child.pid, -19);
    generatorPriority.applied = true;
  } catch (error) {
    generatorPriority.applied = false;
    generatorPriority.why = (error as Error).message;
  }
};

/** Lines from a child's stdout, handed out as blocks that end with a line starting with `end`. */
const blocks = (child: ChildProcess, end: string) => {
  let buffered = "";
  const waiting: Array<(block: string) => void> = [];
  const ready: string[] = [];
  child.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    for (;;) {
      const at = buffered.search(new RegExp(`^${end}.*$`, "m"));
      if (at < 0) break;
      const close = buffered.indexOf("\n", at);
      if (close < 0) break;
      const block = buffered.slice(0, close + 1);
      buffered = buffered.slice(close + 1);
      const waiter = waiting.shift();
      if (waiter) waiter(block);
      else ready.push(block);
    }
  });
  return () =>
    new Promise<string>((done) => {
      const next = ready.shift();
      if (next !== undefined) done(next);
      else waiting.push(done);
    });
};

interface PortCounts {
  readonly port: number;
  readonly datagrams: number;
  readonly packets: number;
  readonly ccErrors: number;
  readonly cues: number;
  readonly stamps: number;
  readonly longestSilenceUs: number;
  /** when the longest silence ended (µs since the epoch, the kernel's receive time; 0 for none) */
  readonly longestSilenceEndUs: number;
  /**
   * Once `mark` opened a span (the rebalance's; a second `mark` closes it): the longest silence that overlapped
   * it, when that ended (µs since the epoch), and the longest the forwarding added in it (a silence less the
   * input's own, from the send stamps: udp-sink.c); null without a mark.
   */
  readonly marked: {
    readonly longestSilenceUs: number;
    readonly endUs: number;
    readonly addedUs: number;
  } | null;
  /** packets on the media PIDs (all but PSI, SI and null packets), on the PSI and SI PIDs, and null packets */
  readonly media: number;
  readonly psi: number;
  readonly nulls: number;
  /** of every TS packet in the order received, and of the media packets in any order (udp-sink.c) */
  readonly digest: string;
  readonly mediaDigest: string;
}
export interface SinkReport {
  readonly ports: ReadonlyArray<PortCounts>;
  readonly latency: { count: number; p50Us: number; p99Us: number; maxUs: number } | null;
}
const parseSink = (text: string): SinkReport => {
  const ports: PortCounts[] = [];
  let latency: SinkReport["latency"] = null;
  for (const line of text.split("\n")) {
    const fields = line.trim().split(" ");
    if (fields[0] === "latency") {
      const [count, p50Us, p99Us, maxUs] = fields.slice(1).map(Number);
      if (count !== undefined && count > 0)
        latency = { count, p50Us: p50Us ?? 0, p99Us: p99Us ?? 0, maxUs: maxUs ?? 0 };
    } else if (/^\d+$/.test(fields[0] ?? "") && fields.length >= 13) {
      const [port, datagrams, , packets, ccErrors, cues, stamps, longestSilenceUs, media, psi, nulls] = fields
        .slice(0, 11)
        .map(Number);
      ports.push({
        port: port ?? 0,
        datagrams: datagrams ?? 0,
        packets: packets ?? 0,
        ccErrors: ccErrors ?? 0,
        cues: cues ?? 0,
        stamps: stamps ?? 0,
        longestSilenceUs: longestSilenceUs ?? 0,
        media: media ?? 0,
        psi: psi ?? 0,
        nulls: nulls ?? 0,
        digest: fields[11] ?? "",
        mediaDigest: fields[12] ?? "",
        longestSilenceEndUs: Number(fields[13] ?? 0),
        marked:
          fields.length >= 17
            ? { longestSilenceUs: Number(fields[14]), endUs: Number(fields[15]), addedUs: Number(fields[16]) }
            : null,
      });
    }
  }
  return { ports, latency };
};

interface Sink {
  readonly report: () => Promise<SinkReport>;
  readonly restartWindow: () => void;
  /** Opens a span (then closes it): each port's longest silence overlapping it is kept apart (`marked`). */
  readonly mark: () => void;
  readonly close: () => Promise<SinkReport>;
}
export const openSink = async (ports: ReadonlyArray<number>): Promise<Sink | null> => {
  if (ports.length === 0) return null;
  const { child, tail } = started(sinkBinary, ports.map(String));
  const next = blocks(child, "(ready|end)");
  const first = await Promise.race([next(), ended(child).then(() => "")]);
  if (!first.includes("ready")) throw new Error(`udp-sink did not start: ${tail()}`);
  const report = async () => {
    const answer = next();
    child.kill("SIGUSR1");
    return parseSink(await answer);
  };
  return {
    report,
    restartWindow: () => child.kill("SIGUSR2"),
    mark: () => child.kill("SIGHUP"),
    close: async () => {
      const answer = next();
      child.kill("SIGTERM");
      const text = await answer;
      await ended(child);
      return parseSink(text);
    },
  };
};

interface ChannelSent {
  readonly packets: number;
  readonly cues: number;
  /** packets on the media PIDs (video, audio, SCTE-35), and the digests udp-sink.c keeps too */
  readonly media: number;
  readonly digest: string;
  readonly mediaDigest: string;
}
export interface SourceCounts {
  readonly channels: ReadonlyArray<ChannelSent>;
}
const parseSource = (text: string): SourceCounts => {
  const channels: ChannelSent[] = [];
  for (const match of text.matchAll(
    /^channel (\d+) datagrams (\d+) packets (\d+) cues (\d+) media (\d+) digest (\w+) media_digest (\w+)$/gm,
  ))
    channels[Number(match[1])] = {
      packets: Number(match[3]),
      cues: Number(match[4]),
      media: Number(match[5]),
      digest: match[6] ?? "",
      mediaDigest: match[7] ?? "",
    };
  return { channels };
};
export const startSource = async (seconds: number) => {
  const args = ["-s", "-r", "-m", String(MBPS), "-d", String(seconds), "-c", String(CUE_EVERY)];
  if (LOSS > 0) args.push("-l", String(LOSS));
  if (JITTER > 0) args.push("-j", String(JITTER));
  if (GAP_EVERY > 0 && GAP_MS > 0) args.push("-g", String(GAP_EVERY), "-G", String(GAP_MS));
  const { child, tail } = started(sourceBinary, [...args, ...plan.map((channel) => String(channel.input))]);
  asEncoder(child);
  const next = blocks(child, "(started|sent)");
  const first = await Promise.race([next(), ended(child).then(() => "")]);
  if (!first.includes("started")) throw new Error(`udp-source did not start: ${tail()}`);
  // the last block, printed as it ends, once its output is closed (SIGUSR1 blocks are taken by counts())
  const closed = new Promise<void>((done) => child.once("close", () => done()));
  const done = closed.then(async () => parseSource(await next()));
  return {
    counts: async () => {
      const answer = next();
      child.kill("SIGUSR1");
      return parseSource(await answer);
    },
    done,
    child,
  };
};
