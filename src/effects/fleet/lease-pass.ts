/**
 * A node's pass over the leases it knows: what it does about each — release what no longer runs here, start
 * what was handed to it, acquire a free or expired lease in its turn, take over from a holder whose process
 * is gone or restarted — with statements only where something is to be done. A dead holder's channels are
 * taken in one statement and their outputs started together.
 *
 * A pass whose inputs did not move (the lease book, the probes, the configuration, this node's state) finds
 * nothing new before the first deadline it saw: a lease that may expire, a standby's turn. So the coordinator
 * runs one at that deadline, at a notification, or a second after the last (`nextTickIn`), and one asked for
 * sooner returns at once.
 */
import * as Effect from "effect/Effect";
import type { ChannelConfig } from "../../domain/channel/channel.ts";
import type { TakeoverReason } from "./fleet-types.ts";
import type { Guard } from "./guard.ts";
import type { FleetHandover } from "./handover.ts";
import * as L from "./leases.ts";
import type { NodeContext } from "./node-context.ts";
import type { PortProbe } from "./peers.ts";
import type { Sending } from "./sending.ts";

/** The longest between two passes at rest. */
const PASS_MS = 1000;
/** How soon a pass that failed is tried again. */
const RETRY_MS = 250;

interface LeasePassContext extends NodeContext {
  /** Whether a holder's refused port or new boot is taken over at once (else only an expiry is). */
  readonly fast: boolean;
  readonly guard: Pick<Guard, "settling" | "answered">;
  readonly probe: (id: string) => PortProbe | undefined;
  /** When the connection that gave a peer's last answer was begun. */
  readonly probedAt: (id: string) => number;
  /** Moves whenever a probe's answer does. */
  readonly probesVersion: () => number;
  readonly channels: () => ReadonlyArray<ChannelConfig>;
  readonly wantedHere: (channel: ChannelConfig | undefined) => channel is ChannelConfig;
  readonly state: () => { readonly joined: boolean; readonly draining: boolean };
  readonly startSending: Sending["startSending"];
  readonly startSendingAll: Sending["startSendingAll"];
  /** How a channel handed over or let go begins here (handover.ts). */
  readonly handover: Pick<FleetHandover, "plan">;
}

export const makeLeasePass = (ctx: LeasePassContext) => {
  const { me, bootId, q, book, held, sql, guard } = ctx;
  /** What the last whole pass was made from, and until when it holds. */
  let last = { key: "", channels: null as ReadonlyArray<ChannelConfig> | null, until: 0 };

  const decide = Effect.gen(function* () {
    const now = ctx.clock.now();
    const live = book.live();
    const settling = guard.settling();
    const { joined, draining } = ctx.state();
    const configured = ctx.channels();
    const key = `${book.version()} ${ctx.probesVersion()} ${held.size} ${draining} ${settling} ${joined} ${guard.answered()}`;
    if (key === last.key && configured === last.channels && now < last.until) return;
    let until = now + PASS_MS;
    const takes: Array<{
      channel: string;
      holder: string;
      term: number;
      restarted: boolean;
      reason: TakeoverReason;
    }> = [];
    for (const entry of book.rows()) {
      const { row } = entry;
      const channel = ctx.stored(row.channel);
      const mine = held.has(row.channel);
      if (!ctx.wantedHere(channel)) {
        if (mine) {
          const term = held.get(row.channel) ?? 0;
          yield* ctx.stopSending(row.channel, "it no longer runs here");
          if (yield* sql("release", () => L.release(q, me, row.channel, term)))
            book.wrote(row.channel, null, null, term);
        }
        continue;
      }
      if (row.holder === me && row.holderBoot === bootId) {
        // Handed over by a move, or ours already.
        if (!mine && !draining)
          yield* ctx.startSending(
            row.channel,
            row.term,
            "move",
            ctx.handover.plan(row, entry.readAt, row.term, "move", null),
          );
        continue;
      }
      // Nothing is taken while the database does not answer.
      if (mine || draining || !joined || !guard.answered()) continue;
      const expiry = book.expiresAt(entry);
      if (row.holder === null || expiry <= now) {
        // Nor, for a lease time after it is back, a lease that merely expired: its holder may have kept
        // sending through the outage and renews it by its term. A holder whose process is gone (below) cannot.
        if (settling) continue;
        const ranking = L.candidates(channel.nodes, live, row.holder ?? book.lastHolder(row.channel));
        if (!L.shouldTry(me, ranking, now - expiry)) {
          const rank = ranking.indexOf(me);
          if (rank >= 0) until = Math.min(until, expiry + rank * L.RANK_STEP_MS);
          continue;
        }
        const term = yield* sql("acquire", () => L.acquire(q, me, bootId, row.channel));
        if (term !== null) {
          book.wrote(row.channel, me, bootId, term);
          const reason = row.holder !== null ? "expired" : row.term > 0 ? "drain" : null;
          // Let go by its holder (a drain, a clean stop): it begins where that holder cut.
          const plan =
            reason === "drain"
              ? ctx.handover.plan(row, entry.readAt, term, "drain", book.lastHolder(row.channel))
              : null;
          yield* ctx.startSending(row.channel, term, reason, plan);
        }
        continue;
      }
      // A live holder (the case of nearly every row at rest) costs a lookup, not a ranking.
      until = Math.min(until, expiry);
      if (!ctx.fast) continue;
      const holderNode = book.node(row.holder);
      const restarted = holderNode !== undefined && holderNode.bootId !== row.holderBoot;
      // A refusal counts only if it was met after this node read the row naming the holder: one met before may
      // be of the moment before the holder's port opened (it had just started), not of the process that took it.
      const gone = ctx.probe(row.holder) === "refused" && ctx.probedAt(row.holder) > entry.readAt;
      if (!restarted && !gone) continue;
      if (L.candidates(channel.nodes, live, row.holder)[0] !== me) continue;
      takes.push({
        channel: row.channel,
        holder: row.holder,
        term: row.term,
        restarted: restarted && !gone,
        reason: restarted ? "holder_restarted" : "holder_gone",
      });
    }
    last = { key, channels: configured, until };
    if (takes.length === 0) return;
    const terms = yield* sql("take over", () => L.takeOverMany(q, me, bootId, takes));
    yield* ctx.startSendingAll(
      takes.flatMap((take) => {
        const term = terms.get(take.channel);
        if (term === undefined) return [];
        book.wrote(take.channel, me, bootId, term);
        return [{ ...take, term }];
      }),
    );
  });

  return {
    /** One pass (the caller makes them one at a time). */
    decide,
    /** Until the last pass's first deadline, a second at most; a pass that failed is tried again sooner. */
    nextTickIn: (): number => {
      const wait = last.until - ctx.clock.now();
      return wait > 0 ? Math.min(PASS_MS, Math.max(10, wait)) : RETRY_MS;
    },
  } as const;
};
