/**
 * The slate's format probe: reads a channel's live MPEG-TS (whole 188-byte packets, as the outputs get them)
 * until it knows the format a slate must match (types.ts `SlateFormat`), or why none can.
 *
 *   const probe = makeFormatProbe()
 *   for (const chunk of chunks) { probe.push(chunk); if (probe.result() !== null) break }
 *
 * It keeps the PAT and the PMT as sent (CRC checked), reads the video's SPS (and for interlaced H.264 the
 * pic_timing SEI or the first field's slice header for the field order), takes the frame rate from the PTS of
 * about a dozen pictures (snapped to the usual rates), and one frame header of each audio PID. Everything is
 * bounded: a PES is reassembled up to 2 MiB, a section up to 1024 bytes; corrupt packets and sections are
 * skipped; a PMT that changes while it reads starts it over. After `maxBytes` (8 MiB) it refuses, saying
 * what it did not find; only an audio PID that never showed a frame header is answered silent instead.
 */
import { AAC_SAMPLE_RATES } from "../flv/audio.ts";
import { readAvcSps } from "../flv/avc-sps.ts";
import { readHevcSps } from "../flv/hevc-sps.ts";
import { NalUnits, nalType } from "../flv/nal.ts";
import { BitReader, isUnusable } from "../flv/rbsp.ts";
import {
  firstProgram,
  nextCc,
  PACKET,
  PTS_WRAP,
  pcrBaseAt,
  pidAt,
  ptsAt,
  readPat,
  readPmt,
  SectionReader,
  SYNC,
} from "../ts/index.ts";
import type { AudioFormat, ProbeResult, Scan, SlateFormat, VideoFormat } from "./types.ts";

export interface FormatProbe {
  /** Takes the next chunk (whole 188-byte packets). Cheap after it has an answer (returns at once). */
  readonly push: (chunk: Uint8Array) => void;
  /** null while still reading; then the answer, which never changes afterwards. */
  readonly result: () => ProbeResult | null;
}

const MAX_PES = 2 * 1024 * 1024;
/** Sections longer than this are skipped: a PAT or a PMT of a channel is far shorter. */
const MAX_SECTION = 1024;
/** Pictures whose PTS are kept for the frame rate: 13 give 12 differences (at least 8 must be usable). */
const PICTURES = 13;
const MIN_DELTAS = 8;

/** The frame rates a slate is made at, as fractions. */
const USUAL_RATES: ReadonlyArray<{ readonly num: number; readonly den: number }> = [
  { num: 24000, den: 1001 },
  { num: 24, den: 1 },
  { num: 25, den: 1 },
  { num: 30000, den: 1001 },
  { num: 30, den: 1 },
  { num: 50, den: 1 },
  { num: 60000, den: 1001 },
  { num: 60, den: 1 },
];

const VIDEO_TYPES: ReadonlyMap<number, string> = new Map([
  [0x01, "MPEG-1"],
  [0x02, "MPEG-2"],
  [0x10, "MPEG-4 Visual"],
  [0x1b, "H.264"],
  [0x1e, "MPEG-4 Visual"],
  [0x20, "H.264 MVC"],
  [0x24, "HEVC"],
  [0x33, "VVC"],
  [0x42, "AVS"],
  [0xd1, "Dirac"],
  [0xea, "VC-1"],
]);

const hex = (n: number) => `0x${n.toString(16).padStart(2, "0")}`;

const sizeWords = (bytes: number): string =>
  bytes % (1024 * 1024) === 0
    ? `${bytes / (1024 * 1024)} MiB`
    : bytes % 1024 === 0
      ? `${bytes / 1024} KiB`
      : `${bytes} bytes`;

/** A PMT's elementary stream, with the tags of its descriptors. */
interface PmtStream {
  readonly type: number;
  readonly pid: number;
  readonly tags: ReadonlyArray<number>;
}

interface Pmt {
  readonly program: number;
  readonly pcrPid: number;
  readonly streams: ReadonlyArray<PmtStream>;
}

/**
 * A PES reassembled on one PID into a buffer that grows up to 2 MiB and is kept. `limit` keeps only the
 * PES's first bytes (its header, for the PTS) once nothing more is read from it; 0 keeps nothing.
 */
class PesReader {
  private buf: Uint8Array;
  private readonly onPes: (pes: Uint8Array) => void;
  length = 0;
  limit = MAX_PES;
  private ok = false;
  private cc = -1;
  constructor(initial: number, onPes: (pes: Uint8Array) => void) {
    this.buf = new Uint8Array(initial);
    this.onPes = onPes;
  }

  packet(p: Uint8Array, at: number, pusi: boolean, cc: number): void {
    if (this.limit === 0) return;
    if (this.cc >= 0 && cc === this.cc) return;
    if (this.cc >= 0 && cc !== nextCc(this.cc)) this.ok = false;
    this.cc = cc;
    if (pusi) {
      if (this.ok && this.length > 0) this.onPes(this.buf.subarray(0, this.length));
      this.length = 0;
      this.ok = true;
    }
    if (!this.ok || at >= p.length) return;
    let n = p.length - at;
    if (this.length + n > this.limit) {
      if (this.limit === MAX_PES) {
        this.ok = false;
        return;
      }
      n = Math.max(0, this.limit - this.length);
    }
    if (this.length + n > this.buf.length) {
      const grown = new Uint8Array(Math.min(MAX_PES, Math.max(this.buf.length * 2, this.length + n)));
      grown.set(this.buf.subarray(0, this.length));
      this.buf = grown;
    }
    this.buf.set(p.subarray(at, at + n), this.length);
    this.length += n;
  }
}

/** Where a PES's payload begins, or -1 when it is no PES. */
const pesPayload = (pes: Uint8Array): number => {
  if (pes.length < 9 || pes[0] !== 0 || pes[1] !== 0 || pes[2] !== 1) return -1;
  const at = 9 + (pes[8] ?? 0);
  return at <= pes.length ? at : -1;
};

// Audio headers.

interface AudioHeader {
  readonly length: number;
  readonly format?: {
    readonly codec: AudioFormat["codec"];
    readonly sampleRate: number;
    readonly channels: number;
  };
  readonly why?: string;
}

const adtsHeader = (b: Uint8Array, i: number): AudioHeader | null => {
  if (i + 7 > b.length || b[i] !== 0xff || ((b[i + 1] ?? 0) & 0xf6) !== 0xf0) return null;
  const profile = (b[i + 2] ?? 0) >> 6;
  const rateIndex = ((b[i + 2] ?? 0) >> 2) & 15;
  const channels = (((b[i + 2] ?? 0) & 1) << 2) | ((b[i + 3] ?? 0) >> 6);
  const length = (((b[i + 3] ?? 0) & 3) << 11) | ((b[i + 4] ?? 0) << 3) | ((b[i + 5] ?? 0) >> 5);
  const sampleRate = AAC_SAMPLE_RATES[rateIndex];
  if (sampleRate === undefined || length < 7) return null;
  if (profile !== 1)
    return {
      length,
      why: `AAC ${["Main", "LC", "SSR", "LTP"][profile]} profile: the slate's encoder makes AAC LC only`,
    };
  if (channels === 0)
    return { length, why: "AAC whose channel layout is in a PCE: the slate cannot match it" };
  return { length, format: { codec: "aac", sampleRate, channels: channels === 7 ? 8 : channels } };
};

/** AC-3 frame sizes in 16-bit words, by frmsizecod / 2, for 48, 44.1 and 32 kHz (A/52 table 5.18). */
const AC3_WORDS = [
  [64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024, 1152, 1280],
  [69, 87, 104, 121, 139, 174, 208, 243, 278, 348, 417, 487, 557, 696, 835, 975, 1114, 1253, 1393],
  [96, 120, 144, 168, 192, 240, 288, 336, 384, 480, 576, 672, 768, 960, 1152, 1344, 1536, 1728, 1920],
] as const;
const AC3_CHANNELS = [2, 1, 2, 3, 3, 4, 4, 5] as const;

const ac3Header = (b: Uint8Array, i: number): AudioHeader | null => {
  if (i + 8 > b.length || b[i] !== 0x0b || b[i + 1] !== 0x77) return null;
  const fscod = (b[i + 4] ?? 0) >> 6;
  const frmsizecod = (b[i + 4] ?? 0) & 0x3f;
  const bsid = (b[i + 5] ?? 0) >> 3;
  if (bsid > 10 && bsid <= 16) return { length: 0, why: "E-AC-3: the slate's encoder makes AC-3 only" };
  const words = AC3_WORDS[fscod]?.[frmsizecod >> 1];
  if (words === undefined || bsid > 10) return null;
  const length = 2 * (fscod === 1 ? words + (frmsizecod & 1) : words);
  const r = new BitReader(b.subarray(i + 6, i + 8));
  const acmod = r.u(3);
  if ((acmod & 1) !== 0 && acmod !== 1) r.u(2);
  if ((acmod & 4) !== 0) r.u(2);
  if (acmod === 2) r.u(2);
  const lfe = r.u(1);
  const sampleRate = [48000, 44100, 32000][fscod] ?? 48000;
  return { length, format: { codec: "ac3", sampleRate, channels: (AC3_CHANNELS[acmod] ?? 2) + lfe } };
};

/** kbit/s by bitrate_index, for MPEG-1 layers I, II, III and MPEG-2/2.5 layer I and II/III. */
const MPA_RATES = [
  [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
  [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
  [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
  [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
] as const;

const mpegAudioHeader = (b: Uint8Array, i: number): AudioHeader | null => {
  if (i + 4 > b.length || b[i] !== 0xff || ((b[i + 1] ?? 0) & 0xe0) !== 0xe0) return null;
  const version = ((b[i + 1] ?? 0) >> 3) & 3; // 3 MPEG-1, 2 MPEG-2, 0 MPEG-2.5
  const layer = 4 - (((b[i + 1] ?? 0) >> 1) & 3); // 1, 2, 3 (4: reserved)
  const rateIndex = (b[i + 2] ?? 0) >> 4;
  const srIndex = ((b[i + 2] ?? 0) >> 2) & 3;
  const padding = ((b[i + 2] ?? 0) >> 1) & 1;
  const mode = (b[i + 3] ?? 0) >> 6;
  if (version === 1 || layer === 4 || rateIndex === 0 || rateIndex === 15 || srIndex === 3) return null;
  const sampleRate = ([44100, 48000, 32000][srIndex] ?? 0) / (version === 3 ? 1 : version === 2 ? 2 : 4);
  const table = version === 3 ? layer - 1 : layer === 1 ? 3 : 4;
  const kbps = MPA_RATES[table]?.[rateIndex] ?? 0;
  const length =
    layer === 1
      ? (Math.floor((12 * kbps * 1000) / sampleRate) + padding) * 4
      : Math.floor(((layer === 3 && version !== 3 ? 72 : 144) * kbps * 1000) / sampleRate) + padding;
  if (layer === 3)
    return { length, why: "MPEG audio Layer III (MP3): the slate's encoder makes Layer II only" };
  if (layer === 1) return { length, why: "MPEG audio Layer I: the slate's encoder makes Layer II only" };
  return { length, format: { codec: "mp2", sampleRate, channels: mode === 3 ? 1 : 2 } };
};

type AudioKind = "aac" | "ac3" | "mpa";
const HEADER_READERS: Record<AudioKind, (b: Uint8Array, i: number) => AudioHeader | null> = {
  aac: adtsHeader,
  ac3: ac3Header,
  mpa: mpegAudioHeader,
};

/**
 * The first frame header in a PES payload that is believed: at the payload's start, or followed by another
 * header where its length ends. Null when none is.
 */
const findAudioHeader = (kind: AudioKind, pes: Uint8Array): AudioHeader | null => {
  const at = pesPayload(pes);
  if (at < 0) return null;
  const read = HEADER_READERS[kind];
  const limit = Math.min(pes.length, at + 8192);
  for (let i = at; i < limit; i++) {
    const header = read(pes, i);
    if (header === null) continue;
    if (i === at || (header.length > 0 && read(pes, i + header.length) !== null)) return header;
  }
  return null;
};

// Video.

const AVC_PROFILES: ReadonlyMap<number, string> = new Map([
  [66, "baseline"],
  [77, "main"],
  [100, "high"],
  [110, "high10"],
  [122, "high422"],
]);

const snapRate = (fps: number): { readonly num: number; readonly den: number } | null => {
  let best: { readonly num: number; readonly den: number } | null = null;
  let error = Number.POSITIVE_INFINITY;
  for (const rate of USUAL_RATES) {
    const e = Math.abs(fps / (rate.num / rate.den) - 1);
    if (e < error) {
      error = e;
      best = rate;
    }
  }
  return error < 0.02 ? best : null;
};

/** What the video's parameter sets and pictures have told so far. */
interface VideoState {
  /** The format but for the frame rate and scan, once a usable SPS is read. */
  sps: Omit<VideoFormat, "frameRate" | "scan"> | null;
  /** The SPS's answer, when it refuses. */
  refused: string | null;
  interlaced: boolean;
  /** H.264: for the pic_timing SEI and slice headers. */
  picStruct: { present: boolean; delays: boolean; cpb: number; dpb: number };
  log2MaxFrameNum: number;
  separateColourPlane: boolean;
  /** The frame rate as the VUI's timing says, or 0. */
  vuiFps: number;
  /** Field order, once something said it. */
  order: Scan | null;
  /** Whether pictures are fields coded one per PES (the PTS then step by fields). */
  fieldPerPes: boolean | null;
  pts: number[];
}

const newVideoState = (): VideoState => ({
  sps: null,
  refused: null,
  interlaced: false,
  picStruct: { present: false, delays: false, cpb: 0, dpb: 0 },
  log2MaxFrameNum: 4,
  separateColourPlane: false,
  vuiFps: 0,
  order: null,
  fieldPerPes: null,
  pts: [],
});

const readH264Sps = (nal: Uint8Array, pid: number, v: VideoState): void => {
  const info = readAvcSps(nal);
  if (isUnusable(info)) return;
  const profile = AVC_PROFILES.get(info.profileIdc);
  if (profile === undefined) {
    v.refused = `the slate's encoder makes H.264 baseline, main, high, high10 and high422; this channel's H.264 is of profile_idc ${info.profileIdc}`;
    return;
  }
  if (info.chromaFormat !== 1 && info.chromaFormat !== 2) {
    v.refused = `the slate is made in 4:2:0 or 4:2:2; this channel's H.264 has chroma_format_idc ${info.chromaFormat}`;
    return;
  }
  if (info.bitDepthLuma !== info.bitDepthChroma || (info.bitDepthLuma !== 8 && info.bitDepthLuma !== 10)) {
    v.refused = `the slate is made at 8 or 10 bits; this channel's H.264 is ${info.bitDepthLuma}-bit luma, ${info.bitDepthChroma}-bit chroma`;
    return;
  }
  v.sps = {
    pid,
    streamType: 0x1b,
    codec: "h264",
    profile,
    level: info.levelIdc / 10,
    width: info.width,
    height: info.height,
    bitDepth: info.bitDepthLuma,
    chroma: info.chromaFormat === 1 ? "4:2:0" : "4:2:2",
  };
  v.interlaced = !info.frameMbsOnly;
  v.log2MaxFrameNum = info.log2MaxFrameNum;
  v.separateColourPlane = info.separateColourPlane;
  const vui = info.vui;
  if (vui !== null) {
    v.picStruct = {
      present: vui.picStructPresent,
      delays: vui.cpbDpbDelaysPresent,
      cpb: vui.cpbRemovalDelayLength,
      dpb: vui.dpbOutputDelayLength,
    };
    if (vui.timing !== null) v.vuiFps = vui.timing.timeScale / (2 * vui.timing.numUnitsInTick);
  }
};

const readH265Sps = (nal: Uint8Array, pid: number, v: VideoState): void => {
  const info = readHevcSps(nal);
  if (isUnusable(info)) return;
  const profileIdc = (info.generalProfile[0] ?? 0) & 0x1f;
  const compatible = (flag: number) =>
    (((info.generalProfile[1 + (flag >> 3)] ?? 0) >> (7 - (flag & 7))) & 1) === 1;
  const profile =
    profileIdc === 1 || (profileIdc === 0 && compatible(1)) ? "main" : profileIdc === 2 ? "main10" : null;
  if (profile === null) {
    v.refused = `the slate's encoder makes HEVC main and main10; this channel's HEVC is of general_profile_idc ${profileIdc}`;
    return;
  }
  if (info.chromaFormat !== 1 && info.chromaFormat !== 2) {
    v.refused = `the slate is made in 4:2:0 or 4:2:2; this channel's HEVC has chroma_format_idc ${info.chromaFormat}`;
    return;
  }
  if (info.bitDepthLuma !== info.bitDepthChroma || (info.bitDepthLuma !== 8 && info.bitDepthLuma !== 10)) {
    v.refused = `the slate is made at 8 or 10 bits; this channel's HEVC is ${info.bitDepthLuma}-bit luma, ${info.bitDepthChroma}-bit chroma`;
    return;
  }
  // general_progressive_source_flag, general_interlaced_source_flag: the first two bits after the 32 flags.
  const sourceFlags = (info.generalProfile[5] ?? 0) >> 6;
  if (info.vui?.fieldSeq === true || sourceFlags === 1) {
    v.refused = "the slate's encoder cannot make interlaced HEVC; this channel's HEVC is coded as fields";
    return;
  }
  v.sps = {
    pid,
    streamType: 0x24,
    codec: "hevc",
    profile,
    level: (info.generalProfile[11] ?? 0) / 30,
    width: info.width,
    height: info.height,
    bitDepth: info.bitDepthLuma,
    chroma: info.chromaFormat === 1 ? "4:2:0" : "4:2:2",
  };
  const timing = info.vui?.timing;
  if (timing != null) v.vuiFps = timing.timeScale / timing.numUnitsInTick;
};

/** The pic_timing SEI's pic_struct (D.1.3), when the VUI says it is there: the field order it gives, or null. */
const readPicTiming = (nal: Uint8Array, v: VideoState): Scan | null => {
  if (!v.picStruct.present) return null;
  const r = new BitReader(nal.subarray(0, 4096));
  r.u(8);
  while (!r.broken) {
    let type = 0;
    let byte = r.u(8);
    while (byte === 255 && !r.broken) {
      type += 255;
      byte = r.u(8);
    }
    type += byte;
    let size = 0;
    byte = r.u(8);
    while (byte === 255 && !r.broken) {
      size += 255;
      byte = r.u(8);
    }
    size += byte;
    if (r.broken || size === 0) return null;
    if (type === 1) {
      if (v.picStruct.delays) r.u(v.picStruct.cpb + v.picStruct.dpb);
      const picStruct = r.u(4);
      if (r.broken) return null;
      return picStruct === 3 || picStruct === 5 ? "tff" : picStruct === 4 || picStruct === 6 ? "bff" : null;
    }
    for (let i = 0; i < size && !r.broken; i++) r.u(8);
  }
  return null;
};

/** A slice header's field_pic_flag and bottom_field_flag (7.3.3), or null when it starts no picture. */
const readSliceField = (nal: Uint8Array, v: VideoState): { field: boolean; bottom: boolean } | null => {
  const r = new BitReader(nal.subarray(0, 48));
  r.u(8);
  if (r.ue() !== 0) return null; // first_mb_in_slice: only a picture's first slice
  r.ue(); // slice_type
  r.ue(); // pic_parameter_set_id
  if (v.separateColourPlane) r.u(2);
  r.u(v.log2MaxFrameNum);
  const field = r.u(1) === 1;
  const bottom = field && r.u(1) === 1;
  return r.broken ? null : { field, bottom };
};

const nals = new NalUnits();

/** Reads one video PES: its PTS, and while the format is not known, its NAL units. */
const readVideoPes = (pes: Uint8Array, codec: "h264" | "hevc", pid: number, v: VideoState): void => {
  const at = pesPayload(pes);
  if (at < 0) return;
  const pts = ptsAt(pes, 0);
  const needSps = v.sps === null;
  const needOrder =
    codec === "h264" && (v.sps === null || (v.interlaced && (v.order === null || v.fieldPerPes === null)));
  if (needSps || needOrder) {
    const payload = pes.subarray(at);
    nals.scan(payload);
    let pictures = 0;
    let field = false;
    for (let i = 0; i < nals.count; i++) {
      const start = nals.start(i);
      const nal = payload.subarray(start, nals.end(i));
      const type = nalType(codec, payload, start);
      if (codec === "h264") {
        if (type === 7 && v.sps === null) readH264Sps(nal, pid, v);
        else if (v.sps !== null && v.interlaced && type === 6 && v.order === null)
          v.order = readPicTiming(nal, v);
        else if (v.sps !== null && v.interlaced && (type === 1 || type === 5)) {
          const slice = readSliceField(nal, v);
          if (slice === null) continue;
          pictures++;
          field ||= slice.field;
          if (slice.field && pictures === 1 && v.order === null && v.pts.length === 0)
            v.order = slice.bottom ? "bff" : "tff";
        }
      } else if (type === 33 && v.sps === null) readH265Sps(nal, pid, v);
    }
    if (pictures > 0) v.fieldPerPes = field && pictures === 1;
  }
  if (v.sps !== null && pts >= 0 && v.pts.length < PICTURES) v.pts.push(pts);
};

/** The frame rate from the PTS kept (median of the sorted differences), or why not. */
const frameRate = (v: VideoState): VideoFormat["frameRate"] | string | null => {
  if (v.pts.length < PICTURES) return null;
  const first = v.pts[0] ?? 0;
  const unwrapped = v.pts
    .map((pts) => (pts - first < -PTS_WRAP / 2 ? pts + PTS_WRAP : pts))
    .sort((a, b) => a - b);
  const deltas: number[] = [];
  for (let i = 1; i < unwrapped.length; i++) {
    const d = (unwrapped[i] ?? 0) - (unwrapped[i - 1] ?? 0);
    if (d > 0 && d < 90000) deltas.push(d);
  }
  if (deltas.length < MIN_DELTAS)
    return "the video's timestamps do not step evenly enough to give a frame rate";
  deltas.sort((a, b) => a - b);
  let fps = 90000 / (deltas[deltas.length >> 1] ?? 1);
  const fields =
    v.interlaced && (v.fieldPerPes === true || (v.vuiFps > 0 && Math.abs(fps / (2 * v.vuiFps) - 1) < 0.02));
  if (fields) fps /= 2;
  return (
    snapRate(fps) ??
    `the slate is made at 23.976, 24, 25, 29.97, 30, 50, 59.94 or 60 frames per second; this channel's video runs at ${Math.round(fps * 1000) / 1000}`
  );
};

// The probe.

interface Channel {
  program: number;
  pmtPid: number;
  pat: Uint8Array;
  pmt: Uint8Array | null;
  parsed: Pmt | null;
}

/** The PMT of `program`, current, with its streams' descriptor tags; null otherwise. */
const parsePmt = (section: Uint8Array, program: number): Pmt | null => {
  const pmt = readPmt(section);
  if (pmt === null || ((section[5] ?? 0) & 1) === 0 || pmt.program !== program) return null;
  const end = section.length - 4;
  const streams = pmt.streams.map(({ streamType, pid, start, end: entryEnd }): PmtStream => {
    const tags: number[] = [];
    for (let d = start + 5; d + 2 <= Math.min(end, entryEnd); d += 2 + (section[d + 1] ?? 0))
      tags.push(section[d] ?? 0);
    return { type: streamType, pid, tags };
  });
  return { program, pcrPid: pmt.pcrPid, streams };
};

/** What each PMT stream is to the slate: the video, an audio of a kind, or silent and why. */
type Role =
  | { readonly role: "video"; readonly codec: "h264" | "hevc" }
  | { readonly role: "audio"; readonly kind: AudioKind }
  | { readonly role: "silent"; readonly why: string };

const roleOf = (s: PmtStream): Role => {
  if (s.type === 0x0f) return { role: "audio", kind: "aac" };
  if (s.type === 0x81 || (s.type === 0x06 && s.tags.includes(0x6a))) return { role: "audio", kind: "ac3" };
  if (s.type === 0x03 || s.type === 0x04) return { role: "audio", kind: "mpa" };
  if (s.type === 0x86) return { role: "silent", why: "SCTE-35: carries nothing while the slate plays" };
  if (s.type === 0x87 || (s.type === 0x06 && s.tags.includes(0x7a)))
    return { role: "silent", why: "E-AC-3: the slate's encoder makes AC-3 only" };
  if (s.type === 0x11)
    return { role: "silent", why: "AAC in LATM: the slate's encoder makes AAC in ADTS only" };
  if (s.type === 0x06 && s.tags.includes(0x59))
    return { role: "silent", why: "DVB subtitles: none while the slate plays" };
  if (s.type === 0x06 && s.tags.includes(0x56))
    return { role: "silent", why: "teletext: none while the slate plays" };
  if (s.type === 0x15) return { role: "silent", why: "timed metadata: none while the slate plays" };
  const video = VIDEO_TYPES.get(s.type);
  if (video !== undefined) return { role: "silent", why: `${video} video: the slate carries one video only` };
  return { role: "silent", why: `data (stream type ${hex(s.type)}): carries nothing while the slate plays` };
};

const audioName = (kind: AudioKind): string =>
  kind === "aac" ? "AAC (ADTS)" : kind === "ac3" ? "AC-3" : "MPEG audio";

interface AudioState {
  readonly pid: number;
  readonly type: number;
  readonly kind: AudioKind;
  header: AudioHeader | null;
  readonly pes: PesReader;
}

/** How far `pts` is after `pcr` (90 kHz) the short way round the 33-bit circle; 0 when it is before. */
const ticksAhead = (pcr: number, pts: number): number => {
  const ahead = (((pts - pcr) % PTS_WRAP) + PTS_WRAP) % PTS_WRAP;
  return ahead < PTS_WRAP / 2 ? ahead : 0;
};

export const makeFormatProbe = (options?: { maxBytes?: number }): FormatProbe => {
  const maxBytes = options?.maxBytes ?? 8 * 1024 * 1024;
  let answer: ProbeResult | null = null;
  let seen = 0;
  let channel: Channel | null = null;
  let videoPid = -1;
  let videoCodec: "h264" | "hevc" = "h264";
  let video = newVideoState();
  let videoPes: PesReader | null = null;
  let audio: AudioState[] = [];
  const audioByPid = new Map<number, AudioState>();
  let silent: Array<{ pid: number; why: string }> = [];
  let noVideo: string | null = null;

  const startOver = (): void => {
    videoPid = -1;
    video = newVideoState();
    videoPes = null;
    audio = [];
    audioByPid.clear();
    silent = [];
    noVideo = null;
    pmtReader.reset();
  };

  const onPat = (section: Uint8Array): void => {
    const entry = firstProgram(readPat(section));
    if (entry === undefined) return;
    const pat = { program: entry.program, pmtPid: entry.pid };
    if (channel !== null && channel.program === pat.program && channel.pmtPid === pat.pmtPid) {
      channel.pat = section.slice();
      return;
    }
    channel = { ...pat, pat: section.slice(), pmt: null, parsed: null };
    startOver();
  };

  const onPmt = (section: Uint8Array): void => {
    if (channel === null) return;
    if (channel.pmt !== null && Buffer.compare(channel.pmt, section) === 0) return;
    const parsed = parsePmt(section, channel.program);
    if (parsed === null) return;
    const had = channel.pmt !== null;
    if (had) startOver();
    channel.pmt = section.slice();
    channel.parsed = parsed;
    let found = false;
    let other: string | null = null;
    for (const s of parsed.streams) {
      if (!found && (s.type === 0x1b || s.type === 0x24)) {
        found = true;
        videoPid = s.pid;
        videoCodec = s.type === 0x1b ? "h264" : "hevc";
        const reader = new PesReader(256 * 1024, (pes) => {
          readVideoPes(pes, videoCodec, videoPid, video);
          // Once the parameter sets and the field order are known, only the PES headers are read.
          if (
            video.sps !== null &&
            !(video.interlaced && (video.order === null || video.fieldPerPes === null))
          )
            reader.limit = 64;
        });
        videoPes = reader;
        continue;
      }
      const role = roleOf(s);
      if (role.role === "audio") {
        const state: AudioState = {
          pid: s.pid,
          type: s.type,
          kind: role.kind,
          header: null,
          pes: new PesReader(8 * 1024, (pes) => {
            state.header ??= findAudioHeader(role.kind, pes);
            if (state.header !== null) state.pes.limit = 0;
          }),
        };
        audio.push(state);
        audioByPid.set(s.pid, state);
      } else if (role.role === "silent") {
        other ??= VIDEO_TYPES.has(s.type) ? `${VIDEO_TYPES.get(s.type)} (stream type ${hex(s.type)})` : null;
        silent.push({ pid: s.pid, why: role.why });
      }
    }
    if (!found)
      noVideo =
        other === null
          ? "this channel carries no video"
          : `the slate is made for H.264 and HEVC video; this channel's video is ${other}`;
  };

  const patReader = new SectionReader(onPat, MAX_SECTION);
  const pmtReader = new SectionReader(onPmt, MAX_SECTION);

  /** The answer when everything is known, a refusal, or null while something is missing. */
  /**
   * `givingUp`: the bytes are spent, and an audio PID that showed no frame header is answered silent (the
   * slate does without it) rather than refusing the whole format.
   */
  const conclude = (givingUp: boolean): ProbeResult | null => {
    const ch = channel;
    if (ch === null || ch.pmt === null || ch.parsed === null) return null;
    if (noVideo !== null) return { refused: noVideo };
    if (video.refused !== null) return { refused: video.refused };
    if (video.sps === null) return null;
    if (!givingUp && audio.some((a) => a.header === null)) return null;
    const rate = frameRate(video);
    if (rate === null) return null;
    if (typeof rate === "string") return { refused: rate };
    const scan: Scan = video.interlaced ? (video.order ?? "tff") : "progressive";
    const formats: AudioFormat[] = [];
    const quiet = [...silent];
    for (const a of audio) {
      const f = a.header?.format;
      if (f === undefined)
        quiet.push({
          pid: a.pid,
          why:
            a.header?.why ??
            `no ${audioName(a.kind)} frame header in the first ${sizeWords(maxBytes)} of the stream`,
        });
      else formats.push({ pid: a.pid, streamType: a.type, ...f });
    }
    const pmtOrder = new Map(ch.parsed.streams.map((s, i) => [s.pid, i]));
    quiet.sort((a, b) => (pmtOrder.get(a.pid) ?? 0) - (pmtOrder.get(b.pid) ?? 0));
    const format: SlateFormat = {
      program: ch.program,
      pmtPid: ch.pmtPid,
      pcrPid: ch.parsed.pcrPid,
      pat: ch.pat,
      pmt: ch.pmt,
      video: { ...video.sps, frameRate: rate, scan },
      audio: formats,
      silent: quiet,
      ptsLead,
    };
    return { format };
  };

  /** What was not found, in words, when the probe gives up. */
  const missing = (): string => {
    const within = `in the first ${sizeWords(maxBytes)} of the stream`;
    const ch = channel;
    if (ch === null) return `no PAT ${within}`;
    if (ch.pmt === null) return `no PMT for program ${ch.program} (PID ${ch.pmtPid}) ${within}`;
    const name = videoCodec === "h264" ? "H.264" : "HEVC";
    if (video.sps === null) return `no ${name} SPS ${within}`;
    if (video.pts.length < PICTURES)
      return `too few timed ${name} pictures for a frame rate (${video.pts.length} of ${PICTURES}) ${within}`;
    const quiet = audio.find((a) => a.header === null);
    if (quiet !== undefined) return `no ${audioName(quiet.kind)} frame header on PID ${quiet.pid} ${within}`;
    return `no answer ${within}`;
  };

  /** The latest PCR base on the PCR PID (90 kHz), and how far a video PTS ran ahead of it at most. */
  let lastPcr = -1;
  let ptsLead = 0;

  const packet = (p: Uint8Array): void => {
    if (p[0] !== SYNC) return;
    const b1 = p[1] ?? 0;
    if ((b1 & 0x80) !== 0) return; // transport_error_indicator
    const pid = pidAt(p);
    const b3 = p[3] ?? 0;
    const control = (b3 >> 4) & 3;
    if (control === 3 && pid === channel?.parsed?.pcrPid && (p[4] ?? 0) >= 7 && ((p[5] ?? 0) & 0x10) !== 0)
      lastPcr = pcrBaseAt(p, 6);
    if ((control & 1) === 0) return; // no payload
    const at = control === 3 ? 5 + (p[4] ?? 0) : 4;
    if (at > PACKET) return;
    const pusi = (b1 & 0x40) !== 0;
    if (pusi && pid === videoPid && lastPcr >= 0 && at + 14 <= PACKET) {
      const pts = ptsAt(p, at);
      if (pts >= 0) ptsLead = Math.max(ptsLead, ticksAhead(lastPcr, pts));
    }
    const cc = b3 & 15;
    if (pid === 0) patReader.packet(p, at, pusi, cc);
    else if (channel !== null && pid === channel.pmtPid) pmtReader.packet(p, at, pusi, cc);
    else if (pid === videoPid) videoPes?.packet(p, at, pusi, cc);
    else audioByPid.get(pid)?.pes.packet(p, at, pusi, cc);
  };

  const push = (chunk: Uint8Array): void => {
    if (answer !== null) return;
    for (let i = 0; i + PACKET <= chunk.length; i += PACKET) {
      packet(chunk.subarray(i, i + PACKET));
      seen += PACKET;
      if (seen >= maxBytes) break;
    }
    try {
      answer = conclude(false) ?? (seen >= maxBytes ? conclude(true) : null);
    } catch {
      answer = null;
    }
    if (answer === null && seen >= maxBytes) answer = { refused: missing() };
  };

  return { push, result: () => answer };
};
