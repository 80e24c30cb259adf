/**
 * RTP streams handed over (a move between threads, an upgrade, a fleet hand-over) are kept per channel and
 * output: two channels on one thread whose RTP outputs have the same id each go on with their own stream.
 */
import * as Effect from "effect/Effect";
import { describe, expect, it } from "vitest";
import { continueRtp, makeRtpFramer, rtpKey, rtpStates } from "../../src/effects/outputs/rtp.ts";

const ssrcOf = (header: Uint8Array) => new DataView(header.buffer, header.byteOffset).getUint32(8);
const sequenceOf = (header: Uint8Array) => new DataView(header.buffer, header.byteOffset).getUint16(2);

describe("RTP streams by channel and output", () => {
  it("two channels' outputs named alike keep their own states through a hand-over", () => {
    const a = Effect.runSync(makeRtpFramer(null, rtpKey("channel-a", "rtp")));
    const b = Effect.runSync(makeRtpFramer(null, rtpKey("channel-b", "rtp")));
    const lastA = [a.nextHeader(), a.nextHeader()][1] as Uint8Array;
    const lastB = b.nextHeader();
    expect(ssrcOf(lastA)).not.toBe(ssrcOf(lastB));

    // Channel a is handed over: its state is a's, and b's framer is untouched.
    const handed = rtpStates("channel-a", ["rtp"]);
    expect(handed.rtp?.ssrc).toBe(ssrcOf(lastA));
    expect(handed.rtp?.sequence).toBe((sequenceOf(lastA) + 1) & 0xffff);
    expect(ssrcOf(b.nextHeader())).toBe(ssrcOf(lastB));

    // Its new copy on this thread goes on with a's stream; b's stream does not take it.
    const next = Effect.runSync(makeRtpFramer(null, rtpKey("channel-a", "rtp")));
    continueRtp("channel-a", handed);
    const first = next.nextHeader();
    expect(ssrcOf(first)).toBe(ssrcOf(lastA));
    expect(sequenceOf(first)).toBe((sequenceOf(lastA) + 1) & 0xffff);
    expect(ssrcOf(b.nextHeader())).toBe(ssrcOf(lastB));
  });
});
