/**
 * The channel's TS filters (core/ts-filter.ts), in the order its stream goes through them on its way to the
 * fan-out's outputs: this list is the one place they are named. A filter is added here and nowhere else: an
 * entry with the filter and when it works (`active`, read per chunk; a filter that is not active is passed
 * by, and while none is, the channel keeps its fast path of whole reads).
 *
 * Before the list, on the fan-out's own path: a fleet channel's hand-over cut (cut-stage.ts, which keeps
 * datagrams in its ring and passes them on later) and the slate's turn (while the slate is on air the input
 * goes to it, slate.ts). After it: each output policy's group runs its own rewriter, a filter too
 * (policy-groups.ts), and an ffmpeg output its start gate (outputs/ffmpeg-push.ts).
 */
import type { CueInserter } from "../../core/cue-insert/inserter.ts";
import type { TsFilter } from "../../core/ts-filter.ts";

interface FilterEntry {
  /** What it does, in words (for whoever reads the list). */
  readonly name: string;
  readonly filter: TsFilter;
  readonly active: () => boolean;
}

export interface ChannelFilters {
  /** The chunk through every active filter, in order: what goes on (valid until the next run), or null. */
  readonly run: (chunk: Uint8Array) => Uint8Array | null;
  /** Whether any filter works now. */
  readonly active: () => boolean;
}

export const makeChannelFilters = (parts: { readonly inserter: CueInserter }): ChannelFilters => {
  const filters: ReadonlyArray<FilterEntry> = [
    {
      name: "the operator's cues, on the programme's SCTE-35 PID (one added to the PMT when it has none)",
      filter: parts.inserter,
      active: () => parts.inserter.active,
    },
  ];
  const active = () => {
    for (let i = 0; i < filters.length; i++) if (filters[i]?.active() === true) return true;
    return false;
  };
  return {
    run: (chunk) => {
      let through: Uint8Array | null = chunk;
      for (let i = 0; i < filters.length && through !== null; i++) {
        const entry = filters[i];
        if (entry?.active() === true) through = entry.filter.push(through);
      }
      return through;
    },
    active,
  };
};
