/**
 * The cues the channel's TS → FLV remux (remux.ts) holds until the media reaches their splice time, so that
 * each goes out stamped with that time, just before the first video or audio frame at or after it, and every
 * output gets it in order on a monotonic timeline. What cannot wait (an immediate cue, one past, one whose time
 * cannot be mapped yet, one too far ahead, one past a burst) goes out at once.
 */
import * as Either from "effect/Either";
import { decodeSection } from "../scte35/index.ts";
import { type CueFormat, cueMessage, splicePts } from "./cues.ts";
import type { CueSent, FlvFrame } from "./frames.ts";
import { TAG_SCRIPT } from "./tags.ts";
import type { TagClock } from "./timestamps.ts";

/**
 * A splice time further ahead of the media than this is not waited for: the cue goes out at arrival, its
 * splice time in the message's `time` and the wait in its pre-roll, as the cue says. Splices are announced
 * seconds ahead; one a minute or more ahead is a cue inserter's mistake (a wrong pts_adjustment, another
 * clock), and holding it would keep it from every receiver for as long, or for ever if the stream stops.
 */
export const MAX_CUE_HOLD_MS = 60_000;

interface HeldCue {
  /** The splice time on the tags' timeline (ms). */
  readonly at: number;
  readonly frame: FlvFrame;
}
/** Cues waiting at once; past this (a burst of cues), a new one goes out at arrival. */
const MAX_HELD_CUES = 64;

export class CueHold {
  /** Cues waiting for the media to reach their splice time, soonest first. */
  private readonly held: HeldCue[] = [];
  private readonly clock: TagClock;
  private readonly emit: (frame: FlvFrame) => void;

  constructor(clock: TagClock, emit: (frame: FlvFrame) => void) {
    this.clock = clock;
    this.emit = emit;
  }

  /** A splice_info_section (CRC included), held or sent as remux.ts `cue` says; throws what it cannot stamp. */
  offer(section: Uint8Array, sent: CueSent | null): void {
    const decoded = decodeSection(section);
    if (Either.isLeft(decoded)) return;
    const bytes = section.slice();
    const now = this.clock.nowMs;
    const pts = splicePts(decoded.right);
    const at = pts === undefined ? null : this.clock.spliceMs(pts);
    const bodies = new Map<CueFormat, Uint8Array | undefined>();
    const cueFrame = (timestamp: number, time: number): FlvFrame => ({
      kind: "cue",
      type: TAG_SCRIPT,
      timestamp,
      body: new Uint8Array(0),
      keyframe: false,
      cueBody: (format) => {
        const timing = { time: time / 1000, preRoll: (time - timestamp) / 1000 };
        if (!bodies.has(format)) bodies.set(format, cueMessage(format, bytes, decoded.right, timing));
        return bodies.get(format);
      },
      cueSent: sent,
      cueSection: bytes,
      lease: null,
    });
    const held = this.held;
    if (at === null || at <= now) this.emit(cueFrame(now, now));
    else if (at - now > MAX_CUE_HOLD_MS || held.length >= MAX_HELD_CUES) this.emit(cueFrame(now, at));
    else {
      let i = held.length;
      while (i > 0 && (held[i - 1]?.at ?? 0) > at) i--;
      held.splice(i, 0, { at, frame: cueFrame(at, at) });
    }
  }

  /** Sends the waiting cues whose splice time `timestamp` (a media frame's) reaches. */
  release(timestamp: number): void {
    const held = this.held;
    while (held.length > 0 && (held[0]?.at ?? 0) <= timestamp) this.emit((held.shift() as HeldCue).frame);
  }

  /** Drops every waiting cue. */
  clear(): void {
    this.held.length = 0;
  }
}
