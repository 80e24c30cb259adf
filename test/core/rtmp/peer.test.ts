import { describe, expect, it } from "vitest";
import {
  ChunkReader,
  controlMessage,
  encodeMessage,
  MESSAGE,
  type RtmpMessage,
  USER_CONTROL,
  u32Body,
  userControl,
} from "../../../src/core/rtmp/chunks.ts";
import { PeerUpkeep } from "../../../src/core/rtmp/peer.ts";

/** The bytes a message puts on the wire, read back as the peer reads them. */
const onTheWire = (message: RtmpMessage): RtmpMessage => {
  const out: RtmpMessage[] = [];
  new ChunkReader().push(encodeMessage(128, message), (m) => out.push(m));
  expect(out).toHaveLength(1);
  return out[0] as RtmpMessage;
};

const u32 = (body: Uint8Array, at: number) => Buffer.from(body).readUInt32BE(at);

describe("what an RTMP end owes its peer", () => {
  it("acknowledges all bytes read each time the peer's window came since the last acknowledgement", () => {
    const peer = new PeerUpkeep(1000);
    peer.read(999);
    expect(peer.acknowledgement()).toBeNull();
    peer.read(1);
    const first = onTheWire(peer.acknowledgement() as RtmpMessage);
    expect(first).toMatchObject({ type: MESSAGE.acknowledgement, chunkStream: 2, streamId: 0 });
    expect(u32(first.body, 0)).toBe(1000);
    expect(peer.acknowledgement()).toBeNull();
    // The peer announces a smaller window: the next one is owed 300 bytes later, counting every byte read.
    expect(peer.take(controlMessage(MESSAGE.windowAckSize, u32Body(300)), () => undefined)).toBe(true);
    peer.read(299);
    expect(peer.acknowledgement()).toBeNull();
    peer.read(50);
    expect(u32((peer.acknowledgement() as RtmpMessage).body, 0)).toBe(1349);
  });

  it("answers a ping request with its timestamp, and leaves other messages to the caller", () => {
    const peer = new PeerUpkeep(2_500_000);
    const replies: RtmpMessage[] = [];
    expect(peer.take(userControl(USER_CONTROL.pingRequest, 424242), (m) => replies.push(m))).toBe(true);
    expect(peer.take(userControl(USER_CONTROL.streamBegin, 1), (m) => replies.push(m))).toBe(true);
    expect(replies).toHaveLength(1);
    const pong = onTheWire(replies[0] as RtmpMessage);
    expect(pong.type).toBe(MESSAGE.userControl);
    expect(pong.body[1]).toBe(USER_CONTROL.pingResponse);
    expect(u32(pong.body, 2)).toBe(424242);
    const command = {
      chunkStream: 3,
      type: MESSAGE.command,
      streamId: 0,
      timestamp: 0,
      body: Uint8Array.of(5),
    };
    expect(peer.take(command, (m) => replies.push(m))).toBe(false);
    expect(peer.take(controlMessage(MESSAGE.acknowledgement, u32Body(7)), (m) => replies.push(m))).toBe(
      false,
    );
    expect(replies).toHaveLength(1);
  });
});
