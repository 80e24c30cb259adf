/**
 * What either end of an RTMP connection owes its peer besides commands (Adobe's RTMP specification, sections
 * 5.2, 5.4 and 7.1.7), one rule for the server's side (server.ts) and the publisher's (the RTMP output):
 *
 * - the handshake's C1, S1, C2 and S2 are `HANDSHAKE_SIZE` bytes each;
 * - an Acknowledgement of the bytes read so far each time the peer's window (its Window Acknowledgement Size)
 *   has come since the last one, counted from the peer's first byte;
 * - a ping response for each ping request.
 *
 *   const peer = new PeerUpkeep(2_500_000)
 *   peer.read(bytes.length); const ack = peer.acknowledgement(); if (ack !== null) send(ack)
 *   if (peer.take(message, send)) return   // a window size or user control message: taken in
 *
 * Plain state and arithmetic, no I/O.
 */
import {
  controlMessage,
  MESSAGE,
  type RtmpMessage,
  readU32,
  USER_CONTROL,
  u32Body,
  userControl,
} from "./chunks.ts";

/** C1, S1, C2 and S2: this many bytes each (C0 and S0: one). */
export const HANDSHAKE_SIZE = 1536;

export class PeerUpkeep {
  private received = 0;
  private acked = 0;
  private window: number;

  /** `window`: the peer's window until it announces its own. */
  constructor(window: number) {
    this.window = window;
  }

  /** `count` more bytes read from the peer. */
  read(count: number): void {
    this.received += count;
  }

  /** The Acknowledgement owed now (the peer's window came since the last one), or null. */
  acknowledgement(): RtmpMessage | null {
    if (this.received - this.acked < this.window) return null;
    this.acked = this.received;
    return controlMessage(MESSAGE.acknowledgement, u32Body(this.received));
  }

  /**
   * Takes in a Window Acknowledgement Size or User Control message from the peer, a ping request answered
   * through `reply`; false for any other message, which is the caller's.
   */
  take(message: RtmpMessage, reply: (answer: RtmpMessage) => unknown): boolean {
    switch (message.type) {
      case MESSAGE.windowAckSize:
        this.window = Math.max(1, readU32(message.body, 0));
        return true;
      case MESSAGE.userControl:
        if (message.body[1] === USER_CONTROL.pingRequest) {
          reply(userControl(USER_CONTROL.pingResponse, readU32(message.body, 2)));
        }
        return true;
      default:
        return false;
    }
  }
}
