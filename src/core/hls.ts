/**
 * HLS from a passthrough MPEG-TS, without touching the elementary streams: the input's packets are cut into
 * segments at the video PID's random-access points (src/core/ts-start.ts finds them), each segment begins with
 * a copy of the latest PAT and PMT, and everything after them is the input's packets as received. SCTE-35
 * sections on the PMT's SCTE-35 PIDs become EXT-X-DATERANGE tags (RFC 8216 §4.3.2.7.1) and, when the cue asks
 * for a splice at once or at a PTS, the segment is cut at the first keyframe at or after that point. An
 * analyser, not a TS filter (ts-filter.ts): it answers segments.
 *
 *   const segmenter = makeHlsSegmenter({ targetSeconds: 4 })
 *   for (const segment of segmenter.push(chunk, Date.now())) store(segment)     // whole segments, in order
 *   renderPlaylist({ segments, targetSeconds: 4, mode: "live", ended: false, cueTags: false })  // hls-playlist.ts
 *
 * Durations are read from the PCR (27 MHz), so they are stream time, not arrival time; a stream without PCR
 * falls back to the arrival clock. Pure and synchronous: the writer owns files, memory and uploads.
 *
 * A splice in the stream (the channel's slate cut in or out, src/core/slate/) is signalled by a packet whose
 * adaptation field sets discontinuity_indicator. On the video PID it means the video that follows is another
 * encoding, which starts at a random-access point: the segment in progress ends at the next random-access
 * point of the video however short it is, and the segment that starts there is `discontinuity`
 * (EXT-X-DISCONTINUITY). The video PID decides, not the PCR PID, because the video's flag always comes before
 * the new video's first packet, where the cut must be; a flag on the PCR PID alone may come after it when the
 * PCR travels on another PID, and on another PID it says nothing about where the video is spliced. On the PCR
 * PID the flag says the time base changes: the next PCR is mapped onto the previous one (plus the arrival time
 * between them), so durations stay stream time across the splice. The flags are read where the packet's
 * header is read already: the video PID's adaptation flags, and the PCR PID's beside its PCR.
 */
import * as Either from "effect/Either";
import { decodeSection, type SpliceInfoSection } from "./scte35/index.ts";
import {
  NULL_PID,
  PACKET,
  PTS_WRAP,
  packetPts,
  pcrOf,
  pidAt,
  readPmt,
  SectionPackets,
  SectionReader,
  STREAM_TYPE_SCTE35,
  SYNC,
  signalsDiscontinuity,
  unitStartAt,
} from "./ts/index.ts";
import { type Elementary, isRandomAccess, pmtPidOf, startStreamOf } from "./ts-start.ts";

type HlsCueClass = "out" | "in" | "cmd";

export interface HlsCue {
  /** Unique in the playlist: `scte35-<n>`, counted from the first cue this segmenter saw. */
  readonly id: string;
  readonly cueClass: HlsCueClass;
  /** The whole splice_info_section, CRC included. */
  readonly section: Uint8Array;
  /** break_duration in seconds, when the cue gives one. */
  readonly durationSeconds: number | null;
  /** Epoch ms: the start of the segment it splits, else when it arrived. */
  readonly startMs: number;
}

export interface HlsSegment {
  readonly sequence: number;
  /** PAT, PMT, then the input's packets from a random-access point. */
  readonly bytes: Uint8Array;
  readonly durationSeconds: number;
  /** Epoch ms when its first packet arrived: EXT-X-PROGRAM-DATE-TIME. */
  readonly programDateMs: number;
  /** The cues that take effect in this segment, in arrival order. */
  readonly cues: ReadonlyArray<HlsCue>;
  /**
   * EXT-X-DISCONTINUITY: the first segment after the segmenter started again (a new attempt), or the first
   * after a splice the stream signalled (discontinuity_indicator on the video PID).
   */
  readonly discontinuity: boolean;
  /**
   * Its Discontinuity Sequence Number (RFC 8216 §6.2.1): how many discontinuities came before it, its own
   * included. The playlist writes the first listed segment's as EXT-X-DISCONTINUITY-SEQUENCE.
   */
  readonly discontinuitySequence: number;
}

interface HlsSegmenter {
  /** Takes whole 188-byte packets; answers the segments this chunk completed. */
  readonly push: (chunk: Uint8Array, nowMs: number) => ReadonlyArray<HlsSegment>;
  /** The segment in progress, closed as it is (at the end of a stream). */
  readonly flush: (nowMs: number) => HlsSegment | null;
}

interface HlsSegmenterOptions {
  readonly targetSeconds: number;
  /** First media sequence number (an output that starts again continues its numbering). */
  readonly firstSequence?: number;
  readonly firstCue?: number;
  /** Mark the first segment EXT-X-DISCONTINUITY (the segmenter follows an earlier one). */
  readonly discontinuity?: boolean;
  /** The Discontinuity Sequence Number of the segment before this segmenter's first (`nextNumbers`). Default 0. */
  readonly discontinuitySequence?: number;
}

interface Tables {
  readonly pcrPid: number | null;
  readonly scte35Pids: ReadonlySet<number>;
}

/** The PCR PID and the SCTE-35 PIDs of a PMT section. */
const tablesOf = (section: Uint8Array): Tables => {
  const pmt = readPmt(section);
  const pcrPid = pmt?.pcrPid ?? NULL_PID;
  const scte35Pids = new Set<number>();
  for (const stream of pmt?.streams ?? [])
    if (stream.streamType === STREAM_TYPE_SCTE35) scte35Pids.add(stream.pid);
  return { pcrPid: pcrPid === NULL_PID ? null : pcrPid, scte35Pids };
};

/** The PTS of the PES this packet starts, if it carries one. */
const ptsOf = (packet: Uint8Array): number | null => {
  const pts = packetPts(packet);
  return pts < 0 ? null : pts;
};

/** Whether PTS `a` is at or after `b`, across the 33-bit wrap. */
const ptsReached = (a: number, b: number) => {
  const ahead = (((a - b) % PTS_WRAP) + PTS_WRAP) % PTS_WRAP;
  return ahead < PTS_WRAP / 2;
};

const startTypes = new Set([
  0x10, 0x14, 0x20, 0x22, 0x30, 0x32, 0x34, 0x36, 0x38, 0x3a, 0x3c, 0x3e, 0x44, 0x46,
]);
const endTypes = new Set([
  0x11, 0x15, 0x21, 0x23, 0x31, 0x33, 0x35, 0x37, 0x39, 0x3b, 0x3d, 0x3f, 0x45, 0x47,
]);

interface CueReading {
  readonly cueClass: HlsCueClass;
  readonly durationSeconds: number | null;
  /** Where to cut: at the next keyframe, at the first keyframe at or after a PTS, or nowhere. */
  readonly split: "now" | number | null;
}

/**
 * How a cue reads in HLS: a splice_insert out of (back into) the network is OUT (IN), and so is a time_signal
 * whose segmentation descriptor starts (ends) a break, programme, chapter or placement opportunity; anything
 * else is CMD. OUT and IN split a segment when they say when: immediately, or at a PTS.
 */
const readCue = (section: SpliceInfoSection): CueReading => {
  if (section.encrypted_packet) return { cueClass: "cmd", durationSeconds: null, split: null };
  const at = (pts: number | undefined) =>
    pts === undefined ? null : (pts + section.pts_adjustment) % PTS_WRAP;
  if (section.splice_command_type === 0x05) {
    const insert = section.splice_command;
    if (insert.splice_event_cancel_indicator) return { cueClass: "cmd", durationSeconds: null, split: null };
    return {
      cueClass: insert.out_of_network_indicator ? "out" : "in",
      durationSeconds: insert.break_duration === undefined ? null : insert.break_duration.duration / 90_000,
      split: insert.splice_immediate_flag ? "now" : at(insert.pts_time),
    };
  }
  if (section.splice_command_type === 0x06) {
    let cueClass: HlsCueClass = "cmd";
    let durationSeconds: number | null = null;
    for (const descriptor of section.descriptors) {
      if (!("segmentation_type_id" in descriptor) || descriptor.segmentation_event_cancel_indicator) continue;
      const type = descriptor.segmentation_type_id;
      if (startTypes.has(type)) {
        cueClass = "out";
        const duration = "segmentation_duration" in descriptor ? descriptor.segmentation_duration : undefined;
        durationSeconds = typeof duration === "number" ? duration / 90_000 : null;
        break;
      }
      if (endTypes.has(type)) {
        cueClass = "in";
        break;
      }
    }
    const pts = at(section.splice_command.pts_time);
    return { cueClass, durationSeconds, split: cueClass === "cmd" ? null : (pts ?? "now") };
  }
  return { cueClass: "cmd", durationSeconds: null, split: null };
};

interface PendingCue {
  readonly section: Uint8Array;
  readonly reading: CueReading;
  readonly arrivedMs: number;
}

export const makeHlsSegmenter = (options: HlsSegmenterOptions): HlsSegmenter => {
  const target = options.targetSeconds;
  let sequence = options.firstSequence ?? 0;
  let cueCount = options.firstCue ?? 0;
  let discontinuity = options.discontinuity ?? false;
  let discontinuitySequence = options.discontinuitySequence ?? 0;
  const firstSequence = sequence;

  let pat: Uint8Array | null = null;
  let pmtPid: number | null = null;
  let pmt: Uint8Array | null = null;
  let start: Elementary | null = null;
  let tables: Tables = { pcrPid: null, scte35Pids: new Set() };
  /** Latest PCR, in seconds, on one time base across signalled splices. */
  let clock: number | null = null;
  /** Seconds added to the PCR: where the time bases before each signalled splice left off. */
  let clockOffset = 0;
  /** Arrival (epoch ms) of the latest PCR. */
  let clockAtMs = 0;
  /** The PCR PID signalled a new time base: the next PCR continues from the latest. */
  let timeBaseChanges = false;
  /** The video PID signalled a splice: the next random-access point ends the segment and starts a discontinuity. */
  let spliced = false;
  const sections = new Map<number, SectionReader>();

  // The segment being built: packets as views into the pushed chunks, copied once when it closes.
  let parts: Uint8Array[] = [];
  let partsBytes = 0;
  let open = false;
  let segmentStartSeconds = 0;
  let segmentStartMs = 0;
  let lastKeyframeSeconds = 0;
  let gopSeconds = 0;
  let segmentCues: Array<{ pending: PendingCue; startMs: number | null }> = [];
  const pendingCues: PendingCue[] = [];

  /** Stream time now, in seconds: the latest PCR (at most a PCR interval behind), else the arrival clock. */
  const now = (nowMs: number) => (clock === null ? nowMs / 1000 : clock);

  const close = (endSeconds: number): HlsSegment => {
    const bytes = new Uint8Array(partsBytes);
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.length;
    }
    let duration = endSeconds - segmentStartSeconds;
    // A PCR that jumped (a new source behind the encoder) says nothing about this segment's length.
    if (!(duration > 0) || duration > 10 * target) duration = Math.min(gopSeconds || target, target);
    if (discontinuity) discontinuitySequence += 1;
    const segment: HlsSegment = {
      sequence,
      bytes,
      durationSeconds: duration,
      programDateMs: segmentStartMs,
      cues: segmentCues.map(({ pending, startMs }) => ({
        id: `scte35-${cueCount++}`,
        cueClass: pending.reading.cueClass,
        section: pending.section,
        durationSeconds: pending.reading.durationSeconds,
        startMs: startMs ?? pending.arrivedMs,
      })),
      discontinuity,
      discontinuitySequence,
    };
    sequence += 1;
    discontinuity = false;
    parts = [];
    partsBytes = 0;
    segmentCues = [];
    return segment;
  };

  const begin = (packetTimeSeconds: number, nowMs: number, pts: number | null) => {
    open = true;
    segmentStartSeconds = packetTimeSeconds;
    segmentStartMs = nowMs;
    if (pat !== null && pmt !== null) {
      parts.push(pat, pmt);
      partsBytes += pat.length + pmt.length;
    }
    // Cues waiting for this point take effect here; a cue that split the stream starts with the segment.
    for (let index = 0; index < pendingCues.length; ) {
      const pending = pendingCues[index];
      if (pending === undefined) break;
      const split = pending.reading.split;
      const due = split === null || split === "now" || pts === null || ptsReached(pts, split);
      if (due) {
        segmentCues.push({ pending, startMs: split === null ? null : nowMs });
        pendingCues.splice(index, 1);
      } else index += 1;
    }
  };

  const cueWantsCut = (pts: number | null) =>
    pendingCues.some(({ reading }) =>
      reading.split === "now"
        ? true
        : typeof reading.split === "number" && (pts === null || ptsReached(pts, reading.split)),
    );

  /** The arrival time of the packet being read: the time of the sections it completes. */
  let sectionMs = 0;
  const onSection = (section: Uint8Array) => {
    const decoded = decodeSection(section);
    if (Either.isLeft(decoded)) return;
    pendingCues.push({ section: section.slice(), reading: readCue(decoded.right), arrivedMs: sectionMs });
  };

  /** Collects SCTE-35 sections, which may span packets or share one, each PID on its own. */
  const onScte35 = (packet: Uint8Array, pid: number, nowMs: number) => {
    let reader = sections.get(pid);
    if (reader === undefined) {
      reader = new SectionReader(onSection);
      sections.set(pid, reader);
    }
    sectionMs = nowMs;
    reader.read(packet);
  };

  // The PAT and the PMT as the packets that carried them (sections reassembled, CRC checked): each segment's head.
  const patReader = new SectionPackets((section, packets) => {
    const next = pmtPidOf(section);
    if (next === null) return;
    if (next !== pmtPid) pmtReader.reset();
    pat = packets.slice();
    pmtPid = next;
  });
  const pmtReader = new SectionPackets((section, packets) => {
    const stream = startStreamOf(section);
    if (stream === null) return;
    pmt = packets.slice();
    start = stream;
    tables = tablesOf(section);
  });

  const push = (chunk: Uint8Array, nowMs: number): ReadonlyArray<HlsSegment> => {
    const done: HlsSegment[] = [];
    let runStart = 0;
    const flushRun = (to: number) => {
      if (open && to > runStart) {
        parts.push(chunk.subarray(runStart, to));
        partsBytes += to - runStart;
      }
      runStart = to;
    };
    for (let at = 0; at + PACKET <= chunk.length; at += PACKET) {
      const packet = chunk.subarray(at, at + PACKET);
      if (packet[0] !== SYNC) continue;
      const pid = pidAt(packet);
      const unitStart = unitStartAt(packet);
      if (pid === tables.pcrPid) {
        // The flag first: the packet that says the time base changes may carry the new base's first PCR.
        if (signalsDiscontinuity(packet) && clock !== null) timeBaseChanges = true;
        const pcr = pcrOf(packet);
        if (pcr >= 0) {
          if (timeBaseChanges) {
            timeBaseChanges = false;
            const previous = clock ?? 0;
            clockOffset = previous + Math.max(0, (nowMs - clockAtMs) / 1000) - pcr / 27_000_000;
          }
          clock = pcr / 27_000_000 + clockOffset;
          clockAtMs = nowMs;
        }
      }
      if (pid === 0) {
        patReader.read(packet);
        continue;
      }
      if (pid === pmtPid) {
        pmtReader.read(packet);
        continue;
      }
      if (tables.scte35Pids.has(pid)) {
        onScte35(packet, pid, nowMs);
        continue;
      }
      if (start === null || pid !== start.pid) continue;
      // A splice (the bridge before the new video, or its first packet): the next keyframe is the new video's.
      if (signalsDiscontinuity(packet)) spliced = true;
      if (!unitStart || pat === null || pmt === null) continue;
      if (!isRandomAccess(packet, start.streamType)) continue;
      // A random-access point: the place to start, or to cut.
      const time = now(nowMs);
      const pts = ptsOf(packet);
      if (!open) {
        // A splice before this segmenter's first segment is no discontinuity within its output.
        if (spliced && sequence !== firstSequence) discontinuity = true;
        spliced = false;
        runStart = at;
        begin(time, nowMs, pts);
        lastKeyframeSeconds = time;
        continue;
      }
      if (spliced) {
        // The old video ends here, however short its segment; the GOP it cut short says nothing of the next.
        spliced = false;
        flushRun(at);
        done.push(close(time));
        discontinuity = true;
        lastKeyframeSeconds = time;
        begin(time, nowMs, pts);
        continue;
      }
      const elapsed = time - segmentStartSeconds;
      const gop = time - lastKeyframeSeconds;
      if (gop > 0) gopSeconds = gop;
      lastKeyframeSeconds = time;
      // Cut where one more GOP would overrun the target, so that segments stay within it.
      const cut = elapsed + gopSeconds > target + 0.001 || elapsed < 0 || cueWantsCut(pts);
      if (!cut) continue;
      flushRun(at);
      done.push(close(time));
      begin(time, nowMs, pts);
    }
    flushRun(chunk.length - (chunk.length % PACKET));
    return done;
  };

  const flush = (nowMs: number): HlsSegment | null => {
    if (!open || partsBytes <= 2 * PACKET) return null;
    const segment = close(now(nowMs));
    open = false;
    return segment;
  };

  return { push, flush };
};

/** Sequence number, cue number and Discontinuity Sequence Number to continue from, for a segmenter that follows another. */
export const nextNumbers = (
  segments: ReadonlyArray<HlsSegment>,
  fallback: { sequence: number; cue: number; discontinuitySequence?: number },
) => {
  const last = segments.at(-1);
  const cues = segments.flatMap((segment) => segment.cues);
  const lastCue = cues.at(-1);
  return {
    sequence: last === undefined ? fallback.sequence : last.sequence + 1,
    cue: lastCue === undefined ? fallback.cue : Number(lastCue.id.slice("scte35-".length)) + 1,
    /** For `discontinuitySequence`: the next segmenter's first segment counts on from the last one's. */
    discontinuitySequence:
      last === undefined ? (fallback.discontinuitySequence ?? 0) : last.discontinuitySequence,
  };
};
