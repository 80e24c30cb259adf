/**
 * The media playlist (RFC 8216) of the segments src/core/hls.ts cuts: each segment with its programme date and
 * duration, each SCTE-35 cue as an EXT-X-DATERANGE tag (§4.3.2.7.1) and, when asked, as EXT-X-CUE-OUT/IN too.
 * Pure: the HLS output decides which segments are listed and what each is named.
 *
 * Discontinuities (§4.3.3.3, §6.2.2): each segment carries its Discontinuity Sequence Number, so a window
 * that slides needs no memory here. The first listed segment's EXT-X-DISCONTINUITY is left out (there is
 * nothing before it in the playlist to be discontinuous with) and EXT-X-DISCONTINUITY-SEQUENCE is that
 * segment's number; every later segment's number is then that plus the tags before it, its own included, as
 * the segmenter counted. The tag is written only when not 0 (absent, it is 0).
 */
import type { HlsCue, HlsSegment } from "./hls.ts";
import { bytesToHex } from "./scte35/text.ts";

type HlsMode = "live" | "event";

interface PlaylistOptions {
  readonly segments: ReadonlyArray<HlsSegment>;
  readonly targetSeconds: number;
  readonly mode: HlsMode;
  /** The stream ended: EXT-X-ENDLIST (an event playlist then reads as VOD). */
  readonly ended: boolean;
  /** Also write EXT-X-CUE-OUT / EXT-X-CUE-IN for players that read those instead of DATERANGE. */
  readonly cueTags: boolean;
  readonly segmentName: (sequence: number) => string;
}

const isoDate = (ms: number) => new Date(ms).toISOString();

const dateRange = (cue: HlsCue): string => {
  const attribute =
    cue.cueClass === "out" ? "SCTE35-OUT" : cue.cueClass === "in" ? "SCTE35-IN" : "SCTE35-CMD";
  const duration =
    cue.durationSeconds === null || cue.cueClass !== "out"
      ? ""
      : `,PLANNED-DURATION=${cue.durationSeconds.toFixed(3)}`;
  return `#EXT-X-DATERANGE:ID="${cue.id}",START-DATE="${isoDate(cue.startMs)}"${duration},${attribute}=0x${bytesToHex(cue.section)}`;
};

/** A media playlist (RFC 8216) of `segments`, oldest first. */
export const renderPlaylist = (options: PlaylistOptions): string => {
  const longest = Math.max(0, ...options.segments.map((segment) => segment.durationSeconds));
  const targetDuration = Math.max(Math.ceil(options.targetSeconds), Math.round(longest));
  const first = options.segments[0]?.sequence ?? 0;
  const lines = [
    "#EXTM3U",
    "#EXT-X-VERSION:3",
    `#EXT-X-TARGETDURATION:${targetDuration}`,
    `#EXT-X-MEDIA-SEQUENCE:${first}`,
  ];
  const discontinuitySequence = options.segments[0]?.discontinuitySequence ?? 0;
  if (discontinuitySequence > 0) lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${discontinuitySequence}`);
  if (options.mode === "event") lines.push(`#EXT-X-PLAYLIST-TYPE:${options.ended ? "VOD" : "EVENT"}`);
  lines.push("#EXT-X-INDEPENDENT-SEGMENTS");
  for (const segment of options.segments) {
    if (segment.discontinuity && segment.sequence !== first) lines.push("#EXT-X-DISCONTINUITY");
    for (const cue of segment.cues) {
      lines.push(dateRange(cue));
      if (!options.cueTags) continue;
      if (cue.cueClass === "out") {
        lines.push(
          cue.durationSeconds === null
            ? "#EXT-X-CUE-OUT"
            : `#EXT-X-CUE-OUT:DURATION=${cue.durationSeconds.toFixed(3)}`,
        );
      } else if (cue.cueClass === "in") lines.push("#EXT-X-CUE-IN");
    }
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${isoDate(segment.programDateMs)}`);
    lines.push(`#EXTINF:${segment.durationSeconds.toFixed(3)},`);
    lines.push(options.segmentName(segment.sequence));
  }
  if (options.ended) lines.push("#EXT-X-ENDLIST");
  return `${lines.join("\n")}\n`;
};
