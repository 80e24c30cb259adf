/**
 * The word two forwarding threads share while a channel moves between them (channel/workers/moves.ts). A move
 * used to pass every step through the supervisor's thread: the new copy started and held what it forwarded,
 * its reply crossed to the main thread, which asked the old copy to let go, whose reply crossed back, and only
 * then did the new copy send. Each crossing waits for a busy event loop: the moved channel's outputs stayed
 * silent 228–714 ms at 10 × 4 on this machine. Here the copies tell each other through one shared Int32: the
 * new copy says it runs (its inputs now take the stream), the old copy, which waits for exactly that, reads and
 * sends its last datagrams and says so, and the new copy, which waits for that in its thread, sends what it
 * held. The supervisor's requests still come (each step is idempotent), and still decide when a move failed.
 */

/** The new copy is starting; the old one forwards. */
const MOVING = 0;
/** The new copy runs: its inputs hear the sender, the old copy's hear nothing more. */
const STARTED = 1;
/** The old copy sent its last datagram: the new one may send. */
const DONE = 2;

/** How long the old copy waits for the new one to start before it leaves the move to the supervisor. */
const WAIT_MS = 30_000;
/** Where Atomics.waitAsync is missing: how often the old copy looks. */
const POLL_MS = 2;

const wordOf = (shared: SharedArrayBuffer) => new Int32Array(shared, 0, 1);

/** A move's new word, for both copies (structured-cloned to each thread as the same memory). */
export const makeMoveWord = (): SharedArrayBuffer => new SharedArrayBuffer(4);

/** The new copy has started: the old one may let go now. */
export const newCopyStarted = (shared: SharedArrayBuffer): void => {
  const word = wordOf(shared);
  Atomics.compareExchange(word, 0, MOVING, STARTED);
  Atomics.notify(word, 0);
};

/** The old copy has sent its last datagram: the new copy, waiting in its thread (`whenOldCopyDone`), wakes. */
export const oldCopyDone = (shared: SharedArrayBuffer): void => {
  const word = wordOf(shared);
  Atomics.store(word, 0, DONE);
  Atomics.notify(word, 0);
};

/** For the new copy, read with each datagram it holds: whether the old copy is done. */
export const doneReader = (shared: SharedArrayBuffer): (() => boolean) => {
  const word = wordOf(shared);
  return () => Atomics.load(word, 0) === DONE;
};

/**
 * For the new copy: runs `sendHeld` in its thread as soon as the old copy says it is done, rather than with
 * the next datagram it reads (`doneReader`), which waited for the thread's next read turn: up to 3 ms more of
 * silence at the moved channel's outputs, 7 at p90 on a busy machine (docs/benchmarks.md). Nothing happens if
 * that has not come within WAIT_MS, or where Atomics.waitAsync is missing: the next datagram still sees it.
 */
export const whenOldCopyDone = (shared: SharedArrayBuffer, sendHeld: () => void): void => {
  const word = wordOf(shared);
  const look = () => {
    const now = Atomics.load(word, 0);
    if (now === DONE) {
      sendHeld();
      return;
    }
    if (typeof Atomics.waitAsync !== "function") return;
    // Woken by each change of the word (started, then done); not waiting: it changed since the load above.
    const waiting = Atomics.waitAsync(word, 0, now, WAIT_MS);
    if (!waiting.async) look();
    else
      void waiting.value.then((result) => {
        if (result === "ok") look();
      });
  };
  look();
};

/**
 * For the old copy: runs `letGo` once the new copy has started, without waiting for the supervisor. Nothing
 * happens if it has not within WAIT_MS (a start that failed: the supervisor stops the new copy and the old one
 * forwards on).
 */
export const whenNewCopyStarts = (shared: SharedArrayBuffer, letGo: () => void): void => {
  const word = wordOf(shared);
  const started = () => Atomics.load(word, 0) !== MOVING;
  if (started()) {
    letGo();
    return;
  }
  if (typeof Atomics.waitAsync === "function") {
    const waiting = Atomics.waitAsync(word, 0, MOVING, WAIT_MS);
    // Not waiting: the word changed between the look above and this one.
    if (!waiting.async) letGo();
    else
      void waiting.value.then(() => {
        if (started()) letGo();
      });
    return;
  }
  const deadline = Date.now() + WAIT_MS;
  const timer = setInterval(() => {
    if (started()) letGo();
    else if (Date.now() < deadline) return;
    clearInterval(timer);
  }, POLL_MS);
};
