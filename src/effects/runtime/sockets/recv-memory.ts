/**
 * The memory the batch reader (batch-reader.ts) has recvmmsg(2) read datagrams into: a block laid out as struct
 * mmsghdr, iovec, sockaddr and data slots (this thread's own, or a packet core's read slots), the sender of
 * each slot's datagram read from its sockaddr, and each slot's datagram as a view into the block. Linux on
 * 64 bits; the block is reused from one call to the next.
 */
import type { RemoteInfo } from "node:dgram";
import type { ReadSlots } from "../../../core/packet-core.ts";
import { AF_INET, AF_INET6, addressOf, IOVEC_BYTES, type Libc, MMSGHDR_BYTES } from "../ffi/libc.ts";

/** Datagrams one recvmmsg call takes at most. */
export const SLOTS = 64;
/** Room for one datagram: TS over UDP is at most 7 × 188 bytes and an RTP header; a bigger one is cut. */
const SLOT_BYTES = 8192;
/** struct mmsghdr and struct iovec on 64-bit Linux; a sockaddr_in6 fits the name. */
export const NAME_BYTES = 32;
const HEADERS_AT = 0;
const IOVECS_AT = HEADERS_AT + SLOTS * MMSGHDR_BYTES;
const NAMES_AT = IOVECS_AT + SLOTS * IOVEC_BYTES;
const DATA_AT = NAMES_AT + SLOTS * NAME_BYTES;
const MEMORY_BYTES = DATA_AT + SLOTS * SLOT_BYTES;

/** Where one socket's reads land: a block of memory laid out for recvmmsg, and its native address. */
export interface Landing {
  readonly block: Buffer;
  /** The native address of block[0]. */
  readonly base: number;
  readonly headers: number;
  readonly names: number;
  readonly data: number;
  readonly slotBytes: number;
  /** Datagrams one call reads at most. */
  readonly slots: number;
}

/** Fills in the struct mmsghdr array of `block` (each slot's name, iovec and data); returns its landing. */
const lay = (
  block: Buffer,
  at: { headers: number; iovecs: number; names: number; data: number; slotBytes: number; slots: number },
): Landing => {
  const base = addressOf(block);
  for (let slot = 0; slot < at.slots; slot++) {
    const header = at.headers + slot * MMSGHDR_BYTES;
    const iovec = at.iovecs + slot * IOVEC_BYTES;
    // struct msghdr: name, namelen, iov, iovlen (control, controllen and flags stay 0), then msg_len.
    block.writeBigUInt64LE(BigInt(base + at.names + slot * NAME_BYTES), header);
    block.writeUInt32LE(NAME_BYTES, header + 8);
    block.writeBigUInt64LE(BigInt(base + iovec), header + 16);
    block.writeBigUInt64LE(1n, header + 24);
    block.writeBigUInt64LE(BigInt(base + at.data + slot * at.slotBytes), iovec);
    block.writeBigUInt64LE(BigInt(at.slotBytes), iovec + 8);
  }
  const { headers, names, data, slotBytes, slots } = at;
  return { block, base, headers, names, data, slotBytes, slots };
};

// One thread's memory for every socket it reads into no core (each worker thread has its own copy of this
// module).
let shared: Landing | null = null;

/** This thread's own landing, laid out once. */
export const sharedLanding = (): Landing => {
  shared ??= lay(Buffer.allocUnsafeSlow(MEMORY_BYTES).fill(0), {
    headers: HEADERS_AT,
    iovecs: IOVECS_AT,
    names: NAMES_AT,
    data: DATA_AT,
    slotBytes: SLOT_BYTES,
    slots: SLOTS,
  });
  return shared;
};

/** A core's read slots as a landing, when they have this reader's shape. */
export const landingIn = (slots: ReadSlots): Landing | null => {
  if (slots.slots < 1 || slots.slots > SLOTS || slots.slotBytes < 2048) return null;
  const block = Buffer.from(slots.memory.buffer, slots.memory.byteOffset, slots.memory.byteLength);
  return lay(block, slots);
};

/** The sender cached for a socket's reads: the last one, reused while datagrams keep coming from it. */
interface SenderCache {
  readonly landing: Landing;
  sender: RemoteInfo | null;
  /** The last sender's sockaddr, as words. */
  key: [number, number, number, number, number, number];
}

/** Each slot's last view of a socket's landing (`viewOf`). */
interface SlotViews {
  readonly landing: Landing;
  readonly views: Array<Buffer | null>;
}

const text = Buffer.alloc(64);

/** The sender of the datagram in `slot`: the object from before while it is the same address and port. */
export const senderOf = (reading: SenderCache, slot: number, libc: Libc): RemoteInfo | null => {
  const block = reading.landing.block;
  const at = reading.landing.names + slot * NAME_BYTES;
  const head = block.readUInt32LE(at);
  const family = head & 0xffff;
  const key = reading.key;
  const a = block.readUInt32LE(at + 4);
  if (family === AF_INET) {
    if (reading.sender !== null && key[0] === head && key[1] === a) return reading.sender;
    key[0] = head;
    key[1] = a;
  } else if (family === AF_INET6) {
    const b = block.readUInt32LE(at + 8);
    const c = block.readUInt32LE(at + 12);
    const d = block.readUInt32LE(at + 16);
    const e = block.readUInt32LE(at + 20);
    if (
      reading.sender !== null &&
      key[0] === head &&
      key[2] === b &&
      key[3] === c &&
      key[4] === d &&
      key[5] === e
    )
      return reading.sender;
    key[0] = head;
    key[2] = b;
    key[3] = c;
    key[4] = d;
    key[5] = e;
  } else return null;
  const v4 = family === AF_INET;
  const source = block.subarray(at + (v4 ? 4 : 8), at + (v4 ? 8 : 24));
  libc.inet_ntop(family, source, text, text.length);
  const end = text.indexOf(0);
  reading.sender = {
    address: text.toString("latin1", 0, end < 0 ? text.length : end),
    family: v4 ? "IPv4" : "IPv6",
    port: block.readUInt16BE(at + 2),
    size: 0,
  };
  return reading.sender;
};

/** Each slot's view of the last length it held: a stream's datagrams are mostly of one size. */
export const viewOf = (reading: SlotViews, slot: number, start: number, length: number): Buffer => {
  const views = reading.views;
  const view = views[slot];
  if (view !== null && view !== undefined && view.length === length) return view;
  const made = reading.landing.block.subarray(start, start + length);
  views[slot] = made;
  return made;
};
