/**
 * A PAT or a PMT made again from what the packet core read of it (its `pat` and `pmt` events), as TS packets:
 * what a part of the service that starts late (a new output policy's rewriter) reads before the stream's next
 * copy arrives. The sections say what the input's said; their packets' continuity counters count from 0.
 */
import type { CoreEvent } from "./packet-core-events.ts";
import { patSection, pmtSection, sectionPackets } from "./ts/index.ts";

/** What the packet core reports of a PAT and of a PMT. */
export type PatEvent = Extract<CoreEvent, { readonly type: "pat" }>;
export type PmtEvent = Extract<CoreEvent, { readonly type: "pmt" }>;

export const patPackets = (pat: PatEvent): Uint8Array => {
  const entries = [
    ...(pat.networkPid === null ? [] : [{ program: 0, pid: pat.networkPid }]),
    ...pat.programs.map(({ program, pmtPid }) => ({ program, pid: pmtPid })),
  ];
  return sectionPackets(patSection(pat.transportStreamId, pat.version, entries), 0);
};

export const pmtPackets = (pmt: PmtEvent): Uint8Array =>
  sectionPackets(pmtSection(pmt.program, pmt.version, pmt.pcrPid, pmt.programInfo, pmt.streams), pmt.pid);
