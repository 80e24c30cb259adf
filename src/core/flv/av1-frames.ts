/**
 * AV1 access units out of MPEG-TS (PES payloads in the start code format, av1.ts) as Enhanced RTMP `av01` tag
 * bodies, for the channel's TS → FLV remux (remux.ts): each temporal unit back in the low overhead format, its
 * temporal delimiters left out; a new sequence start (an AV1CodecConfigurationRecord made from the sequence
 * header OBU, av1-sequence.ts) when a key frame brings a sequence header other than the one in force.
 *
 *   const av1 = new Av1Frames()
 *   const made = av1.read(pesPayload, keyframe)   // words when it cannot be framed
 *   if (typeof made !== "string") { made.header …; made.body … }
 */
import { av1CodedFrame, av1SequenceStart, lowOverheadFormat, sequenceHeaderObu } from "./av1.ts";
import { av1CodecConfiguration, readSequenceHeader } from "./av1-sequence.ts";

export interface Av1Frame {
  /** A sequence start tag body when this unit brought a new sequence header; null otherwise. */
  readonly header: Uint8Array | null;
  readonly body: Uint8Array;
  /** The largest picture the sequence header in force allows. */
  readonly width: number;
  readonly height: number;
}

export class Av1Frames {
  /** The sequence header OBU in force (its bytes, with the OBU header). */
  private sequence: Uint8Array | null = null;
  private size = { width: 0, height: 0 };

  /** The sequence header in force is forgotten: the next key frame's starts the stream again. */
  reset(): void {
    this.sequence = null;
  }

  read(payload: Uint8Array, keyframe: boolean): Av1Frame | string {
    const tu = lowOverheadFormat(payload);
    let header: Uint8Array | null = null;
    const sequence = keyframe ? sequenceHeaderObu(tu) : null;
    if (sequence !== null && !sameObu(sequence, this.sequence)) {
      const info = readSequenceHeader(sequence);
      if (typeof info === "string") return `the key frame's ${info}`;
      this.sequence = sequence.slice();
      this.size = { width: info.width, height: info.height };
      header = av1SequenceStart(av1CodecConfiguration(info, this.sequence));
    }
    if (this.sequence === null) return "an AV1 temporal unit before any sequence header";
    const body = av1CodedFrame(tu, keyframe);
    if (body === null) return "an AV1 temporal unit whose OBUs cannot be read";
    return { header, body, ...this.size };
  }
}

const sameObu = (a: Uint8Array, b: Uint8Array | null): boolean =>
  b !== null && a.length === b.length && a.every((byte, i) => byte === b[i]);
