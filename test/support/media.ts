import { Effect } from "effect";
import { execa } from "execa";

/**
 * Real H.264 + AAC in MPEG-TS, as an encoder sends it, made with ffmpeg's test sources. Noise on the picture
 * keeps the bitrate near `videoBitrate` instead of letting the encoder squeeze a static pattern to nothing.
 */
export const encodeTestStream = (path: string, seconds: number, videoBitrate = "1M") =>
  Effect.promise(() =>
    execa("ffmpeg", [
      ...["-hide_banner", "-loglevel", "error", "-y"],
      ...["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"],
      ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"],
      ...["-t", String(seconds), "-vf", "noise=alls=40:allf=t"],
      ...["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"],
      ...["-b:v", videoBitrate, "-maxrate", videoBitrate, "-bufsize", videoBitrate],
      ...["-c:a", "aac", "-f", "mpegts", path],
    ]),
  );

export interface MediaInfo {
  readonly duration: number;
  readonly codecs: ReadonlyArray<string>;
}

/** What ffprobe finds in a file, or undefined while it cannot read it (still being written). */
export const probeMedia = async (path: string): Promise<MediaInfo | undefined> => {
  const result = await execa(
    "ffprobe",
    ["-v", "error", "-show_entries", "format=duration:stream=codec_name", "-of", "json", path],
    { reject: false },
  );
  if (result.exitCode !== 0) return undefined;
  const parsed: { format?: { duration?: string }; streams?: Array<{ codec_name?: string }> } = JSON.parse(
    result.stdout,
  );
  return {
    duration: Number(parsed.format?.duration ?? 0),
    codecs: (parsed.streams ?? []).flatMap((stream) => (stream.codec_name ? [stream.codec_name] : [])).sort(),
  };
};
