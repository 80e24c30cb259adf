/**
 * The video frames' times for the FLV remux (remux.ts), before they go on the tags' timeline (timestamps.ts):
 * a DTS that leaves the cadence by more than a second is a bit error unless the next frame follows it (a new
 * time base), a frame without times (or with untrusted ones) is timed one frame step after the one before,
 * and a composition time no reordering has is 0. The recent DTS steps give onMetaData its frame rate.
 *
 * Plain state and arithmetic: nothing allocates per frame (the times given are `pts` and `dts`).
 */
import { PTS_WRAP } from "../ts/index.ts";
import { ticksBetween } from "./timestamps.ts";

/** A video DTS this far from the frame before's is a bit error, unless the next frame follows it (ticks). */
const MAX_CADENCE_OFF = 90_000;
/** A PTS this far after its DTS is one too: no reordering holds a picture back 5 s (ticks). */
const MAX_COMPOSITION = 5 * 90_000;

export class VideoTimes {
  /** Recent video DTS steps (90 kHz), for the frame rate and for timing a frame without times. */
  private readonly frameSteps: number[] = [];
  private lastVideoDts = -1;
  /** A video frame whose DTS left the cadence and was not taken: that DTS as it came; -1 when none. */
  private strayDts = -1;
  /** The latest frame's times as `time` gave them (90 kHz). */
  pts = -1;
  dts = -1;

  /**
   * The times of the next frame, from its PES's (-1 when it has none) into `pts` and `dts`; false when it has
   * none that can be trusted and there are no frames before it to time it from.
   */
  time(pesPts: number, pesDts: number): boolean {
    let pts = pesPts;
    let dts = pesDts;
    if (pts >= 0 && this.lastVideoDts >= 0) {
      // Times more than a second from the frame before, whose marker bits survived a bit error, are taken
      // only when the next frame follows them (a new time base); a lone one would shift the whole timeline.
      const off = (from: number) => Math.abs(ticksBetween(from, dts)) > MAX_CADENCE_OFF;
      if (!off(this.lastVideoDts) || (this.strayDts >= 0 && !off(this.strayDts))) this.strayDts = -1;
      else {
        this.strayDts = dts;
        pts = -1;
      }
    }
    if (pts < 0) {
      // A PES without times (or whose times cannot be trusted): one frame step after the frame before.
      const step = this.frameStep();
      if (step === 0 || this.lastVideoDts < 0) return false;
      dts = (this.lastVideoDts + step) % PTS_WRAP;
      pts = dts;
    } else if (this.lastVideoDts >= 0) {
      const since = (dts - this.lastVideoDts + PTS_WRAP) % PTS_WRAP;
      if (since > 0 && since < 90_000) {
        this.frameSteps.push(since);
        if (this.frameSteps.length > 50) this.frameSteps.shift();
      }
    }
    // A composition time no reordering has (PTS before DTS, or seconds after it) is a bit error: 0.
    const composition = ticksBetween(dts, pts);
    if (composition < 0 || composition > MAX_COMPOSITION) pts = dts;
    this.lastVideoDts = dts;
    this.pts = pts;
    this.dts = dts;
    return true;
  }

  /** The median of the recent video DTS steps (90 kHz); 0 before two frames. */
  frameStep(): number {
    const steps = [...this.frameSteps].sort((a, b) => a - b);
    return steps[steps.length >> 1] ?? 0;
  }

  /** The channel switched input: the next times are the new input's, however far from the old cadence. */
  discontinuity(): void {
    this.lastVideoDts = -1;
    this.strayDts = -1;
  }
}
