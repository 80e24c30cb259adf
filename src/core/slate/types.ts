/**
 * What a channel's slate is made to match, and how a prepared slate clip is laid out. The probe (probe.ts)
 * reads a `SlateFormat` from the channel's own TS; the maker (effects/channel/slate-maker.ts) has ffmpeg
 * encode a short looping clip in exactly that format, laid out as below; the splicer (splicer.ts) carries the
 * clip on the channel's own PIDs, under the channel's own PAT and PMT.
 */

export type VideoCodec = "h264" | "hevc";
export type AudioCodec = "aac" | "ac3" | "mp2";
export type Scan = "progressive" | "tff" | "bff";

export interface VideoFormat {
  /** The channel's video PID and its PMT stream type (0x1b H.264, 0x24 HEVC). */
  readonly pid: number;
  readonly streamType: number;
  readonly codec: VideoCodec;
  /** The profile as the encoders name it: H.264 "baseline" | "main" | "high" | "high10" | "high422"; HEVC "main" | "main10". */
  readonly profile: string;
  /** The level as the standard writes it: 4 for 4.0, 3.1 for 3.1 (H.264 level_idc / 10, HEVC general_level_idc / 30). */
  readonly level: number;
  /** Displayed size (after cropping), in pixels: the height of the whole frame, both fields. */
  readonly width: number;
  readonly height: number;
  /** Frames per second (a 1080i25 stream is 25/1, not 50), as a fraction: 30000/1001. */
  readonly frameRate: { readonly num: number; readonly den: number };
  readonly scan: Scan;
  readonly bitDepth: 8 | 10;
  readonly chroma: "4:2:0" | "4:2:2";
}

export interface AudioFormat {
  /** The channel's PID for this audio and its PMT stream type (0x0f AAC ADTS, 0x81 or 0x06 AC-3, 0x03/0x04 MPEG audio). */
  readonly pid: number;
  readonly streamType: number;
  readonly codec: AudioCodec;
  readonly sampleRate: number;
  readonly channels: number;
}

export interface SlateFormat {
  readonly program: number;
  readonly pmtPid: number;
  readonly pcrPid: number;
  /** The input's PAT and PMT sections as it sends them (table_id through CRC_32): the slate repeats them. */
  readonly pat: Uint8Array;
  readonly pmt: Uint8Array;
  readonly video: VideoFormat;
  /** In PMT order; the clip carries one audio stream for each, in the same order. */
  readonly audio: ReadonlyArray<AudioFormat>;
  /**
   * How far the input's video PTS ran ahead of its PCR at most (90 kHz): where its last picture stands from
   * its last PCR, so that the slate's first picture comes after it.
   */
  readonly ptsLead: number;
  /** The PMT's other PIDs (SCTE-35, data, audio the slate cannot make): silent while the slate plays, and why. */
  readonly silent: ReadonlyArray<{ readonly pid: number; readonly why: string }>;
}

/** What the probe answers: the format, or in words why no slate can match this channel's stream. */
export type ProbeResult = { readonly format: SlateFormat } | { readonly refused: string };

/**
 * The clip's layout (the maker's promise to the splicer): an MPEG-TS whose PMT is on `CLIP_PMT_PID`, video on
 * `CLIP_VIDEO_PID` carrying the PCR, audio stream i on `CLIP_FIRST_AUDIO_PID + i`; it begins with an IDR
 * picture with its parameter sets, every GOP is closed and starts with an IDR, and its length is a whole
 * number of GOPs, so that it loops.
 */
export const CLIP_PMT_PID = 0x1000;
export const CLIP_VIDEO_PID = 0x100;
export const CLIP_FIRST_AUDIO_PID = 0x101;

const fps = (rate: VideoFormat["frameRate"]) =>
  rate.den === 1 ? `${rate.num}` : `${Math.round((rate.num / rate.den) * 100) / 100}`;

/**
 * What a clip depends on, as a string: two channels with the same key share a clip (PIDs are not in it, the
 * splicer maps them).
 */
export const formatKey = (format: SlateFormat): string => {
  const v = format.video;
  const video = `${v.codec}-${v.profile}-${v.level}-${v.width}x${v.height}-${v.frameRate.num}_${v.frameRate.den}-${v.scan}-${v.bitDepth}-${v.chroma.replaceAll(":", "")}`;
  return [video, ...format.audio.map((a) => `${a.codec}-${a.sampleRate}-${a.channels}`)].join("+");
};

const CODEC_NAMES: Record<VideoCodec | AudioCodec, string> = {
  h264: "H.264",
  hevc: "HEVC",
  aac: "AAC",
  ac3: "AC-3",
  mp2: "MPEG-1 Layer II",
};
const channelWords = (channels: number) =>
  channels === 1 ? "mono" : channels === 2 ? "stereo" : channels === 6 ? "5.1" : `${channels} channels`;

/** The format in words, for pages: "H.264 High 4.0, 1920×1080i25 (top field first); AAC 48 kHz stereo". */
export const describeFormat = (format: SlateFormat): string => {
  const v = format.video;
  const profile = v.profile.charAt(0).toUpperCase() + v.profile.slice(1);
  const scan = v.scan === "progressive" ? "p" : "i";
  const order = v.scan === "tff" ? " (top field first)" : v.scan === "bff" ? " (bottom field first)" : "";
  const video = `${CODEC_NAMES[v.codec]} ${profile} ${v.level.toFixed(1)}, ${v.width}×${v.height}${scan}${fps(v.frameRate)}${order}`;
  const audio = format.audio.map(
    (a) => `${CODEC_NAMES[a.codec]} ${a.sampleRate / 1000} kHz ${channelWords(a.channels)}`,
  );
  return audio.length === 0 ? `${video}; no audio` : `${video}; ${audio.join(", ")}`;
};
