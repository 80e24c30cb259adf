/**
 * What the rest of the service knows of librist: a context (a receiver or a sender with its peers), its
 * statistics as librist reports them, and its error. Nothing here depends on koffi, so another runtime's FFI
 * (Bun, Deno) replaces librist.ts alone and every caller stays as it is.
 */
import type { SrpVerifier } from "../links/rist-srp.ts";

/** One peer of a context, as the URL parser made it (src/domain/url/rist.ts). */
export interface RistPeerSpec {
  /** librist's own URL for the peer (rist://@host:port listens), secrets included: for librist alone. */
  readonly url: string;
  /** EAP-SRP credentials (main profile): both or neither. */
  readonly username: string | null;
  readonly password: string | null;
  /**
   * A listener's EAP-SRP check: a caller's verifier and salt by the name it gives, null for a name unknown. librist
   * asks on its own thread, which waits while the JavaScript thread answers, so it must answer from memory.
   */
  readonly srpLookup?: ((username: string) => SrpVerifier | null) | undefined;
}

/**
 * One reading of librist's statistics (its JSON, every `statsMs`): a receiver's flow, or one peer of a sender.
 * Counters are those of the interval since the reading before (librist resets them at each reading).
 */
export interface RistReading {
  readonly kind: "receiver" | "sender";
  /** librist's peer id: a sender reports each peer apart; a receiver's flow is one reading for all. */
  readonly peerId: number;
  readonly cname: string;
  /** 0–100: received (or sent) over what should have been. */
  readonly quality: number;
  /** Data packets received (a receiver) or sent (a sender) in the interval. */
  readonly packets: number;
  readonly recovered: number;
  readonly lost: number;
  readonly lateDrops: number;
  /** Retransmissions asked for (a receiver) or sent (a sender). */
  readonly retries: number;
  readonly rttMs: number;
  readonly bitrateBps: number;
  /** Packets (RTCP and data) the peer's side got through in the interval: 0 while nothing comes back. */
  readonly heard: number;
  readonly dead: boolean;
}

/** A running context: data in or out, its statistics queued to the JavaScript thread. */
export interface RistContext {
  /**
   * A sender: hands a chunk of TS to the thread that writes it to librist in messages of up to 1316 bytes
   * (rist-sends.ts); false when it was refused (that thread is too far behind, or the context is closing).
   */
  readonly send: (message: Uint8Array) => boolean;
  /** Ends the context: rist_destroy runs off the JavaScript thread, so a librist thread never waits on it. */
  readonly close: () => Promise<void>;
}

export interface RistOpen {
  readonly role: "receiver" | "sender";
  readonly profile: "simple" | "main";
  readonly peers: ReadonlyArray<RistPeerSpec>;
  readonly statsMs: number;
  readonly onStats: (readings: ReadonlyArray<RistReading>) => void;
  /**
   * A receiver's data: each block's payload, a view valid only during the call, its sequence number and its
   * flow. The number is the sender's, given once per block whatever its peers, so every receiver of one
   * sender's peers sees the same number for the same block; the flow id is the sender's, random at each start.
   */
  readonly onData?: (payload: Uint8Array, sequence: number, flowId: number) => void;
  /**
   * A caller refused by a listener's EAP-SRP check (a password its verifier refused): the name it gave and the
   * address it came from, as librist's own log says them (librist 0.2.7 has no callback for it).
   */
  readonly onAuthFailure?: (user: string, address: string) => void;
}

export interface LibRist {
  readonly library: string;
  readonly version: string;
  /** A started context with its peers; throws a LibRistError when librist refuses one. */
  readonly open: (options: RistOpen) => RistContext;
}

export class LibRistError extends Error {
  readonly operation: string;
  constructor(operation: string, detail: string) {
    super(`${operation}: ${detail}`);
    this.operation = operation;
  }
}

type Json = Record<string, unknown>;
const object = (value: unknown): Json => (typeof value === "object" && value !== null ? (value as Json) : {});
const number = (value: unknown): number => (typeof value === "number" && Number.isFinite(value) ? value : 0);

/** librist's statistics JSON as readings; none when it is neither a receiver's nor a sender's. */
export const readingsOf = (json: string): ReadonlyArray<RistReading> => {
  let parsed: Json;
  try {
    parsed = object(JSON.parse(json));
  } catch {
    return [];
  }
  const receiver = object(parsed["receiver-stats"]);
  const flow = object(receiver.flowinstant);
  if (Object.keys(flow).length > 0) {
    const stats = object(flow.stats);
    const peers = Array.isArray(flow.peers) ? flow.peers.map(object) : [];
    const heard = peers.reduce(
      (total, peer) =>
        total + number(object(peer.stats).received_rtcp) + number(object(peer.stats).received_data),
      0,
    );
    const rtts = peers.map((peer) => number(object(peer.stats).rtt));
    return [
      {
        kind: "receiver",
        peerId: number(flow.flow_id),
        cname: String(flow.cname ?? ""),
        quality: number(stats.quality),
        packets: number(stats.received),
        recovered: number(stats.recovered_total),
        lost: number(stats.lost),
        lateDrops: number(stats.dropped_late),
        retries: number(stats.retries),
        rttMs: rtts.length === 0 ? 0 : Math.max(...rtts),
        bitrateBps: number(stats.bitrate),
        heard,
        dead: number(flow.dead) !== 0,
      },
    ];
  }
  const peer = object(object(parsed["sender-stats"]).peer);
  if (Object.keys(peer).length === 0) return [];
  const stats = object(peer.stats);
  return [
    {
      kind: "sender",
      peerId: number(peer.id),
      cname: String(peer.cname ?? ""),
      quality: number(stats.quality),
      packets: number(stats.sent),
      recovered: 0,
      lost: 0,
      lateDrops: number(stats.bloat_skipped) + number(stats.retransmit_skipped),
      retries: number(stats.retransmitted),
      rttMs: number(stats.rtt),
      bitrateBps: number(stats.bandwidth),
      heard: number(stats.received),
      dead: false,
    },
  ];
};
