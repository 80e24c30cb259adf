import { Either } from "effect";
import { commandName, decodeSection, type SpliceInfoSection, summarizeCue } from "../core/scte35/index.ts";

/** One cue as the channel saw it go through. */
export interface CueRecord {
  /** Epoch ms at arrival. */
  readonly at: number;
  readonly pid: number;
  /** The program's last PCR before the cue (27 MHz ticks). */
  readonly pcr: number | null;
  readonly command: string;
  readonly summary: string;
  readonly section_base64: string;
  readonly cue: SpliceInfoSection | null;
  readonly error: string | null;
}

export interface Scte35Watcher {
  readonly onSection: (pid: number, pcr: number | null, section: Uint8Array) => void;
  /** Newest last. */
  readonly recent: () => ReadonlyArray<CueRecord>;
  readonly countsByCommand: () => ReadonlyMap<string, number>;
  readonly undecodable: () => number;
  readonly lastCueAt: () => number | null;
  readonly subscribe: (listener: (cue: CueRecord) => void) => () => void;
}

/**
 * Decodes the sections the packet core hands over. Cues are rare (a few a minute), so decoding each one to
 * JSON here costs nothing next to the packet path; the sections themselves are forwarded untouched anyway.
 */
export const makeScte35Watcher = (keep = 100): Scte35Watcher => {
  const log: CueRecord[] = [];
  const counts = new Map<string, number>();
  const listeners = new Set<(cue: CueRecord) => void>();
  let undecodable = 0;
  let lastCueAt: number | null = null;

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
      section_base64: Buffer.from(section).toString("base64"),
      cue,
      error: Either.isLeft(decoded) ? decoded.left.message : null,
    };
    if (cue === null) undecodable += 1;
    counts.set(command, (counts.get(command) ?? 0) + 1);
    lastCueAt = record.at;
    log.push(record);
    if (log.length > keep) log.shift();
    for (const listener of listeners) listener(record);
  };

  return {
    onSection,
    recent: () => [...log],
    countsByCommand: () => new Map(counts),
    undecodable: () => undecodable,
    lastCueAt: () => lastCueAt,
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
};
