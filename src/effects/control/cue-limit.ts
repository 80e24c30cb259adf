/**
 * How many operator cues a channel takes in a minute: an automation gone wrong (a loop that inserts a break
 * at every poll) would otherwise put a thousand breaks on air in seconds, and every one reaches every
 * destination that keeps cues. A sliding window per channel, in memory on the node that holds the channel
 * (where a fleet forwards every cue); a refusal says when the next cue may go.
 */

interface CueLimit {
  /** Whether a cue for `channel` may go now: null when it may, else the whole seconds until one may. */
  readonly wait: (channel: string) => number | null;
  /** A cue for `channel` went on air now (one refused for another reason does not count). */
  readonly taken: (channel: string) => void;
}

const MINUTE_MS = 60_000;

export const makeCueLimit = (perMinute: number, now: () => number = Date.now): CueLimit => {
  const recent = new Map<string, number[]>();
  /** The channel's cues of the last minute, oldest first (older ones let go). */
  const lastMinute = (channel: string, at: number) => {
    const kept = (recent.get(channel) ?? []).filter((time) => at - time < MINUTE_MS);
    recent.set(channel, kept);
    return kept;
  };
  return {
    wait: (channel) => {
      const at = now();
      const kept = lastMinute(channel, at);
      return kept.length < perMinute
        ? null
        : Math.max(1, Math.ceil(((kept[0] ?? at) + MINUTE_MS - at) / 1000));
    },
    taken: (channel) => {
      const at = now();
      lastMinute(channel, at).push(at);
    },
  };
};
