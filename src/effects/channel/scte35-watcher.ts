/**
 * Decodes the SCTE-35 sections the packet core hands over, keeps the recent ones and the counts the read model
 * and metrics show, and hands each cue to `onCue` (the channel passes it to the event bus). Cues are rare (a
 * few a minute), so decoding each one to JSON here costs nothing next to the packet path; the sections
 * themselves are forwarded untouched anyway.
 */
import { Either } from "effect";
import {
  commandName,
  cueEventId,
  decodeSection,
  type SpliceInfoSection,
  segmentationTypes,
  summarizeCue,
} from "../../core/scte35/index.ts";

/** One cue as the channel saw it go through. */
export interface CueRecord {
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
}

export interface CueCounts {
  readonly total: number;
  readonly byCommand: ReadonlyMap<string, number>;
  readonly bySegmentationType: ReadonlyMap<number, number>;
  readonly undecodable: number;
  readonly last: CueRecord | null;
}

export interface Scte35Watcher {
  readonly onSection: (pid: number, pcr: number | null, section: Uint8Array) => void;
  /** Newest last. */
  readonly recent: () => ReadonlyArray<CueRecord>;
  readonly counts: () => CueCounts;
}

export const makeScte35Watcher = (onCue: (cue: CueRecord) => void = () => {}, keep = 100): Scte35Watcher => {
  const log: CueRecord[] = [];
  const byCommand = new Map<string, number>();
  const bySegmentationType = new Map<number, number>();
  let total = 0;
  let undecodable = 0;

  const onSection = (pid: number, pcr: number | null, section: Uint8Array) => {
    const decoded = decodeSection(section);
    const cue = Either.isRight(decoded) ? decoded.right : null;
    const command = cue === null || cue.encrypted_packet ? "unknown" : commandName(cue.splice_command_type);
    const record: CueRecord = {
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
    };
    total += 1;
    if (cue === null) undecodable += 1;
    byCommand.set(command, (byCommand.get(command) ?? 0) + 1);
    for (const type of record.segmentation_types)
      bySegmentationType.set(type, (bySegmentationType.get(type) ?? 0) + 1);
    log.push(record);
    if (log.length > keep) log.shift();
    onCue(record);
  };

  return {
    onSection,
    recent: () => [...log],
    counts: () => ({
      total,
      byCommand: new Map(byCommand),
      bySegmentationType: new Map(bySegmentationType),
      undecodable,
      last: log.at(-1) ?? null,
    }),
  };
};
