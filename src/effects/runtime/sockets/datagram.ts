/**
 * The one datagram-socket difference between the runtimes that the service must work around: the kernel
 * receive buffer of an input socket. Node.js and Bun set it through `socket.setRecvBufferSize`; Deno's
 * node:dgram (2.9) accepts the call and reports the size back, but never applies it, so an input keeps the
 * kernel's default (about 208 KiB, some 90 datagrams) and a worker held up for a few hundred milliseconds
 * loses datagrams. On Deno the size is set on the socket's file descriptor itself, found through /proc (the
 * socket of our process bound to that local port) and set with setsockopt(2) through koffi, which the
 * service already loads for libsrt.
 */
import type { Socket } from "node:dgram";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { loadLibc, SO_RCVBUF, SOL_SOCKET } from "../ffi/libc.ts";
import { runtimeName } from "../process/runtime.ts";

/** Inodes of the UDP sockets bound to local `port` (any address, IPv4 and IPv6), from /proc/net/udp{,6}. */
export const udpInodesOnPort = (port: number): ReadonlySet<string> => {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[9] !== undefined) inodes.add(fields[9]);
    }
  }
  return inodes;
};

/** Our file descriptors that are one of these sockets. */
export const descriptorsOf = (inodes: ReadonlySet<string>): ReadonlyArray<number> => {
  const found: number[] = [];
  for (const entry of readdirSync("/proc/self/fd")) {
    let target = "";
    try {
      target = readlinkSync(`/proc/self/fd/${entry}`);
    } catch {
      continue;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode !== undefined && inodes.has(inode)) found.push(Number(entry));
  }
  return found;
};

/**
 * Asks the kernel for a receive buffer of `bytes` on a bound socket (capped by net.core.rmem_max, as for any
 * program). Returns false when it could not be set; the socket still works, only with less headroom.
 */
export const setReceiveBuffer = (socket: Socket, bytes: number): boolean => {
  if (runtimeName !== "deno") {
    try {
      socket.setRecvBufferSize(bytes);
      return true;
    } catch {
      return false;
    }
  }
  try {
    const descriptors = descriptorsOf(udpInodesOnPort(socket.address().port));
    const value = Buffer.alloc(4);
    value.writeInt32LE(bytes, 0);
    let set = false;
    const { setsockopt } = loadLibc();
    for (const fd of descriptors) set = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, value, 4) === 0 || set;
    return set;
  } catch {
    return false;
  }
};
