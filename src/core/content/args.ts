/**
 * The content watcher's ffmpeg, as arguments: it reads the input's TS on stdin, decodes only what the rules
 * need (the picture for black and frozen, the sound for silent; by default only the key frames, one thread,
 * scaled to 160 pixels wide), runs one detector per rule and prints each detector's states through a
 * `metadata@<rule>` printer (content/lines.ts reads them), and reports its progress on stdout. It never
 * encodes: its outputs are ffmpeg's null muxer, which hands each frame on as it is.
 *
 * Detectors: blackdetect (on at the first black picture; the watcher then times `for_ms` itself on the
 * stream's clock), freezedetect and silencedetect with `for_ms` as their own duration (a freeze can only be
 * told from two pictures at least a picture apart, and a silence shorter than the rule asks would flap at
 * every quiet moment).
 */
import type { HealthRule } from "../../domain/health/health-schema.ts";

export type BlackRule = Extract<HealthRule, { readonly black: unknown }>;
export type FrozenRule = Extract<HealthRule, { readonly frozen: unknown }>;
export type SilentRule = Extract<HealthRule, { readonly silent: unknown }>;
export type ContentRule = BlackRule | FrozenRule | SilentRule;

/** Key frames only (the default: a fraction of the decoding), or every picture. */
export type DecodeMode = "key" | "all";

/** How often ffmpeg says how far into the stream it is (`-progress`), in ms. */
export const PROGRESS_MS = 250;

/** The width the pictures are scaled to before the detectors: enough for a mean, cheap to scan. */
const WIDTH = 160;

const seconds = (ms: number) => String(ms / 1000);

const detector = (name: string, rule: ContentRule): string => {
  if ("black" in rule)
    return `blackdetect=d=0:pix_th=${rule.black.pixel_threshold}:pic_th=${rule.black.picture_ratio},metadata@${name}=mode=print`;
  if ("frozen" in rule)
    return `freezedetect=n=${rule.frozen.noise_db}dB:d=${seconds(rule.for_ms)},metadata@${name}=mode=print`;
  return `silencedetect=n=${rule.silent.noise_db}dB:d=${seconds(rule.for_ms)},ametadata@${name}=mode=print`;
};

/** One input's chain: split into the mapped output and one branch per rule, each ending in a null sink. */
const chain = (
  input: string,
  scale: string,
  split: string,
  sink: string,
  label: string,
  rules: ReadonlyArray<readonly [string, ContentRule]>,
): string => {
  const branches = rules.map(([name]) => `[${label}_${name}]`).join("");
  const head = `${input}${scale}${split}=${rules.length + 1}[${label}]${branches}`;
  return [head, ...rules.map(([name, rule]) => `[${label}_${name}]${detector(name, rule)},${sink}`)].join(
    ";",
  );
};

/** The arguments for one watcher, or null when none of the rules needs the picture or the sound. */
export const contentWatchArgs = (
  rules: Readonly<Record<string, ContentRule>>,
  mode: DecodeMode = "key",
): ReadonlyArray<string> | null => {
  const entries = Object.entries(rules);
  const picture = entries.filter(([, rule]) => !("silent" in rule));
  const sound = entries.filter(([, rule]) => "silent" in rule);
  if (entries.length === 0) return null;
  const graphs = [
    ...(picture.length > 0
      ? [chain("[0:v:0]", `scale=w=${WIDTH}:h=-2:flags=fast_bilinear,`, "split", "nullsink", "v", picture)]
      : []),
    ...(sound.length > 0 ? [chain("[0:a:0]", "", "asplit", "anullsink", "a", sound)] : []),
  ];
  return [
    ...["-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info"],
    // A second of the stream is enough to find the video and audio; the default five would delay every start.
    ...["-probesize", "5000000", "-analyzeduration", "1000000"],
    ...(mode === "key" ? ["-skip_frame", "nokey"] : []),
    ...["-threads", "1", "-f", "mpegts", "-i", "pipe:0"],
    // One graph for the picture, one for the sound: ffmpeg runs a graph for the output that is furthest
    // behind, and in key-frame mode the picture's output is behind by up to a GOP (or more, when the decoder
    // holds pictures back), so a sound chain in the same graph ran as late: silence was seen 3–4 s after its
    // for_ms with a 2 s GOP. Apart, the sound is decoded and judged as it comes.
    ...graphs.flatMap((graph) => ["-filter_complex", graph]),
    ...(picture.length > 0 ? ["-map", "[v]", "-f", "null", "-"] : []),
    ...(sound.length > 0 ? ["-map", "[a]", "-f", "null", "-"] : []),
    // The stream's packets as they come, copied, not decoded: progress that the decoder's reordering delay
    // (in key-frame mode, as many GOPs as the stream reorders pictures) does not hold back.
    ...["-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy", "-f", "null", "-"],
    ...["-progress", "pipe:1", "-stats_period", String(PROGRESS_MS / 1000)],
  ];
};

/** A GOP and a half: a freeze is seen between two key frames, so it takes one GOP and needs some margin. */
const FROZEN_GOPS = 1.5;

/**
 * Why a frozen rule cannot be judged in key-frame mode with this GOP (in ms, measured from the stream), in
 * words; null when its `for_ms` is long enough, or in every-picture mode.
 */
export const frozenRefusal = (forMs: number, gopMs: number, mode: DecodeMode = "key"): string | null => {
  if (mode !== "key") return null;
  const needs = Math.ceil(gopMs * FROZEN_GOPS);
  if (forMs >= needs) return null;
  return (
    `a frozen picture is judged on key frames, ${Math.round(gopMs)} ms apart in this stream: ` +
    `for_ms must be at least 1.5 GOPs (${needs} ms), not ${forMs}`
  );
};
