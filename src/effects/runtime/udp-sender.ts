/**
 * UDP and RTP outputs send through something cheaper than node:dgram where the runtime's node:dgram costs
 * more or misbehaves (measured, README.md "Runtimes"):
 * - Bun: Bun.udpSocket, a connected socket whose `send` says when the kernel would not take a datagram, and
 *   whose `drain` says when it will again (what it could not take waits here, in order).
 * - Deno: its node:dgram reorders datagrams sent in a burst (99 of 5000 in bursts of 100) and
 *   Deno.listenDatagram's sends complete in any order too (a burst of 100 arrives reversed), so a connected
 *   socket of our own, written with send(2) through koffi (which the service loads for libsrt anyway):
 *   synchronous, in order, and a third cheaper a datagram than Deno's node:dgram.
 * Node.js keeps node:dgram, and so does every destination that needs a socket option (multicast, ttl, a
 * local address). `DISTRIBUTARY_UDP_SENDER=dgram` keeps node:dgram everywhere.
 */
import koffi from "koffi";
import { runtimeName } from "./runtime.ts";

export interface NativeUdpSender {
  readonly kind: "bun" | "deno";
  /** Sends one datagram, `header` (an RTP header) first when given; never waits. */
  readonly send: (payload: Uint8Array, header: Uint8Array | null) => void;
  readonly close: () => Promise<void>;
}

interface BunUdpSocket {
  send(data: Uint8Array): boolean;
  close(): void;
}
interface BunApi {
  udpSocket(options: {
    connect: { hostname: string; port: number };
    socket?: { drain?: (socket: BunUdpSocket) => void; error?: (socket: BunUdpSocket, error: Error) => void };
  }): Promise<BunUdpSocket>;
}
/** Datagrams a socket holds while the kernel takes none; past that the newest are dropped. */
const PENDING_LIMIT = 4096;

const joined = (payload: Uint8Array, header: Uint8Array | null): Uint8Array => {
  if (header === null) return payload;
  const datagram = new Uint8Array(header.length + payload.length);
  datagram.set(header, 0);
  datagram.set(payload, header.length);
  return datagram;
};

const openBun = async (
  bun: BunApi,
  address: string,
  port: number,
  onError: (cause: unknown) => void,
): Promise<NativeUdpSender> => {
  const pending: Uint8Array[] = [];
  const flush = (socket: BunUdpSocket) => {
    while (pending.length > 0) {
      const next = pending[0] as Uint8Array;
      if (!socket.send(next)) return;
      pending.shift();
    }
  };
  const socket = await bun.udpSocket({
    connect: { hostname: address, port },
    socket: { drain: flush, error: (_socket, error) => onError(error) },
  });
  return {
    kind: "bun",
    send: (payload, header) => {
      const datagram = joined(payload, header);
      if (pending.length === 0 && socket.send(datagram)) return;
      if (pending.length < PENDING_LIMIT) pending.push(datagram);
    },
    close: async () => socket.close(),
  };
};

// Linux x86-64 and arm64 constants.
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;

interface Libc {
  readonly socket: (domain: number, type: number, protocol: number) => number;
  readonly connect: (fd: number, address: Buffer, length: number) => number;
  readonly send: (fd: number, data: Uint8Array, length: number, flags: number) => number;
  readonly close: (fd: number) => number;
}
let libc: Libc | null = null;
const loadLibc = (): Libc => {
  if (libc !== null) return libc;
  const lib = koffi.load("libc.so.6");
  libc = {
    socket: lib.func("int socket(int, int, int)"),
    connect: lib.func("int connect(int, const void *, uint32_t)"),
    send: lib.func("intptr_t send(int, const void *, size_t, int)"),
    close: lib.func("int close(int)"),
  };
  return libc;
};

const errnoError = (operation: string): Error & { code: string } => {
  const errno = koffi.errno();
  const codes: Record<number, string> = {
    111: "ECONNREFUSED",
    101: "ENETUNREACH",
    113: "EHOSTUNREACH",
    1: "EPERM",
  };
  return Object.assign(new Error(`${operation} failed (errno ${errno})`), {
    code: codes[errno] ?? `E${errno}`,
  });
};

const openLibc = (address: string, port: number, onError: (cause: unknown) => void): NativeUdpSender => {
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
  let open = true;
  const pending: Uint8Array[] = [];
  let retry: ReturnType<typeof setTimeout> | null = null;
  /** false when the kernel would not take it now. */
  const write = (datagram: Uint8Array): boolean => {
    if (c.send(fd, datagram, datagram.length, MSG_DONTWAIT) >= 0) return true;
    if (koffi.errno() === EAGAIN) return false;
    // Anything else is the writer's to judge (a refused port is harmless for UDP); the datagram is gone.
    onError(errnoError("send"));
    return true;
  };
  const flush = () => {
    retry = null;
    while (open && pending.length > 0) {
      if (!write(pending[0] as Uint8Array)) {
        retry = setTimeout(flush, 1);
        return;
      }
      pending.shift();
    }
  };
  return {
    kind: "deno",
    send: (payload, header) => {
      if (!open) return;
      const datagram = joined(payload, header);
      if (pending.length === 0 && write(datagram)) return;
      if (pending.length < PENDING_LIMIT) pending.push(datagram);
      retry ??= setTimeout(flush, 1);
    },
    close: async () => {
      open = false;
      if (retry !== null) clearTimeout(retry);
      c.close(fd);
    },
  };
};

/** Which runtime API a plain unicast UDP output sends through here: null for node:dgram. */
export const nativeUdpSenderKind = (): NativeUdpSender["kind"] | null => {
  if (process.env.DISTRIBUTARY_UDP_SENDER === "dgram") return null;
  if (runtimeName === "bun" && (globalThis as { readonly Bun?: BunApi }).Bun !== undefined) return "bun";
  if (runtimeName === "deno") return "deno";
  return null;
};

/**
 * A sender to address:port (an IPv4 address, no options); only where
 * `nativeUdpSenderKind()` names one. Errors after the start (a refused send) go to `onError`.
 */
export const openNativeUdpSender = async (
  address: string,
  port: number,
  onError: (cause: unknown) => void,
): Promise<NativeUdpSender> => {
  const bun = (globalThis as { readonly Bun?: BunApi }).Bun;
  const kind = nativeUdpSenderKind();
  if (kind === "bun" && bun !== undefined) return openBun(bun, address, port, onError);
  if (kind === "deno") return openLibc(address, port, onError);
  throw new Error("no native UDP sender on this runtime");
};
