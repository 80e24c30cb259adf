/**
 * What the content watcher's ffmpeg says, read line by line into states: for each picture or sound rule, is
 * it on (black, frozen, silent) and since when, in the stream's own seconds, and how far into the stream
 * ffmpeg has got. Pure: the watcher (effects/ingest/content-watcher.ts) hands it ffmpeg's stderr and stdout
 * lines and asks it for states; the tests hand it lines real ffmpeg printed.
 *
 * Each rule's detector is followed by a `metadata@<rule>` (`ametadata@<rule>` for sound) printer
 * (content/args.ts), so a line names its rule: `[metadata@black @ 0x…] [info] lavfi.black_start=6.78`. The
 * printer says when a state begins and ends as the frame that shows it passes, which blackdetect's own log
 * does only once black ends. `-progress pipe:1` on stdout says where the stream is (`out_time_us=`) and how
 * many pictures were decoded (`frame=`).
 */

/** A rule's state as ffmpeg last reported it: on (true) or off since `since`, in stream seconds. */
export interface ContentState {
  readonly on: boolean;
  readonly since: number;
}

/** One line's meaning, or null for the lines that say nothing of the states. */
export type ContentLine =
  | { readonly kind: "state"; readonly rule: string; readonly on: boolean; readonly at: number }
  | { readonly kind: "progress"; readonly seconds: number }
  | { readonly kind: "frames"; readonly count: number };

const printed =
  /^\[a?metadata@([a-z][a-z0-9_]*) @ 0x[0-9a-f]+\] (?:\[\w+\] )?lavfi\.([a-z_.]+)=(-?[\d.]+)\s*$/;
const onKeys = new Set(["black_start", "freezedetect.freeze_start", "silence_start"]);
const offKeys = new Set(["black_end", "freezedetect.freeze_end", "silence_end"]);

/** Reads one line of stderr (`-loglevel level+info`) or of `-progress` on stdout. */
export const readContentLine = (line: string): ContentLine | null => {
  if (line.startsWith("out_time_us=")) {
    const micros = Number(line.slice("out_time_us=".length));
    return Number.isFinite(micros) && micros >= 0 ? { kind: "progress", seconds: micros / 1e6 } : null;
  }
  if (line.startsWith("frame=")) {
    const count = Number(line.slice("frame=".length).trim());
    return Number.isInteger(count) && count >= 0 ? { kind: "frames", count } : null;
  }
  const match = printed.exec(line);
  if (match === null) return null;
  const [, rule = "", key = "", value = ""] = match;
  const at = Number(value);
  if (!Number.isFinite(at)) return null;
  if (onKeys.has(key)) return { kind: "state", rule, on: true, at };
  if (offKeys.has(key)) return { kind: "state", rule, on: false, at };
  return null;
};

/** What one ffmpeg run has reported so far. */
export interface ContentReport {
  /** Each rule's last state; a rule not reported yet is off since the run's first progress. */
  readonly states: ReadonlyMap<string, ContentState>;
  /** The stream time ffmpeg has reached, and where this run started in it; null before its first progress. */
  readonly reached: number | null;
  readonly startedAt: number | null;
  /**
   * Pictures decoded so far; the stream time when the count was first above zero, and when it last grew, with
   * the count then (the spacing is read between two growths: each is seen as late as the other).
   */
  readonly frames: number;
  readonly firstFrameAt: number | null;
  readonly framesAtFirst: number;
  readonly lastFrameAt: number | null;
  readonly framesAtLast: number;
}

export const emptyReport: ContentReport = {
  states: new Map(),
  reached: null,
  startedAt: null,
  frames: 0,
  firstFrameAt: null,
  framesAtFirst: 0,
  lastFrameAt: null,
  framesAtLast: 0,
};

/** The report after one more line. A line that says nothing returns the same report. */
export const applyContentLine = (report: ContentReport, line: ContentLine | null): ContentReport => {
  if (line === null) return report;
  if (line.kind === "progress") {
    // ffmpeg's first progress may say 0 before any frame went out; the stream only moves forward here.
    const reached = Math.max(report.reached ?? line.seconds, line.seconds);
    const next = { ...report, reached, startedAt: report.startedAt ?? line.seconds };
    // The block's count (its frame= came first) against the block's own time: where the count first stood
    // above zero, and where it last grew.
    if (report.firstFrameAt === null)
      return report.frames > 0 ? { ...next, firstFrameAt: reached, framesAtFirst: report.frames } : next;
    return report.frames > Math.max(report.framesAtLast, report.framesAtFirst)
      ? { ...next, lastFrameAt: reached, framesAtLast: report.frames }
      : next;
  }
  if (line.kind === "frames") return { ...report, frames: line.count };
  const states = new Map(report.states);
  states.set(line.rule, { on: line.on, since: line.at });
  return { ...report, states };
};

/**
 * The spacing of the pictures this run decoded, in ms: in key-frame mode, the stream's GOP as the watcher
 * sees it. Null until two pictures over some stream time say so.
 */
export const pictureSpacingMs = (report: ContentReport): number | null => {
  const { firstFrameAt, framesAtFirst, lastFrameAt, framesAtLast } = report;
  // Three spacings at least, each end read when the count grew (so both are late alike).
  if (firstFrameAt === null || lastFrameAt === null || framesAtLast - framesAtFirst < 3) return null;
  const span = lastFrameAt - firstFrameAt;
  return span > 0 ? (span * 1000) / (framesAtLast - framesAtFirst) : null;
};
