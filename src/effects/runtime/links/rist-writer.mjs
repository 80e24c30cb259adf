/**
 * The thread that makes a forwarding thread's RIST sends (started by rist-sends.ts, one per forwarding thread
 * with RIST outputs). rist_sender_data_write takes the lock librist's own sender thread holds while it sends up
 * to 100 datagrams, retransmits and frees what it sent; when that thread is descheduled holding it, the caller
 * waits, once for 61 ms in a 10 × 4 run (docs/benchmarks.md). Here the wait costs this thread alone.
 *
 * The forwarding thread writes records into a shared ring (rist-sends.ts lays them out): the librist context's
 * address and a chunk, which this thread cuts into messages of 1316 bytes (seven TS packets). It waits on the
 * ring's write position, sends every record up to it, publishes its read position and waits again; a stop
 * flag ends it. Plain JavaScript, for it loads nothing of the project but koffi.
 */
import { workerData } from "node:worker_threads";
import koffi from "koffi";

const { control, ring, words: at, nice } = workerData;
// The forwarding thread's nice value (priority.ts): Linux gives it to this thread alone.
if (nice !== 0) koffi.load("libc.so.6").func("int setpriority(int, uint32_t, int)")(0, 0, nice);
const words = new Int32Array(control);
const data = new Int32Array(ring);
const mask = ring.byteLength - 1;
const base = Number(koffi.address(new Uint8Array(ring)));
const write = koffi.load("librist.so.4").func("int rist_sender_data_write(uintptr_t ctx, uintptr_t block)");
// One struct rist_data_block (72 bytes), all zero but the payload's address and length.
const block = Buffer.allocUnsafeSlow(72).fill(0);
const blockWords = new Uint32Array(block.buffer, block.byteOffset, 18);
const blockAddress = Number(koffi.address(block));
const MESSAGE_BYTES = 1316;

let read = Atomics.load(words, at.read);
while (Atomics.load(words, at.stop) === 0) {
  const written = Atomics.load(words, at.write);
  if (written === read) {
    Atomics.wait(words, at.write, read, 1000);
    continue;
  }
  while (read !== written) {
    const offset = read & mask;
    const length = data[offset >> 2];
    if (length < 0) {
      // The rest of the ring is too short for the next record: it starts at the ring's beginning.
      read = (read + (ring.byteLength - offset)) | 0;
      continue;
    }
    const ctx = (data[(offset >> 2) + 2] >>> 0) + (data[(offset >> 2) + 3] >>> 0) * 0x1_0000_0000;
    const payload = base + offset + at.header;
    for (let sent = 0; sent < length; sent += MESSAGE_BYTES) {
      const address = payload + sent;
      blockWords[0] = address % 0x1_0000_0000;
      blockWords[1] = Math.floor(address / 0x1_0000_0000);
      blockWords[2] = Math.min(MESSAGE_BYTES, length - sent);
      write(ctx, blockAddress);
    }
    read = (read + at.header + ((length + 7) & ~7)) | 0;
  }
  Atomics.store(words, at.read, read);
  Atomics.notify(words, at.read);
}
