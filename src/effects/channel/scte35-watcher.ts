/**
 * Decodes the SCTE-35 sections the packet core hands over, keeps the recent ones and the counts the read model
 * and metrics show, and hands each cue to `onCue` (the channel passes it to the event bus). Cues are rare (a
 * few a minute), so decoding each one to JSON here costs nothing next to the packet path; the sections
 * themselves are forwarded untouched anyway.
 *
 * An RTMP output that sends a cue as a data message says so (`sentBy`), maybe seconds after it arrived (a cue
 * waits for its splice time): the log's record is then replaced by one that names that output too, with the
 * same id, and `changedSince` hands it on again to whoever copies the log (a worker's sync, the cue history).
 */
import { randomUUID } from "node:crypto";
import * as Either from "effect/Either";
import {
  commandName,
  cueEventId,
  decodeSection,
  type SpliceInfoSection,
  segmentationTypes,
  summarizeCue,
} from "../../core/scte35/index.ts";

/** An RTMP output that sent a cue as an AMF0 data message, and the shape it sent it in. */
interface RtmpCueSent {
  readonly output: string;
  /** The output's name when it sent the cue. */
  readonly name: string;
  readonly format: string;
}

/** An output whose policy kept a cue from it, and the rule that did (domain/channel/output-policy.ts). */
export interface CueWithheld {
  readonly output: string;
  readonly name: string;
  readonly rule: string;
}

/** Where a cue came from: the input, or an operator's "insert a break now" (with the token's name). */
export type CueOrigin = { readonly origin: "input" } | { readonly origin: "operator"; readonly by: string };

/** One cue as the channel saw it go through. */
export interface CueRecord {
  /** Unique: a record replaced by a later copy (an output sent the cue) keeps its id. */
  readonly id: string;
  /** Epoch ms at arrival. */
  readonly at: number;
  readonly pid: number;
  /** The program's last PCR before the cue (27 MHz ticks). */
  readonly pcr: number | null;
  readonly command: string;
  readonly summary: string;
  readonly event_id: number | null;
  /** segmentation_type_id of each segmentation descriptor. */
  readonly segmentation_types: ReadonlyArray<number>;
  readonly section_base64: string;
  readonly cue: SpliceInfoSection | null;
  readonly error: string | null;
  /** The RTMP outputs that sent it, in the order they did; none for a cue kept before outputs said so. */
  readonly rtmp?: ReadonlyArray<RtmpCueSent>;
  /** Absent for cues kept before origins were: the input. */
  readonly origin?: "input" | "operator";
  /** The operator who inserted it. */
  readonly by?: string;
  /** The outputs whose policy kept it from them. */
  readonly withheld?: ReadonlyArray<CueWithheld>;
}

export interface CueCounts {
  readonly total: number;
  readonly byCommand: ReadonlyMap<string, number>;
  readonly bySegmentationType: ReadonlyMap<number, number>;
  readonly undecodable: number;
  readonly last: CueRecord | null;
}

export interface Scte35Watcher {
  /** Keeps the cue the core found and gives its record. */
  readonly onSection: (
    pid: number,
    pcr: number | null,
    section: Uint8Array,
    origin?: CueOrigin,
    withheld?: ReadonlyArray<CueWithheld>,
  ) => CueRecord;
  /** The RTMP output `sent.output` sent the cue `id` (ignored once the cue has left the log). */
  readonly sentBy: (id: string, sent: RtmpCueSent) => void;
  /** Newest last. */
  readonly recent: () => ReadonlyArray<CueRecord>;
  /**
   * The records added or replaced after `mark` (0: all), in the log's order, and the mark to give next time.
   */
  readonly changedSince: (mark: number) => { readonly cues: ReadonlyArray<CueRecord>; readonly mark: number };
  readonly counts: () => CueCounts;
}

export const makeScte35Watcher = (onCue: (cue: CueRecord) => void = () => {}, keep = 100): Scte35Watcher => {
  const log: CueRecord[] = [];
  const byCommand = new Map<string, number>();
  const bySegmentationType = new Map<number, number>();
  let total = 0;
  let undecodable = 0;
  /** Each record's version: a count of additions and replacements, for `changedSince`. */
  const versions = new WeakMap<CueRecord, number>();
  let version = 0;

  const onSection = (
    pid: number,
    pcr: number | null,
    section: Uint8Array,
    origin: CueOrigin = { origin: "input" },
    withheld: ReadonlyArray<CueWithheld> = [],
  ) => {
    const decoded = decodeSection(section);
    const cue = Either.isRight(decoded) ? decoded.right : null;
    const command = cue === null || cue.encrypted_packet ? "unknown" : commandName(cue.splice_command_type);
    const record: CueRecord = {
      id: randomUUID(),
      at: Date.now(),
      pid,
      pcr,
      command,
      summary: cue === null ? "undecodable" : summarizeCue(cue),
      event_id: cue === null ? null : cueEventId(cue),
      segmentation_types: cue === null ? [] : segmentationTypes(cue),
      section_base64: Buffer.from(section).toString("base64"),
      cue,
      error: Either.isLeft(decoded) ? decoded.left.message : null,
      rtmp: [],
      ...origin,
      withheld,
    };
    versions.set(record, ++version);
    total += 1;
    if (cue === null) undecodable += 1;
    byCommand.set(command, (byCommand.get(command) ?? 0) + 1);
    for (const type of record.segmentation_types)
      bySegmentationType.set(type, (bySegmentationType.get(type) ?? 0) + 1);
    log.push(record);
    if (log.length > keep) log.shift();
    onCue(record);
    return record;
  };

  const sentBy = (id: string, sent: RtmpCueSent) => {
    const index = log.findLastIndex((record) => record.id === id);
    const record = log[index];
    if (record === undefined) return;
    const replaced: CueRecord = { ...record, rtmp: [...(record.rtmp ?? []), sent] };
    log[index] = replaced;
    versions.set(replaced, ++version);
  };

  return {
    onSection,
    sentBy,
    recent: () => [...log],
    changedSince: (mark) => ({
      cues: log.filter((record) => (versions.get(record) ?? 0) > mark),
      mark: version,
    }),
    counts: () => ({
      total,
      byCommand: new Map(byCommand),
      bySegmentationType: new Map(bySegmentationType),
      undecodable,
      last: log.at(-1) ?? null,
    }),
  };
};
