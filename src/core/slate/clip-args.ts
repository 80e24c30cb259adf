/**
 * The ffmpeg arguments that encode a slate clip: a still picture (an uploaded image, or a card with the channel's
 * name and "back shortly") with silence, in exactly the channel's format, laid out as types.ts promises the
 * splicer: video on `CLIP_VIDEO_PID` carrying the PCR, audio i on `CLIP_FIRST_AUDIO_PID + i`, the PMT on
 * `CLIP_PMT_PID`; `CLIP_GOPS` closed GOPs of about one second, each opening with an IDR picture and its
 * parameter sets, so the clip loops cleanly. Pure: the maker (effects/channel/slate-maker.ts) runs them.
 *
 * No user text ever enters the filter graph: the card's title is read by drawtext from a file (`textfile=`,
 * with `expansion=none`, so `%` is not a directive either), and the paths that do enter it are quoted for
 * both of the graph's parsing levels.
 */

import {
  type AudioFormat,
  CLIP_PMT_PID,
  CLIP_VIDEO_PID,
  type SlateFormat,
  type VideoFormat,
} from "./types.ts";

/** A clip is this many GOPs long; each GOP is `gopFrames` frames (about one second). */
export const CLIP_GOPS = 2;

/** The card's background and text. */
const CARD_BACKGROUND = "0x101820";
const CARD_SUBTITLE = "back shortly";

type ClipPicture =
  /** An image file; its name must end in .png or .jpg/.jpeg (ffmpeg's image reader goes by the extension). */
  | { readonly kind: "image"; readonly path: string }
  /**
   * A generated card. `titleFile` holds the title as UTF-8 text (no trailing newline); `titleLength` (its length
   * in characters, when known) lets the title's size shrink so that a long one still fits the width.
   */
  | {
      readonly kind: "card";
      readonly titleFile: string;
      readonly fontFile: string;
      readonly titleLength?: number;
    };

/** Frames per GOP: one second, rounded (25 at 25 fps, 30 at 30000/1001, 50 at 50). */
export const gopFrames = (video: VideoFormat): number =>
  Math.max(1, Math.round(video.frameRate.num / video.frameRate.den));

/** Video frames in the clip: `CLIP_GOPS` whole GOPs. */
const clipFrames = (video: VideoFormat): number => CLIP_GOPS * gopFrames(video);

/** Audio samples that last exactly as long as the video (rounded to a whole sample). */
const clipAudioSamples = (video: VideoFormat, audio: AudioFormat): number =>
  Math.round((clipFrames(video) * video.frameRate.den * audio.sampleRate) / video.frameRate.num);

const H264_PROFILES = ["baseline", "main", "high", "high10", "high422"];
const HEVC_PROFILES = ["main", "main10"];
const AUDIO_RATES: Record<AudioFormat["codec"], ReadonlyArray<number>> = {
  aac: [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000],
  ac3: [32000, 44100, 48000],
  mp2: [16000, 22050, 24000, 32000, 44100, 48000],
};
/** Samples per coded audio frame. */
export const AUDIO_FRAME_SAMPLES: Record<AudioFormat["codec"], number> = { aac: 1024, ac3: 1536, mp2: 1152 };
const LAYOUTS: Record<number, string> = { 1: "mono", 2: "stereo", 6: "5.1" };

const videoRefusal = (v: VideoFormat): string | null => {
  const { num, den } = v.frameRate;
  if (
    !Number.isInteger(num) ||
    !Number.isInteger(den) ||
    num <= 0 ||
    den <= 0 ||
    num / den < 1 ||
    num / den > 120
  )
    return `the channel's frame rate ${num}/${den} is not one a slate can be made at (1 to 120 frames per second)`;
  if (!Number.isInteger(v.width) || !Number.isInteger(v.height) || v.width < 16 || v.height < 16)
    return `the channel's picture size ${v.width}×${v.height} is too small for a slate`;
  if (v.width > 7680 || v.height > 4320)
    return `the channel's picture size ${v.width}×${v.height} is larger than a slate can be made (7680×4320)`;
  const interlaced = v.scan !== "progressive";
  const evenWidth = v.width % 2 === 0;
  const rowsNeeded = v.chroma === "4:2:0" ? (interlaced ? 4 : 2) : interlaced ? 2 : 1;
  if (!evenWidth || v.height % rowsNeeded !== 0)
    return `the channel's picture size ${v.width}×${v.height} cannot be encoded in ${v.chroma}${interlaced ? " interlaced" : ""} (the width must be even and the height a multiple of ${rowsNeeded})`;
  if (v.codec === "hevc") {
    if (!HEVC_PROFILES.includes(v.profile))
      return `the channel's HEVC profile "${v.profile}" is not one the slate encoder makes (it makes Main and Main 10)`;
    if (interlaced)
      return "the channel's HEVC video is interlaced, and the slate encoder (x265) cannot make interlaced HEVC that decoders show as the channel does; a slate cannot match it";
    if (v.chroma !== "4:2:0")
      return `the channel's HEVC video is ${v.chroma}, and the slate encoder makes HEVC Main and Main 10 only (4:2:0); a slate cannot match it`;
    if (v.profile === "main" && v.bitDepth !== 8)
      return "the channel's HEVC video says Main profile with 10-bit samples, which Main does not allow; a slate cannot match it";
    return null;
  }
  if (!H264_PROFILES.includes(v.profile))
    return `the channel's H.264 profile "${v.profile}" is not one the slate encoder makes (Baseline, Main, High, High 10, High 4:2:2)`;
  if (v.chroma === "4:2:2" && v.profile !== "high422")
    return `the channel's H.264 video is 4:2:2, which only the High 4:2:2 profile carries, not "${v.profile}"; a slate cannot match it`;
  if (v.bitDepth === 10 && v.profile !== "high10" && v.profile !== "high422")
    return `the channel's H.264 video has 10-bit samples, which the "${v.profile}" profile does not allow; a slate cannot match it`;
  if (v.profile === "baseline" && interlaced)
    return "the channel's H.264 video is Baseline profile and interlaced, which Baseline does not allow; a slate cannot match it";
  return null;
};

const audioRefusal = (a: AudioFormat, index: number): string | null => {
  const which = `the channel's audio ${index + 1} (PID ${a.pid})`;
  if (LAYOUTS[a.channels] === undefined)
    return `${which} has ${a.channels} channels; a slate makes mono, stereo or 5.1 silence`;
  if (!AUDIO_RATES[a.codec].includes(a.sampleRate))
    return `${which} is ${a.codec.toUpperCase()} at ${a.sampleRate} Hz, a rate its encoder cannot make`;
  if (a.codec === "mp2" && a.channels > 2)
    return `${which} is MPEG-1 Layer II in ${a.channels} channels; its encoder makes mono or stereo only`;
  return null;
};

/** Why no clip can be made in this format, in words; null when it can. */
export const clipRefusal = (format: SlateFormat): string | null =>
  videoRefusal(format.video) ??
  format.audio.reduce<string | null>((found, audio, i) => found ?? audioRefusal(audio, i), null);

/**
 * A value for a filter option, quoted for both of the filter graph's parsing levels: the option level (the
 * value in single quotes, a quote inside written '\'') and the graph level (each of \ ' [ ] , ; escaped with
 * a backslash). Safe for any path.
 */
const filterValue = (value: string): string => {
  const optionLevel = `'${value.replace(/'/g, "'\\''")}'`;
  return optionLevel.replace(/[\\'[\],;]/g, (c) => `\\${c}`);
};

const pixelFormat = (v: VideoFormat): string =>
  `yuv${v.chroma === "4:2:2" ? "422" : "420"}p${v.bitDepth === 10 ? "10le" : ""}`;

/** Colour: BT.709 above standard definition, BT.601 (525 or 625 lines) at or below it. */
const colour = (v: VideoFormat) => {
  if (v.height > 576) return { matrix: "bt709", space: "bt709", primaries: "bt709", trc: "bt709" };
  const primaries = v.height === 576 ? "bt470bg" : "smpte170m";
  return { matrix: "bt601", space: "smpte170m", primaries, trc: "bt709" };
};

/** Bits per second for a still picture: modest, by pixels per second, between 0.5 and 6 Mbit/s. */
const clipVideoBitrate = (v: VideoFormat): number => {
  const perSecond = v.width * v.height * (v.frameRate.num / v.frameRate.den);
  return Math.round(Math.min(6_000_000, Math.max(500_000, perSecond * 0.04)) / 1000) * 1000;
};

const audioBitrate = (a: AudioFormat): number => {
  switch (a.codec) {
    case "aac":
      return 64_000 * Math.min(a.channels, 2) + (a.channels > 2 ? 32_000 * (a.channels - 2) : 0);
    case "ac3":
      return a.channels === 1 ? 96_000 : a.channels === 2 ? 192_000 : 384_000;
    case "mp2":
      return a.channels === 1 ? 128_000 : 192_000;
  }
};

const fraction = (v: VideoFormat) => `${v.frameRate.num}/${v.frameRate.den}`;

/** One frame of the picture at the format's size (the graph then repeats it). */
const pictureGraph = (v: VideoFormat, picture: ClipPicture): string => {
  const size = `${v.width}x${v.height}`;
  if (picture.kind === "image") {
    const fit = `scale=${v.width}:${v.height}:force_original_aspect_ratio=decrease:flags=lanczos`;
    const pad = `pad=${v.width}:${v.height}:(ow-iw)/2:(oh-ih)/2:color=black`;
    return `[0:v]${fit},${pad}`;
  }
  const font = filterValue(picture.fontFile);
  // The title's size: an eighth of the height, smaller when a long title would not fit 90% of the width
  // (DejaVu Sans Bold averages about 0.7 em a character).
  const length = Math.max(1, picture.titleLength ?? 12);
  const titleSize = Math.max(8, Math.floor(Math.min(v.height / 8, (v.width * 0.9) / (length * 0.7))));
  const subtitleSize = Math.max(8, Math.floor(v.height / 16));
  const title = [
    `drawtext=fontfile=${font}`,
    `textfile=${filterValue(picture.titleFile)}`,
    "expansion=none",
    "fontcolor=white",
    `fontsize=${titleSize}`,
    "x=(w-text_w)/2",
    `y=(h/2)-text_h-${Math.round(v.height / 40)}`,
  ].join(":");
  const subtitle = [
    `drawtext=fontfile=${font}`,
    `text=${filterValue(CARD_SUBTITLE)}`,
    "expansion=none",
    "fontcolor=0xc8c8c8",
    `fontsize=${subtitleSize}`,
    "x=(w-text_w)/2",
    `y=(h/2)+${Math.round(v.height / 40)}`,
  ].join(":");
  return `color=c=${CARD_BACKGROUND}:s=${size}:r=${fraction(v)},trim=end_frame=1,${title},${subtitle}`;
};

/**
 * The picture is drawn, scaled and converted once, then repeated: exactly `clipFrames` frames (by the graph,
 * not by `-frames:v`, which once reached ends every stream of the file and would cut audio that is behind),
 * stamped one frame apart in the frame rate's time base.
 */
const videoGraph = (v: VideoFormat, picture: ClipPicture): string => {
  const c = colour(v);
  const field = v.scan === "progressive" ? "prog" : v.scan;
  return [
    pictureGraph(v, picture),
    "setsar=1",
    `scale=out_color_matrix=${c.matrix}:out_range=tv`,
    `format=${pixelFormat(v)}`,
    `loop=loop=${clipFrames(v) - 1}:size=1:start=0`,
    `setpts=N/(${fraction(v)}*TB)`,
    `setfield=${field}`,
  ].join(",");
};

const videoCodecArgs = (v: VideoFormat): string[] => {
  const gop = gopFrames(v);
  const bitrate = clipVideoBitrate(v);
  const maxrate = Math.round(bitrate * 1.5);
  const bufsize = maxrate;
  const c = colour(v);
  const common = [
    "-pix_fmt",
    pixelFormat(v),
    "-g",
    `${gop}`,
    "-keyint_min",
    `${gop}`,
    "-sc_threshold",
    "0",
    "-bf",
    "0",
    "-b:v",
    `${bitrate}`,
    "-maxrate:v",
    `${maxrate}`,
    "-bufsize:v",
    `${bufsize}`,
    "-colorspace",
    c.space,
    "-color_primaries",
    c.primaries,
    "-color_trc",
    c.trc,
    "-color_range",
    "tv",
  ];
  // Both encoders: closed GOPs of exactly `gop` pictures, no B-frames, parameter sets at each IDR.
  const closedGops = [
    `keyint=${gop}`,
    `min-keyint=${gop}`,
    "scenecut=0",
    "open-gop=0",
    "bframes=0",
    "repeat-headers=1",
  ];
  if (v.codec === "h264") {
    const x264 = [
      ...closedGops,
      "force-cfr=1",
      ...(v.scan === "tff" ? ["tff=1"] : v.scan === "bff" ? ["bff=1"] : []),
    ];
    return [
      "-c:v",
      "libx264",
      // superfast keeps CABAC and the 8x8 transform, so the stream is the profile asked for (ultrafast drops
      // them, and x264 then writes a lower profile than asked); a still picture costs little either way.
      "-preset",
      "superfast",
      "-tune",
      "stillimage",
      "-profile:v",
      v.profile,
      "-level:v",
      v.level.toFixed(1),
      ...(v.scan === "progressive" ? [] : ["-flags", "+ildct+ilme"]),
      "-forced-idr",
      "1",
      ...common,
      "-x264-params",
      x264.join(":"),
    ];
  }
  const x265 = [...closedGops, `level-idc=${v.level.toFixed(1)}`, "info=0", "log-level=error"];
  return [
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-profile:v",
    v.profile,
    "-forced-idr",
    "1",
    ...common,
    "-x265-params",
    x265.join(":"),
  ];
};

const audioCodecArgs = (a: AudioFormat, i: number): string[] => {
  // AAC LC (ADTS framing is the muxer's); AC-3 and MP2 have one profile.
  const profile = a.codec === "aac" ? [`-profile:a:${i}`, "aac_low"] : [];
  return [`-c:a:${i}`, a.codec, ...profile, `-b:a:${i}`, `${audioBitrate(a)}`];
};

/**
 * The ffmpeg arguments (after the executable, before nothing) that write the clip to `out`. The caller runs
 * `clipRefusal` first; these assume a format it accepts.
 *
 * Timing: video is exactly `clipFrames` frames (see videoGraph); each audio stream is exactly as long
 * (anullsrc cut by atrim to the sample; its encoder pads the last frame, so audio ends within one audio frame
 * of the video). The audio encoders' priming (AAC 1024 samples, AC-3 256, MP2 481) starts the audio's first
 * packet that much before the first picture, so the sound proper starts with the picture.
 * `-muxdelay 0.3`: the muxer starts the PCR 0.3 s before the first DTS and keeps every PTS at least that far
 * ahead of the PCR, room enough for a still picture's decoder buffer (0 would put PCR = DTS, so each picture
 * would arrive exactly when due and a large IDR late). Less than an encoder's usual 0.5–1 s on purpose: when
 * the input comes back on a clock that ran on, its pictures then come after the slate's last, not among them.
 */
export const clipArgs = (format: SlateFormat, picture: ClipPicture, out: string): string[] => {
  const v = format.video;
  const inputs =
    picture.kind === "image" ? ["-f", "image2", "-framerate", fraction(v), "-i", picture.path] : [];
  const audioGraphs = format.audio.map((a, i) => {
    const layout = LAYOUTS[a.channels] ?? "stereo";
    // Frames of exactly the encoder's size (ffmpeg 5.1 does not always regroup a complex graph's audio for
    // the encoder, and AC-3 and MP2 then refuse a short frame that is not the last).
    return `anullsrc=r=${a.sampleRate}:cl=${layout}:n=${AUDIO_FRAME_SAMPLES[a.codec]},atrim=end_sample=${clipAudioSamples(v, a)}[a${i}]`;
  });
  const graph = [`${videoGraph(v, picture)}[v]`, ...audioGraphs].join(";");
  return [
    ...inputs,
    "-filter_complex",
    graph,
    "-map",
    "[v]",
    ...format.audio.flatMap((_, i) => ["-map", `[a${i}]`]),
    ...videoCodecArgs(v),
    ...format.audio.flatMap(audioCodecArgs),
    "-map_metadata",
    "-1",
    "-fflags",
    "+bitexact",
    "-f",
    "mpegts",
    "-mpegts_pmt_start_pid",
    `${CLIP_PMT_PID}`,
    "-mpegts_start_pid",
    `${CLIP_VIDEO_PID}`,
    "-muxdelay",
    "0.3",
    "-y",
    out,
  ];
};
