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
