/**
 * This process's upgrade on one box, as the Nodes page and `/api/nodes` show it: whether one is under way
 * (from which version, since when, and to which once the new process has said), and how the last one ended.
 * upgrade.ts keeps it; a fleet node reports it with its heartbeat (`load.upgrade`), so every node's page shows
 * every node's. Plain values: nothing here runs an Effect.
 */

import type { LastUpgrade, UpgradeState } from "../../domain/channel/handover.ts";

let state: UpgradeState = { upgrading: null, last: null };

export const upgradeState = (): UpgradeState => state;

export const upgradeStarted = (fromVersion: string): void => {
  state = {
    ...state,
    upgrading: { from_version: fromVersion, to_version: null, since: new Date().toISOString() },
  };
};

/** The new process said which version it runs. */
export const upgradeTo = (toVersion: string): void => {
  if (state.upgrading !== null)
    state = { ...state, upgrading: { ...state.upgrading, to_version: toVersion } };
};

const endWith = (last: Omit<LastUpgrade, "at">): void => {
  state = { upgrading: null, last: { at: new Date().toISOString(), ...last } };
};

/** The old process keeps every channel: why, in words. */
export const upgradeFailed = (
  fromVersion: string,
  toVersion: string | null,
  durationMs: number,
  reason: string,
): void =>
  endWith({
    outcome: "failed",
    from_version: fromVersion,
    to_version: toVersion,
    duration_ms: durationMs,
    channels: 0,
    reason,
  });

/** The new process took every channel (its `upgrade` event). */
export const upgradeDone = (event: {
  readonly from: { readonly version: string };
  readonly to: { readonly version: string } | null;
  readonly channels: ReadonlyArray<unknown>;
  readonly duration_ms: number;
}): void =>
  endWith({
    outcome: "done",
    from_version: event.from.version,
    to_version: event.to?.version ?? null,
    duration_ms: event.duration_ms,
    channels: event.channels.length,
    reason: null,
  });
