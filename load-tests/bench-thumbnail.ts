/**
 * What a thumbnail costs: the CPU time of the short-lived ffmpeg that decodes one keyframe from two seconds
 * of a channel's TS (1280×720 H.264 at 4 Mbit/s, encoded here by ffmpeg's test source) into a 320-pixel JPEG,
 * as the Thumbnails service runs it every 10 s per running channel while a page shows stills.
 *
 *   node load-tests/bench-thumbnail.ts [--runs 10]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Duration, Effect } from "effect";
import { stillOf, THUMBNAIL_EVERY } from "../src/effects/status/thumbnails.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "10" } } });
const dir = mkdtempSync(join(tmpdir(), "distributary-thumb-"));
const file = join(dir, "source.ts");
execFileSync("ffmpeg", [
  "-hide_banner",
  "-loglevel",
  "error",
  "-f",
  "lavfi",
  "-i",
  "testsrc2=size=1280x720:rate=25",
  "-f",
  "lavfi",
  "-i",
  "sine=frequency=1000",
  "-t",
  "2",
  "-c:v",
  "libx264",
  "-preset",
  "veryfast",
  "-b:v",
  "4M",
  "-g",
  "25",
  "-c:a",
  "aac",
  "-f",
  "mpegts",
  file,
]);
const ts = readFileSync(file);

const runs = Number(values.runs);
// The same decode as the service, run `runs` times by a shell whose `times` reports its children's CPU time
// (process start-up included, which ffmpeg's own -benchmark leaves out).
const args =
  "-hide_banner -loglevel error -f mpegts -i pipe:0 -map 0:v:0 -frames:v 1 -vf scale=320:-2 -q:v 6 -f image2 -c:v mjpeg pipe:1";
const started = performance.now();
const report = execFileSync("bash", [
  "-c",
  `for i in $(seq ${runs}); do ffmpeg ${args} < ${file} > /dev/null; done; times`,
]).toString();
const wall = performance.now() - started;
const children = report.trim().split("\n").at(-1) ?? "";
const seconds = (text: string) => {
  const [, minutes, secs] = /(\d+)m([\d.]+)s/.exec(text) ?? [];
  return Number(minutes) * 60 + Number(secs);
};
const [user = "0m0s", system = "0m0s"] = children.split(/\s+/);
const cpu = (seconds(user) + seconds(system)) / runs;
const still = await Effect.runPromise(stillOf(ts));
const every = Duration.toSeconds(THUMBNAIL_EVERY);
console.log(`thumbnail: one 320-px JPEG from 2 s of 1280×720 H.264 TS, every ${every} s per running channel`);
console.log(
  `  ffmpeg CPU per still:  ${(cpu * 1000).toFixed(0)} ms (user + system, start-up included, mean of ${runs})`,
);
console.log(`  wall time per still:   ${(wall / runs).toFixed(0)} ms (mean of ${runs})`);
console.log(
  `  cost per channel:      ${((cpu / every) * 100).toFixed(2)} % of one core while a page shows stills`,
);
console.log(
  `  JPEG size:             ${((still?.length ?? 0) / 1024).toFixed(1)} KiB (as the service makes it)`,
);
rmSync(dir, { recursive: true, force: true });
