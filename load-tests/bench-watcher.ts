/**
 * What the content watcher costs: its ffmpeg's CPU, in % of one core, for one 1080p25 input (H.264 at
 * 6 Mbit/s with B-frames and a one-second GOP, AAC stereo, encoded here from ffmpeg's test source) fed at its
 * own pace, with a black, a frozen and a silent rule, in key-frame mode (the default; goal ≤ 3 % of a core)
 * and, with `--mode all`, decoding every picture. The figure is read as the watcher reads it for the
 * channel's status: /proc/<pid>/stat of its ffmpeg, from after its start-up to the end of the stream.
 *
 *   node load-tests/bench-watcher.ts [--seconds 30] [--mode key|all] [--gop 25]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { Effect, Exit, Scope } from "effect";
import type { DecodeMode } from "../src/core/content/args.ts";
import { makeContentWatcher } from "../src/effects/ingest/content-watcher.ts";
import { chunksByPcr, offerAtPace } from "../test/support/pcr-chunks.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "30" },
    mode: { type: "string", default: "key" },
    gop: { type: "string", default: "25" },
  },
});
const seconds = Number(values.seconds);
const mode: DecodeMode = values.mode === "all" ? "all" : "key";
/** The watcher's first seconds (probing, its first pictures) are left out of the figure. */
const WARM_UP_S = 3;

const dir = mkdtempSync(join(tmpdir(), "distributary-watcher-"));
const file = join(dir, "source.ts");
console.log(`encoding ${seconds} s of 1080p25 H.264 + AAC ...`);
execFileSync("ffmpeg", [
  ...["-hide_banner", "-loglevel", "error"],
  ...["-f", "lavfi", "-i", `testsrc2=size=1920x1080:rate=25:duration=${seconds}`],
  ...["-f", "lavfi", "-i", `sine=frequency=440:sample_rate=48000:duration=${seconds}`],
  ...["-vf", "noise=alls=20:allf=t", "-c:v", "libx264", "-preset", "veryfast", "-bf", "2"],
  ...["-g", values.gop, "-pix_fmt", "yuv420p", "-b:v", "6M", "-maxrate", "6M", "-bufsize", "6M"],
  ...["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "mpegts", file],
]);
const chunks = chunksByPcr(readFileSync(file));

const scope = await Effect.runPromise(Scope.make());
const watcher = await Effect.runPromise(
  Scope.extend(
    makeContentWatcher({
      mode,
      rules: {
        black: { black: { pixel_threshold: 0.1, picture_ratio: 0.98 }, for_ms: 3000 },
        frozen: { frozen: { noise_db: -60 }, for_ms: 6000 },
        silent: { silent: { noise_db: -60 }, for_ms: 3000 },
      },
    }),
    scope,
  ),
);
if (watcher === null) throw new Error("no watcher");
while (watcher.pid() === undefined) await sleep(10);
let warm = false;
await offerAtPace(chunks, watcher.offer, (position) => {
  if (!warm && position >= WARM_UP_S) {
    warm = true;
    watcher.cost(); // the figure below is from here on
  }
});
const cost = watcher.cost();
const verdicts = watcher.verdicts();
const spacing = watcher.pictureSpacingMs();
await Effect.runPromise(Scope.close(scope, Exit.void));
rmSync(dir, { recursive: true, force: true });

const gopMs = (Number(values.gop) / 25) * 1000;
console.log(
  `watcher: one 1080p25 input (H.264 6 Mbit/s, GOP ${gopMs} ms, B-frames; AAC stereo), ${mode === "key" ? "key frames only" : "every picture"}`,
);
console.log(
  `  ffmpeg CPU:        ${cost.cpuPercent?.toFixed(2) ?? "?"} % of one core over ${seconds - WARM_UP_S} s (goal ≤ 3 % in key-frame mode)`,
);
console.log(`  dropped chunks:    ${cost.droppedChunks}`);
console.log(`  restarts:          ${cost.restarts}`);
console.log(`  picture spacing:   ${spacing?.toFixed(0) ?? "?"} ms as the watcher measured it`);
console.log(
  `  verdicts:          ${Object.entries(verdicts)
    .map(([name, verdict]) => `${name} ${verdict.state} (${verdict.reason})`)
    .join("; ")}`,
);
