/**
 * The cost guard's rules, pure: a running MediaLive channel bills by the minute whether anything watches or
 * not, so once no output of ours has been enabled and sending for the linger, the guard stops it. It counts
 * only while MediaLive bills (RUNNING, RECOVERING), never stops a channel that is STARTING (the stop would be
 * refused, and the start was someone's intent), forgets everything the moment an output sends, and stands
 * down for the rest of an idle stretch when an operator keeps the channel. It never acts without a link.
 */

/** The states in which MediaLive bills the channel as running. */
const BILLED: ReadonlySet<string> = new Set(["RUNNING", "RECOVERING"]);

export interface GuardInput {
  /** Milliseconds on the clock the guard runs on. */
  readonly now: number;
  /** The linger in milliseconds; null when the channel is not linked or its guard is off. */
  readonly lingerMs: number | null;
  /** MediaLive's state as last described; null before the first answer. */
  readonly state: string | null;
  /** Whether an output of ours is enabled and sending. */
  readonly sending: boolean;
}

export interface GuardState {
  /** Since when nothing has sent while MediaLive billed; null when something sends or it does not bill. */
  readonly idleSince: number | null;
  /** An operator kept the channel running for this idle stretch. */
  readonly held: boolean;
}

export type GuardVerdict =
  | { readonly kind: "none" }
  | { readonly kind: "pending"; readonly stopAt: number; readonly held: boolean }
  | { readonly kind: "stop" };

export const idleGuard: GuardState = { idleSince: null, held: false };

const none: GuardVerdict = { kind: "none" };

/** The guard's next state and what it asks for, given what is seen now. */
export const stepGuard = (
  guard: GuardState,
  input: GuardInput,
): { readonly next: GuardState; readonly verdict: GuardVerdict } => {
  if (input.lingerMs === null || input.sending) return { next: idleGuard, verdict: none };
  // STARTING: no stop, and the stretch begins only once it runs (a start takes minutes).
  if (input.state === "STARTING") return { next: guard, verdict: none };
  if (input.state === null || !BILLED.has(input.state)) return { next: idleGuard, verdict: none };
  const idleSince = guard.idleSince ?? input.now;
  const next = { idleSince, held: guard.held };
  const stopAt = idleSince + input.lingerMs;
  if (guard.held || input.now < stopAt)
    return { next, verdict: { kind: "pending", stopAt, held: guard.held } };
  return { next, verdict: { kind: "stop" } };
};

/** An operator's "keep it running": the pending stop of this idle stretch is called off. */
export const holdGuard = (guard: GuardState): GuardState =>
  guard.idleSince === null ? guard : { ...guard, held: true };

/** When the guard next needs a look, if nothing else changes: its pending stop; null for none. */
export const guardDeadline = (verdict: GuardVerdict): number | null =>
  verdict.kind === "pending" && !verdict.held ? verdict.stopAt : null;
