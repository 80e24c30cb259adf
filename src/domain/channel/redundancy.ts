/**
 * A channel's redundancy settings: how a backup input is used (failover, ST 2022-7 merge, or not at all),
 * its timers, and SMPTE 2022-1 FEC per input. Field names are the API's. `resolveRedundancy` fills the
 * defaults and checks the settings against the channel's inputs; every problem names its field, so the API
 * can hand the messages straight back.
 */
import * as Either from "effect/Either";
import { type Health, resolveHealth } from "../health/health.ts";
import type { HealthConfig } from "../health/health-schema.ts";

export type InputRole = "primary" | "backup";

/** Where a channel input listens: unicast, or a multicast group (optionally source-specific, on one interface). */
export interface InputEndpoint {
  readonly ip: string;
  readonly port: number;
  /** Source-specific multicast: only this sender's datagrams. */
  readonly source?: string | undefined;
  /** Local interface address for the multicast join. */
  readonly interface?: string | undefined;
  /** Only datagrams from these senders (addresses or CIDR blocks, domain/channel/sources.ts); every sender when absent. */
  readonly allowedSources?: ReadonlyArray<string> | undefined;
  /**
   * An SRT input instead of plain UDP/RTP: the srt:// URL (listener or caller, with its options). The
   * stream arrives through libsrt; `ip` and `port` then only name it in status.
   */
  readonly srt?: string | undefined;
}
export type RedundancyMode = "failover" | "merge" | "none";
export type RevertPolicy = "auto" | "sticky";

interface FecInputs {
  readonly primary: boolean;
  readonly backup: boolean;
}

/** As configured: every field optional; `fec: true` means FEC on every input. */
export interface RedundancyConfig {
  readonly mode?: RedundancyMode | undefined;
  readonly failover_after_ms?: number | undefined;
  readonly revert?: RevertPolicy | undefined;
  readonly revert_after_ms?: number | undefined;
  readonly merge_window_ms?: number | undefined;
  readonly fec?: boolean | FecInputs | undefined;
  /** Health rules (domain/health/health.ts): absent or null (a PATCH's way to remove them), silence alone. */
  readonly health?: HealthConfig | null | undefined;
}

/** As a channel runs it. */
export interface Redundancy {
  /** "failover" only with a backup: a channel without one runs "none". */
  readonly mode: RedundancyMode;
  readonly failover_after_ms: number;
  readonly revert: RevertPolicy;
  readonly revert_after_ms: number;
  /** The recovery window: how long a gap is held for the other path's copy or for FEC to rebuild it. */
  readonly merge_window_ms: number;
  readonly fec: FecInputs;
  /** The inputs' health rules; null: silence alone makes an input unhealthy. */
  readonly health: Health | null;
}

/** MediaConnect's figures: failover after 500 ms without data, a 200 ms merge recovery window. */
const redundancyDefaults = {
  failover_after_ms: 500,
  revert: "auto",
  revert_after_ms: 10_000,
  merge_window_ms: 200,
} as const;

/** Column FEC arrives on the media port + 2, row FEC on + 4 (SMPTE 2022-1). */
export const FEC_COLUMN_PORT_OFFSET = 2;
export const FEC_ROW_PORT_OFFSET = 4;

/** The timers' ranges, which the API's schema (redundancy-schema.ts) and the resolution below both hold to. */
export const redundancyRanges = {
  failover_after_ms: [50, 60_000],
  revert_after_ms: [0, 3_600_000],
  merge_window_ms: [1, 10_000],
} as const;

interface RedundancyIssue {
  /** The field to fix, e.g. "redundancy.failover_after_ms". */
  readonly field: string;
  readonly message: string;
}

const show = (value: unknown): string => JSON.stringify(value) ?? String(value);

/**
 * Fills the defaults and checks `config` against the inputs it will run with. Returns the settings the channel
 * runs, or every problem found.
 */
export const resolveRedundancy = (
  config: RedundancyConfig | undefined,
  inputs: { readonly primary: InputEndpoint; readonly backup: InputEndpoint | null },
): Either.Either<Redundancy, ReadonlyArray<RedundancyIssue>> => {
  const issues: RedundancyIssue[] = [];
  const issue = (field: string, message: string) => issues.push({ field: `redundancy.${field}`, message });
  const given = config ?? {};

  const number = (field: keyof typeof redundancyRanges): number => {
    const value = given[field];
    const [min, max] = redundancyRanges[field];
    if (value === undefined) return redundancyDefaults[field];
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
      issue(field, `must be an integer from ${min} to ${max}, got ${show(value)}`);
    return value;
  };
  const failoverAfter = number("failover_after_ms");
  const revertAfter = number("revert_after_ms");
  const window = number("merge_window_ms");

  const hasBackup = inputs.backup !== null;
  const requested = given.mode ?? (hasBackup ? "failover" : "none");
  if (!["failover", "merge", "none"].includes(requested))
    issue("mode", `must be one of failover, merge, none; got ${show(requested)}`);
  if (requested === "merge" && !hasBackup)
    issue(
      "mode",
      "merge needs a backup input carrying the same RTP stream; add backup_rtp_ip and backup_rtp_port",
    );
  const revert = given.revert ?? redundancyDefaults.revert;
  if (revert !== "auto" && revert !== "sticky")
    issue("revert", `must be auto or sticky, got ${show(revert)}`);

  const fecGiven = given.fec ?? false;
  const fec: FecInputs =
    typeof fecGiven === "boolean" ? { primary: fecGiven, backup: fecGiven && hasBackup } : fecGiven;
  if (typeof fec.primary !== "boolean" || typeof fec.backup !== "boolean")
    issue("fec", `must be true, false or {"primary": boolean, "backup": boolean}, got ${show(fecGiven)}`);
  if (fec.backup === true && !hasBackup) issue("fec.backup", "there is no backup input to take FEC for");

  const fecInputs: Array<[InputRole, InputEndpoint]> = [];
  if (fec.primary === true) fecInputs.push(["primary", inputs.primary]);
  if (fec.backup === true && inputs.backup !== null) fecInputs.push(["backup", inputs.backup]);
  for (const [role, endpoint] of fecInputs) {
    if (endpoint.port + FEC_ROW_PORT_OFFSET > 65_535)
      issue(
        `fec.${role}`,
        `FEC listens on the ${role} port + ${FEC_COLUMN_PORT_OFFSET} and + ${FEC_ROW_PORT_OFFSET}; port ${endpoint.port} leaves no room`,
      );
  }
  const sockets = [
    { what: "primary input", ...inputs.primary },
    ...(inputs.backup === null ? [] : [{ what: "backup input", ...inputs.backup }]),
    ...fecInputs.flatMap(([role, endpoint]) => [
      { what: `${role} FEC column stream`, ip: endpoint.ip, port: endpoint.port + FEC_COLUMN_PORT_OFFSET },
      { what: `${role} FEC row stream`, ip: endpoint.ip, port: endpoint.port + FEC_ROW_PORT_OFFSET },
    ]),
  ];
  for (const [index, socket] of sockets.entries()) {
    const clash = sockets
      .slice(0, index)
      .find((other) => other.ip === socket.ip && other.port === socket.port);
    if (clash !== undefined)
      issue("fec", `the ${socket.what} would use ${socket.ip}:${socket.port}, which the ${clash.what} uses`);
  }

  let health: Health | null = null;
  if (given.health != null) {
    const resolved = resolveHealth(given.health);
    if (Either.isLeft(resolved))
      for (const problem of resolved.left) issue(`health.${problem.field}`, problem.message);
    else health = resolved.right;
    if (requested === "merge")
      issue(
        "health",
        "health rules choose which input is on air, and in mode merge both are at once: use mode failover",
      );
  }

  if (issues.length > 0) return Either.left(issues);
  return Either.right({
    mode: requested === "failover" && !hasBackup ? "none" : requested,
    failover_after_ms: failoverAfter,
    revert,
    revert_after_ms: revertAfter,
    merge_window_ms: window,
    fec: { primary: fec.primary, backup: fec.backup },
    health,
  });
};

export const describeIssues = (issues: ReadonlyArray<RedundancyIssue>): string =>
  issues.map((issue) => `${issue.field}: ${issue.message}`).join("; ");
