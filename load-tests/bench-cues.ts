/**
 * What keeping the SCTE-35 cue history costs a node without a database, a second's save at a time
 * (src/effects/status/cue-journal.ts): `--channels` channels with a full history (100 cues each, records made
 * by the service's own watcher from a splice_insert), `--per-second` new cues each second, for `--seconds`
 * saves, written through the file store into a temp directory (fsync, `.bak`, rename), two ways:
 *
 * - the whole history rewritten at each save (what the service did before the recent document);
 * - the recent document at each save, the whole only when the recent one passes an eighth of it (now).
 *
 * Prints, per way, the process CPU and the main thread's stringify time per save, and the bytes written.
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
  compactionDue,
  type History,
  keepCue,
  RECENT_DOCUMENT,
  type RecentEntry,
  recentText,
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
const fullHistory = (): History =>
  new Map(ids.map((id) => [id, Array.from({ length: LIMIT }, newCue)] as const));

interface Way {
  readonly name: string;
  /** One second's save, given the history and what came in that second. */
  readonly save: (
    history: History,
    came: ReadonlyArray<RecentEntry>,
  ) => Effect.Effect<number, unknown, DocumentStore>;
}

let stringifyMs = 0;
const timed = (text: () => string) => {
  const start = performance.now();
  const result = text();
  stringifyMs += performance.now() - start;
  return result;
};

const whole: Way = {
  name: "whole history each save (before)",
  save: (history) =>
    Effect.flatMap(DocumentStore, (store) => {
      const text = timed(() => wholeText(history));
      return Effect.as(store.write(CUE_DOCUMENT, text), text.length);
    }),
};

const journal = (): Way => {
  let recent: RecentEntry[] = [];
  let wholeBytes = 0;
  return {
    name: "recent document each save, whole past an eighth (now)",
    save: (history, came) =>
      Effect.flatMap(DocumentStore, (store) => {
        recent.push(...came);
        const text = timed(() => recentText(recent));
        if (!compactionDue(text.length, wholeBytes))
          return Effect.as(store.write(RECENT_DOCUMENT, text), text.length);
        const all = timed(() => wholeText(history));
        wholeBytes = all.length;
        recent = [];
        return Effect.as(
          Effect.zipRight(store.write(CUE_DOCUMENT, all), store.write(RECENT_DOCUMENT, recentText([]))),
          all.length,
        );
      }),
  };
};

const run = async (way: Way) => {
  const dir = await mkdtemp(join(tmpdir(), "distributary-bench-cues-"));
  try {
    const history = fullHistory();
    stringifyMs = 0;
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
      bytes += await Effect.runPromise(Effect.provide(way.save(history, came), layerFile(dir)));
    }
    const used = process.cpuUsage(cpu);
    console.log(
      `${way.name}: CPU ${((used.user + used.system) / 1000 / SECONDS).toFixed(1)} ms a save, ` +
        `stringify ${(stringifyMs / SECONDS).toFixed(1)} ms a save on the main thread, ` +
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
