/**
 * The audio frame headers the slate's probe (probe.ts) reads: ADTS (AAC), AC-3 and MPEG audio, each to the
 * codec, sample rate and channels the slate's encoder must match, or why it cannot. A header is believed only
 * at the payload's start or when another follows where its length ends.
 */
import { AAC_SAMPLE_RATES } from "../flv/audio.ts";
import { BitReader } from "../flv/rbsp.ts";
import { pesPayload } from "./pes-reader.ts";
import type { AudioFormat } from "./types.ts";

export interface AudioHeader {
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

export type AudioKind = "aac" | "ac3" | "mpa";
const HEADER_READERS: Record<AudioKind, (b: Uint8Array, i: number) => AudioHeader | null> = {
  aac: adtsHeader,
  ac3: ac3Header,
  mpa: mpegAudioHeader,
};

/**
 * The first frame header in a PES payload that is believed: at the payload's start, or followed by another
 * header where its length ends. Null when none is.
 */
export const findAudioHeader = (kind: AudioKind, pes: Uint8Array): AudioHeader | null => {
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

export const audioName = (kind: AudioKind): string =>
  kind === "aac" ? "AAC (ADTS)" : kind === "ac3" ? "AC-3" : "MPEG audio";
