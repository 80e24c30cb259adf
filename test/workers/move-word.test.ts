/**
 * The word two forwarding threads share while a channel moves (src/effects/runtime/threads/move-word.ts), across a
 * real worker thread: the old copy lets go only once the new copy says it runs, and the new copy reads "done"
 * only once the old one has said so, woken in its own thread without waiting for a datagram; where
 * Atomics.waitAsync is missing, a short poll does the old copy's part.
 */
import { Worker } from "node:worker_threads";
import { expect, it } from "vitest";
import {
  doneReader,
  makeMoveWord,
  newCopyStarted,
  oldCopyDone,
  whenNewCopyStarts,
  whenOldCopyDone,
} from "../../src/effects/runtime/threads/move-word.ts";
import { eventually } from "../support/app.ts";

/** Another thread that says, after `ms`, that the new copy runs: as a new copy's worker does. */
const startedElsewhere = (word: SharedArrayBuffer, ms: number) =>
  new Worker(
    `const { workerData } = require("node:worker_threads");
     setTimeout(() => {
       const word = new Int32Array(workerData, 0, 1);
       Atomics.compareExchange(word, 0, 0, 1);
       Atomics.notify(word, 0);
     }, ${ms});`,
    { eval: true, workerData: word },
  );

it("lets the old copy go when another thread says the new one runs, and the new one sends once the old is done", async () => {
  const word = makeMoveWord();
  const done = doneReader(word);
  let letGo = 0;
  whenNewCopyStarts(word, () => {
    letGo += 1;
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(letGo).toBe(0);
  const other = startedElsewhere(word, 20);
  await eventually("the old copy to let go", () => (letGo === 1 ? true : undefined));
  expect(done()).toBe(false);
  oldCopyDone(word);
  expect(done()).toBe(true);
  await other.terminate();
  expect(letGo).toBe(1);
});

it("lets go at once when the new copy already runs, and polls where Atomics.waitAsync is missing", async () => {
  const early = makeMoveWord();
  newCopyStarted(early);
  let at = 0;
  whenNewCopyStarts(early, () => {
    at += 1;
  });
  expect(at).toBe(1);

  const waitAsync = Atomics.waitAsync;
  // biome-ignore lint/suspicious/noExplicitAny: the runtime without it is what this part is about
  (Atomics as any).waitAsync = undefined;
  try {
    const word = makeMoveWord();
    let polled = 0;
    whenNewCopyStarts(word, () => {
      polled += 1;
    });
    newCopyStarted(word);
    await eventually("the poll to see the new copy", () => (polled === 1 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(polled).toBe(1);
  } finally {
    Atomics.waitAsync = waitAsync;
  }
});

/** Another thread that, after `ms`, says what the old copy says when it has sent its last datagram. */
const doneElsewhere = (word: SharedArrayBuffer, ms: number) =>
  new Worker(
    `const { workerData } = require("node:worker_threads");
     setTimeout(() => {
       const word = new Int32Array(workerData, 0, 1);
       Atomics.store(word, 0, 2);
       Atomics.notify(word, 0);
     }, ${ms});`,
    { eval: true, workerData: word },
  );

it("wakes the new copy in its thread when the old one, in another, says it is done: through the started state, once", async () => {
  const word = makeMoveWord();
  let sent = 0;
  // Waiting from before the new copy says it runs, as the fan-out of a copy being built does.
  whenOldCopyDone(word, () => {
    sent += 1;
  });
  newCopyStarted(word);
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(sent).toBe(0);
  const other = doneElsewhere(word, 20);
  await eventually("the new copy to send what it held", () => (sent === 1 ? true : undefined));
  await other.terminate();
  // Said before the wait began: at once.
  let late = 0;
  whenOldCopyDone(word, () => {
    late += 1;
  });
  expect(late).toBe(1);
  expect(sent).toBe(1);
});
