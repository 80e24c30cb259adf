/**
 * CPU of the TS → FLV remux alone (src/core/flv/remux.ts): a 20-second H.264 (B-frames, 1280x720, about
 * 7 Mbit/s, a keyframe every 2 s) + AAC TS file, fed to one FlvRemux in 1316-byte chunks with one listener, as
 * a channel with an RTMP output does. Prints the CPU time per second of stream (median and mean of the rounds:
 * a round with a major collection in it costs more), the JS heap allocated and the garbage collections per
 * second of stream, and a hash of every frame the remux made, so that a change that must not alter a byte can
 * be checked by running this before and after it.
 *
 *   node --max-semi-space-size=1 load-tests/bench-remux.ts [rounds, default 7]
 *
 * The young generation of 1 MiB is the service's (bin/distributary). With V8's default, a remux that makes
 * little garbage sees few scavenges free its frames' buffers, and their memory brings major collections instead.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GCProfiler } from "node:v8";
import type { FlvFrame } from "../src/core/flv/frames.ts";
import { FlvRemux } from "../src/core/flv/remux.ts";
import { writeRtmpSource } from "./load/rtmp-source.ts";

const rounds = Number(process.argv[2] ?? 7);
const SECONDS = 20;
const MBPS = 7;
const DATAGRAM = 1316;

// The stream of `npm run load -- --protocol rtmp`, made once and kept.
const sourcePath = join(tmpdir(), `distributary-bench-remux-${MBPS}M-${SECONDS}s.ts`);
if (!existsSync(sourcePath)) {
  writeRtmpSource(`${sourcePath}.part`, SECONDS, MBPS);
  renameSync(`${sourcePath}.part`, sourcePath);
}
const file = readFileSync(sourcePath);
// Each datagram a Buffer of its own (a copy), as they come off a socket.
const chunks: Uint8Array[] = [];
for (let at = 0; at + DATAGRAM <= file.length; at += DATAGRAM)
  chunks.push(Buffer.from(file.subarray(at, at + DATAGRAM)));

/** One pass over the file through a new remux; `onFrame` sees every frame, as an RTMP output would. */
const pass = (onFrame: (frame: FlvFrame) => void): void => {
  const remux = new FlvRemux();
  remux.listen(onFrame);
  for (const chunk of chunks) remux.push(chunk);
};

// The frames of one pass, hashed with what an output sends of them (kind, timestamp, keyframe, body).
const hash = createHash("sha256");
let frames = 0;
pass((frame) => {
  frames++;
  hash.update(`${frame.kind} ${frame.timestamp} ${frame.keyframe}\n`);
  hash.update(frame.body);
});
const digest = hash.digest("hex");

let sink = 0;
const count = (frame: FlvFrame) => {
  sink += frame.body.length;
};
for (let i = 0; i < 3; i++) pass(count); // warm-up: optimised code before measuring

const cpu: number[] = [];
const profiler = new GCProfiler();
profiler.start();
for (let i = 0; i < rounds; i++) {
  const before = process.cpuUsage();
  pass(count);
  const used = process.cpuUsage(before);
  cpu.push((used.user + used.system) / SECONDS);
}
const gcs = profiler.stop()?.statistics ?? [];

// Heap allocated between collections: what each found in use, less what the one before left.
let allocated = 0;
let previousAfter: number | undefined;
for (const gc of gcs) {
  const before = gc.beforeGC.heapStatistics.usedHeapSize;
  if (previousAfter !== undefined) allocated += Math.max(0, before - previousAfter);
  previousAfter = gc.afterGC.heapStatistics.usedHeapSize;
}
const streamSeconds = rounds * SECONDS;
const median = [...cpu].sort((a, b) => a - b)[cpu.length >> 1] ?? 0;
const mean = cpu.reduce((sum, us) => sum + us, 0) / cpu.length;
const scavenges = gcs.filter((gc) => gc.gcType === "Scavenge").length;

process.stdout.write(
  [
    `source: ${sourcePath} (${(file.length / 1e6).toFixed(1)} MB, ${chunks.length} datagrams of ${DATAGRAM} bytes)`,
    `frames per pass: ${frames}, sha256 of kind/timestamp/keyframe/body: ${digest}`,
    `CPU per second of stream: median ${median.toFixed(0)} µs, mean ${mean.toFixed(0)} µs (rounds: ${cpu.map((us) => us.toFixed(0)).join(", ")})`,
    `JS heap allocated per second of stream: ${(allocated / streamSeconds / 1024).toFixed(0)} KiB (between collections)`,
    `collections per second of stream: ${(gcs.length / streamSeconds).toFixed(2)} (${scavenges} scavenges, ${gcs.length - scavenges} others in ${streamSeconds} s)`,
    `(bytes handed out: ${sink})`,
    "",
  ].join("\n"),
);
