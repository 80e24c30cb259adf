/**
 * A forwarding thread's RIST sends, handed to a thread of their own (rist-writer.mjs) so that no librist call
 * that can wait runs on the forwarding thread's event loop: rist_sender_data_write waits on a lock of librist's
 * sender thread, once 61 ms in a 10 × 4 run (docs/benchmarks.md), and every channel of the thread waited too.
 *
 * Each send copies its chunk into a ring of shared memory with the context's address; the ring's write position
 * is published at the end of the turn (end-of-turn.ts), so the writer wakes once a turn, as libsrt's send thread
 * does for the SRT writers. A full ring refuses the chunk (the caller counts it): a forwarding thread never
 * waits for the writer. Closing a context waits (asynchronously) until the writer has passed everything sent to
 * it, so librist's context is destroyed only once nothing will write to it. The writer starts with the thread's
 * first RIST output and stops with its last. Node.js only, as librist.ts.
 */
import { Worker } from "node:worker_threads";
import { HIGH_NICE, thisThreadPriority } from "../threads/priority.ts";
import { atEndOfTurn, cancelEndOfTurn } from "../timers/end-of-turn.ts";

/** About 400 ms of 40 outputs of 7 Mbit/s: the writer may fall that far behind before a chunk is refused. */
const RING_BYTES = 16 * 1024 * 1024;
/** A record: the chunk's length, a spare word, the context's address in two words; the chunk, to 8 bytes. */
const HEADER_BYTES = 16;
/** Where the positions live in the control words (the writer reads the same layout). */
const AT = { write: 0, read: 1, stop: 2, header: HEADER_BYTES } as const;
/** How long a closing context waits for the writer at most, should the writer have died. */
const CLOSE_WAIT_MS = 5000;

interface Writer {
  readonly worker: Worker;
  readonly words: Int32Array;
  readonly data: Int32Array;
  readonly bytes: Uint8Array;
  /** The next record's position (a byte count that wraps at 2^32, as the writer's read position). */
  written: number;
  users: number;
  alive: boolean;
  /** Publishes the write position and wakes the writer: one call a turn for all of the thread's outputs. */
  readonly publish: () => void;
}

let writer: Writer | null = null;

const start = (): Writer => {
  const control = new SharedArrayBuffer(4 * 4);
  const ring = new SharedArrayBuffer(RING_BYTES);
  const worker = new Worker(new URL("./rist-writer.mjs", import.meta.url), {
    // At the forwarding thread's own priority (nice −10 where it got that), so that the sends it hands over
    // wait for no ordinary thread of the machine; never real-time.
    workerData: { control, ring, words: AT, nice: thisThreadPriority() === "normal" ? 0 : HIGH_NICE },
    name: "rist-writer",
  });
  worker.unref();
  const started: Writer = {
    worker,
    words: new Int32Array(control),
    data: new Int32Array(ring),
    bytes: new Uint8Array(ring),
    written: 0,
    users: 0,
    alive: true,
    publish: () => {
      Atomics.store(started.words, AT.write, started.written);
      Atomics.notify(started.words, AT.write);
    },
  };
  const gone = () => {
    started.alive = false;
    if (writer === started) writer = null;
  };
  worker.on("error", gone);
  worker.on("exit", gone);
  return started;
};

/** The sends of one librist sender context, whose address is `ctx`. */
export interface RistSends {
  /** Copies the chunk for the writer; false when the ring has no room for it (it is not sent). */
  readonly send: (chunk: Uint8Array) => boolean;
  /** Resolves once the writer has sent all that was handed to it: the context may then be destroyed. */
  readonly close: () => Promise<void>;
}

export const ristSends = (ctx: number): RistSends => {
  writer ??= start();
  const own = writer;
  own.users += 1;
  const low = ctx % 0x1_0000_0000;
  const high = Math.floor(ctx / 0x1_0000_0000);
  let closed: Promise<void> | null = null;
  return {
    send: (chunk) => {
      if (!own.alive || closed !== null) return false;
      const need = HEADER_BYTES + ((chunk.length + 7) & ~7);
      const offset = own.written & (RING_BYTES - 1);
      const tail = RING_BYTES - offset;
      const skip = need > tail ? tail : 0;
      const used = (own.written - Atomics.load(own.words, AT.read)) >>> 0;
      if (used + skip + need > RING_BYTES) {
        own.publish();
        return false;
      }
      if (skip > 0) {
        own.data[offset >> 2] = -1;
        own.written = (own.written + skip) | 0;
      }
      const at = own.written & (RING_BYTES - 1);
      own.data[at >> 2] = chunk.length;
      own.data[(at >> 2) + 2] = low;
      own.data[(at >> 2) + 3] = high;
      own.bytes.set(chunk, at + HEADER_BYTES);
      own.written = (own.written + need) | 0;
      // A quarter of the ring waiting: the writer starts now rather than at the end of the turn.
      if (used > RING_BYTES / 4) own.publish();
      else atEndOfTurn(own.publish);
      return true;
    },
    close: () => {
      closed ??= (async () => {
        own.publish();
        const target = own.written;
        const until = Date.now() + CLOSE_WAIT_MS;
        while (own.alive && Date.now() < until) {
          const read = Atomics.load(own.words, AT.read);
          if (((read - target) | 0) >= 0) break;
          await Atomics.waitAsync(own.words, AT.read, read, 100).value;
        }
        own.users -= 1;
        if (own.users > 0) return;
        Atomics.store(own.words, AT.stop, 1);
        Atomics.notify(own.words, AT.write);
        if (writer === own) writer = null;
        cancelEndOfTurn(own.publish);
      })();
      return closed;
    },
  };
};
