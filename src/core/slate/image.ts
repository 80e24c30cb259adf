/**
 * An uploaded slate picture, checked before it is kept or handed to ffmpeg: a PNG or a JPEG, whole, no larger
 * than `MAX_SLATE_IMAGE_BYTES`, between 16×16 and 7680×4320 pixels. Pure: it reads the headers only (the PNG's
 * chunk structure and checksums, the JPEG's markers up to its frame header), it decodes no pixels. What is
 * wrong is said in words that tell the operator what to fix.
 */

import { crc32 } from "node:zlib";

export const MAX_SLATE_IMAGE_BYTES = 2 * 1024 * 1024;
const MIN_SLATE_IMAGE_SIDE = 16;
const MAX_SLATE_IMAGE_WIDTH = 7680;
const MAX_SLATE_IMAGE_HEIGHT = 4320;

export type SlateImage = {
  readonly type: "image/png" | "image/jpeg";
  readonly width: number;
  readonly height: number;
};
type SlateImageProblem = { readonly problem: string };

const MiB = 1024 * 1024;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const problem = (text: string): SlateImageProblem => ({ problem: text });

const hex = (bytes: Uint8Array, count: number): string =>
  Array.from(bytes.subarray(0, count), (byte) => byte.toString(16).padStart(2, "0")).join(" ");

const ascii = (bytes: Uint8Array, start: number, end: number): string =>
  String.fromCharCode(...bytes.subarray(start, end));

const u32 = (bytes: Uint8Array, at: number): number =>
  (((bytes[at] ?? 0) << 24) |
    ((bytes[at + 1] ?? 0) << 16) |
    ((bytes[at + 2] ?? 0) << 8) |
    (bytes[at + 3] ?? 0)) >>>
  0;
const u16 = (bytes: Uint8Array, at: number): number => ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);

/** What a file that is neither PNG nor JPEG seems to be, when its first bytes say so. */
const lookalike = (bytes: Uint8Array): string | null => {
  const head = ascii(bytes, 0, Math.min(bytes.length, 16));
  if (head.startsWith("GIF8")) return "a GIF";
  if (head.startsWith("RIFF") && head.slice(8, 12) === "WEBP") return "a WebP";
  if (head.startsWith("BM")) return "a BMP";
  if (head.startsWith("II*\0") || head.startsWith("MM\0*")) return "a TIFF";
  if (head.slice(4, 8) === "ftyp") return "an HEIF/AVIF (or an MP4)";
  if (head.startsWith("%PDF")) return "a PDF";
  if (/^\s*</.test(head)) return "an SVG or HTML file (text)";
  return null;
};

const checkSize = (
  type: SlateImage["type"],
  width: number,
  height: number,
): SlateImage | SlateImageProblem => {
  if (width > MAX_SLATE_IMAGE_WIDTH || height > MAX_SLATE_IMAGE_HEIGHT)
    return problem(
      `the image is ${width}×${height}; a slate image is at most ${MAX_SLATE_IMAGE_WIDTH}×${MAX_SLATE_IMAGE_HEIGHT}: scale it down`,
    );
  if (width < MIN_SLATE_IMAGE_SIDE || height < MIN_SLATE_IMAGE_SIDE)
    return problem(
      `the image is ${width}×${height}; a slate image is at least ${MIN_SLATE_IMAGE_SIDE}×${MIN_SLATE_IMAGE_SIDE}: upload a larger one`,
    );
  return { type, width, height };
};

const PNG_COLOUR_DEPTHS: Record<number, ReadonlyArray<number>> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

const readPng = (bytes: Uint8Array): SlateImage | SlateImageProblem => {
  const cutShort = (at: number, what: string) =>
    problem(
      `the PNG file is cut short: it ends after ${bytes.length} bytes, in the middle of ${what} at byte ${at}; upload the whole file`,
    );
  // Signature (8), then IHDR: length (4), type (4), 13 bytes of data, CRC (4).
  if (bytes.length < 33) return cutShort(8, "its header (IHDR)");
  if (u32(bytes, 8) !== 13 || ascii(bytes, 12, 16) !== "IHDR")
    return problem(
      "the PNG file is damaged: it does not begin with its header chunk (IHDR); export it again",
    );
  if (crc32(bytes.subarray(12, 29)) !== u32(bytes, 29))
    return problem(
      "the PNG file is damaged: its header chunk (IHDR) fails its checksum (CRC); export or download it again",
    );
  const width = u32(bytes, 16);
  const height = u32(bytes, 20);
  const depth = bytes[24] ?? 0;
  const colour = bytes[25] ?? 0;
  if (!(PNG_COLOUR_DEPTHS[colour] ?? []).includes(depth))
    return problem(
      `the PNG file is damaged: its header gives colour type ${colour} with bit depth ${depth}, which PNG does not allow`,
    );
  if ((bytes[26] ?? 0) !== 0 || (bytes[27] ?? 0) !== 0 || (bytes[28] ?? 0) > 1)
    return problem(
      "the PNG file is damaged: its header gives a compression, filter or interlace method PNG does not define",
    );
  // Every chunk whole and intact, up to IEND: a cut or corrupted upload is refused now rather than shown torn.
  let at = 33;
  let sawData = false;
  for (;;) {
    if (at + 8 > bytes.length) return cutShort(at, "a chunk header");
    const length = u32(bytes, at);
    const type = ascii(bytes, at + 4, at + 8);
    if (!/^[A-Za-z]{4}$/.test(type))
      return problem(`the PNG file is damaged: there is no valid chunk at byte ${at}; export it again`);
    if (length > bytes.length || at + 12 + length > bytes.length) return cutShort(at, `its ${type} chunk`);
    if (crc32(bytes.subarray(at + 4, at + 8 + length)) !== u32(bytes, at + 8 + length))
      return problem(
        `the PNG file is damaged: its ${type} chunk at byte ${at} fails its checksum (CRC); export or download it again`,
      );
    if (type === "IDAT") sawData = true;
    at += 12 + length;
    if (type === "IEND") break;
  }
  if (!sawData) return problem("the PNG file holds no picture data (no IDAT chunk); export it again");
  return checkSize("image/png", width, height);
};

const readJpeg = (bytes: Uint8Array): SlateImage | SlateImageProblem => {
  const cutShort = (at: number) =>
    problem(
      `the JPEG file is cut short: it ends after ${bytes.length} bytes, in its headers (at byte ${at}), before the picture's size; upload the whole file`,
    );
  let at = 2;
  for (;;) {
    if (at >= bytes.length) return cutShort(at);
    if (bytes[at] !== 0xff)
      return problem(`the JPEG file is damaged: a marker was expected at byte ${at}; export it again`);
    // Fill bytes: any number of 0xFF before the marker code.
    while (at < bytes.length && bytes[at] === 0xff) at++;
    if (at >= bytes.length) return cutShort(at);
    const marker = bytes[at] ?? 0;
    const segment = at + 1;
    // Markers without a length: TEM and the restart markers.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at = segment;
      continue;
    }
    if (marker === 0xd9) return problem("the JPEG file ends before its frame header: it holds no picture");
    if (marker === 0xda)
      return problem("the JPEG file is damaged: its picture data starts before its frame header (SOF)");
    if (segment + 2 > bytes.length) return cutShort(segment);
    const length = u16(bytes, segment);
    if (length < 2)
      return problem(`the JPEG file is damaged: a segment at byte ${at - 1} has length ${length}`);
    if (segment + length > bytes.length) return cutShort(segment);
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (!isFrame) {
      at = segment + length;
      continue;
    }
    if (marker !== 0xc0 && marker !== 0xc1 && marker !== 0xc2)
      return problem(
        "the JPEG uses lossless, hierarchical or arithmetic coding, which the encoder cannot read; save it as an ordinary (baseline or progressive) JPEG",
      );
    if (length < 8) return problem("the JPEG file is damaged: its frame header (SOF) is too short");
    const precision = bytes[segment + 2] ?? 0;
    const height = u16(bytes, segment + 3);
    const width = u16(bytes, segment + 5);
    const components = bytes[segment + 7] ?? 0;
    if (precision !== 8)
      return problem(`the JPEG has ${precision}-bit samples; save it as an ordinary 8-bit JPEG`);
    if (components !== 1 && components !== 3)
      return problem(
        `the JPEG has ${components} colour components${components === 4 ? " (CMYK, for print)" : ""}; save it as an RGB JPEG or a PNG`,
      );
    if (height === 0)
      return problem(
        "the JPEG gives its height only after the picture (DNL); save it again with a common tool",
      );
    // The picture data must be whole too: a JPEG ends with EOI (FF D9), perhaps followed by padding.
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0x00) end--;
    if (end < 2 || bytes[end - 2] !== 0xff || bytes[end - 1] !== 0xd9)
      return problem(
        `the JPEG file is cut short: it does not end with the end-of-image marker (FF D9) after ${bytes.length} bytes; upload the whole file`,
      );
    return checkSize("image/jpeg", width, height);
  }
};

/** The picture's type and size, or in words what is wrong with it. */
export const readSlateImage = (bytes: Uint8Array): SlateImage | SlateImageProblem => {
  if (bytes.length === 0) return problem("the file is empty: upload a PNG or JPEG image");
  if (bytes.length > MAX_SLATE_IMAGE_BYTES) {
    // To a tenth, rounded up where rounding would show the limit itself ("2.0 MiB; at most 2 MiB").
    const tenths = (bytes.length * 10) / MiB;
    const size =
      (Math.round(tenths) <= (MAX_SLATE_IMAGE_BYTES * 10) / MiB ? Math.ceil(tenths) : Math.round(tenths)) /
      10;
    return problem(
      `the image is ${size.toFixed(1)} MiB; a slate image is at most ${MAX_SLATE_IMAGE_BYTES / MiB} MiB: save it smaller (fewer pixels, or as JPEG)`,
    );
  }
  if (bytes.length >= 8 && PNG_SIGNATURE.every((byte, i) => bytes[i] === byte)) return readPng(bytes);
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff)
    return readJpeg(bytes);
  if (bytes.length < 8 && PNG_SIGNATURE.slice(0, bytes.length).every((byte, i) => bytes[i] === byte))
    return problem(`the PNG file is cut short: it ends after ${bytes.length} bytes; upload the whole file`);
  const like = lookalike(bytes);
  return problem(
    `this is not a PNG or JPEG image (it starts with ${hex(bytes, 8)}${like === null ? "" : `, which looks like ${like}`}); save it as PNG or JPEG`,
  );
};
