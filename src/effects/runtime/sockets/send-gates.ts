/**
 * Send gates: on a fleet node, each channel's outputs send only until an instant its lease allows, and the
 * forwarding threads check that instant themselves. The main thread renews the leases and pushes each held
 * channel's instant forward at every renewal; a worker whose channel's instant has passed stops offering
 * datagrams to its outputs without waiting for the main thread, so a main thread stalled longer than the
 * lease (a long pause, a debugger) cannot leave the workers sending while a standby takes over. The channel
 * checks its gate before each read of its inputs (batch-reader.ts `Fence`), not only when a timer says, so
 * the first turn of a process that was frozen past its lease finds the gate closed before it forwards.
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
/** Where the process's staleness limit sits, after the instants and terms (`staleAfterMs`). */
const STALE_AT = 2 * SLOTS;
const NUMBERS = 2 * SLOTS + 1;
/**
 * The instants and terms and the staleness limit, then one 32-bit counter the main thread bumps (and
 * notifies) whenever it opens or closes a gate, or brings its instant closer: the threads that watch gates
 * wait on it.
 */
const BYTES = NUMBERS * Float64Array.BYTES_PER_ELEMENT + Int32Array.BYTES_PER_ELEMENT;
let shared = new Float64Array(new SharedArrayBuffer(BYTES), 0, NUMBERS);
let signal = new Int32Array(shared.buffer, NUMBERS * Float64Array.BYTES_PER_ELEMENT, 1);
const slots = new Map<string, number>();

/** The monotonic clock every thread shares, in ms. */
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** The buffer a new worker is given (main thread). */
export const gatesForWorker = (): SharedArrayBuffer => shared.buffer as SharedArrayBuffer;

/** In a worker, before any channel starts: the gates it was given. */
export const adoptSendGates = (buffer: SharedArrayBuffer): void => {
  shared = new Float64Array(buffer, 0, NUMBERS);
  signal = new Int32Array(buffer, NUMBERS * Float64Array.BYTES_PER_ELEMENT, 1);
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
  const slot = gateSlot(channelId);
  const now = monotonicMs();
  const before = shared[slot] ?? 0;
  const next = Math.max(CLOSED, instant);
  shared[slot] = next;
  // Moving an open gate's instant on is read when the old instant comes; opening or closing one, or bringing
  // its instant closer, is told now.
  if (now < before !== now < next || next < before) {
    Atomics.add(signal, 0, 1);
    Atomics.notify(signal, 0);
  }
};

/** The term of the lease the channel is (or was last) sent under (main thread). */
export const setTerm = (channelId: string, term: number): void => {
  shared[SLOTS + gateSlot(channelId)] = term;
};

/** The term the channel's outputs send under now (any thread): an RTP output's SSRC shows it. */
export const termOf = (slot: number): number => shared[SLOTS + slot] ?? 0;

/** Whether a gated channel may send now (any thread). */
export const gateOpen = (slot: number, now = monotonicMs()): boolean => now < (shared[slot] ?? 0);

/**
 * Whether a closed gate closed because its instant passed unrenewed (the lease lapsed: the main thread, or the
 * whole process, stalled), not because the main thread closed it (a standby, a release, a hand-over, a drain).
 */
export const gateLapsed = (slot: number): boolean => (shared[slot] ?? 0) > CLOSED;

/**
 * How late a forwarding thread may read what waits in a gated channel's input sockets and still send it (ms),
 * set by the main thread when the fleet starts (the lease's fence margin). A thread that stalled longer (a
 * SIGSTOP, a paused VM, CPU starvation) drops what queued meanwhile instead of sending it late: seconds-old
 * stream sent at once is a burst no receiver wants, and, when the lease passed meanwhile, a second stream
 * beside the new holder's. 0 before it is set: no limit.
 */
export const setStaleAfter = (ms: number): void => {
  shared[STALE_AT] = ms;
};
export const staleAfterMs = (): number => {
  const ms = shared[STALE_AT] ?? 0;
  return ms > 0 ? ms : Number.POSITIVE_INFINITY;
};

/** When this thread's current turn of reads began (performance.now()), or null between turns (batch-reader.ts). */
let turnBegan: number | null = null;
/** Datagrams senders dropped since a channel last reported its stale drops (`takeDroppedMidTurn`). */
let droppedMidTurn = 0;

/** Runs a turn of reads and the sends it makes at its end, which then know when it began. */
export const inReadTurn = (work: () => void): void => {
  // A read inside another turn (a closing read from a delivery) is part of it: the outer turn's start holds.
  const outer = turnBegan;
  turnBegan ??= performance.now();
  try {
    work();
  } finally {
    turnBegan = outer;
  }
};

/**
 * A sender's last look before its system call, on a fleet node: whether this thread stalled past the
 * staleness limit since its turn read what it is about to send (a SIGSTOP or a paused VM in the middle of a
 * turn). The fence before each read cannot see that stall; this does, and the sender drops the `datagrams`
 * instead of sending them late beside the new holder's. They are counted with the next stale drop a channel
 * of the thread reports (`takeDroppedMidTurn`), which the same stall makes at its next read.
 */
export const stalledMidTurn = (datagrams: number): boolean => {
  if (turnBegan === null) return false;
  const limit = staleAfterMs();
  // The thread's own clock: a sender looks at it once a turn, where a reading of the shared one makes a BigInt.
  if (limit === Number.POSITIVE_INFINITY || performance.now() - turnBegan <= limit) return false;
  droppedMidTurn += datagrams;
  return true;
};

export const takeDroppedMidTurn = (): number => {
  const dropped = droppedMidTurn;
  droppedMidTurn = 0;
  return dropped;
};

/**
 * Without Atomics.waitAsync (every runtime we run on has it), the watching thread reads its gates on this
 * period instead of waiting on the main thread's signal.
 */
const POLL_MS = 100;
interface Watcher {
  readonly slot: number;
  readonly check: (at: number) => void;
}
const watchers = new Set<Watcher>();
/** The one timer of this thread: due when the earliest open gate's instant passes. */
let timer: ReturnType<typeof setTimeout> | null = null;
let timerDue = Number.POSITIVE_INFINITY;
let waiting = false;

const checkAll = () => {
  // One reading of the clock for all of them (each reading makes a BigInt).
  const at = monotonicMs();
  let earliest = Number.POSITIVE_INFINITY;
  for (const watcher of watchers) {
    watcher.check(at);
    const until = shared[watcher.slot] ?? 0;
    if (at < until && until < earliest) earliest = until;
  }
  arm(typeof Atomics.waitAsync === "function" ? earliest : Math.min(earliest, at + POLL_MS), at);
  waitForSignal();
};

/** The timer at `due` (monotonicMs; a millisecond past it, so that the gate has closed when it runs). */
const arm = (due: number, at: number) => {
  if (timer !== null && due === timerDue) return;
  if (timer !== null) clearTimeout(timer);
  timer = null;
  timerDue = due;
  if (watchers.size === 0 || !Number.isFinite(due)) return;
  timer = setTimeout(
    () => {
      timer = null;
      checkAll();
    },
    Math.max(1, Math.ceil(due - at) + 1),
  );
  timer.unref();
};

const waitForSignal = () => {
  if (waiting || watchers.size === 0 || typeof Atomics.waitAsync !== "function") return;
  const wait = Atomics.waitAsync(signal, 0, Atomics.load(signal, 0));
  if (!wait.async) {
    queueMicrotask(checkAll);
    return;
  }
  waiting = true;
  void wait.value.then(() => {
    waiting = false;
    if (watchers.size > 0) checkAll();
  });
};

/**
 * Calls `changed(open, lapsed)` on this thread whenever the slot's gate opens or closes: when the main thread
 * opens or closes it (told through the shared signal), or when its instant passes unrenewed (a timer at the
 * earliest instant of the gates this thread watches, one for all of them; renewals move the instants on, so
 * at rest it runs about once per lease time). `lapsed`: it closed because its instant passed unrenewed, not
 * because the main thread closed it (a release, a hand-over, a drain). Returns the way to stop watching.
 */
export const watchGate = (slot: number, changed: (open: boolean, lapsed: boolean) => void): (() => void) => {
  let open = gateOpen(slot);
  const watcher: Watcher = {
    slot,
    check: (at) => {
      const now = gateOpen(slot, at);
      if (now === open) return;
      open = now;
      changed(now, !now && gateLapsed(slot));
    },
  };
  watchers.add(watcher);
  checkAll();
  return () => {
    watchers.delete(watcher);
    if (watchers.size === 0) arm(Number.POSITIVE_INFINITY, 0);
  };
};
