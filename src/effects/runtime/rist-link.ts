/**
 * What a RIST input and a RIST output share: librist loaded or the reason it cannot be, the peers handed to it
 * (secrets revealed for librist alone), and a link's totals added up from librist's readings, which count only
 * the interval since the reading before.
 */
import { Effect, Redacted } from "effect";
import type { RistTarget } from "../../domain/url.ts";
import { loadLibRist } from "./librist.ts";
import type { RistReading } from "./librist-api.ts";

/** How often librist reports a link's statistics. */
export const RIST_STATS_MS = 1000;

/** A RIST link's figures, totals since it started (librist's readings add up here). */
export interface RistLinkFigures
  extends Pick<
    RistReading,
    "quality" | "packets" | "recovered" | "lost" | "lateDrops" | "retries" | "rttMs" | "bitrateBps"
  > {
  /** Whether the peer got through librist's checks (secret, EAP-SRP); null when the link has neither. */
  readonly authenticated: boolean | null;
  /** When data last came (or went), ms since the epoch; null before any. */
  readonly lastDataAt: number | null;
}

/** Adds librist's readings (counters of an interval) to a link's totals. */
export const ristTotals = (secured: boolean) => {
  let totals: RistLinkFigures = {
    quality: 100,
    packets: 0,
    recovered: 0,
    lost: 0,
    lateDrops: 0,
    retries: 0,
    rttMs: 0,
    bitrateBps: 0,
    authenticated: secured ? false : null,
    lastDataAt: null,
  };
  const add = (reading: RistReading, now: number) => {
    totals = {
      quality: reading.packets + reading.lost > 0 ? reading.quality : totals.quality,
      packets: totals.packets + reading.packets,
      recovered: totals.recovered + reading.recovered,
      lost: totals.lost + reading.lost,
      lateDrops: totals.lateDrops + reading.lateDrops,
      retries: totals.retries + reading.retries,
      rttMs: reading.rttMs,
      bitrateBps: reading.bitrateBps,
      // librist drops what it cannot decrypt or authenticate: a peer heard has passed its checks.
      authenticated: secured ? totals.authenticated === true || reading.packets > 0 : null,
      lastDataAt: reading.packets > 0 ? now : totals.lastDataAt,
    };
  };
  return { add, figures: () => totals };
};

/** librist's peers for a target: its own URLs and the EAP-SRP credentials, secrets revealed for librist alone. */
export const ristPeers = (target: RistTarget) =>
  target.peers.map((peer) => ({
    url: Redacted.value(peer.librist),
    username: peer.username,
    password: peer.password === null ? null : Redacted.value(peer.password),
  }));

/** librist, or why it cannot be used, as the given error. */
export const libRistOr = <E>(fail: (message: string) => E) =>
  Effect.suspend(() => {
    const loaded = loadLibRist();
    return "lib" in loaded ? Effect.succeed(loaded.lib) : Effect.fail(fail(loaded.error));
  });
