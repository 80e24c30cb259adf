/** Names of the ISO/IEC 13818-1 and ATSC/DVB stream_type values a broadcast operator meets. */
const names: ReadonlyMap<number, string> = new Map([
  [0x01, "MPEG-1 video"],
  [0x02, "MPEG-2 video"],
  [0x03, "MPEG-1 audio"],
  [0x04, "MPEG-2 audio"],
  [0x05, "private sections"],
  [0x06, "PES private data"],
  [0x0f, "AAC audio (ADTS)"],
  [0x11, "AAC audio (LATM)"],
  [0x15, "metadata (PES)"],
  [0x1b, "H.264 video"],
  [0x24, "H.265 video"],
  [0x81, "AC-3 audio"],
  [0x86, "SCTE-35"],
  [0x87, "E-AC-3 audio"],
]);

export const streamTypeName = (streamType: number | null): string =>
  streamType === null
    ? "unlisted"
    : (names.get(streamType) ?? `stream_type 0x${streamType.toString(16).padStart(2, "0")}`);

export const STREAM_TYPE_H264 = 0x1b;
export const STREAM_TYPE_H265 = 0x24;
export const STREAM_TYPE_SCTE35 = 0x86;
/** Every video stream_type a PMT may list, with its codec's name (the slate's probe says which it cannot take). */
export const VIDEO_CODEC_NAMES: ReadonlyMap<number, string> = new Map([
  [0x01, "MPEG-1"],
  [0x02, "MPEG-2"],
  [0x10, "MPEG-4 Visual"],
  [STREAM_TYPE_H264, "H.264"],
  [0x1e, "MPEG-4 Visual"],
  [0x20, "H.264 MVC"],
  [STREAM_TYPE_H265, "HEVC"],
  [0x33, "VVC"],
  [0x42, "AVS"],
  [0xd1, "Dirac"],
  [0xea, "VC-1"],
]);

/**
 * The stream types of video a start is found in (ts-start.ts) and the content rules judge: MPEG-1, MPEG-2,
 * MPEG-4 Part 2, H.264, H.265.
 */
export const VIDEO_STREAM_TYPES: ReadonlySet<number> = new Set([
  0x01,
  0x02,
  0x10,
  STREAM_TYPE_H264,
  STREAM_TYPE_H265,
]);
