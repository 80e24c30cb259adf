/**
 * What the one-box upgrade tests (test/service/upgrade*.timing.test.ts) check from outside: a client asking
 * /api/health every 10 ms on a new connection each time, the RTP output's datagrams as one stream, the cues in
 * a TS, the longest silence between arrivals, and the input they send (a test stream with a SCTE-35 cue every
 * 50 video frames); and the service they upgrade, started through its `current` link.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { get } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { Effect } from "effect";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { eventually } from "./app.ts";
import { immediateSpliceOut } from "./cues.ts";
import { encodeTestStream } from "./media.ts";
import { videoPes, withCues } from "./rtmp-media.ts";
import { STREAM_TYPE_AAC } from "./ts-generator.ts";

export const CUE_PID = 0x1f0;

/** /api/health on `port` every 10 ms, each on a new connection; what failed and how. */
export const healthClient = (port: number) => {
  let running = true;
  let asked = 0;
  const failures: string[] = [];
  const once = () =>
    new Promise<void>((done) => {
      const request = get({ host: "127.0.0.1", port, path: "/api/health", agent: false }, (response) => {
        response.resume();
        response.on("end", () => {
          if (response.statusCode !== 200) failures.push(`status ${response.statusCode}`);
          done();
        });
      });
      request.on("error", (error: NodeJS.ErrnoException) => {
        failures.push(error.code ?? error.message);
        done();
      });
    });
  const loop = (async () => {
    while (running) {
      const next = sleep(10);
      asked += 1;
      await once();
      await next;
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { asked, failures };
    },
  };
};

/** The longest time between two arrivals within [from, to] (performance.now() ms). */
export const longestSilence = (arrivals: ReadonlyArray<number>, from: number, to: number) => {
  let longest = 0;
  let previous = from;
  for (const at of arrivals) {
    if (at < from || at > to) continue;
    longest = Math.max(longest, at - previous);
    previous = at;
  }
  return Math.max(longest, to - previous);
};

/** The SCTE-35 sections that start in `ts` (on CUE_PID). */
export const cuesIn = (ts: Uint8Array) => {
  let count = 0;
  for (let offset = 0; offset + 188 <= ts.length; offset += 188) {
    const pid = (((ts[offset + 1] ?? 0) & 0x1f) << 8) | (ts[offset + 2] ?? 0);
    const start = ((ts[offset + 1] ?? 0) & 0x40) !== 0;
    if (pid === CUE_PID && start) count += 1;
  }
  return count;
};

/** The RTP output's datagrams: one SSRC, sequence numbers one apart, and the payloads joined. */
export const rtpStream = (datagrams: ReadonlyArray<Buffer>) => {
  const ssrcs = new Set(datagrams.map((datagram) => datagram.readUInt32BE(8)));
  const skips: string[] = [];
  for (let index = 1; index < datagrams.length; index++) {
    const before = datagrams[index - 1]?.readUInt16BE(2) ?? 0;
    const now = datagrams[index]?.readUInt16BE(2) ?? 0;
    if (now !== ((before + 1) & 0xffff)) skips.push(`${before} → ${now} at datagram ${index}`);
  }
  return { ssrcs, skips, payload: Buffer.concat(datagrams.map((datagram) => datagram.subarray(12))) };
};

/**
 * A test stream of `seconds` (H.264 320x180 at 1 Mb/s and AAC) encoded to `file`, with a SCTE-35 splice-out
 * before every 50th video frame: the bytes, and how many cues they carry.
 */
export const streamWithCues = async (file: string, seconds: number) => {
  await Effect.runPromise(encodeTestStream(file, seconds, "1M", "320x180"));
  const plain = await readFile(file);
  const cues = videoPes(plain)
    .filter((_, index) => index > 0 && index % 50 === 0)
    .map((frame, index) => ({
      before: frame.packet,
      section: encodeSection(immediateSpliceOut(6500 + index)),
    }));
  return { bytes: withCues(plain, STREAM_TYPE_AAC, cues), cues: cues.length };
};

/**
 * `launcher serve` on 127.0.0.1:`port` with `configDir`, dying with this test process, once /api/ready answers
 * 200; its child is in `started` from the moment it is spawned. What it prints goes to `print`, and so does what
 * each process it hands over to prints (they inherit its pipes); `printed` is all of it, said when it exits.
 */
export const serveReady = async (options: {
  readonly launcher: string;
  readonly port: number;
  readonly configDir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly started: ChildProcess[];
  readonly print: (text: string) => void;
  readonly printed: () => string;
}): Promise<ChildProcess> => {
  const args = [
    "serve",
    "--port",
    String(options.port),
    "--host",
    "127.0.0.1",
    "--config-dir",
    options.configDir,
  ];
  const child = spawn("/usr/bin/setpriv", ["--pdeathsig", "KILL", options.launcher, ...args], {
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  options.started.push(child);
  child.stdout?.on("data", (chunk) => options.print(String(chunk)));
  child.stderr?.on("data", (chunk) => options.print(String(chunk)));
  await eventually(
    "the service to be ready",
    async () => {
      if (child.exitCode !== null) throw new Error(`serve exited: ${options.printed()}`);
      const ready = await fetch(`http://127.0.0.1:${options.port}/api/ready`).catch(() => undefined);
      return ready?.status === 200 ? true : undefined;
    },
    30_000,
  );
  return child;
};

/** Stops the service serving now (`pid`, from its PID file: after an upgrade no child of the test) and every child left. */
export const stopServing = async (pid: number, started: ReadonlyArray<ChildProcess>) => {
  if (pid > 0) process.kill(pid, "SIGTERM");
  for (const child of started) if (child.exitCode === null) child.kill("SIGKILL");
  await eventually("the service to stop", async () => {
    if (pid <= 0) return true;
    try {
      process.kill(pid, 0);
      return undefined;
    } catch {
      return true;
    }
  }).catch(() => (pid > 0 ? process.kill(pid, "SIGKILL") : undefined));
};
