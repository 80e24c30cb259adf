/**
 * The memory of a channel's frame bodies, used again. At 7 Mbit/s a channel's remux makes about 0.9 MB of
 * video and audio tag bodies a second; each one a new buffer, a hundred channels ask V8 for 88 MB a second
 * outside its heap, and V8 answers every 64 MB of it with a full collection of the forwarding thread's heap
 * (50–60 ms with the thread stopped: docs/benchmarks.md, "RTMP"). Here a body comes from memory the channel
 * had before, once nobody holds it any more.
 *
 *   const memory = new FrameMemory()
 *   const lease = memory.take(size)     // lease.body: `size` bytes; held once, by the taker
 *   lease.hold()                        // each output that queues the frame
 *   lease.release()                     // each: once it copied it for its socket, or it dropped or skipped it
 *
 * A body's memory goes back to the free list when the last holder lets go, never before: a frame queued by a
 * slow destination keeps its bytes. A lease never given back (a fault between taking and releasing) costs
 * nothing but reuse: the collector takes its memory as it takes any buffer's.
 *
 * Bounded: the free list keeps at most `maxFreeBytes` (what a channel has in flight in its steady state: the
 * frames of a turn or two); memory given back past that is left to the collector. What the holders keep is
 * bounded by their own limits (an RTMP output's queue), as it was before the memory was reused.
 *
 * Memory comes in powers of two from 512 bytes, so a frame of another size can take a body another had.
 */

/** The smallest memory handed out: 2^9 bytes. */
const SMALLEST = 9;
/** Bodies larger than this (a keyframe of a very high bitrate) are made for themselves and not kept. */
const LARGEST = 1 << 23;
/** What a channel's free list keeps by default. */
export const FREE_BYTES = 2 << 20;

/** One body's memory and how many hold it now. */
export class FrameLease {
  /** The bytes of the current frame: a view of the start of `memory`. */
  body: Uint8Array;
  readonly memory: Buffer;
  private holders = 1;
  private readonly owner: FrameMemory | null;
  constructor(memory: Buffer, size: number, owner: FrameMemory | null) {
    this.memory = memory;
    this.owner = owner;
    this.body = memory.subarray(0, size);
  }

  get held(): number {
    return this.holders;
  }

  /** One more holder: the memory stays this frame's until it releases. */
  hold(): void {
    this.holders++;
  }

  /**
   * A holder lets go; the last one gives the memory back. A function of its own, made once per memory, so that a
   * socket write can take it as its callback without a closure per frame. Releasing more often than held is
   * ignored (and counted): it would otherwise hand out bytes that someone still sends.
   */
  readonly release = (): void => {
    if (this.holders <= 0) {
      if (this.owner !== null) this.owner.overReleased++;
      return;
    }
    this.holders--;
    if (this.holders === 0) this.owner?.giveBack(this);
  };

  /** Made ready for its next frame (FrameMemory alone calls this). */
  renew(size: number): void {
    this.body = this.memory.subarray(0, size);
    this.holders = 1;
  }
}

const classOf = (size: number): number => Math.max(0, 32 - Math.clz32(Math.max(1, size) - 1) - SMALLEST);

export class FrameMemory {
  /** Free memory by class (class k: 2^(9+k) bytes). */
  private readonly free: FrameLease[][] = [];
  private freeBytes = 0;
  /** Memory made (taken from the system), memory used again, releases past the last holder: for tests and counters. */
  made = 0;
  reused = 0;
  overReleased = 0;

  readonly maxFreeBytes: number;

  constructor(maxFreeBytes: number = FREE_BYTES) {
    this.maxFreeBytes = maxFreeBytes;
  }

  /** `size` bytes for a frame's body, not zeroed, held once by the caller. */
  take(size: number): FrameLease {
    if (size > LARGEST) {
      this.made++;
      return new FrameLease(Buffer.allocUnsafeSlow(size), size, null);
    }
    const k = classOf(size);
    const lease = this.free[k]?.pop();
    if (lease !== undefined) {
      this.freeBytes -= lease.memory.length;
      this.reused++;
      lease.renew(size);
      return lease;
    }
    this.made++;
    // Slow: memory of its own, never a slice of Buffer's shared pool, whose other slices someone else writes.
    return new FrameLease(Buffer.allocUnsafeSlow(1 << (SMALLEST + k)), size, this);
  }

  /** The free memory kept now, in bytes. */
  get kept(): number {
    return this.freeBytes;
  }

  /** A lease whose last holder let go (FrameLease alone calls this). */
  giveBack(lease: FrameLease): void {
    const bytes = lease.memory.length;
    if (this.freeBytes + bytes > this.maxFreeBytes) return;
    const k = classOf(bytes);
    let list = this.free[k];
    if (list === undefined) {
      for (let i = this.free.length; i <= k; i++) this.free.push([]);
      list = this.free[k] as FrameLease[];
    }
    list.push(lease);
    this.freeBytes += bytes;
  }
}

/**
 * A remux's bodies in its channel's memory: `allocate` (handed to the tag builders) takes a body and keeps
 * its lease, which `lastLease` passes on, once, to the frame made of it.
 */
export class FrameBodies {
  readonly memory = new FrameMemory();
  private lease: FrameLease | null = null;

  readonly allocate = (size: number): Uint8Array => {
    this.lease = this.memory.take(size);
    return this.lease.body;
  };

  lastLease(): FrameLease | null {
    const lease = this.lease;
    this.lease = null;
    return lease;
  }
}
