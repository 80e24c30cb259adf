/**
 * A channel's TS → FLV remux, made once and shared by every RTMP output of the channel: the channel's TS in,
 * FLV tag bodies with their timestamps out, each made once and handed by reference to every listener. An
 * analyser, not a TS filter (ts-filter.ts): it answers frames, not packets.
 *
 *   const remux = new FlvRemux()
 *   const stop = remux.listen((frame) => …)   // frames in order; sequence headers again when they change
 *   remux.push(chunk)                           // whole TS packets, as the fan-out offers them
 *   remux.cue(section, sent)                    // a splice_info_section the channel's core found
 *   remux.start()                               // what a connection starts with: metadata, headers
 *
 * Video (H.264; HEVC and AV1 as Enhanced RTMP, AV1 by av1-frames.ts) and audio (AAC split from ADTS, MP3) are timed from their DTS on one
 * monotonic timeline (timestamps.ts). A stream the remux cannot carry (AC-3, MPEG-2 video…) is `problem`, in
 * words naming the codec (carriage.ts), rather than tags no one can decode; audio it cannot carry beside video
 * it can (AC-3, MPEG audio layer II…) is `leftOut`: the video goes without it.
 *
 * Damage that a decoder of the TS conceals goes out as that decoder would read it, so that an RTMP viewer sees
 * what a TS viewer sees (a bit error costs a few macroblocks, not the rest of the GOP): a PES with a hole (a
 * packet lost) or whose header lies (es.ts), a frame whose times cannot be read (timed one frame step after
 * the one before: video-times.ts), a frame after one that was dropped. Only what cannot be framed is left out,
 * counted by reason (`dropped`) and said (`lastDrop`): a PES with nothing to frame, a NAL unit whose forbidden
 * bit is set (the rest of its frame goes), an access unit with nothing else, parameter sets that cannot be
 * used (video-checks.ts: a keyframe goes with the sets in force and without the unusable copies; with none in
 * force nothing can start until a keyframe brings usable ones, as a sequence header needs them), a frame
 * larger than an FLV tag holds, an ADTS or MPEG audio frame that is not one. Only after a keyframe is dropped
 * do the frames that follow wait for the next one (`no_keyframe_yet`). `push` and `cue` never throw: what
 * escapes the checks is caught, counted as `internal_error`, and the remux starts again at the next keyframe.
 * The outputs that listen keep their sessions throughout.
 *
 * A cue is stamped at its splice time: one whose splice time is ahead of the media waits here and goes out,
 * stamped with that time, just before the first video or audio frame at or after it, so that every output
 * gets it in order and the tags' timeline stays monotonic (see `cue`; the waiting is cue-hold.ts's).
 */
import { PTS_WRAP } from "../ts/index.ts";
import {
  AdtsReader,
  aacFrame,
  aacSequenceHeader,
  mp3Frame,
  mpegAudioFormat,
  mpegAudioHeaderProblem,
} from "./audio.ts";
import { Av1Frames } from "./av1-frames.ts";
import { audioLeftOut, carriageProblem } from "./carriage.ts";
import { CueHold } from "./cue-hold.ts";
import { type AccessUnit, EsDemuxer, type EsVideoCodec, isVideoCodec } from "./es.ts";
import { FrameBodies, type FrameMemory } from "./frame-memory.ts";
import { type CueSent, type FlvFrame, frame } from "./frames.ts";
import { forbidden, type VideoCodec } from "./nal.ts";
import { keyframeSets, type SetsInForce } from "./sets-in-force.ts";
import { metadataBody, type StreamMetadata, TAG_AUDIO, TAG_VIDEO, videoFrame } from "./tags.ts";
import { AUDIO, compositionMs, TagClock, type TagClockOptions, VIDEO } from "./timestamps.ts";
import { TrackRates } from "./track-rates.ts";
import { forbiddenUnits, nothingToFrame, strayParameterSets } from "./video-checks.ts";
import { VideoTimes } from "./video-times.ts";

const REMUX_DROP_REASONS = [
  "bad_pes",
  "bad_parameter_sets",
  "bad_video",
  "bad_audio",
  "no_keyframe_yet",
  "internal_error",
] as const;
export type RemuxDropReason = (typeof REMUX_DROP_REASONS)[number];

/** The largest body an FLV tag or an RTMP message can say it carries (a 24-bit size). */
const MAX_TAG_BODY = 0xffffff;

export interface FlvRemuxOptions extends TagClockOptions {
  /**
   * Make the video and audio bodies in memory the channel uses again (frame-memory.ts): each frame carries its
   * `lease`, and a listener that keeps a frame past its call must hold it and release it when done. Off, every
   * body is its own buffer for good (what a listener that keeps frames without holding them needs).
   */
  readonly reuseMemory?: boolean;
}

export class FlvRemux {
  private readonly clock: TagClock;
  private readonly demux: EsDemuxer;
  private readonly adts = new AdtsReader();
  private readonly listeners = new Set<(frame: FlvFrame) => void>();
  private sets: SetsInForce | null = null;
  private audioConfig: Uint8Array | null = null;
  /** The sequence headers in force: what every connection starts with. */
  videoHeader: FlvFrame | null = null;
  audioHeader: FlvFrame | null = null;
  videoCodec: EsVideoCodec | null = null;
  private readonly av1Frames = new Av1Frames();
  private picture = { width: 0, height: 0 };
  private audioInfo: { codec: "aac" | "mp3"; sampleRate: number; channels: number } | null = null;
  /** The video frames' times and their cadence, for onMetaData's frame rate (video-times.ts). */
  private readonly videoTimes = new VideoTimes();
  /**
   * The MPEG audio's layer when FLV has no codec for it ("MPEG audio layer II" or "layer I"): stream types
   * 0x03/0x04 carry any layer, so the frames' headers tell; null for layer III (MP3) or before a frame.
   */
  private mpegAudioNotCarried: string | null = null;
  /** Bytes per track, for onMetaData's data rates. */
  private readonly rate = new TrackRates();
  /** Cues waiting for the media to reach their splice time (cue-hold.ts). */
  private readonly held: CueHold;
  /** A video keyframe was dropped (or the remux faulted): the next frames wait for a keyframe. */
  private waitingForKey = false;
  /** Frames dropped since the remux was made, by reason; every reason present (0 until one is dropped). */
  readonly dropped: Record<RemuxDropReason, number> = Object.fromEntries(
    REMUX_DROP_REASONS.map((reason) => [reason, 0]),
  ) as Record<RemuxDropReason, number>;
  /** What was wrong with the latest frame dropped, in words; null before one was. */
  lastDrop: string | null = null;

  /** The bodies' memory when it is used again (`reuseMemory`); null otherwise. */
  private readonly bodies: FrameBodies | null;
  get memory(): FrameMemory | null {
    return this.bodies?.memory ?? null;
  }

  constructor(options: FlvRemuxOptions = {}) {
    this.clock = new TagClock(options);
    this.bodies = options.reuseMemory === true ? new FrameBodies() : null;
    this.held = new CueHold(this.clock, (out) => this.emit(out));
    this.demux = new EsDemuxer(
      (unit) => this.unit(unit),
      // What a PES that cannot be read held is not known: most likely a frame that others refer to, which a
      // decoder conceals as it conceals the PES's absence from the TS.
      (_pid, _codec, detail) => this.drop("bad_pes", detail, false),
    );
  }

  /** Counts what was left out for `reason`; a dropped keyframe makes the next frames wait for another. */
  private drop(reason: RemuxDropReason, detail: string, keyframe: boolean): void {
    this.dropped[reason]++;
    this.lastDrop = `${reason}: ${detail}`;
    if (keyframe) this.waitingForKey = true;
  }

  /** What escaped the checks: counted, and the remux starts again from the next PES and keyframe. */
  private fault(thrown: unknown): void {
    this.demux.resync();
    this.drop("internal_error", thrown instanceof Error ? thrown.message : String(thrown), true);
  }

  /** Frames go to `listener` from now on, in order; the result stops them. */
  listen(listener: (frame: FlvFrame) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
      // With no one listening the TS is not read: a waiting cue would go out against a later stream.
      if (this.listeners.size === 0) this.held.clear();
    };
  }

  /** Reads the channel's TS only while someone listens: with no RTMP output running it costs nothing. */
  push(chunk: Uint8Array): void {
    if (this.listeners.size === 0) return;
    try {
      this.demux.push(chunk);
    } catch (thrown) {
      this.fault(thrown);
    }
  }

  /** The channel switched input: the next times may be on another time base. */
  discontinuity(): void {
    this.clock.discontinuity();
    this.videoTimes.discontinuity();
  }

  /**
   * Why nothing of the channel's program can go over RTMP, in words naming its codecs; null while the video
   * is H.264, HEVC or AV1, or while there is no video and the audio is AAC or MP3 (or before the PMT is seen).
   */
  get problem(): string | null {
    return carriageProblem(this.demux.program, this.mpegAudioNotCarried);
  }

  /**
   * The channel's audio in words when the video goes over RTMP but the audio cannot (AC-3, E-AC-3, MPEG audio
   * layer II, AAC in LATM): the output sends the video alone and says so. Null when the audio goes, or there
   * is none, or nothing goes at all (`problem`).
   */
  get leftOut(): string | null {
    return audioLeftOut(this.demux.program, this.mpegAudioNotCarried);
  }

  /** The channel's tracks as the PMT names them; null before a PMT was seen. */
  get tracks(): { video: boolean; audio: boolean; videoCodec: EsVideoCodec | null } | null {
    const program = this.demux.program;
    if (program === undefined) return null;
    return {
      video: program.video !== undefined,
      audio: program.audio !== undefined,
      videoCodec: program.video?.codec ?? null,
    };
  }

  /** onMetaData behind @setDataFrame, from what the stream showed so far. */
  metadata(): Uint8Array {
    const meta: { -readonly [K in keyof StreamMetadata]: StreamMetadata[K] } = {};
    if (this.videoCodec !== null) {
      const median = this.videoTimes.frameStep();
      meta.video = {
        codec: this.videoCodec,
        width: this.picture.width,
        height: this.picture.height,
        frameRate: median > 0 ? Math.round((90_000 / median) * 1000) / 1000 : 0,
        kbps: this.rate.videoKbps,
      };
    }
    if (this.audioInfo !== null) meta.audio = { ...this.audioInfo, kbps: this.rate.audioKbps };
    return metadataBody(meta, true);
  }

  /**
   * A splice_info_section (CRC included) as a data message stamped at its splice time: splice_insert's or
   * time_signal's pts_time plus pts_adjustment, mapped onto the tags' timeline as a DTS would be (across the
   * 33-bit wrap; after a switch, on the new input's time base). One ahead of the media waits and goes out just
   * before the first video or audio frame at or after it, pre-roll 0. An immediate cue (splice_immediate, no
   * time, cancelled, encrypted), one whose time is past, and one whose time cannot be mapped yet (no frame of
   * the input yet) go at once, stamped at arrival; one more than MAX_CUE_HOLD_MS ahead too, with its time.
   * `sent` is called by each output that sends it.
   */
  cue(section: Uint8Array, sent: CueSent | null = null): void {
    if (this.listeners.size === 0) return;
    try {
      this.held.offer(section, sent);
    } catch {
      // A section the watcher decoded but this cannot stamp stays in the cue log; the media goes on.
    }
  }

  /**
   * A video or audio frame, after the waiting cues whose splice time it reaches. The remux holds its body's
   * memory while the listeners take it and lets go after: what no listener held is used again at once.
   */
  private emitMedia(out: FlvFrame): void {
    this.held.release(out.timestamp);
    this.emit(out);
    out.lease?.release();
  }

  /** The body just made, with its lease when its memory is the channel's. */
  private made(kind: "video" | "audio", ms: number, body: Uint8Array, keyframe = false): FlvFrame {
    const lease = this.bodies?.lastLease() ?? null;
    return frame(kind, kind === "video" ? TAG_VIDEO : TAG_AUDIO, ms, body, keyframe, lease);
  }

  private emit(out: FlvFrame): void {
    for (const listener of this.listeners) {
      // An output that throws has failed itself (it says so): the others get the frame all the same.
      try {
        listener(out);
      } catch {}
    }
  }

  private unit(unit: AccessUnit): void {
    try {
      if (unit.codec === "av1") this.av1(unit);
      else if (isVideoCodec(unit.codec)) this.video(unit, unit.codec);
      else if (unit.pts < 0) return;
      else if (unit.codec === "aac") this.aac(unit);
      else this.mp3(unit);
    } catch (thrown) {
      this.fault(thrown);
    }
  }

  private video(unit: AccessUnit, codec: VideoCodec): void {
    const times = this.videoTimes;
    if (!times.time(unit.pts, unit.dts)) {
      this.drop(
        "bad_pes",
        "a video PES without readable times, and no frames before it to time it from",
        false,
      );
      return;
    }
    const { pts, dts } = times;
    // NAL units with the forbidden bit set are left out, as a decoder skips them; the rest of the frame goes.
    const damaged = unit.nals.count === 0 ? 0 : forbiddenUnits(unit.data, unit.nals);
    if (damaged > 0 || unit.nals.count === 0) {
      const nothing = nothingToFrame(codec, unit.data, unit.nals);
      if (nothing !== null) {
        this.drop("bad_video", nothing, unit.keyframe);
        return;
      }
      for (let i = 0; i < damaged; i++)
        this.drop("bad_video", "a NAL unit whose forbidden_zero_bit is set, left out of its frame", false);
    }
    const ms = this.clock.timestampMs(dts, VIDEO);
    if (unit.keyframe) {
      const unusable = this.parameterSetsOf(codec, unit, ms);
      if (unusable !== null) {
        // With usable sets in force the keyframe goes with them (the unusable copies are strays, left out
        // below), as a decoder keeps the sets it has when a copy cannot be read; with none nothing can start.
        const inForce = this.sets !== null && codec === this.videoCodec;
        this.drop(
          "bad_parameter_sets",
          `the keyframe's ${unusable}${inForce ? ": it went with the ones in force" : ""}`,
          !inForce,
        );
        if (!inForce) return;
      }
    }
    // Frames before the first sequence header cannot be decoded by anyone.
    if (this.videoHeader === null || codec !== this.videoCodec) return;
    if (this.waitingForKey) {
      if (!unit.keyframe) {
        this.drop("no_keyframe_yet", "a frame after a keyframe that was dropped", true);
        return;
      }
      this.waitingForKey = false;
    }
    const stray = strayParameterSets(codec, unit, this.sets);
    const data = unit.data;
    const body = videoFrame(
      codec,
      data,
      unit.keyframe,
      compositionMs(pts, dts),
      unit.nals,
      damaged === 0 ? stray : (start, end) => forbidden(data, start) || stray?.(start, end) === true,
      this.bodies?.allocate,
    );
    const out = this.made("video", ms, body, unit.keyframe);
    if (body.length > MAX_TAG_BODY) {
      out.lease?.release();
      this.drop("bad_video", `a frame of ${body.length} bytes, more than an FLV tag holds`, unit.keyframe);
      return;
    }
    this.rate.count("video", body.length, ms);
    this.emitMedia(out);
  }

  /** An AV1 temporal unit: its sequence start first when a key frame brings a new sequence header. */
  private av1(unit: AccessUnit) {
    if (!this.videoTimes.time(unit.pts, unit.dts))
      return this.drop(
        "bad_pes",
        "a video PES without readable times, and no frames before it to time it from",
        false,
      );
    const ms = this.clock.timestampMs(this.videoTimes.dts, VIDEO);
    if (this.videoCodec !== "av1") this.av1Frames.reset();
    const made = this.av1Frames.read(unit.data, unit.keyframe);
    if (typeof made === "string") return this.drop("bad_video", made, unit.keyframe);
    if (made.header !== null) {
      this.videoCodec = "av1";
      this.picture = { width: made.width, height: made.height };
      this.videoHeader = frame("videoHeader", TAG_VIDEO, ms, made.header);
      this.emit(this.videoHeader);
    }
    if (this.videoHeader === null || this.videoCodec !== "av1") return;
    if (this.waitingForKey) {
      if (!unit.keyframe)
        return this.drop("no_keyframe_yet", "a frame after a keyframe that was dropped", true);
      this.waitingForKey = false;
    }
    this.rate.count("video", made.body.length, ms);
    this.emitMedia(frame("video", TAG_VIDEO, ms, made.body, unit.keyframe));
  }

  /**
   * A keyframe's parameter sets (sets-in-force.ts): a new sequence header when they differ from the ones in
   * force. Why they cannot be used, when one of them cannot (the keyframe is then dropped); null otherwise.
   */
  private parameterSetsOf(codec: VideoCodec, unit: AccessUnit, ms: number): string | null {
    const next = keyframeSets(codec, unit, codec === this.videoCodec ? this.sets : null);
    if (next === null || typeof next === "string") return next;
    this.sets = next.sets;
    this.picture = next.picture;
    this.videoCodec = codec;
    this.videoHeader = frame("videoHeader", TAG_VIDEO, ms, next.header);
    this.emit(this.videoHeader);
    return null;
  }

  private aac(unit: AccessUnit): void {
    const adts = this.adts;
    adts.reset(unit.data);
    while (adts.next()) {
      const rate = adts.sampleRate;
      const pts = (unit.pts + Math.round((adts.index * 1024 * 90_000) / rate)) % PTS_WRAP;
      const ms = this.clock.timestampMs(pts, AUDIO);
      if (this.audioConfig === null || !adts.hasConfig(this.audioConfig)) {
        const config = adts.audioSpecificConfig();
        this.audioConfig = config;
        this.audioInfo = { codec: "aac", sampleRate: rate, channels: adts.channels };
        this.audioHeader = frame("audioHeader", TAG_AUDIO, ms, aacSequenceHeader(config));
        this.emit(this.audioHeader);
      }
      const body = aacFrame(unit.data, adts.start, adts.end, this.bodies?.allocate);
      this.rate.count("audio", body.length, ms);
      this.emitMedia(this.made("audio", ms, body));
    }
    for (let i = 0; i < adts.lost; i++) this.drop("bad_audio", adts.problem, false);
  }

  private mp3(unit: AccessUnit): void {
    let data = unit.data;
    const problem = mpegAudioHeaderProblem(data, 0);
    if (problem !== null) {
      // The frames from the first good header on go; the bytes before it are dropped as one frame.
      let at = data.indexOf(0xff, 1);
      while (at >= 0 && mpegAudioHeaderProblem(data, at) !== null) at = data.indexOf(0xff, at + 1);
      this.drop("bad_audio", problem, false);
      if (at < 0) return;
      data = data.subarray(at);
    }
    const ms = this.clock.timestampMs(unit.pts, AUDIO);
    // MPEG-1/2 layer III only (layer bits 01): FLV has no codec for layers II (10) and I (11).
    const layer = ((data[1] ?? 0) >> 1) & 3;
    if (layer !== 1) {
      this.mpegAudioNotCarried = layer === 2 ? "MPEG audio layer II" : "MPEG audio layer I";
      return;
    }
    this.mpegAudioNotCarried = null;
    this.audioInfo ??= { codec: "mp3", ...mpegAudioFormat(data) };
    const body = mp3Frame(data);
    this.rate.count("audio", body.length, ms);
    this.emitMedia(frame("audio", TAG_AUDIO, ms, body));
  }
}
