/**
 * RTP framing for TS datagrams (RFC 3550 header, RFC 2250 payload type 33). Each attempt is a new RTP
 * source: a random SSRC and starting sequence, so a receiver sees a new stream rather than a burst of loss.
 * On a fleet node the SSRC's low 16 bits are the term of the channel's lease: the holders before and after a
 * takeover always send under different SSRCs, so a receiver can tell them apart. An upgrade on one box
 * (src/effects/handover/) is the exception: the new process goes on with the old one's SSRC, sequence and
 * timestamp base (`rtpStates`, `continueRtp`), so a receiver sees one stream with no gap.
 */
import * as Effect from "effect/Effect";
import * as Random from "effect/Random";
import { RTP_HEADER_SIZE } from "../../core/rtp-header.ts";

const RTP_PAYLOAD_TYPE_MP2T = 33;

/** Where an RTP output's stream stands: what the next process of an upgrade goes on with. */
export interface RtpState {
  readonly ssrc: number;
  /** The next datagram's sequence number. */
  readonly sequence: number;
  readonly timestampOffset: number;
}

/**
 * An RTP stream's key in this thread: its channel and its output (two channels of one thread may each have an
 * output with the same id).
 */
export const rtpKey = (channel: string, output: string): string => `${channel}/${output}`;

/** This thread's latest framer of each output (by rtpKey): an upgrade reads where each stream stands. */
const framers = new Map<string, () => RtpState>();
/** States handed over by the process before, each taken by its output's next framer before its first header. */
const continued = new Map<string, RtpState>();

/** Where the given outputs' RTP streams stand (after their last send); each is forgotten here. */
export const rtpStates = (channel: string, outputIds: ReadonlyArray<string>): Record<string, RtpState> => {
  const states: Record<string, RtpState> = {};
  for (const id of outputIds) {
    const state = framers.get(rtpKey(channel, id));
    if (state === undefined) continue;
    states[id] = state();
    framers.delete(rtpKey(channel, id));
  }
  return states;
};

/**
 * Where the given outputs' RTP streams stand now, each kept here: a fleet node that hands a channel to another
 * (src/effects/channel/cut-stage.ts) may take it back later, and hand it over again.
 */
export const peekRtpStates = (
  channel: string,
  outputIds: ReadonlyArray<string>,
): Record<string, RtpState> => {
  const states: Record<string, RtpState> = {};
  for (const id of outputIds) {
    const state = framers.get(rtpKey(channel, id));
    if (state !== undefined) states[id] = state();
  }
  return states;
};

/** Grows at each `continueRtp`: a framer that has sent already looks for a state handed to it only then. */
let continuedVersion = 0;

/** The process (or node) before sent these outputs' last datagrams: their streams go on from there. */
export const continueRtp = (channel: string, states: Record<string, RtpState>): void => {
  for (const [id, state] of Object.entries(states)) continued.set(rtpKey(channel, id), state);
  continuedVersion += 1;
};

interface RtpFramer {
  /** The header for the next datagram; a new buffer each time, since a send may still hold the last one. */
  readonly nextHeader: () => Uint8Array;
}

export const makeRtpFramer = (term: number | null, key = ""): Effect.Effect<RtpFramer> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock;
    let sequence = yield* Random.nextIntBetween(0, 0x10000);
    const random = yield* Random.nextIntBetween(0, 0x1_0000_0000);
    let ssrc = term === null ? random : ((random & 0xffff0000) | (term & 0xffff)) >>> 0;
    let timestampOffset = yield* Random.nextIntBetween(0, 0x1_0000_0000);
    const header = new Uint8Array(RTP_HEADER_SIZE);
    const view = new DataView(header.buffer);
    view.setUint8(0, 0x80); // version 2, no padding, no extension, no CSRC
    view.setUint8(1, RTP_PAYLOAD_TYPE_MP2T);
    view.setUint32(8, ssrc);
    // Before the first header, and after each later hand-over: a state the process (or node) before handed
    // over (it is sent only after that arrived).
    let adopted = key === "" ? Number.POSITIVE_INFINITY : -1;
    if (key !== "") framers.set(key, () => ({ ssrc, sequence, timestampOffset }));
    return {
      nextHeader: () => {
        if (adopted < continuedVersion) {
          adopted = continuedVersion;
          const state = continued.get(key);
          if (state !== undefined) {
            continued.delete(key);
            ({ ssrc, sequence, timestampOffset } = state);
            view.setUint32(8, ssrc);
          }
        }
        // RFC 2250: the timestamp is the 90 kHz time of sending; a monotonic clock keeps it steady.
        const ticks = (clock.unsafeCurrentTimeNanos() * 9n) / 100_000n;
        view.setUint16(2, sequence);
        view.setUint32(4, Number((ticks + BigInt(timestampOffset)) % 0x1_0000_0000n));
        sequence = (sequence + 1) & 0xffff;
        return header.slice();
      },
    };
  });
