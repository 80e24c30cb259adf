/**
 * What a fleet test measures at its receiver, from the datagrams alone: the longest silence of an output, who
 * sent (the source address of each datagram, named by node), moments when two nodes sent at once, and whether
 * what came after a takeover is the stream itself, byte for byte, cues included. Pure: the lab tests feed it
 * what the receiver recorded, and test/fleet/fleet-analysis.test.ts feeds it made-up arrivals.
 */
import { analyse } from "./analyse.ts";

export interface Received {
  /** Epoch milliseconds, as the receiver's clock read it on arrival. */
  readonly atMs: number;
  /** The sender's IPv4 address. */
  readonly source: string;
  readonly port: number;
  readonly length: number;
  /** The sender's UDP port and, for RTP, its SSRC (0 for plain TS), when the receiver records them. */
  readonly sourcePort?: number;
  readonly ssrc?: number;
  /** The datagram, when the receiver keeps bytes. */
  readonly datagram?: Buffer;
}

export interface Silence {
  readonly ms: number;
  /** The last arrival before it (or the window's start). */
  readonly fromMs: number;
  /** The first arrival after it (or the window's end). */
  readonly toMs: number;
}

/**
 * The longest time without a datagram between `fromMs` and `untilMs` (by default the first and last arrival):
 * an output that never came back is silent up to `untilMs`.
 */
export const longestSilence = (
  arrivals: ReadonlyArray<Received>,
  window: { readonly fromMs?: number; readonly untilMs?: number } = {},
): Silence => {
  const inside = arrivals.filter(
    (arrival) =>
      (window.fromMs === undefined || arrival.atMs >= window.fromMs) &&
      (window.untilMs === undefined || arrival.atMs <= window.untilMs),
  );
  const times = inside.map((arrival) => arrival.atMs);
  if (window.fromMs !== undefined) times.unshift(window.fromMs);
  if (window.untilMs !== undefined) times.push(window.untilMs);
  let longest: Silence = { ms: 0, fromMs: times[0] ?? 0, toMs: times[0] ?? 0 };
  for (let i = 1; i < times.length; i++) {
    const [fromMs, toMs] = [times[i - 1] as number, times[i] as number];
    if (toMs - fromMs > longest.ms) longest = { ms: toMs - fromMs, fromMs, toMs };
  }
  return longest;
};

export interface Handover {
  /** The first datagram of the new sender. */
  readonly atMs: number;
  readonly from: string;
  readonly to: string;
  /** Since the previous sender's last datagram. */
  readonly gapMs: number;
}

/** Every change of sender, in order. */
export const handovers = (arrivals: ReadonlyArray<Received>): ReadonlyArray<Handover> => {
  const changes: Handover[] = [];
  for (let i = 1; i < arrivals.length; i++) {
    const [before, after] = [arrivals[i - 1] as Received, arrivals[i] as Received];
    if (before.source !== after.source)
      changes.push({
        atMs: after.atMs,
        from: before.source,
        to: after.source,
        gapMs: after.atMs - before.atMs,
      });
  }
  return changes;
};

/**
 * Stretches when two senders were on air together: datagrams from two addresses that interleave (the sender
 * changes twice or more within `windowMs`), joined while such changes keep coming. One clean handover,
 * however short its gap, is not one: the old sender's datagrams all came before the new one's.
 */
export const doubleSending = (
  arrivals: ReadonlyArray<Received>,
  windowMs = 100,
): ReadonlyArray<{
  readonly atMs: number;
  readonly untilMs: number;
  readonly sources: ReadonlyArray<string>;
}> => {
  const changes = handovers(arrivals);
  const found: Array<{ atMs: number; untilMs: number; sources: string[] }> = [];
  for (let i = 1; i < changes.length; i++) {
    const [first, second] = [changes[i - 1] as Handover, changes[i] as Handover];
    if (second.atMs - first.atMs > windowMs) continue;
    const last = found.at(-1);
    if (last !== undefined && first.atMs - last.untilMs <= windowMs) {
      last.untilMs = second.atMs;
      last.sources = [...new Set([...last.sources, second.to])];
    } else
      found.push({ atMs: first.atMs, untilMs: second.atMs, sources: [...new Set([first.to, second.to])] });
  }
  return found;
};

/** Each datagram of a stream by its bytes: where it sits in the stream. */
export const streamIndex = (datagrams: ReadonlyArray<Uint8Array>): ReadonlyMap<string, number> =>
  new Map(datagrams.map((datagram, index) => [Buffer.from(datagram).toString("latin1"), index]));

export interface Continuation {
  /** Datagrams that came after the moment. */
  readonly count: number;
  /** Where the first of them sits in the stream; -1 when it is not the stream's. */
  readonly firstIndex: number;
  /** Every datagram after the moment is the stream's next one, byte for byte. */
  readonly contiguous: boolean;
  /** Where it was not: the arrival time, the position expected and the one that came (-1: not the stream's). */
  readonly breaks: ReadonlyArray<{ readonly atMs: number; readonly expected: number; readonly got: number }>;
  /** The SCTE-35 sections that came, and those the stream holds over the same stretch (base64). */
  readonly cues: ReadonlyArray<string>;
  readonly expectedCues: ReadonlyArray<string>;
}

/**
 * Where each arrival sits in the stream (-1: not the stream's). A datagram a fleet hand-over split at its cut (the
 * old holder sent its packets before a random access point, the new one the rest: docs/fleet.md) is read whole
 * again with the shorter ones after it, and counts once; the rest of one split before the first arrival is
 * left out.
 */
const wholePositions = (
  arrivals: ReadonlyArray<Received>,
  index: ReadonlyMap<string, number>,
): ReadonlyArray<number> => {
  const full = index.keys().next().value?.length ?? 0;
  const out: number[] = [];
  for (let i = 0; i < arrivals.length; ) {
    let whole = arrivals[i]?.datagram;
    let j = i + 1;
    while (whole !== undefined && whole.length < full && j < arrivals.length) {
      const next = arrivals[j]?.datagram;
      if (next === undefined) break;
      whole = Buffer.concat([whole, next]);
      j++;
    }
    // A short one that does not make a whole one with those after it is the rest of one split before the window.
    if (whole !== undefined && whole.length > full && (arrivals[i]?.datagram?.length ?? full) < full) {
      i += 1;
      continue;
    }
    out.push(whole === undefined ? -1 : (index.get(whole.toString("latin1")) ?? -1));
    i = j;
  }
  return out;
};

/** Whether what arrived from `afterMs` on is a whole stretch of the stream, its cues exactly the stream's. */
export const continuation = (
  arrivals: ReadonlyArray<Received>,
  afterMs: number,
  stream: ReadonlyArray<Uint8Array>,
  index: ReadonlyMap<string, number>,
): Continuation => {
  const after = arrivals.filter((arrival) => arrival.atMs >= afterMs);
  const positions = wholePositions(after, index);
  const firstIndex = positions[0] ?? -1;
  const breaks: Array<{ atMs: number; expected: number; got: number }> = [];
  for (let i = 1; i < positions.length; i++) {
    const [expected, got] = [(positions[i - 1] as number) + 1, positions[i] as number];
    if (got !== expected || expected === 0) breaks.push({ atMs: after[i]?.atMs ?? 0, expected, got });
  }
  const contiguous = firstIndex >= 0 && breaks.length === 0;
  const cues = analyse(Buffer.concat(after.flatMap((arrival) => arrival.datagram ?? []))).sections;
  const expectedCues =
    firstIndex < 0
      ? []
      : analyse(Buffer.concat(stream.slice(firstIndex, firstIndex + after.length).map((d) => Buffer.from(d))))
          .sections;
  return { count: after.length, firstIndex, contiguous, breaks, cues, expectedCues };
};

/** A time of day with milliseconds, for the printed reports. */
export const clock = (epochMs: number): string => new Date(epochMs).toISOString().slice(11, 23);

/** One output's line of a printed report. */
export const outputLine = (
  label: string,
  arrivals: ReadonlyArray<Received>,
  names: ReadonlyMap<string, string>,
  window: { readonly fromMs?: number; readonly untilMs?: number } = {},
): string => {
  const silence = longestSilence(arrivals, window);
  const name = (address: string) => names.get(address) ?? address;
  const moves = handovers(arrivals).map(
    (change) =>
      `${name(change.from)}→${name(change.to)} at ${clock(change.atMs)} (+${Math.round(change.gapMs)} ms)`,
  );
  const doubles = doubleSending(arrivals);
  return (
    `  ${label}: ${arrivals.length} datagrams, longest silence ${Math.round(silence.ms)} ms ` +
    `(${clock(silence.fromMs)} → ${clock(silence.toMs)}); senders ${[...new Set(arrivals.map((a) => name(a.source)))].join(", ") || "none"}` +
    `${moves.length > 0 ? `; handovers ${moves.join(", ")}` : ""}; double sending: ${doubles.length === 0 ? "none" : doubles.map((d) => `${clock(d.atMs)} (${d.sources.map(name).join("+")})`).join(", ")}`
  );
};
