/**
 * What a RIST input and a RIST output share: librist loaded or the reason it cannot be, the peers handed to it
 * (secrets revealed for librist alone), and a link's totals added up from librist's readings, which count only
 * the interval since the reading before.
 */
import * as Effect from "effect/Effect";
import * as Redacted from "effect/Redacted";
import type { RistTarget } from "../../../domain/url/rist.ts";
import { loadLibRist } from "../ffi/librist.ts";
import type { RistPeerSpec, RistReading } from "../ffi/librist-api.ts";
import { readSrpUsers, type SrpVerifier, shownSrpName } from "./rist-srp.ts";

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
  /** A listener's last EAP-SRP check of a caller (srpfile); null before any, and for any other link. */
  readonly srpAttempt: RistSrpAttempt | null;
  /**
   * Callers a listener's EAP-SRP check turned away since it started: a name its srpfile lacks (the lookup), or a
   * password refused (librist's log; a listener with one username and password too).
   */
  readonly srpRefusals: number;
  /** Why the listener's srpfile could not be read, in words (it then turns every caller away); null: it was. */
  readonly srpFileProblem: string | null;
}

/**
 * A caller librist asked a listener's srpfile about: the name it gave (as it may be shown), and `unknown` (not in
 * the file), `refused` (in it, and asked again within 1.5 s: librist 0.2.7 asks again at once after a proof that
 * failed, a wrong password, four times, and every 3 s while a caller stays authenticated) or `asked`.
 */
export interface RistSrpAttempt {
  readonly user: string;
  readonly outcome: "unknown" | "refused" | "asked" | "password";
  /** ms since the epoch. */
  readonly at: number;
}

/** A caller's name asked again sooner than this after the last time was refused (see RistSrpAttempt). */
const SRP_RETRY_MS = 1500;

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
    srpAttempt: null,
    srpRefusals: 0,
    srpFileProblem: null,
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
      srpAttempt: totals.srpAttempt,
      srpRefusals: totals.srpRefusals,
      srpFileProblem: totals.srpFileProblem,
    };
  };
  const noteSrp = (user: string, known: boolean, now: number) => {
    const last = totals.srpAttempt;
    const again = last !== null && last.user === user && now - last.at < SRP_RETRY_MS;
    const outcome = !known ? "unknown" : again ? "refused" : "asked";
    // An unknown name is counted here; a refused password when librist's log says so (noteAuthFailure).
    const refusals = totals.srpRefusals + (outcome === "unknown" ? 1 : 0);
    totals = { ...totals, srpAttempt: { user, outcome, at: now }, srpRefusals: refusals };
  };
  /**
   * librist refused a caller's proof (its log's "Authentication failed for user@address"): `refused` by an
   * srpfile's verifier, `password` by the one username and password of the listener's URL.
   */
  const noteAuthFailure = (user: string, now: number, fromFile: boolean) => {
    totals = {
      ...totals,
      srpAttempt: { user, outcome: fromFile ? "refused" : "password", at: now },
      srpRefusals: totals.srpRefusals + 1,
    };
  };
  const noteSrpFile = (problem: string) => {
    totals = { ...totals, srpFileProblem: problem };
  };
  return { add, noteSrp, noteSrpFile, noteAuthFailure, figures: () => totals };
};

/**
 * librist's peers for a target: its own URLs and the EAP-SRP credentials, secrets revealed for librist alone, and
 * each listener's EAP-SRP lookup (its srpfile's users) where `lookups` has one for the peer at that index.
 */
export const ristPeers = (
  target: RistTarget,
  lookups: ReadonlyArray<RistPeerSpec["srpLookup"] | null> = [],
): ReadonlyArray<RistPeerSpec> =>
  target.peers.map((peer, index) => ({
    url: Redacted.value(peer.librist),
    username: peer.username,
    password: peer.password === null ? null : Redacted.value(peer.password),
    srpLookup: lookups[index] ?? undefined,
  }));

/**
 * The EAP-SRP lookup of each of a target's peers that has an srpfile (null for the others): the lookups
 * `ristPeers` hands librist, each noting in `totals` whom it was asked about. Each file is read in a fiber of
 * the current scope, never awaited here (rist-srp.ts bounds it in size and time): whoever starts the link, a
 * channel's start under the control plane's lock, never waits on a disk. Until its file is read a peer turns
 * every caller away (librist asks again); a file that cannot be read is `srpFileProblem`, in words.
 */
export const srpLookups = (
  target: RistTarget,
  totals: {
    readonly noteSrp: (user: string, known: boolean, now: number) => void;
    readonly noteSrpFile: (problem: string) => void;
  },
  dir: string | null,
) =>
  Effect.forEach(target.peers, (peer) => {
    const path = peer.srpFile;
    if (path === null) return Effect.succeed(null);
    let users: ReadonlyMap<string, SrpVerifier> | null = null;
    const lookup = (name: string) => {
      if (users === null) return null;
      const found = users.get(name) ?? null;
      totals.noteSrp(shownSrpName(name), found !== null, Date.now());
      return found;
    };
    return readSrpUsers(path, dir, (message) => message).pipe(
      Effect.match({
        onSuccess: (read) => {
          users = read;
        },
        onFailure: totals.noteSrpFile,
      }),
      Effect.forkScoped,
      Effect.as(lookup),
    );
  });

/**
 * The same lookups read before they are handed over, for a link whose start nobody waits on (an output's
 * attempt runs in its own fiber, retried after a delay): a file that cannot be read fails it in words, before
 * librist opens anything.
 */
export const srpLookupsRead = <E>(target: RistTarget, dir: string | null, fail: (message: string) => E) =>
  Effect.forEach(target.peers, (peer) =>
    peer.srpFile === null
      ? Effect.succeed(null)
      : Effect.map(
          readSrpUsers(peer.srpFile, dir, fail),
          (users) => (name: string) => users.get(name) ?? null,
        ),
  );

/** librist, or why it cannot be used, as the given error. */
export const libRistOr = <E>(fail: (message: string) => E) =>
  Effect.suspend(() => {
    const loaded = loadLibRist();
    return "lib" in loaded ? Effect.succeed(loaded.lib) : Effect.fail(fail(loaded.error));
  });
