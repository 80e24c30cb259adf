/**
 * What a channel's input path tells: its selector's switches, losses and recoveries as events for the bus
 * (counted by reason), and its status, one projection for both the summary and the full detail. input-path.ts
 * hands in what it holds; nothing here changes the path.
 */

import type { PacketCore } from "../../core/packet-core.ts";
import type { InputEndpoint, InputRole, Redundancy } from "../../domain/channel/redundancy.ts";
import type { RistLinkFigures } from "../runtime/links/rist-link.ts";
import type { RedundancyEvent, SwitchReason } from "./failover.ts";
import type { FecInput } from "./fec.ts";
import type { InputHealthStatus } from "./input-health.ts";
import {
  type InputPathOptions,
  type InputRuntime,
  type InputSummaryStatus,
  type InputsSummary,
  type InputTraffic,
  type MergeStatus,
  type RedundancyStatus,
  type RedundancySummary,
  srpRefusalsOf,
} from "./input-types.ts";
import { LANE, type SequenceMerger } from "./merge.ts";
import type { RtmpInputFigures } from "./rtmp-receiver.ts";
import type { Selector } from "./selector.ts";
import type { SrtInputFigures } from "./srt-receiver.ts";

/** The selector's events as the bus has them; each switch counted under its reason in `switchesByReason`. */
export const reportSelectorEvents =
  (
    channel: InputPathOptions["channel"],
    emit: InputPathOptions["emit"],
    switchesByReason: Record<SwitchReason, number>,
  ): ((event: RedundancyEvent) => void) =>
  (event) => {
    const at = new Date(event.at).toISOString();
    switch (event.type) {
      case "switch":
        switchesByReason[event.reason] += 1;
        return emit({
          type: "input_switched",
          channel,
          from: event.from,
          to: event.to,
          reason: event.reason,
          ...(event.rule === undefined ? {} : { rule: event.rule }),
          at,
        });
      case "held":
        return emit({
          type: "input_switch_held",
          channel,
          from: event.from,
          to: event.to,
          reason: event.reason,
          rule: event.rule,
          at,
        });
      case "input_lost":
        return emit({ type: "input_lost", channel, at });
      case "input_restored":
        return emit({ type: "input_restored", channel, input: event.role, at });
    }
  };

/** What the status reads of one input. */
interface InputOnStatus {
  readonly role: InputRole;
  readonly endpoint: InputEndpoint;
  readonly core: PacketCore;
  readonly fec: { readonly input: FecInput } | null;
  readonly rist: (() => RistLinkFigures) | null;
  readonly rtmp: (() => RtmpInputFigures) | null;
  readonly srt?: (() => SrtInputFigures) | null;
}

/** What the status reads of the path. */
interface PathOnStatus {
  readonly selector: Selector;
  readonly redundancy: Redundancy;
  readonly switchesByReason: Readonly<Record<SwitchReason, number>>;
  /** Primary first, then the backup. */
  readonly inputs: ReadonlyArray<InputOnStatus>;
  /** In merge mode, the 2022-7 merge of both inputs. */
  readonly merger: SequenceMerger | null;
  readonly health: (role: InputRole) => InputHealthStatus | null;
}

const mergeStatus = (merger: SequenceMerger | null): MergeStatus | null => {
  if (merger === null) return null;
  const { received: _received, firstCopies, ...counts } = merger.snapshot();
  return {
    ...counts,
    firstCopies: { primary: firstCopies[LANE.primary] ?? 0, backup: firstCopies[LANE.backup] ?? 0 },
  };
};

/** The one projection: the summary, and with `detail` the same fields in full plus the detail's own. */
export const projectInputs = (path: PathOnStatus, detail: boolean): InputsSummary => {
  const { selector, redundancy, merger } = path;
  const now = selector.now();
  const active = selector.active();
  const figures: RedundancySummary = {
    mode: redundancy.mode,
    failover_after_ms: redundancy.failover_after_ms,
    revert: redundancy.revert,
    revert_after_ms: redundancy.revert_after_ms,
    merge_window_ms: redundancy.merge_window_ms,
    active,
    failovers: selector.failovers("primary") + selector.failovers("backup"),
    failoversByReason: { ...path.switchesByReason },
  };
  const full: RedundancyStatus | RedundancySummary = detail
    ? { ...figures, events: selector.events(), merge: mergeStatus(merger) }
    : figures;
  return {
    input: selector.health(),
    redundancy: full,
    lastSwitch: selector.lastSwitch(),
    inputs: path.inputs.map((input): InputSummaryStatus => {
      const last = selector.lastArrival(input.role);
      const fec = input.fec?.input.snapshot() ?? null;
      return {
        role: input.role,
        endpoint: input.endpoint,
        active: merger !== null || input.role === active,
        lastPacketAgeMs: last === null ? null : Math.max(0, Math.round(now - last)),
        failovers: selector.failovers(input.role),
        fec: detail || fec === null ? fec : { recovered: fec.recovered, unrecoverable: fec.unrecoverable },
        core: detail ? input.core.snapshot() : input.core.counters(),
        health: path.health(input.role),
        rist: input.rist?.() ?? null,
        rtmp: input.rtmp?.() ?? null,
        srt: input.srt?.() ?? null,
      };
    }),
  };
};

/** Each input's TS bytes so far, and a RIST listener's EAP-SRP refusals. */
export const trafficOf = (inputs: ReadonlyArray<InputRuntime>): ReadonlyArray<InputTraffic> =>
  inputs.map((input) => {
    const srp = input.rist === null ? null : srpRefusalsOf(input.rist());
    return { role: input.role, bytes: input.core.bytes(), ...(srp === null ? {} : { srp }) };
  });
