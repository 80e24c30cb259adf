/**
 * What the channel's TS → FLV remux (remux.ts) hands its listeners: FLV tag bodies with their timestamps, and
 * cues whose body each output makes in its own format. Its own file because the remux, the cues it holds
 * (cue-hold.ts) and every RTMP output read these shapes.
 */
import type { CueFormat } from "./cues.ts";
import type { FrameLease } from "./frame-memory.ts";

/** An output that sent a cue as a data message says so, with its id and the shape it sent it in. */
export type CueSent = (output: string, format: CueFormat) => void;

type FrameKind = "video" | "audio" | "videoHeader" | "audioHeader" | "metadata" | "cue";

export interface FlvFrame {
  readonly kind: FrameKind;
  /** The RTMP message type: audio 8, video 9, data 18. */
  readonly type: number;
  readonly timestamp: number;
  /** Empty for a cue: its body depends on the output's format (`cueBody`). */
  readonly body: Uint8Array;
  /** A video frame a decoder can start at; headers and audio: false. */
  readonly keyframe: boolean;
  /** For a cue: its data message in `format`, or undefined when that format has nothing to say about it. */
  readonly cueBody: ((format: CueFormat) => Uint8Array | undefined) | null;
  /** For a cue: to be called by each output that sent it. */
  readonly cueSent: CueSent | null;
  /** For a cue: its splice_info_section as it came, so that each output can apply its own policy to it. */
  readonly cueSection: Uint8Array | null;
  /**
   * When the body's memory is the channel's, used again (frame-memory.ts): whoever keeps the frame past the
   * listener's call holds it (`lease.hold()`) and releases it when done with the body. Null: the body is the
   * frame's own for good.
   */
  readonly lease: FrameLease | null;
}

/** A video, audio, header or metadata frame: no cue. */
export const frame = (
  kind: FrameKind,
  type: number,
  timestamp: number,
  body: Uint8Array,
  keyframe = false,
  lease: FrameLease | null = null,
): FlvFrame => ({
  kind,
  type,
  timestamp,
  body,
  keyframe,
  cueBody: null,
  cueSent: null,
  cueSection: null,
  lease,
});
