/**
 * Send gates: on a fleet node, each channel's outputs send only until an instant its lease allows, and the
 * forwarding threads check that instant themselves. The main thread renews the leases and pushes each held
 * channel's instant forward at every renewal; a worker whose channel's instant has passed stops offering
 * datagrams to its outputs without waiting for the main thread, so a main thread stalled longer than the
 * lease (a long pause, a debugger) cannot leave the workers sending while a standby takes over.
 *
 * One slot per channel in a SharedArrayBuffer the main thread makes and hands to each worker at its start
 * (`gatesForWorker`, `adoptSendGates`), as own-ports.ts does. The instant is on `process.hrtime`, the
 * monotonic clock every thread of the process shares, in milliseconds. Beside it, the term of the lease: an RTP
 * output's SSRC carries it, so a receiver can tell two holders apart. One box gives its channels no slot.
 */

const SLOTS = 65536;

/** Per slot: until when it may send, then the term of the lease it sends under. */
/** The instant of a gate the main thread closed (never a real instant: the clock is past it at once). */
const CLOSED = 1;
let shared = new Float64Array(new SharedArrayBuffer(2 * SLOTS * Float64Array.BYTES_PER_ELEMENT));
const slots = new Map<string, number>();

/** The monotonic clock every thread shares, in ms. */
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** The buffer a new worker is given (main thread). */
export const gatesForWorker = (): SharedArrayBuffer => shared.buffer as SharedArrayBuffer;

/** In a worker, before any channel starts: the gates it was given. */
export const adoptSendGates = (buffer: SharedArrayBuffer): void => {
  shared = new Float64Array(buffer);
};

/**
 * The channel's slot (main thread), closed when it is first given: a fleet node's channel sends only once its
 * lease is held. Slots are never reused, so a channel deleted and made again under its id finds its own.
 */
export const gateSlot = (channelId: string): number => {
  const known = slots.get(channelId);
  if (known !== undefined) return known;
  const slot = slots.size;
  if (slot >= SLOTS) throw new Error(`more than ${SLOTS} channels have had send gates in this process`);
  slots.set(channelId, slot);
  shared[slot] = CLOSED;
  return slot;
};

/** The channel may send until `instant` (monotonicMs), or not at all (main thread). */
export const sendUntil = (channelId: string, instant: number): void => {
  shared[gateSlot(channelId)] = Math.max(CLOSED, instant);
};

/** The term of the lease the channel is (or was last) sent under (main thread). */
export const setTerm = (channelId: string, term: number): void => {
  shared[SLOTS + gateSlot(channelId)] = term;
};

/** The term the channel's outputs send under now (any thread): an RTP output's SSRC shows it. */
export const termOf = (slot: number): number => shared[SLOTS + slot] ?? 0;

/** Whether a gated channel may send now (any thread). */
export const gateOpen = (slot: number, now = monotonicMs()): boolean => now < (shared[slot] ?? 0);

/** Every 100 ms, on each thread that forwards a gated channel: one timer for all of them. */
const WATCH_MS = 100;
const watchers = new Set<(at: number) => void>();
let watchTimer: ReturnType<typeof setInterval> | null = null;

/**
 * Calls `changed(open, lapsed)` on this thread whenever the slot's gate opens or closes (checked every 100
 * ms, well within the margin a holder keeps before its lease can expire). `lapsed`: it closed because its
 * instant passed unrenewed, not because the main thread closed it (a release, a hand-over, a drain).
 * Returns the way to stop watching.
 */
export const watchGate = (slot: number, changed: (open: boolean, lapsed: boolean) => void): (() => void) => {
  let open = gateOpen(slot);
  const check = (at: number) => {
    const now = gateOpen(slot, at);
    if (now === open) return;
    open = now;
    changed(now, !now && (shared[slot] ?? 0) > CLOSED);
  };
  watchers.add(check);
  if (watchTimer === null) {
    watchTimer = setInterval(() => {
      // One reading of the clock for all of them (each reading makes a BigInt).
      const at = monotonicMs();
      for (const watcher of watchers) watcher(at);
    }, WATCH_MS);
    watchTimer.unref();
  }
  return () => {
    watchers.delete(check);
    if (watchers.size === 0 && watchTimer !== null) {
      clearInterval(watchTimer);
      watchTimer = null;
    }
  };
};
