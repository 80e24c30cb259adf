export { type DecodeOptions, decodeCueText, decodeSection } from "./decode.ts";
export { encodeSection, encodeSegmentationUpid } from "./encode.ts";
export { commandName, cueEventId, segmentationTypes, summarizeCue } from "./summary.ts";
export { base64ToBytes, bytesToHex, hexToBytes, parseCueText } from "./text.ts";
export * from "./types.ts";
