/**
 * UDP and RTP outputs on Deno send through a connected socket of our own, written with send(2) through koffi
 * (which the service loads for libsrt anyway), because Deno's node:dgram reorders datagrams sent in a burst
 * (99 of 5000 in bursts of 100) and costs twice Node's CPU a datagram, and Deno.listenDatagram's sends are
 * promises that complete in any order (a burst of 100 arrives reversed). Like src/effects/runtime/sockets/segmented.ts
 * does for node:dgram, the datagrams of one turn of the event loop leave in one system call where the kernel
 * cuts them (UDP_SEGMENT), else one by one; either way synchronously and in order.
 *
 * Node.js and Bun keep node:dgram with segmented.ts (measured: on Bun that costs 1.95 µs a datagram, its own
 * Bun.udpSocket 4.2), and so does every destination that needs a socket option (multicast, ttl, a local
 * address). `DISTRIBUTARY_UDP_SENDER=dgram` keeps node:dgram on Deno too.
 */

import { settingNow, udpSenderDgram } from "../../config/settings.ts";
import {
  AF_INET,
  EAGAIN,
  errno,
  loadLibc,
  MSG_DONTWAIT,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_UDP,
  UDP_SEGMENT,
} from "../ffi/libc.ts";
import { runtimeName } from "../process/runtime.ts";
import { atEndOfTurn, cancelEndOfTurn } from "../timers/end-of-turn.ts";
import { markOwnPort } from "./own-ports.ts";
import { gsoWanted, MAX_BATCH_BYTES } from "./segmented.ts";

interface NativeUdpSender {
  readonly kind: "libc";
  /** Sends one datagram, `header` (an RTP header) first when given; never waits. */
  readonly send: (payload: Uint8Array, header: Uint8Array | null) => void;
  /** Sends what waits for the end of the turn now. */
  readonly flush: () => void;
  readonly close: () => Promise<void>;
}

/** Sends the kernel would not take yet, held in order; past that the newest are dropped. */
const PENDING_LIMIT = 4096;

const errnoNames: Record<number, string> = {
  1: "EPERM",
  101: "ENETUNREACH",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
};
const errnoError = (operation: string): Error & { code: string } => {
  const number = errno();
  return Object.assign(new Error(`${operation} failed (errno ${number})`), {
    code: errnoNames[number] ?? `E${number}`,
  });
};

/**
 * A connected socket to address:port (an IPv4 address) whose datagrams of `segment` bytes (header included)
 * are batched; errors after the start (a refused send) go to `onError`.
 */
export const openLibcSender = (
  address: string,
  port: number,
  segment: number,
  onError: (cause: unknown) => void,
): NativeUdpSender => {
  const c = loadLibc();
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw errnoError("socket");
  const sockaddr = Buffer.alloc(16);
  sockaddr.writeUInt16LE(AF_INET, 0);
  sockaddr.writeUInt16BE(port, 2);
  for (const [index, octet] of address.split(".").entries()) sockaddr[4 + index] = Number(octet);
  if (c.connect(fd, sockaddr, 16) < 0) {
    const error = errnoError("connect");
    c.close(fd);
    throw error;
  }
  // The port the kernel chose at the connect: inputs drop what comes from it (own-ports.ts).
  const local = Buffer.alloc(16);
  const localLength = Buffer.alloc(4);
  localLength.writeUInt32LE(16, 0);
  const release = c.getsockname(fd, local, localLength) === 0 ? markOwnPort(local.readUInt16BE(2)) : () => {};
  const option = Buffer.alloc(4);
  option.writeInt32LE(segment, 0);
  const segmented = gsoWanted && c.setsockopt(fd, SOL_UDP, UDP_SEGMENT, option, 4) === 0;

  let open = true;
  // Whole sends (one datagram, or a batch the kernel cuts) the kernel has not taken yet, in order.
  const pending: Uint8Array[] = [];
  let retry: ReturnType<typeof setTimeout> | null = null;
  const batch = new Uint8Array(MAX_BATCH_BYTES);
  let batched = 0;

  /** false when the kernel would not take it now. */
  const write = (data: Uint8Array): boolean => {
    if (c.send(fd, data, data.length, MSG_DONTWAIT) >= 0) return true;
    if (errno() === EAGAIN) return false;
    // Anything else is the writer's to judge (a refused port is harmless for UDP); the data is gone.
    onError(errnoError("send"));
    return true;
  };
  const drain = () => {
    retry = null;
    while (open && pending.length > 0) {
      if (!write(pending[0] as Uint8Array)) {
        retry = setTimeout(drain, 1);
        return;
      }
      pending.shift();
    }
  };
  const emit = (data: Uint8Array) => {
    if (pending.length === 0 && write(data)) return;
    if (pending.length < PENDING_LIMIT) pending.push(data.slice());
    retry ??= setTimeout(drain, 1);
  };
  const flush = () => {
    cancelEndOfTurn(flush);
    if (batched === 0 || !open) return;
    const data = batch.subarray(0, batched);
    batched = 0;
    emit(data);
  };
  return {
    kind: "libc",
    send: (payload, header) => {
      if (!open) return;
      const length = payload.length + (header?.length ?? 0);
      if (!segmented || length > segment) {
        flush();
        const datagram = header === null ? payload : new Uint8Array(length);
        if (header !== null) {
          datagram.set(header, 0);
          datagram.set(payload, header.length);
        }
        emit(datagram);
        return;
      }
      if (header !== null) batch.set(header, batched);
      batch.set(payload, batched + (header?.length ?? 0));
      batched += length;
      // Only the last datagram of a batch may be shorter than the segment; a full batch goes at once.
      if (length !== segment || batched + segment > MAX_BATCH_BYTES) {
        flush();
        return;
      }
      atEndOfTurn(flush);
    },
    flush,
    close: async () => {
      flush();
      open = false;
      cancelEndOfTurn(flush);
      if (retry !== null) clearTimeout(retry);
      c.close(fd);
      release();
    },
  };
};

/** Whether a plain unicast UDP output sends through `openLibcSender` here (Deno) rather than node:dgram. */
export const usesLibcSender = (): boolean => runtimeName === "deno" && !settingNow(udpSenderDgram, false);
