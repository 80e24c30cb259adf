/**
 * The remux's data rates per track, for onMetaData (remux.ts): the bytes of each track's bodies over stream
 * time, worked out again every two seconds of it.
 */
const WINDOW_MS = 2000;

export class TrackRates {
  videoKbps = 0;
  audioKbps = 0;
  private startMs = -1;
  private video = 0;
  private audio = 0;

  /** A body of `bytes` on `track` at stream time `ms`. */
  count(track: "video" | "audio", bytes: number, ms: number): void {
    if (this.startMs < 0) this.startMs = ms;
    this[track] += bytes;
    const elapsed = ms - this.startMs;
    if (elapsed < WINDOW_MS) return;
    this.videoKbps = Math.round((this.video * 8) / elapsed);
    this.audioKbps = Math.round((this.audio * 8) / elapsed);
    this.startMs = ms;
    this.video = 0;
    this.audio = 0;
  }
}
