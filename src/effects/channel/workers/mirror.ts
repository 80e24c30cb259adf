/**
 * The supervisor's mirror of each channel on a worker (pool.ts): the spec it last gave, where it runs, and what
 * the last `sync` reported (summary, cue counts, recent cues, preview), and the plain reads that the read model,
 * the pages and the metrics make of it on the main thread without asking the worker.
 */
import type { ChannelId } from "../../../domain/base/ids.ts";
import { sharedSrtPort } from "../../../domain/url/url.ts";
import type { ChannelRuntimeSummary, ChannelSpec } from "../channel-types.ts";
import { type ChannelState, trafficOf } from "../channel-types.ts";
import type { CueCounts, CueRecord } from "../scte35-watcher.ts";
import type { SyncReply } from "./protocol.ts";
import { noteCpu, noteLoopDelay, type Slot } from "./threads.ts";

const KEEP_CUES = 100;

export interface Entry {
  spec: ChannelSpec;
  worker: number;
  /** Started on its worker (a start in flight is not yet). */
  running: boolean;
  summary: ChannelRuntimeSummary | null;
  cueCounts: CueCounts | null;
  readonly cues: CueRecord[];
  previewActive: boolean;
}

/** A channel's entry while it runs on its worker; null while it starts, after it stopped, or never. */
export const runningEntry = (entries: ReadonlyMap<ChannelId, Entry>, id: ChannelId): Entry | null => {
  const entry = entries.get(id);
  return entry?.running === true ? entry : null;
};

/** A worker's answer to `sync`: its figures noted, its channels' mirrors brought up to date. */
export const applySync = (entries: ReadonlyMap<ChannelId, Entry>, slot: Slot, reply: SyncReply) => {
  noteLoopDelay(slot, reply.loopDelay);
  noteCpu(slot, reply.cpuMicros);
  for (const sample of reply.channels) {
    const entry = entries.get(sample.id);
    if (entry === undefined || entry.worker !== slot.index) continue;
    entry.summary = sample.summary;
    entry.cueCounts = sample.cueCounts;
    entry.previewActive = sample.previewActive;
    for (const cue of sample.newCues) {
      const known = entry.cues.findLastIndex((kept) => kept.id === cue.id);
      if (known >= 0) entry.cues[known] = cue;
      else entry.cues.push(cue);
    }
    if (entry.cues.length > KEEP_CUES) entry.cues.splice(0, entry.cues.length - KEEP_CUES);
  }
};

/** The SRT ports shared by stream id that a channel listens on (its inputs and outputs). */
const sharedSrtPorts = (spec: ChannelSpec): ReadonlyArray<number> =>
  [spec.primary.srt, spec.backup?.srt, ...spec.outputs.map((output) => output.url)].flatMap((url) => {
    const port = url === undefined ? null : sharedSrtPort(url);
    return port === null ? [] : [port];
  });

/**
 * Another channel listening on an SRT port this one shares by stream id: the two run on one thread, which
 * holds the port's one listener (runtime/links/srt-listeners.ts).
 */
export const portMate = (entries: ReadonlyMap<ChannelId, Entry>, spec: ChannelSpec): Entry | undefined => {
  const ports = sharedSrtPorts(spec);
  if (ports.length === 0) return undefined;
  for (const entry of entries.values()) {
    if (entry.spec.id !== spec.id && sharedSrtPorts(entry.spec).some((port) => ports.includes(port))) {
      return entry;
    }
  }
  return undefined;
};

/** What the Channels service answers from the mirror alone (`failures`: the last error of each failed channel). */
export const mirrorReads = (
  entries: ReadonlyMap<ChannelId, Entry>,
  failures: ReadonlyMap<ChannelId, string>,
) => {
  const running = (id: ChannelId) => runningEntry(entries, id);
  return {
    state: (id: ChannelId): ChannelState =>
      running(id) !== null ? "running" : failures.has(id) ? "error" : "stopped",
    lastError: (id: ChannelId) => failures.get(id) ?? null,
    summary: (id: ChannelId) => running(id)?.summary ?? null,
    traffic: (id: ChannelId) => {
      const summary = running(id)?.summary;
      return summary == null ? null : trafficOf(summary);
    },
    cueCounts: (id: ChannelId) => running(id)?.cueCounts ?? null,
    cues: (id: ChannelId) => running(id)?.cues ?? [],
    previewActive: (id: ChannelId) => running(id)?.previewActive ?? false,
    running: () => [...entries.entries()].flatMap(([id, entry]) => (entry.running ? [id] : [])),
    placement: (id: ChannelId) => running(id)?.worker ?? null,
  };
};
