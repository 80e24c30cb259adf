import { loadavg } from "node:os";
import { stop } from "./load/children.ts";
import {
  cFloor,
  distributaryOn,
  dvblast,
  ffmpegTee,
  gstreamerTee,
  nodeFloor,
  ristsenders,
} from "./load/contenders.ts";
import { type Measured, measure } from "./load/measure.ts";
import { startNginx } from "./load/nginx.ts";
import {
  ANCHOR_SECONDS,
  ANCHORS,
  API_CLIENTS,
  outputsOf,
  PROTOCOL,
  RUNTIMES,
  SECONDS,
} from "./load/options.ts";
import { writeReport } from "./load/report.ts";
import { runRtmp } from "./load/rtmp.ts";

const loadBefore = loadavg();
const startedAt = new Date();
const runs: Measured[] = [];
// RTMP outputs need a real stream and an RTMP server: their own run (load/rtmp.ts).
if (PROTOCOL === "rtmp") {
  await runRtmp(startedAt, loadBefore);
  process.exit(0);
}
// A mix's RTMP outputs publish to one nginx-rtmp, there for every contender (load/nginx.ts).
const nginx = outputsOf("rtmp").length > 0 ? await startNginx() : null;
for (const runtime of RUNTIMES) {
  const ourService = distributaryOn(runtime);
  runs.push(await measure(ourService, SECONDS, 0));
  if (API_CLIENTS > 0) runs.push(await measure(ourService, SECONDS, API_CLIENTS));
}
// RIST: librist's own ristsender is the contender every run sets ours against.
if (PROTOCOL === "rist") runs.push(await measure(ristsenders, SECONDS, 0));
if (ANCHORS.includes("ffmpeg")) runs.push(await measure(ffmpegTee, ANCHOR_SECONDS, 0));
if (ANCHORS.includes("gstreamer")) {
  if (outputsOf("rist").length === 0) runs.push(await measure(gstreamerTee, ANCHOR_SECONDS, 0));
  else
    process.stderr.write(
      "load: GStreamer's ristsink speaks the simple profile alone; left out of this run\n",
    );
}
for (const [anchor, contender] of [
  ["dvblast", dvblast],
  ["floor", cFloor],
  ["node-floor", nodeFloor],
] as const)
  if (ANCHORS.includes(anchor)) {
    if (PROTOCOL === "udp") runs.push(await measure(contender, ANCHOR_SECONDS, 0));
    else process.stderr.write(`load: the ${anchor} anchor forwards UDP only; left out of this run\n`);
  }
if (nginx !== null) await stop(nginx.child);
writeReport(runs, loadBefore, startedAt);
