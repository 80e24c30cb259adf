/**
 * What keeping the SCTE-35 cue history costs a node without a database, a second's save at a time
 * (src/effects/status/cue-journal.ts): `--channels` channels with a full history (100 cues each, records made
 * by the service's own watcher from a splice_insert), `--per-second` new cues each second, for `--seconds`
 * saves, written through the file store into a temp directory (fsync, `.bak`, rename), two ways:
 *
 * - the whole history rewritten at each save (what the service did before the recent document);
 * - the recent document at each save, the whole only when the recent one passes an eighth of it (now).
 *
 * Prints, per way, the process CPU and the time the save blocks the main thread, per save, and the bytes written.
 *
 *   node load-tests/bench-cues.ts [--channels 100] [--per-second 25] [--seconds 60]
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as Effect from "effect/Effect";
import { encodeSection } from "../src/core/scte35/index.ts";
import { makeScte35Watcher } from "../src/effects/channel/scte35-watcher.ts";
import { DocumentStore, layerFile } from "../src/effects/config/store.ts";
import {
  CUE_DOCUMENT,
  type History,
  keepCue,
  type RecentEntry,
  saveJournal,
  wholeText,
} from "../src/effects/status/cue-journal.ts";
import { immediateSpliceOut } from "../test/support/cues.ts";

const { values } = parseArgs({
  options: {
    channels: { type: "string", default: "100" },
    "per-second": { type: "string", default: "25" },
    seconds: { type: "string", default: "60" },
  },
});
const CHANNELS = Number(values.channels);
const PER_SECOND = Number(values["per-second"]);
const SECONDS = Number(values.seconds);
const LIMIT = 100;

const watcher = makeScte35Watcher();
const record = watcher.onSection(496, 123_456_789, encodeSection(immediateSpliceOut(1234)));
let clock = Date.now();
const newCue = () => ({ ...record, id: randomUUID(), at: clock++ });
const ids = Array.from({ length: CHANNELS }, () => randomUUID());

interface Way {
  readonly name: string;
  /** A second's save, given what came in that second; its bytes written. */
  readonly save: (
    store: DocumentStore["Type"],
    history: History,
    came: ReadonlyArray<RecentEntry>,
  ) => Effect.Effect<number, unknown>;
}

const whole: Way = {
  name: "whole history each save (before)",
  save: (store, history) =>
    Effect.suspend(() => {
      const text = wholeText(history);
      return Effect.as(store.write(CUE_DOCUMENT, text), text.length);
    }),
};

const journal = (): Way => {
  const state = { recent: [] as RecentEntry[], wholeBytes: 0, wholeDue: false };
  return {
    name: "recent document each save, whole past an eighth (now)",
    save: (store, history, came) =>
      Effect.suspend(() => {
        state.recent.push(...came);
        return saveJournal(store, history, state);
      }),
  };
};

const run = async (way: Way) => {
  const dir = await mkdtemp(join(tmpdir(), "distributary-bench-cues-"));
  try {
    const store = await Effect.runPromise(Effect.provide(DocumentStore, layerFile(dir)));
    const history: History = new Map(ids.map((id) => [id, Array.from({ length: LIMIT }, newCue)] as const));
    let blockedMs = 0;
    let bytes = 0;
    const cpu = process.cpuUsage();
    for (let second = 0; second < SECONDS; second++) {
      const came: RecentEntry[] = [];
      for (let n = 0; n < PER_SECOND; n++) {
        const channel = ids[(second * PER_SECOND + n) % CHANNELS] as string;
        const cue = newCue();
        keepCue(history.get(channel) as never, cue, LIMIT);
        came.push({ channel, cue });
      }
      // The save runs on the calling thread until its first file operation: the stringify is that part.
      const start = performance.now();
      const saved = Effect.runPromise(way.save(store, history, came));
      blockedMs += performance.now() - start;
      bytes += await saved;
    }
    const used = process.cpuUsage(cpu);
    console.log(
      `${way.name}: CPU ${((used.user + used.system) / 1000 / SECONDS).toFixed(1)} ms a save, ` +
        `${(blockedMs / SECONDS).toFixed(1)} ms of it blocking the main thread, ` +
        `${(bytes / SECONDS / 1e6).toFixed(2)} MB written a save`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

console.log(
  `${CHANNELS} channels × ${LIMIT} cues kept (${JSON.stringify(record).length} bytes a cue), ${PER_SECOND} new cues a second, ${SECONDS} saves`,
);
await run(whole);
await run(journal());
