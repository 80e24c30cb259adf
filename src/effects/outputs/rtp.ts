/**
 * RTP framing for TS datagrams (RFC 3550 header, RFC 2250 payload type 33). Each attempt is a new RTP
 * source: a random SSRC and starting sequence, so a receiver sees a new stream rather than a burst of loss.
 * On a fleet node the SSRC's low 16 bits are the term of the channel's lease: the holders before and after a
 * takeover always send under different SSRCs, so a receiver can tell them apart.
 */
import * as Effect from "effect/Effect";
import * as Random from "effect/Random";

export const RTP_HEADER_SIZE = 12;
const RTP_PAYLOAD_TYPE_MP2T = 33;

interface RtpFramer {
  /** The header for the next datagram; a new buffer each time, since a send may still hold the last one. */
  readonly nextHeader: () => Uint8Array;
}

export const makeRtpFramer = (term: number | null): Effect.Effect<RtpFramer> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock;
    let sequence = yield* Random.nextIntBetween(0, 0x10000);
    const random = yield* Random.nextIntBetween(0, 0x1_0000_0000);
    const ssrc = term === null ? random : ((random & 0xffff0000) | (term & 0xffff)) >>> 0;
    const timestampOffset = yield* Random.nextIntBetween(0, 0x1_0000_0000);
    const header = new Uint8Array(RTP_HEADER_SIZE);
    const view = new DataView(header.buffer);
    view.setUint8(0, 0x80); // version 2, no padding, no extension, no CSRC
    view.setUint8(1, RTP_PAYLOAD_TYPE_MP2T);
    view.setUint32(8, ssrc);
    return {
      nextHeader: () => {
        // RFC 2250: the timestamp is the 90 kHz time of sending; a monotonic clock keeps it steady.
        const ticks = (clock.unsafeCurrentTimeNanos() * 9n) / 100_000n;
        view.setUint16(2, sequence);
        view.setUint32(4, Number((ticks + BigInt(timestampOffset)) % 0x1_0000_0000n));
        sequence = (sequence + 1) & 0xffff;
        return header.slice();
      },
    };
  });
