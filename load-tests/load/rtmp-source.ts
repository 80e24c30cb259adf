/**
 * The RTMP runs' stream, written to `path` with ffmpeg: real H.264 (1280x720, B-frames, a keyframe every 2 s)
 * and AAC at about `mbps`, `seconds` long. Used by `npm run load -- --protocol rtmp` (rtmp.ts) and by
 * `npm run bench:remux`, which must remux the same stream; it reads no harness option.
 */
import { execFileSync } from "node:child_process";

export const writeRtmpSource = (path: string, seconds: number, mbps: number): void => {
  const rate = `${mbps}M`;
  execFileSync("ffmpeg", [
    ...["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25"],
    ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", String(seconds)],
    ...["-vf", "noise=alls=30:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "50"],
    ...["-b:v", rate, "-maxrate", rate, "-bufsize", rate, "-c:a", "aac", "-b:a", "128k"],
    ...["-muxrate", `${Math.round(mbps * 1.1 * 1_000_000)}`, "-f", "mpegts", path],
  ]);
};
