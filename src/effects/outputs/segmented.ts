/**
 * Datagrams to one UDP destination, several per system call: Linux's UDP segmentation offload (UDP_SEGMENT,
 * kernel 4.18+) lets one send carry up to 64 KiB that the kernel cuts into datagrams of a fixed size. A
 * datagram's send is most of the fan-out's CPU (a profile of 10 channels × 4 UDP outputs: 75 % in
 * `socket.send`), and batching them costs a third as much per datagram on loopback
 * (load-tests/bench-segmented.ts).
 *
 * Datagrams offered during one turn of the event loop go out together at the end of it (setImmediate), so
 * nothing waits longer than the turn; a datagram of another size than the socket's segment ends a batch (the
 * kernel takes a shorter last one). Node has no API for the socket option, so it is set through koffi, the
 * FFI library the service already uses for libsrt; where that is not possible (no koffi, no descriptor,
 * another kernel) every datagram is sent on its own, as before.
 */
import type { Socket } from "node:dgram";
import { createRequire } from "node:module";

const SOL_UDP = 17;
const UDP_SEGMENT = 103;
/** Below the 65,507-byte UDP payload limit with room to spare: 48 datagrams of 7 TS packets. */
export const MAX_BATCH_BYTES = 48 * 1316;

type SetSockOpt = (fd: number, level: number, name: number, value: Buffer, length: number) => number;

let setsockopt: SetSockOpt | null | undefined;
const loadSetSockOpt = (): SetSockOpt | null => {
  if (setsockopt !== undefined) return setsockopt;
  try {
    const koffi = createRequire(import.meta.url)("koffi") as typeof import("koffi");
    setsockopt = koffi
      .load("libc.so.6")
      .func("int setsockopt(int, int, int, const void *, uint32_t)") as SetSockOpt;
  } catch {
    setsockopt = null;
  }
  return setsockopt;
};

/** The socket's file descriptor, from Node's internal state (no public API names it); null if not there. */
const descriptorOf = (socket: Socket): number | null => {
  const state = Object.getOwnPropertySymbols(socket).find((symbol) => symbol.description === "state symbol");
  const handle =
    state === undefined
      ? undefined
      : (socket as unknown as Record<symbol, { handle?: { fd?: unknown } }>)[state]?.handle;
  return typeof handle?.fd === "number" && handle.fd >= 0 ? handle.fd : null;
};

/** `DISTRIBUTARY_UDP_GSO=off` sends every datagram on its own (for a network path that mishandles it). */
const wanted = process.env.DISTRIBUTARY_UDP_GSO !== "off";

/** Asks the kernel to cut what is sent on `socket` into datagrams of `bytes`; false when it cannot. */
export const segmentSends = (socket: Socket, bytes: number): boolean => {
  if (!wanted) return false;
  const fd = descriptorOf(socket);
  const call = loadSetSockOpt();
  if (fd === null || call === null) return false;
  const value = Buffer.alloc(4);
  value.writeInt32LE(bytes);
  return call(fd, SOL_UDP, UDP_SEGMENT, value, 4) === 0;
};

// Flushes asked for during this turn of the event loop, run together at its end.
const waiting = new Set<() => void>();
let flushScheduled = false;
const flushAll = () => {
  flushScheduled = false;
  const flushes = [...waiting];
  waiting.clear();
  for (const flush of flushes) flush();
};
/** Runs `flush` once at the end of this turn of the event loop (asking again in the same turn changes nothing). */
export const atEndOfTurn = (flush: () => void): void => {
  waiting.add(flush);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushAll);
  }
};
export const cancelEndOfTurn = (flush: () => void): void => {
  waiting.delete(flush);
};

export interface DatagramSender {
  /** One datagram (a header, if any, and its payload); it leaves by the end of this turn of the event loop. */
  readonly send: (payload: Uint8Array, header: Uint8Array | null) => void;
  /** Sends what waits now (before the socket closes). */
  readonly flush: () => void;
}

/**
 * Datagrams to `socket`'s one destination, batched when the kernel segments for it (`segment`: the size of a
 * full datagram, header included), else each sent on its own.
 */
export const makeDatagramSender = (socket: Socket, segment: number): DatagramSender => {
  if (!segmentSends(socket, segment))
    return {
      send: (payload, header) => socket.send(header === null ? payload : [header, payload]),
      flush: () => {},
    };
  let parts: Uint8Array[] = [];
  let bytes = 0;
  const flush = () => {
    cancelEndOfTurn(flush);
    if (parts.length === 0) return;
    const sending = parts;
    parts = [];
    bytes = 0;
    try {
      socket.send(sending.length === 1 ? (sending[0] as Uint8Array) : sending);
    } catch {
      // The socket closed meanwhile (its output stopped): nobody is left to send to.
    }
  };
  return {
    send: (payload, header) => {
      const length = payload.length + (header?.length ?? 0);
      if (header !== null) parts.push(header);
      parts.push(payload);
      bytes += length;
      // Only the last datagram of a batch may be shorter than the segment; a full batch goes at once.
      if (length !== segment || bytes + segment > MAX_BATCH_BYTES) flush();
      else atEndOfTurn(flush);
    },
    flush,
  };
};
