/**
 * FLV tag timestamps from MPEG-TS PTS/DTS. TS times are 33-bit 90 kHz counters that wrap every ~26.5 h and
 * jump to another time base when the channel switches to a backup input; an FLV tag's timestamp is a decode
 * time in milliseconds that must never go back within a track. `TagClock` keeps one continuous timeline for
 * the channel's tracks: each step is the 33-bit difference from the previous DTS (so a wrap is a small step),
 * and a step too large to be the same stream starts a new anchor just after the latest time given.
 *
 *   const clock = new TagClock()
 *   clock.timestampMs(dts, VIDEO)        // decode time of the tag, ms
 *   compositionMs(pts, dts)              // the video tag's signed composition time
 *
 * Plain state and arithmetic: nothing allocates per call.
 */
import { PTS_WRAP } from "../ts/index.ts";

const HALF_WRAP = 2 ** 32;
const TICKS_PER_MS = 90;
/** A track's DTS this far before its previous one (ticks) is another time base: 100 ms, no reordering's. */
const TRACK_BACK = 100 * TICKS_PER_MS;

/** Track numbers for `TagClock.timestampMs`. */
export const VIDEO = 0;
export const AUDIO = 1;

/** `b − a` in 90 kHz ticks, taken the short way round the 33-bit circle: negative when `b` is earlier. */
export const ticksBetween = (a: number, b: number): number => {
  let delta = (b - a) % PTS_WRAP;
  if (delta >= HALF_WRAP) delta -= PTS_WRAP;
  else if (delta < -HALF_WRAP) delta += PTS_WRAP;
  return delta;
};

/** PTS − DTS in whole ms, signed, across the wrap; rounded to nearest as FLV's field has ms resolution. */
export const compositionMs = (pts: number, dts: number): number =>
  Math.round(ticksBetween(dts, pts) / TICKS_PER_MS);

export interface TagClockOptions {
  /** A DTS this far before the previous one (ms) is another time base, not interleaving. Default 2000. */
  readonly maxBackMs?: number;
  /** A DTS this far after the previous one (ms) is another time base, not a gap. Default 10000. */
  readonly maxForwardMs?: number;
  /** Where the timeline starts (ms). Default 0; a test starts it just before 2^24 ms to cross that line. */
  readonly startMs?: number;
}

export class TagClock {
  private readonly maxBack: number;
  private readonly maxForward: number;
  private readonly startTicks: number;
  /** The previous DTS as it came (33-bit), or -1 before the first. */
  private lastRaw = -1;
  /** Where that DTS sits on the continuous timeline, in ticks. */
  private lastTicks = 0;
  /** The latest time handed out on any track, in ticks: a new anchor starts after it. */
  private maxTicks = 0;
  private readonly lastMs = [0, 0];
  /** Each track's previous DTS as it came, or -1: a track's own DTS never goes back in one time base. */
  private readonly lastTrackRaw = [-1, -1];
  private anchors = 0;

  constructor(options: TagClockOptions = {}) {
    this.maxBack = (options.maxBackMs ?? 2000) * TICKS_PER_MS;
    this.maxForward = (options.maxForwardMs ?? 10000) * TICKS_PER_MS;
    this.startTicks = (options.startMs ?? 0) * TICKS_PER_MS;
    this.maxTicks = this.startTicks;
  }

  /** Times given after this follow a new time base (the channel switched input), whatever their step. */
  discontinuity(): void {
    this.lastRaw = -1;
  }

  /** How many times the timeline was anchored again, the first DTS included. */
  get reanchors(): number {
    return this.anchors;
  }

  /**
   * The tag timestamp (ms) for a frame of `track` whose DTS (33-bit, 90 kHz; the PTS for audio) is `dts`.
   * The first DTS ever maps to the start (0), so the caller starts with the frame it sends first (a keyframe); an earlier
   * DTS on the other track is held at 0. Never less than the previous timestamp of the same track.
   */
  timestampMs(dts: number, track: number): number {
    const own = this.lastTrackRaw[track] ?? -1;
    if (this.lastRaw < 0) {
      this.anchor();
    } else if (own >= 0 && ticksBetween(own, dts) < -TRACK_BACK) {
      // The track itself went back (an input returning on a clock a little behind the slate's): another time
      // base, however small the step; holding the track at its last time would stack its frames on one stamp.
      this.anchor();
    } else {
      const step = ticksBetween(this.lastRaw, dts);
      if (step < -this.maxBack || step > this.maxForward) this.anchor();
      else this.lastTicks += step;
    }
    this.lastRaw = dts;
    this.lastTrackRaw[track] = dts;
    if (this.lastTicks > this.maxTicks) this.maxTicks = this.lastTicks;
    const ms = Math.max(Math.floor(this.lastTicks / TICKS_PER_MS), this.lastMs[track] ?? 0);
    this.lastMs[track] = ms;
    return ms;
  }

  /**
   * Where a PTS (33-bit) falls on the timeline (ms) without moving it: a cue's splice time, mapped as the next
   * DTS would be (the short way round the 33-bit circle, from the latest DTS). Null before any DTS and after
   * a signalled switch until the new input's first DTS: there is nothing to map it against yet.
   */
  spliceMs(pts: number): number | null {
    if (this.lastRaw < 0) return null;
    return Math.floor((this.lastTicks + ticksBetween(this.lastRaw, pts)) / TICKS_PER_MS);
  }

  /** The latest time given on any track (ms). */
  get nowMs(): number {
    return Math.floor(this.maxTicks / TICKS_PER_MS);
  }

  /** One ms past the latest time given, so that no track steps back and the jump is as small as it can be. */
  private anchor(): void {
    this.lastTicks = this.anchors === 0 ? this.startTicks : this.maxTicks + TICKS_PER_MS;
    this.anchors++;
  }
}
