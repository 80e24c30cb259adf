/**
 * A channel's SCTE-35 cues: each one going out — the input's, found by its packet core, or an operator's,
 * inserted on the channel's SCTE-35 PID (one added to the PMT when it has none, core/cue-insert/inserter.ts) — enters
 * the cue log with its origin and the outputs whose policy withheld it, and reaches the RTMP outputs as a data
 * message through the shared remux, each that sends it named in its record.
 */
import * as Effect from "effect/Effect";
import type { CueInserter } from "../../core/cue-insert/inserter.ts";
import type { NewEvent } from "../../domain/events/events.ts";
import { ChannelError, type InsertedCue } from "./channel-types.ts";
import type { OutputSet } from "./output-set.ts";
import type { PolicyGroups } from "./policy-groups.ts";
import { type CueOrigin, makeScte35Watcher, type Scte35Watcher } from "./scte35-watcher.ts";

interface CuePath {
  readonly watcher: Scte35Watcher;
  /** A cue going out: the cue log, and the RTMP outputs as a data message. Its id in the log, or null. */
  readonly onCue: (pid: number, pcr: number | null, section: Uint8Array, origin: CueOrigin) => string | null;
  /** An operator's cue, to every output whose policy keeps it; refused in words when it cannot go. */
  readonly insertCue: (
    section: Uint8Array,
    program: number | null,
    by: string,
  ) => Effect.Effect<InsertedCue, ChannelError>;
}

export const makeCuePath = (options: {
  readonly channelId: () => string;
  readonly emit: (event: NewEvent) => void;
  readonly outputs: OutputSet;
  readonly groups: PolicyGroups;
  /** The operator's cue stage: it learns the PSI, and rewrites once used. */
  readonly inserter: CueInserter;
  /** Sends TS packets to every output as they are, in one turn (the fan-out's). */
  readonly send: (packets: Uint8Array) => void;
  /** Each PID's last continuity counter as it left the channel: the cue stage goes on from them. */
  readonly lastCcOut: () => Map<number, number>;
  readonly contained: (where: string, thrown: unknown) => void;
}): CuePath => {
  const { channelId, outputs, groups, inserter } = options;
  const watcher = makeScte35Watcher((cue) =>
    options.emit({
      type: "scte35_cue",
      channel: channelId(),
      pid: cue.pid,
      command: cue.command,
      summary: cue.summary,
      event_id: cue.event_id,
      segmentation_type: cue.segmentation_types[0] ?? null,
      section_base64: cue.section_base64,
      ...(cue.origin === "operator" ? { origin: "operator", by: cue.by ?? "" } : {}),
      ...(cue.withheld === undefined || cue.withheld.length === 0 ? {} : { withheld: cue.withheld }),
    }),
  );
  const onCue = (pid: number, pcr: number | null, section: Uint8Array, origin: CueOrigin) => {
    let cueId: string | null = null;
    try {
      const enabled = outputs.enabled().map((entry) => entry.spec);
      cueId = watcher.onSection(pid, pcr, section, origin, groups.withheld(section, enabled)).id;
    } catch (thrown) {
      options.contained("the SCTE-35 cue log", thrown);
    }
    try {
      // Each RTMP output that sends it as a data message is named in the cue's record (the cue log).
      outputs.remux()?.cue(section, (output, format) => {
        if (cueId !== null)
          watcher.sentBy(cueId, { output, name: outputs.get(output)?.spec.name ?? output, format });
      });
    } catch (thrown) {
      outputs.remuxFailed(thrown);
    }
    return cueId;
  };
  return {
    watcher,
    onCue,
    insertCue: (section, program, by) =>
      Effect.suspend(() => {
        if (!inserter.active) {
          // Until now it read nothing (the fast path): the tables the channel knows and the counters it sent.
          inserter.teach(groups.psiPackets());
          for (const [pid, cc] of options.lastCcOut()) inserter.noteCc(pid, cc);
        }
        const inserted = inserter.insert(section, program);
        if ("refused" in inserted)
          return Effect.fail(
            new ChannelError({
              reason: "invalid_cue",
              message: `channel ${channelId()}: ${inserted.refused}`,
            }),
          );
        options.send(inserted.packets);
        return Effect.succeed({
          pid: inserted.pid,
          id: onCue(inserted.pid, null, section, { origin: "operator", by }),
        });
      }),
  };
};
