/**
 * The C library's socket calls the service makes itself, through koffi (the FFI library it loads for libsrt
 * anyway), where a runtime's own sockets cannot do what is needed: socket options Node.js has no API for
 * (UDP_SEGMENT, SO_RCVBUF on Deno), reading many datagrams in one call (recvmmsg), sending a batch
 * straight from a buffer, or many batches to many destinations in one call (sendmmsg), and a thread's
 * scheduling (priority.ts). One binding, loaded on first use; Linux x86-64 and arm64 constants.
 */
import type { Socket } from "node:dgram";
import koffi from "koffi";

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
/** sizeof(struct mmsghdr) and sizeof(struct iovec) on 64-bit Linux. */
export const MMSGHDR_BYTES = 64;
export const IOVEC_BYTES = 16;
export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SOL_UDP = 17;
export const UDP_SEGMENT = 103;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const EAGAIN = 11;
export const EINTR = 4;
export const ENOBUFS = 105;
export const EPERM = 1;
export const EACCES = 13;

export interface Libc {
  readonly socket: (domain: number, type: number, protocol: number) => number;
  readonly bind: (fd: number, address: Uint8Array, length: number) => number;
  readonly connect: (fd: number, address: Uint8Array, length: number) => number;
  /** `length` holds the size of `address` in and the size written out (a uint32). */
  readonly getsockname: (fd: number, address: Uint8Array, length: Uint8Array) => number;
  readonly setsockopt: (fd: number, level: number, name: number, value: Uint8Array, length: number) => number;
  readonly send: (fd: number, data: Uint8Array, length: number, flags: number) => number;
  /** `messages` is an address (of memory the caller keeps alive, as the buffers its iovecs point at). */
  readonly sendmmsg: (fd: number, messages: number, count: number, flags: number) => number;
  /** `messages` and `timeout` are addresses (of memory the caller keeps alive); 0 for no timeout. */
  readonly recvmmsg: (fd: number, messages: number, count: number, flags: number, timeout: number) => number;
  readonly inet_ntop: (family: number, source: Uint8Array, text: Uint8Array, size: number) => number;
  readonly close: (fd: number) => number;
  /** `param` is a struct sched_param (one int); pid 0 is the calling thread. */
  readonly sched_setscheduler: (pid: number, policy: number, param: Uint8Array) => number;
  /** On Linux `who` 0 with PRIO_PROCESS is the calling thread alone. */
  readonly setpriority: (which: number, who: number, nice: number) => number;
}

let libc: Libc | null = null;
export const loadLibc = (): Libc => {
  if (libc !== null) return libc;
  const lib = koffi.load("libc.so.6");
  libc = {
    socket: lib.func("int socket(int, int, int)"),
    bind: lib.func("int bind(int, const void *, uint32_t)"),
    connect: lib.func("int connect(int, const void *, uint32_t)"),
    getsockname: lib.func("int getsockname(int, void *, void *)"),
    setsockopt: lib.func("int setsockopt(int, int, int, const void *, uint32_t)"),
    send: lib.func("intptr_t send(int, const void *, size_t, int)"),
    sendmmsg: lib.func("int sendmmsg(int, uintptr_t, unsigned int, int)"),
    recvmmsg: lib.func("int recvmmsg(int, uintptr_t, unsigned int, int, uintptr_t)"),
    inet_ntop: lib.func("uintptr_t inet_ntop(int, const void *, void *, uint32_t)"),
    close: lib.func("int close(int)"),
    sched_setscheduler: lib.func("int sched_setscheduler(int, int, const void *)"),
    setpriority: lib.func("int setpriority(int, uint32_t, int)"),
  };
  return libc;
};

/** The error number the last call through koffi left. */
export const errno = (): number => koffi.errno();

/** The address of a buffer's bytes; they must not move (a Buffer of its own memory, never a pooled one). */
export const addressOf = (buffer: Uint8Array): number => Number(koffi.address(buffer));

/** A node:dgram socket's file descriptor, from Node's internal state (no public API names it); null if none. */
export const descriptorOf = (socket: Socket): number | null => {
  const handle = handleOf(socket);
  return typeof handle?.fd === "number" && handle.fd >= 0 ? handle.fd : null;
};

interface UdpHandle {
  readonly fd?: unknown;
  readonly recvStop?: () => number;
  readonly recvStart?: () => number;
}

/** A node:dgram socket's libuv handle (Node's internal state), or undefined. */
export const handleOf = (socket: Socket): UdpHandle | undefined => {
  const state = Object.getOwnPropertySymbols(socket).find((symbol) => symbol.description === "state symbol");
  return state === undefined
    ? undefined
    : (socket as unknown as Record<symbol, { handle?: UdpHandle }>)[state]?.handle;
};

/** Watches a descriptor for readability on the runtime's own event loop (koffi's libuv poll), if it can. */
export interface Readiness {
  readonly start: () => void;
  readonly stop: () => void;
  readonly close: () => void;
}
export const watchReadable = (fd: number, onReadable: () => void): Readiness | null => {
  const poll = (koffi as unknown as { node?: { poll?: typeof koffi.node.poll } }).node?.poll;
  if (typeof poll !== "function") return null;
  const handle = poll(fd, { readable: true }, onReadable);
  return {
    start: () => handle.start({ readable: true }, onReadable),
    stop: () => handle.stop(),
    close: () => handle.close(),
  };
};
