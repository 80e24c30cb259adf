/**
 * A fleet channel's hand-over on its forwarding thread (docs/fleet.md, "Hitless moves and drains"). Every
 * datagram its input brings is kept a while in a ring (core/handover/ring.ts), on the holder as on a standby.
 *
 * - The holder, asked to cut (`cut`), runs on to the datagram that brings the next video random access point
 *   (`RAP_WAIT_MS` at most) and stops its outputs just before it, between two datagrams; it says which were
 *   the last it sent (the agreed cut), that point's PTS and where its RTP outputs' streams stand. Its outputs
 *   stay quiet until the node closes the channel's send gate, which it does next.
 * - The new holder is told how to begin (`resume`) before its gate opens; its outputs, idle on a standby,
 *   start once it opens, and the stage keeps what comes meanwhile from them. Told to go (`resumed`, once they
 *   run; `GO_MS` at most after the gate opened), it begins: with the datagram after the cut, found in its ring
 *   (or awaited from its input, `WAIT_MS` at most); on a copy of the stream that is not the old holder's
 *   (core/handover/rap.ts), at the first random access point of its own copy with a PTS at or after the old
 *   holder's (`PTS_WAIT_MS` at most), its PAT and PMT first and each PID's discontinuity flagged; or, when the
 *   old holder named no cut (a node of the previous release), with what came from `MARGIN_MS` before it saw
 *   the lease released. Then live. Its RTP outputs go
 *   on with the old holder's SSRC, sequence and timestamp base.
 *
 * The fan-out (fan-out.ts) hands each datagram to `take` before its outputs see it, and tells `gate` whether
 * its outputs are fed at each rebuild.
 */

import { DiscontinuityMarker, ProgramWatch, ptsAtOrAfter, randomAccessIn } from "../../core/handover/rap.ts";
import { type AgreedCut, DatagramRing } from "../../core/handover/ring.ts";
import { PACKET, packetPts, pidAt, unitStartAt } from "../../core/ts/index.ts";
import { continueRtp, peekRtpStates, type RtpState } from "../outputs/rtp.ts";
import { monotonicMs } from "../runtime/sockets/send-gates.ts";
import { asOneTurn } from "../runtime/timers/end-of-turn.ts";

/** How long a new holder keeps its outputs back for them to start, at most, before it begins anyway. */
const GO_MS = 3000;
/** How long an old holder runs on for a random access point to cut before, at most (then it cuts at once). */
export const RAP_WAIT_MS = 2000;
/** How long a new holder waits for the old holder's cut to reach its own input. */
export const WAIT_MS = 500;
/** How long it waits for its own copy's random access point at or after the old holder's, from its start. */
export const PTS_WAIT_MS = 2500;
/** How long the PIDs that begin after a PTS-aligned start still get their discontinuity flagged. */
const MARK_MS = 2000;
/** Without a cut: how far before the moment it saw the lease released a new holder begins. */
export const MARGIN_MS = 300;

/** What an old holder hands over with its lease. */
export interface HolderCut {
  readonly agreed: AgreedCut | null;
  /** The PTS of the random access point it cut before; null when it cut without one. */
  readonly pts: number | null;
  /** The PTS of the last PES it sent of each PID (by PID). */
  readonly lastPts: Readonly<Record<string, number>>;
  readonly rtp: Record<string, RtpState>;
  /** TS packets its outputs were given since it began to send the channel. */
  readonly packets: number;
}

/** How a new holder begins. */
export type Resumption =
  | {
      readonly mode: "agreed";
      readonly cut: AgreedCut;
      readonly pts: number | null;
      readonly lastPts: Readonly<Record<string, number>>;
      readonly rtp: Record<string, RtpState>;
    }
  /** From what came at `from` (the shared monotonic clock, ms) on. */
  | { readonly mode: "margin"; readonly from: number };

/**
 * How it began: the mode, datagrams (and TS packets) sent from its ring, how long it waited for the cut, and
 * the TS packets that came meanwhile and went nowhere (when it went live without the cut).
 */
export interface Resumed {
  readonly mode: "agreed" | "pts" | "margin" | "live";
  readonly replayed: number;
  readonly replayedPackets: number;
  readonly waitedMs: number;
  readonly swallowed: number;
}

export interface CutStage {
  /** Keeps the datagram; whether the outputs get it now (the stage sends what it replays itself). */
  readonly take: (view: Uint8Array) => boolean;
  /** Whether the outputs are fed, at each rebuild of the fan-out. */
  readonly gate: (open: boolean) => void;
  /** Stops the outputs at the next random access point (`RAP_WAIT_MS` at most), and says where. */
  readonly cut: () => Promise<HolderCut>;
  readonly resume: (how: Resumption) => void;
  /**
   * Begins the resumption asked (the outputs run now), and says how it began once it has (null: none asked, or
   * not begun within `withinMs`).
   */
  readonly resumed: (withinMs: number) => Promise<Resumed | null>;
}

const packetsIn = (view: Uint8Array) => Math.floor(view.length / PACKET);

export const makeCutStage = (options: {
  /** Sends a datagram on to the outputs (the slate's return or the cue stage first, as live). */
  readonly pass: (view: Uint8Array) => void;
  /** The channel's id, and its RTP outputs' ids. */
  readonly channelId: () => string;
  readonly rtpOutputs: () => ReadonlyArray<string>;
}): CutStage => {
  const ring = new DatagramRing(undefined, undefined, (view) => {
    const copy = Buffer.allocUnsafe(view.length);
    copy.set(view);
    return copy;
  });
  const program = new ProgramWatch();
  /** The PTS of the last PES start of each PID the outputs were given. */
  const sentPts = new Map<number, number>();
  const notePts = (view: Uint8Array) => {
    for (let at = 0; at + PACKET <= view.length; at += PACKET) {
      if (!unitStartAt(view, at)) continue;
      const pts = packetPts(view.subarray(at, at + PACKET));
      if (pts >= 0) sentPts.set(pidAt(view, at), pts);
    }
  };
  let open = false;
  /** Cut by `cut`: quiet until the gate closes. */
  let muted = false;
  let packets = 0;
  /** A cut asked and not made yet: the holder runs on to a random access point. */
  let cutting: { readonly until: number; readonly made: (cut: HolderCut) => void } | null = null;
  let pending: Resumption | null = null;
  /** Since when (monotonicMs) the gate is open with a resumption pending: the outputs get nothing until it begins. */
  let holdingSince: number | null = null;
  let waiting: { readonly how: Resumption & { mode: "agreed" }; readonly since: number } | null = null;
  /** After a PTS-aligned start: the flags, until when. */
  let marking: { readonly marker: DiscontinuityMarker; readonly until: number } | null = null;
  let outcome: Resumed | null = null;
  let told: Array<(resumed: Resumed) => void> = [];
  /** TS packets that came while it waited for the cut. */
  let swallowed = 0;

  const done = (resumed: Resumed) => {
    outcome = resumed;
    const waiters = told;
    told = [];
    for (const tell of waiters) tell(resumed);
  };
  /** Sends a datagram on from its packet `fromPacket`, its discontinuities flagged after a PTS-aligned start. */
  const send = (whole: Uint8Array, fromPacket = 0) => {
    const view = fromPacket > 0 ? whole.subarray(fromPacket * PACKET) : whole;
    if (view.length === 0) return;
    packets += packetsIn(view);
    notePts(view);
    if (marking === null) return options.pass(view);
    for (const out of marking.marker.mark(view)) options.pass(out);
  };
  /**
   * Sends the ring's datagrams from `from` on (after `first`, and the first of them from its packet
   * `fromPacket`): how many, and their TS packets.
   */
  const replay = (from: number, first: ReadonlyArray<Uint8Array> = [], fromPacket = 0) => {
    const count = Math.max(0, ring.length - from);
    const before = packets;
    asOneTurn(() => {
      for (const view of first) send(view);
      for (let i = from; i < ring.length; i++) send(ring.at(i), i === from ? fromPacket : 0);
    });
    return { replayed: count, replayedPackets: packets - before };
  };
  const since = (start: number) => Math.round(monotonicMs() - start);
  /** Looks for the cut in the ring: true once found and what follows it sent. */
  const agreed = (cut: AgreedCut, start: number) => {
    const after = ring.after(cut);
    if (after < 0) return false;
    waiting = null;
    // The old holder sent the first packets of its last datagram: the rest of it first.
    const partial = cut.packets !== undefined && after > 0;
    const from = partial ? after - 1 : after;
    done({
      mode: "agreed",
      ...replay(from, [], partial ? cut.packets : 0),
      waitedMs: since(start),
      swallowed: 0,
    });
    return true;
  };
  /** Looks in the ring, from `from` on, for a random access point at or after `pts`: true once begun there. */
  const aligned = (pts: number, lastPts: Readonly<Record<string, number>>, start: number, from = 0) => {
    for (let i = from; i < ring.length; i++) {
      const point = randomAccessIn(ring.at(i), program.videoPids);
      if (point === null || !ptsAtOrAfter(point.pts, pts)) continue;
      // A point the old holder had sent already (its PID's last PTS is this one or later) is behind the cut,
      // whatever its PTS says: the same stream's cut, not here yet, is still to come (a stream whose PTS stands
      // still would otherwise begin seconds back).
      const last = lastPts[String(pidAt(ring.at(i), point.packet * PACKET))];
      if (last !== undefined && (last === point.pts || !ptsAtOrAfter(point.pts, last))) continue;
      waiting = null;
      const after = new Map(Object.entries(lastPts).map(([pid, value]) => [Number(pid), value]));
      marking = { marker: new DiscontinuityMarker(after), until: monotonicMs() + MARK_MS };
      const tables = [program.pat, program.pmt].filter((packet) => packet !== null);
      done({ mode: "pts", ...replay(i, tables, point.packet), waitedMs: since(start), swallowed });
      return true;
    }
    return false;
  };
  const begin = (how: Resumption) => {
    if (how.mode === "margin") {
      done({ mode: "margin", ...replay(ring.since(how.from)), waitedMs: 0, swallowed: 0 });
      return;
    }
    const start = monotonicMs();
    swallowed = 0;
    // The cut in this node's stream; else, on another copy that runs ahead, its random access point already here.
    if (agreed(how.cut, start) || (how.pts !== null && aligned(how.pts, how.lastPts, start))) return;
    waiting = { how, since: start };
  };
  const go = () => {
    const how = pending;
    if (how === null || !open) return;
    pending = null;
    holdingSince = null;
    begin(how);
  };
  /** The holder's cut after the last datagram sent (its first `sentPackets` only, when given). */
  const makeCut = (pts: number | null, sentPackets?: number) => {
    const asked = cutting;
    if (asked === null) return;
    cutting = null;
    asked.made({
      agreed: open && !muted ? ring.cut(sentPackets) : null,
      pts,
      lastPts: Object.fromEntries(sentPts),
      rtp: peekRtpStates(options.channelId(), options.rtpOutputs()),
      packets,
    });
    muted = true;
  };
  /** A new holder waiting for the cut, or for its copy's random access point: whether `view` goes live now. */
  const whileWaiting = (view: Uint8Array, wait: NonNullable<typeof waiting>) => {
    if (agreed(wait.how.cut, wait.since)) return false;
    const pts = wait.how.pts;
    if (pts !== null && aligned(pts, wait.how.lastPts, wait.since, ring.length - 1)) return false;
    const waited = monotonicMs() - wait.since;
    if (waited < (pts === null ? WAIT_MS : PTS_WAIT_MS)) {
      swallowed += packetsIn(view);
      return false;
    }
    // Neither the cut nor a random access point after it in this node's stream: live from now.
    waiting = null;
    done({ mode: "live", replayed: 0, replayedPackets: 0, waitedMs: Math.round(waited), swallowed });
    return true;
  };

  return {
    take: (view) => {
      program.observe(view);
      ring.push(view, monotonicMs());
      if (cutting !== null && open && !muted) {
        const point = randomAccessIn(view, program.videoPids);
        if (point !== null) {
          // The packets before the random access point end the units before it: they go, the rest waits for
          // the next holder.
          if (point.packet > 0) send(view.subarray(0, point.packet * PACKET));
          makeCut(point.pts, point.packet);
          return false;
        }
        if (monotonicMs() >= cutting.until) makeCut(null, 0);
      }
      if (muted || !open) return !muted;
      if (holdingSince !== null) {
        if (monotonicMs() - holdingSince >= GO_MS) go();
        return false;
      }
      if (waiting !== null && !whileWaiting(view, waiting)) return false;
      if (marking !== null) {
        if (monotonicMs() < marking.until) {
          send(view);
          return false;
        }
        marking = null;
      }
      packets += packetsIn(view);
      notePts(view);
      return true;
    },
    gate: (now) => {
      const was = open;
      open = now;
      if (!now) {
        muted = false;
        waiting = null;
        holdingSince = null;
        marking = null;
        if (cutting !== null) makeCut(null);
        return;
      }
      if (was) return;
      packets = 0;
      if (pending !== null) holdingSince = monotonicMs();
    },
    cut: () =>
      new Promise<HolderCut>((made) => {
        if (!open || muted) {
          made({
            agreed: null,
            pts: null,
            lastPts: {},
            rtp: peekRtpStates(options.channelId(), options.rtpOutputs()),
            packets,
          });
          muted = open;
          return;
        }
        cutting = { until: monotonicMs() + RAP_WAIT_MS, made };
        // No datagram may come (the input lost): the cut is made at the bound all the same.
        setTimeout(() => makeCut(null), RAP_WAIT_MS + 50).unref();
      }),
    resume: (how) => {
      pending = how;
      outcome = null;
      if (how.mode === "agreed") continueRtp(options.channelId(), how.rtp);
    },
    resumed: (withinMs) => {
      go();
      return outcome !== null
        ? Promise.resolve(outcome)
        : new Promise((resolve) => {
            const timer = setTimeout(() => {
              told = told.filter((tell) => tell !== answer);
              resolve(null);
            }, withinMs);
            const answer = (resumed: Resumed) => {
              clearTimeout(timer);
              resolve(resumed);
            };
            told.push(answer);
          });
    },
  };
};
