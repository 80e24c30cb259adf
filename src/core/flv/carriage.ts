/**
 * What of a channel's program the FLV remux (remux.ts) can carry over RTMP, in words: the program's streams
 * as the PMT names them (es.ts), with the MPEG audio layer the frames showed, to the `problem` that nothing
 * can go and the audio `leftOut` beside video that goes.
 */
import type { EsDemuxer } from "./es.ts";

type Program = NonNullable<EsDemuxer["program"]>;

const STREAM_TYPES: Readonly<Record<number, string>> = {
  1: "MPEG-1 video",
  2: "MPEG-2 video",
  16: "MPEG-4 part 2 video",
  17: "AAC in LATM",
  129: "AC-3",
  135: "E-AC-3",
  66: "AVS video",
  209: "Dirac video",
  234: "VC-1 video",
};

/**
 * Why nothing of `program` can go over RTMP, in words naming its codecs; null while the video is H.264, HEVC
 * or AV1, or while there is no video and the audio is AAC or MP3 (or before the PMT is seen). `mpegAudio` is the
 * MPEG audio's layer when FLV has no codec for it, null otherwise.
 */
export const carriageProblem = (program: Program | undefined, mpegAudio: string | null): string | null => {
  if (program === undefined || program.video !== undefined) return null;
  const names = program.unsupported.map((type) => STREAM_TYPES[type] ?? `stream type 0x${type.toString(16)}`);
  if (program.audio !== undefined && mpegAudio === null) {
    if (!names.some((name) => name.endsWith("video"))) return null;
  } else if (mpegAudio !== null) names.push(mpegAudio);
  if (names.length === 0) return null;
  return `the channel carries ${[...new Set(names)].join(" and ")}, which RTMP cannot carry: RTMP takes H.264, HEVC or AV1 video with AAC or MP3 audio`;
};

/**
 * `program`'s audio in words when its video goes over RTMP but the audio cannot (AC-3, E-AC-3, MPEG audio
 * layer II, AAC in LATM). Null when the audio goes, or there is none, or nothing goes at all.
 */
export const audioLeftOut = (program: Program | undefined, mpegAudio: string | null): string | null => {
  if (program?.video === undefined) return null;
  const names =
    program.audio !== undefined
      ? mpegAudio === null
        ? []
        : [mpegAudio]
      : program.unsupported.flatMap((type) => {
          const name = STREAM_TYPES[type];
          return name === undefined || name.endsWith("video") ? [] : [name];
        });
  if (names.length === 0) return null;
  return `the channel's audio is ${[...new Set(names)].join(" and ")}, which RTMP cannot carry: the video goes without audio (RTMP takes AAC or MP3 audio)`;
};
