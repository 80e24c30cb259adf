/**
 * A hand-over: a channel going from one holder to another while it stays on air — a process to its upgrade
 * (one box), a node to another (a move or a drain in a fleet), a forwarding thread to another. Every
 * hand-over is reported once (effects/handover/report.ts): a `handover` event, the fleet's audit trail and
 * the metrics. Plain values only: forwarding-thread code may import this file.
 */

/** What handed the channel over. */
export const HANDOVER_KINDS = ["upgrade", "move", "drain", "thread"] as const;
export type HandoverKind = (typeof HANDOVER_KINDS)[number];

/**
 * How the cut was made: `socket` (the input sockets handed to the new process, one box), `agreed` (two
 * nodes reading the same stream agreed on the last packet the old one sends), `pts` (different copies: cut
 * at a random access point aligned by PTS, discontinuity flagged), `margin` (no agreement could be made:
 * the new holder started after the old one's last send, with the fence's margin between), `thread` (between
 * forwarding threads of one process).
 */
export const HANDOVER_MODES = ["socket", "agreed", "pts", "margin", "thread"] as const;
export type HandoverMode = (typeof HANDOVER_MODES)[number];

/** A hand-over as people read it, the event's fields without the channel. */
export interface HandoverFacts {
  readonly kind: HandoverKind;
  readonly mode: HandoverMode;
  readonly from: string;
  readonly to: string;
  readonly packets_at_cut: number;
  readonly duration_ms: number;
  readonly lost: number;
  readonly repeated: number;
}

const KIND_WORDS: Readonly<Record<HandoverKind, string>> = {
  upgrade: "upgrade",
  move: "move",
  drain: "drain",
  thread: "thread move",
};

const MODE_WORDS: Readonly<Record<HandoverMode, string>> = {
  socket: "input sockets handed over",
  agreed: "cut agreed by both",
  pts: "cut at a random access point aligned by PTS",
  margin: "cut with a margin, not agreed",
  thread: "between threads",
};

/** "handed over (thread move) from thread 1 to thread 2 in 4 ms, after 12345 TS packets: 0 lost, 0 repeated (between threads)". */
export const handoverWords = (h: HandoverFacts): string =>
  `handed over (${KIND_WORDS[h.kind]}) from ${h.from} to ${h.to} in ${Math.round(h.duration_ms)} ms, after ${h.packets_at_cut} TS packets: ${h.lost} lost, ${h.repeated} repeated (${MODE_WORDS[h.mode]})`;

/** Whether the hand-over kept the promise: every packet once. */
export const handoverClean = (h: HandoverFacts): boolean => h.lost === 0 && h.repeated === 0;

/** A node's (a process's) upgrade on one box: one under way, and how the last ended (effects/handover/upgrade-state.ts). */
export interface UpgradeUnderWay {
  readonly from_version: string;
  /** null until the new process has said which version it runs */
  readonly to_version: string | null;
  /** ISO 8601 */
  readonly since: string;
}

export interface LastUpgrade {
  /** ISO 8601, when it ended */
  readonly at: string;
  readonly outcome: "done" | "failed";
  readonly from_version: string;
  readonly to_version: string | null;
  readonly duration_ms: number;
  /** channels handed over (done) */
  readonly channels: number;
  /** why it failed, in words; null when done */
  readonly reason: string | null;
}

export interface UpgradeState {
  readonly upgrading: UpgradeUnderWay | null;
  readonly last: LastUpgrade | null;
}

/** A node's drain: channels it still holds, or done. */
export interface NodeDrain {
  readonly state: "draining" | "drained";
  readonly channels_left: number;
}

/** An upgrade state as a peer reported it (JSON from the database): null when it is not one. */
export const upgradeStateOf = (value: unknown): UpgradeState | null => {
  if (typeof value !== "object" || value === null) return null;
  const { upgrading, last } = value as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === "string" ? v : null);
  const under =
    typeof upgrading === "object" && upgrading !== null ? (upgrading as Record<string, unknown>) : null;
  const ended = typeof last === "object" && last !== null ? (last as Record<string, unknown>) : null;
  return {
    upgrading:
      under === null
        ? null
        : {
            from_version: text(under.from_version) ?? "?",
            to_version: text(under.to_version),
            since: text(under.since) ?? "",
          },
    last:
      ended === null
        ? null
        : {
            at: text(ended.at) ?? "",
            outcome: ended.outcome === "failed" ? "failed" : "done",
            from_version: text(ended.from_version) ?? "?",
            to_version: text(ended.to_version),
            duration_ms: typeof ended.duration_ms === "number" ? ended.duration_ms : 0,
            channels: typeof ended.channels === "number" ? ended.channels : 0,
            reason: text(ended.reason),
          },
  };
};
