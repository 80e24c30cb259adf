/** FLV audio tag bodies: AAC (its sequence header and raw frames walked out of ADTS) and MP3. */
import { allocateBody, copyBytes } from "./tags.ts";

/** sampling_frequency_index → Hz (ISO/IEC 14496-3 1.6.3.4). */
export const AAC_SAMPLE_RATES = [
  96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
] as const;

/** SoundFormat 10 (AAC), 44 kHz, 16-bit, stereo: what FLV requires in the first byte of every AAC tag. */
const AAC_FLAGS = 0xaf;

/**
 * Walks the ADTS frames of one PES payload. After `next()` answers true, `start`…`end` is the raw AAC frame
 * (header and CRC skipped) and the header's fields describe it. Bytes that are no frame — a lost sync, a
 * header whose length is impossible or runs past the PES, a sampling frequency index past the table — are
 * skipped to the next sync word that starts a frame ending where another starts (or the PES ends), and
 * counted: `lost` stretches in this PES, the latest described in `problem`.
 */
export class AdtsReader {
  private data: Uint8Array = new Uint8Array(0);
  private pos = 0;
  start = 0;
  end = 0;
  objectType = 0;
  sampleRateIndex = 0;
  channels = 0;
  /** Frames in this PES so far, so the caller can time the n-th one 1024 samples after the one before. */
  index = -1;
  /** Stretches of this PES that were no ADTS frame, and what the latest was. */
  lost = 0;
  problem = "";
  private resyncing = false;

  reset(payload: Uint8Array): void {
    this.data = payload;
    this.pos = 0;
    this.index = -1;
    this.lost = 0;
    this.resyncing = false;
  }

  next(): boolean {
    const d = this.data;
    while (this.pos < d.length) {
      const at = this.pos;
      const problem = this.frameAt(d, at);
      if (problem === null) {
        this.resyncing = false;
        this.index++;
        return true;
      }
      if (!this.resyncing) {
        this.resyncing = true;
        this.lost++;
        this.problem = problem;
      }
      const sync = d.indexOf(0xff, at + 1);
      this.pos = sync < 0 ? d.length : sync;
    }
    return false;
  }

  /** Takes the frame at `at` (null), or says why there is none. */
  private frameAt(d: Uint8Array, at: number): string | null {
    if (at + 7 > d.length || d[at] !== 0xff || ((d[at + 1] ?? 0) & 0xf6) !== 0xf0) return "no ADTS sync word";
    const b1 = d[at + 1] ?? 0;
    const b2 = d[at + 2] ?? 0;
    const b3 = d[at + 3] ?? 0;
    const frameLength = ((b3 & 0x03) << 11) | ((d[at + 4] ?? 0) << 3) | ((d[at + 5] ?? 0) >> 5);
    const headerLength = (b1 & 1) === 1 ? 7 : 9;
    if (frameLength <= headerLength || at + frameLength > d.length)
      return `an ADTS header whose frame_length ${frameLength} is impossible here`;
    const sampleRateIndex = (b2 >> 2) & 0x0f;
    if (sampleRateIndex >= AAC_SAMPLE_RATES.length)
      return `an ADTS header with sampling_frequency_index ${sampleRateIndex}`;
    // After a lost stretch a sync word may be a frame's own bytes: one is taken only where the next starts.
    const after = at + frameLength;
    if (this.resyncing && after < d.length && (d[after] !== 0xff || ((d[after + 1] ?? 0) & 0xf6) !== 0xf0))
      return "no ADTS sync word";
    this.objectType = (b2 >> 6) + 1;
    this.sampleRateIndex = sampleRateIndex;
    this.channels = ((b2 & 1) << 2) | (b3 >> 6);
    this.start = at + headerLength;
    this.end = after;
    this.pos = after;
    return null;
  }

  get sampleRate(): number {
    return AAC_SAMPLE_RATES[this.sampleRateIndex] ?? 0;
  }

  /** The 2-byte AudioSpecificConfig of the current frame's header. */
  audioSpecificConfig(): Uint8Array {
    return Uint8Array.of(this.configByte(0), this.configByte(1));
  }

  /** Whether `config` is the current frame's AudioSpecificConfig: asked every frame, so it makes none. */
  hasConfig(config: Uint8Array): boolean {
    return config.length === 2 && config[0] === this.configByte(0) && config[1] === this.configByte(1);
  }

  private configByte(i: 0 | 1): number {
    return i === 0
      ? (this.objectType << 3) | (this.sampleRateIndex >> 1)
      : ((this.sampleRateIndex & 1) << 7) | (this.channels << 3);
  }
}

/** The AAC sequence header tag body: 0xAF 0x00 and the AudioSpecificConfig. */
export const aacSequenceHeader = (audioSpecificConfig: Uint8Array): Uint8Array => {
  const body = new Uint8Array(2 + audioSpecificConfig.length);
  body[0] = AAC_FLAGS;
  body.set(audioSpecificConfig, 2);
  return body;
};

/** An AAC frame's tag body: 0xAF 0x01 and the raw frame `payload[start, end)`, its ADTS header gone. */
export const aacFrame = (
  payload: Uint8Array,
  start: number,
  end: number,
  /** Where the body's bytes come from (as `videoFrame`'s): by default a few hundred bytes of Buffer's pool. */
  allocate: (size: number) => Uint8Array = allocateBody,
): Uint8Array => {
  const body = allocate(2 + end - start);
  body[0] = AAC_FLAGS;
  body[1] = 1;
  copyBytes(payload, start, end, body, 2);
  return body;
};

/**
 * An MP3 tag body (SoundFormat 2): the flags from the first frame header, then the frames as they came. FLV's
 * rate field has no 48 or 32 kHz; as other muxers do, those say 44 kHz and decoders read the frame header.
 */
export const mp3Frame = (frames: Uint8Array): Uint8Array => {
  const { sampleRate: rate, channels } = mpegAudioFormat(frames);
  const mono = channels === 1;
  const rateCode = rate <= 8000 ? 0 : rate <= 12000 ? 1 : rate <= 24000 ? 2 : 3;
  const body = new Uint8Array(1 + frames.length);
  body[0] = (2 << 4) | (rateCode << 2) | 2 | (mono ? 0 : 1);
  body.set(frames, 1);
  return body;
};

/** The sample rate and channels an MPEG audio frame header (at the start of `frames`) says. */
export const mpegAudioFormat = (frames: Uint8Array): { sampleRate: number; channels: 1 | 2 } => {
  const version = ((frames[1] ?? 0) >> 3) & 3; // 3 MPEG-1, 2 MPEG-2, 0 MPEG-2.5
  const base = [44100, 48000, 32000][((frames[2] ?? 0) >> 2) & 3] ?? 44100;
  const sampleRate = version === 3 ? base : version === 2 ? base / 2 : base / 4;
  return { sampleRate, channels: (frames[3] ?? 0) >> 6 === 3 ? 1 : 2 };
};

/** Why the first bytes of `data` are no MPEG audio frame header (11 sync bits, no reserved value), or null. */
export const mpegAudioHeaderProblem = (data: Uint8Array, at: number): string | null => {
  const b1 = data[at + 1] ?? 0;
  const b2 = data[at + 2] ?? 0;
  if (at + 4 > data.length || data[at] !== 0xff || (b1 & 0xe0) !== 0xe0) return "no MPEG audio sync word";
  if (((b1 >> 3) & 3) === 1 || ((b1 >> 1) & 3) === 0)
    return "an MPEG audio header of a reserved version or layer";
  if (b2 >> 4 === 15 || ((b2 >> 2) & 3) === 3)
    return "an MPEG audio header of a reserved bitrate or sample rate";
  return null;
};
