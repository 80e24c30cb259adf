/**
 * RIST link figures as the API shows them (domain/views/views-rist.ts), and the words for an input whose peer sends
 * nothing: librist drops a sender's packets without a word when the profile or the secret does not match, so
 * silence is all there is to go by, and the status names what to check.
 */
import type { RistInputView, RistPeerView } from "../../domain/views/views-rist.ts";
import type { RistLinkFigures } from "../runtime/links/rist-link.ts";

/** An input silent this long (or from its start) is said to get no RIST data. */
const SILENT_MS = 2000;

export const NO_RIST_DATA = "no RIST data from the peer: check the profile, the secret and the port";

export const ristPeerView = (peer: string, figures: RistLinkFigures): RistPeerView => ({
  peer,
  quality: figures.quality,
  received: figures.packets,
  recovered: figures.recovered,
  lost: figures.lost,
  late_drops: figures.lateDrops,
  retries: figures.retries,
  rtt_ms: figures.rttMs,
  bitrate_bps: figures.bitrateBps,
  authenticated: figures.authenticated,
});

/**
 * Why a silent input's caller was turned away by the listener's EAP-SRP check (srpfile), when librist asked
 * about one since data last came; null otherwise.
 */
const srpProblem = (figures: RistLinkFigures): string | null => {
  if (figures.srpFileProblem !== null)
    return `EAP-SRP: every caller is turned away: ${figures.srpFileProblem}`;
  const attempt = figures.srpAttempt;
  if (attempt === null || (figures.lastDataAt !== null && figures.lastDataAt >= attempt.at)) return null;
  if (attempt.outcome === "unknown")
    return `EAP-SRP: the caller '${attempt.user}' is not in the input's srpfile: add it with ristsrppasswd`;
  if (attempt.outcome === "password")
    return `EAP-SRP: the caller '${attempt.user}' was refused: its password does not match the input's username and password`;
  if (attempt.outcome === "refused")
    return `EAP-SRP: the caller '${attempt.user}' was refused: its password does not match the srpfile's verifier`;
  return null;
};

/** A RIST input's view: `where` names its port(s), `lastPacketAgeMs` is the input's own (null: none yet). */
export const ristInputView = (
  where: string,
  figures: RistLinkFigures,
  lastPacketAgeMs: number | null,
): RistInputView => ({
  ...ristPeerView(where, figures),
  problem:
    lastPacketAgeMs === null || lastPacketAgeMs > SILENT_MS ? (srpProblem(figures) ?? NO_RIST_DATA) : null,
  srp_refusals: figures.srpRefusals,
});
