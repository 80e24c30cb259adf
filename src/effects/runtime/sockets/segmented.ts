/**
 * Datagrams to one UDP destination, several per system call: Linux's UDP segmentation offload (UDP_SEGMENT,
 * kernel 4.18+) lets one send carry up to 64 KiB that the kernel cuts into datagrams of a fixed size. A
 * datagram's send is most of the fan-out's CPU (a profile of 10 channels × 4 UDP outputs: 75 % in
 * `socket.send`), and batching them costs a third as much per datagram on loopback
 * (load-tests/bench-segmented.ts).
 *
 * Datagrams offered during one turn of the event loop go out together at the end of it (end-of-turn.ts), so
 * nothing waits longer than the turn; a datagram of another size than the socket's segment ends a batch (the
 * kernel takes a shorter last one). Node has no API for the socket option, so it is set through koffi, the
 * FFI library the service already uses for libsrt; where that is not possible (no koffi, no descriptor,
 * another kernel) every datagram is sent on its own.
 */
import type { Socket } from "node:dgram";
import { settingNow, udpGso } from "../../config/settings.ts";
import { descriptorOf, type Libc, loadLibc, MSG_DONTWAIT, SOL_UDP, UDP_SEGMENT } from "../ffi/libc.ts";
import { runtimeName } from "../process/runtime.ts";
import { atEndOfTurn, cancelEndOfTurn } from "../timers/end-of-turn.ts";
import { stalledMidTurn } from "./send-gates.ts";
import { SEGMENT_BYTES, threadDestination } from "./thread-sender.ts";

/** Below the 65,507-byte UDP payload limit with room to spare: 48 datagrams of 7 TS packets. */
export const MAX_BATCH_BYTES = 48 * 1316;

/** Whether UDP outputs send batches the kernel cuts; read at load, as every thread loads this module. */
export const gsoWanted = settingNow(udpGso, true);

const tryLibc = (): Libc | null => {
  try {
    return loadLibc();
  } catch {
    return null;
  }
};

/**
 * Asks the kernel to cut what is sent on `socket` into datagrams of `bytes`; returns the socket's descriptor,
 * or null when it cannot.
 */
export const segmentSends = (socket: Socket, bytes: number): number | null => {
  if (!gsoWanted) return null;
  const fd = descriptorOf(socket);
  const c = tryLibc();
  if (fd === null || c === null) return null;
  const value = Buffer.alloc(4);
  value.writeInt32LE(bytes);
  return c.setsockopt(fd, SOL_UDP, UDP_SEGMENT, value, 4) === 0 ? fd : null;
};

export interface DatagramSender {
  /** One datagram (a header, if any, and its payload); it leaves by the end of this turn of the event loop. */
  readonly send: (payload: Uint8Array, header: Uint8Array | null) => void;
  /** Sends what waits now (before the socket closes). */
  readonly flush: () => void;
  /**
   * Sends a batch of whole datagrams that is not the sender's own (a channel's turn batch, turn-batch.ts)
   * after what waits, with one system call; null where this sender does not send batches itself.
   */
  readonly sendBatch: ((batch: Buffer, length: number) => void) | null;
  /** Sends what waits and gives up its place on the thread's socket (before the socket closes). */
  readonly close: () => void;
}

/**
 * Datagrams to `socket`'s one destination, batched when the kernel segments for it (`segment`: the size of a
 * full datagram, header included), else each sent on its own. On Node.js a batch is gathered in a buffer of
 * the sender's own and written with send(2) on the socket's descriptor, which costs a fraction of
 * `socket.send` (no request object, no list to walk); whatever that does not take at once (a full send buffer,
 * an error the socket reports) goes through `socket.send` instead, which queues, reports and keeps the order,
 * as it always did.
 */
export const makeDatagramSender = (
  socket: Socket,
  segment: number,
  destination: { readonly address: string; readonly port: number } | null = null,
): DatagramSender => {
  const fd = segmentSends(socket, segment);
  if (fd === null)
    return {
      send: (payload, header) => socket.send(header === null ? payload : [header, payload]),
      flush: () => {},
      sendBatch: null,
      close: () => {},
    };
  const c = runtimeName === "node" ? tryLibc() : null;
  // Made with the first datagram of its own: an output that sends its channel's batches may never need it.
  let batch: Buffer | null = null;
  let parts: Uint8Array[] = [];
  let bytes = 0;
  // Sends handed to `socket.send` and not yet done: while any is, send(2) would overtake it. Counted here
  // rather than asked of the socket at each flush (a call into Node's C++ per output and turn).
  let queued = 0;
  const sent = (error: Error | null) => {
    queued -= 1;
    // Given a callback, node:dgram passes a send's error there instead of emitting it: emitted here, where the
    // output listens for it.
    if (error !== null) socket.emit("error", error);
  };
  const sendThroughSocket = (data: Uint8Array | Uint8Array[]) => {
    try {
      socket.send(data, sent);
      queued += 1;
    } catch {
      // The socket closed meanwhile (its output stopped): nobody is left to send to.
    }
  };
  const flush = () => {
    cancelEndOfTurn(flush);
    if (bytes === 0) return;
    const length = bytes;
    bytes = 0;
    if (stalledMidTurn(Math.ceil(length / segment))) {
      parts = [];
      return;
    }
    if (batch !== null && c !== null) {
      if (queued === 0 && c.send(fd, batch, length, MSG_DONTWAIT) === length) return;
      sendThroughSocket(Buffer.from(batch.subarray(0, length)));
      return;
    }
    const sending = parts;
    parts = [];
    sendThroughSocket(sending.length === 1 ? (sending[0] as Uint8Array) : sending);
  };
  /** A batch that is not the sender's own, through node:dgram: a copy, queued after what waits there. */
  const sendQueued = (shared: Buffer, length: number) =>
    sendThroughSocket(Buffer.from(shared.subarray(0, length)));
  /** A batch that is not the sender's own, after what waits, with one system call of its own. */
  const sendDirect = (shared: Buffer, length: number) => {
    flush();
    if (stalledMidTurn(Math.ceil(length / segment))) return;
    if (queued === 0 && c !== null && c.send(fd, shared, length, MSG_DONTWAIT) === length) return;
    sendQueued(shared, length);
  };
  // A segment of whole TS packets to a destination the thread's socket can reach: batches leave with the
  // thread's others (thread-sender.ts), and through this socket what that one cannot send.
  const thread =
    c === null || destination === null || segment !== SEGMENT_BYTES
      ? null
      : threadDestination(destination.address, destination.port, sendDirect);
  const sendBatch =
    c === null
      ? null
      : thread === null
        ? sendDirect
        : (shared: Buffer, length: number) => {
            // What this socket holds goes first; while any of it waits in node:dgram, so does the batch.
            if (bytes > 0) flush();
            if (queued === 0) thread.send(shared, length);
            else sendQueued(shared, length);
          };
  return {
    send: (payload, header) => {
      const length = payload.length + (header?.length ?? 0);
      if (c !== null) {
        batch ??= Buffer.allocUnsafeSlow(MAX_BATCH_BYTES);
        if (header !== null) batch.set(header, bytes);
        batch.set(payload, bytes + (header?.length ?? 0));
      } else {
        if (header !== null) parts.push(header);
        parts.push(payload);
      }
      bytes += length;
      // Only the last datagram of a batch may be shorter than the segment; a full batch goes at once.
      if (length !== segment || bytes + segment > MAX_BATCH_BYTES) flush();
      else atEndOfTurn(flush);
    },
    flush,
    sendBatch,
    close: () => {
      flush();
      thread?.close();
    },
  };
};
