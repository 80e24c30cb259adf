/**
 * One system call a turn for every plain UDP output of a thread. A channel's turn batch (turn-batch.ts) goes to
 * each of its plain UDP outputs; each output used to send it with a send(2) of its own, so a thread forwarding
 * 25 channels × 4 outputs made 100 system calls a turn, and each entry into the kernel has its cost (more in a
 * virtual machine). Here the batches wait in one list until the end of the turn and leave with one sendmmsg(2)
 * on one unconnected socket of the thread, each message addressed to its output's destination; UDP_SEGMENT,
 * set on the socket, still has the kernel cut every message into datagrams of 7 TS packets.
 *
 * What this socket cannot send goes through the output's own socket instead (`direct`), as it did before: a
 * message the kernel refuses (a firewall, a broadcast address, no route) there, where the output reports the
 * error as before; all that remains when the socket's send buffer is full. The outputs send from the thread
 * socket's port, marked as the service's own (own-ports.ts) so that an output aimed at an input cannot loop.
 *
 * The memory of a batch must stay as it is until the turn's send: a turn batch that must reuse its memory
 * sooner calls `settleThreadSends` first. Node.js only (koffi, as segmented.ts, which asks for a destination only
 * where the kernel segments); IPv4 destinations.
 */
import { DATAGRAM } from "../../../core/ts/index.ts";
import {
  AF_INET,
  addressOf,
  EAGAIN,
  EINTR,
  ENOBUFS,
  errno,
  IOVEC_BYTES,
  type Libc,
  loadLibc,
  MMSGHDR_BYTES,
  MSG_DONTWAIT,
  SO_SNDBUF,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_SOCKET,
  SOL_UDP,
  UDP_SEGMENT,
} from "../ffi/libc.ts";
import { atEndOfTurn, cancelEndOfTurn } from "../timers/end-of-turn.ts";
import { markOwnPort } from "./own-ports.ts";
import { stalledMidTurn } from "./send-gates.ts";

/** Sends `length` bytes of `batch`: whole datagrams of SEGMENT_BYTES, the last one maybe shorter. */
export type BatchSink = (batch: Buffer, length: number) => void;

/** Seven TS packets: the datagram UDP outputs send, and the size the kernel cuts the thread's messages into. */
export const SEGMENT_BYTES = DATAGRAM;

/** Messages one sendmmsg takes here; more in one turn leave in more calls. */
const MESSAGES = 256;
/** struct mmsghdr and struct iovec on 64-bit Linux. */
const IOVECS_AT = MESSAGES * MMSGHDR_BYTES;
const MEMORY_BYTES = IOVECS_AT + MESSAGES * IOVEC_BYTES;
const SOCKADDR_IN_BYTES = 16;
/** Room for a few turns of every output of a thread in the kernel, where it allows that much (wmem_max). */
const SEND_BUFFER_BYTES = 4 * 1024 * 1024;

interface ThreadSocket {
  readonly c: Libc;
  readonly fd: number;
  readonly memory: Buffer;
  /** The memory as 32-bit words, to write addresses and lengths without a call each. */
  readonly words: Uint32Array;
  readonly base: number;
  readonly releasePort: () => void;
}

let open: ThreadSocket | null = null;
/** How many outputs send through the thread's socket: the last one to go closes it. */
let users = 0;
/** Set once the socket could not be made: every output keeps its own from then on. */
let unavailable = false;

// The turn's messages: what each sends, and where it goes if this socket cannot send it.
let queued = 0;
const batches: Array<Buffer | null> = new Array(MESSAGES).fill(null);
const lengths = new Int32Array(MESSAGES);
const directs: Array<BatchSink | null> = new Array(MESSAGES).fill(null);

/** The address of a batch's memory, asked of koffi once per batch; the one before is at hand (its outputs). */
const addresses = new WeakMap<Buffer, number>();
let lastBatch: Buffer | null = null;
let lastLow = 0;
let lastHigh = 0;
const lookUp = (batch: Buffer) => {
  let address = addresses.get(batch);
  if (address === undefined) {
    address = addressOf(batch);
    addresses.set(batch, address);
  }
  lastBatch = batch;
  lastLow = low(address);
  lastHigh = high(address);
};

const low = (address: number) => address >>> 0;
const high = (address: number) => Math.floor(address / 0x1_0000_0000);

const openSocket = (): ThreadSocket | null => {
  let c: Libc;
  try {
    c = loadLibc();
  } catch {
    return null;
  }
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return null;
  const option = Buffer.alloc(4);
  option.writeInt32LE(SEGMENT_BYTES);
  const any = Buffer.alloc(SOCKADDR_IN_BYTES);
  any.writeUInt16LE(AF_INET, 0);
  const bound = Buffer.alloc(SOCKADDR_IN_BYTES);
  const boundLength = Buffer.alloc(4);
  boundLength.writeUInt32LE(SOCKADDR_IN_BYTES);
  if (
    c.setsockopt(fd, SOL_UDP, UDP_SEGMENT, option, 4) !== 0 ||
    c.bind(fd, any, SOCKADDR_IN_BYTES) !== 0 ||
    c.getsockname(fd, bound, boundLength) !== 0
  ) {
    c.close(fd);
    return null;
  }
  // The kernel caps it at net.core.wmem_max; a smaller buffer only sends more through the outputs' own.
  option.writeInt32LE(SEND_BUFFER_BYTES);
  c.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, option, 4);
  const memory = Buffer.allocUnsafeSlow(MEMORY_BYTES).fill(0);
  const base = addressOf(memory);
  const words = new Uint32Array(memory.buffer, memory.byteOffset, MEMORY_BYTES / 4);
  for (let slot = 0; slot < MESSAGES; slot++) {
    const header = (slot * MMSGHDR_BYTES) / 4;
    // struct msghdr: name and namelen (the name is each message's), iov and iovlen; no control.
    words[header + 2] = SOCKADDR_IN_BYTES;
    const iovec = base + IOVECS_AT + slot * IOVEC_BYTES;
    words[header + 4] = low(iovec);
    words[header + 5] = high(iovec);
    words[header + 6] = 1;
  }
  return { c, fd, memory, words, base, releasePort: markOwnPort(bound.readUInt16BE(2)) };
};

/** Sends the turn's messages now: one call, or a few where they are many or some cannot go. */
const flush = () => {
  cancelEndOfTurn(flush);
  const count = queued;
  if (count === 0 || open === null) return;
  if (stalledMidTurn(datagramsOf(count))) {
    release(count);
    return;
  }
  const { c, fd, base } = open;
  let from = 0;
  while (from < count) {
    const sent = c.sendmmsg(fd, base + from * MMSGHDR_BYTES, count - from, MSG_DONTWAIT);
    if (sent > 0) {
      from += sent;
      continue;
    }
    const code = errno();
    if (code === EINTR) continue;
    // A full send buffer: the rest go through the outputs' own sockets, each with a buffer of its own.
    const until = code === EAGAIN || code === ENOBUFS ? count : from + 1;
    // The first message the kernel refused: its output's own socket sends it and reports what it meets.
    for (; from < until; from++) directs[from]?.(batches[from] as Buffer, lengths[from] as number);
  }
  release(count);
};

/** The turn's `count` messages are done with: the batches are theirs again, nothing here keeps them alive. */
const release = (count: number) => {
  queued = 0;
  batches.fill(null, 0, count);
  directs.fill(null, 0, count);
};

/** The datagrams the turn's first `count` messages carry. */
const datagramsOf = (count: number) => {
  let datagrams = 0;
  for (let at = 0; at < count; at++) datagrams += Math.ceil((lengths[at] as number) / SEGMENT_BYTES);
  return datagrams;
};

/** Sends what waits now: a turn batch calls it before it reuses memory it handed out this turn. */
export const settleThreadSends = (): void => {
  if (queued > 0) flush();
};

interface ThreadDestination {
  /** The batch leaves with the thread's others at the end of the turn; its memory must not change until then. */
  readonly send: BatchSink;
  /** Sends what waits; the thread's socket closes with its last destination. */
  readonly close: () => void;
}

/**
 * A destination on the thread's socket for an output whose own socket sends through `direct`; null where the
 * thread has no such socket (another runtime, no koffi, segmentation off, an IPv6 address).
 */
export const threadDestination = (
  address: string,
  port: number,
  direct: BatchSink,
): ThreadDestination | null => {
  const parts = address.split(".");
  if (unavailable || parts.length !== 4) return null;
  open ??= openSocket();
  if (open === null) {
    unavailable = true;
    return null;
  }
  users += 1;
  const name = Buffer.alloc(SOCKADDR_IN_BYTES);
  name.writeUInt16LE(AF_INET, 0);
  name.writeUInt16BE(port, 2);
  for (let i = 0; i < 4; i++) name[4 + i] = Number(parts[i]);
  const nameLow = low(addressOf(name));
  const nameHigh = high(addressOf(name));
  let closed = false;
  return {
    send: (batch, length) => {
      if (queued === MESSAGES) flush();
      const words = (open as ThreadSocket).words;
      const slot = queued++;
      batches[slot] = batch;
      lengths[slot] = length;
      directs[slot] = direct;
      const header = slot * (MMSGHDR_BYTES / 4);
      words[header] = nameLow;
      words[header + 1] = nameHigh;
      if (batch !== lastBatch) lookUp(batch);
      const iovec = (IOVECS_AT + slot * IOVEC_BYTES) / 4;
      words[iovec] = lastLow;
      words[iovec + 1] = lastHigh;
      words[iovec + 2] = length;
      if (slot === 0) atEndOfTurn(flush);
    },
    close: () => {
      if (closed) return;
      closed = true;
      flush();
      // Until here the name is kept alive (the messages pointed at it); no message does now.
      name.fill(0);
      users -= 1;
      if (users > 0 || open === null) return;
      open.c.close(open.fd);
      open.releasePort();
      open = null;
    },
  };
};
