/**
 * A RIST input, in process through librist (src/effects/runtime/ffi/librist.ts): the same shape as an SRT input, so a
 * channel can take its primary or backup stream over RIST and feed the same packet core, failover and outputs.
 * Each block librist releases (after its buffer, losses recovered) is handed to `onDatagram` as its own Buffer:
 * its TS as it came, or (`framing` "rtp", what a channel's input path asks for) inside an RTP header that carries
 * librist's sequence number. That number is the sender's, the same in every copy a sender with several peers
 * sends (weight 0), so two RIST inputs fed by one sender over two paths pair their blocks in the 2022-7 merge as
 * two RTP inputs do; the SSRC is the sender's flow id and the sequence is offset by it, so a restarted sender
 * (librist counts from 0 again) is a new RTP source to the packet core and the merge, as a restarted encoder is.
 *
 * `rist://@:port` waits for the sender, `rist://host:port` connects to it; librist itself reconnects. It says
 * nothing when a sender's profile or secret does not match (the packets are dropped), so the link's readings
 * are kept here: `link()` tells whether the peer is heard and data comes, which the input's status puts in words.
 */
import * as Effect from "effect/Effect";
import type * as Scope from "effect/Scope";
import { RTP_HEADER_SIZE } from "../../core/rtp-header.ts";
import type { RistTarget } from "../../domain/url/rist.ts";
import { authority } from "../../domain/url/shared.ts";
import {
  libRistOr,
  RIST_STATS_MS,
  type RistLinkFigures,
  ristPeers,
  ristTotals,
  srpLookups,
} from "../runtime/links/rist-link.ts";
import { shownSrpName } from "../runtime/links/rist-srp.ts";
import { linkInputTarget } from "./srt-receiver.ts";
import { InputError } from "./udp-receiver.ts";

/** A RIST input's URL as a target (the same syntax and checks as a RIST output's). */
export const ristInputTarget = (url: string): Effect.Effect<RistTarget, InputError> =>
  linkInputTarget(url, "rist");

/** An RTP header (payload type 33) before a block's TS: librist's sequence number and flow as RTP's. */
const asRtp =
  (onDatagram: (datagram: Buffer) => void) => (payload: Uint8Array, sequence: number, flowId: number) => {
    const datagram = Buffer.allocUnsafe(RTP_HEADER_SIZE + payload.length);
    datagram[0] = 0x80;
    datagram[1] = 33;
    datagram.writeUInt16BE((sequence + (flowId >>> 16)) & 0xffff, 2);
    // The timestamp: the header never leaves the service (the outputs take the TS alone) and nothing reads it.
    datagram.writeUInt32BE(0, 4);
    datagram.writeUInt32BE(flowId >>> 0, 8);
    datagram.set(payload, RTP_HEADER_SIZE);
    onDatagram(datagram);
  };

export const bindRistInput = (
  target: RistTarget,
  onDatagram: (datagram: Buffer) => void,
  framing: "ts" | "rtp" = "ts",
  /** DISTRIBUTARY_RIST_SRP_DIR: where an srpfile may be; null: none may be read. */
  srpDir: string | null = null,
): Effect.Effect<{ readonly link: () => RistLinkFigures }, InputError, Scope.Scope> =>
  Effect.gen(function* () {
    const lib = yield* libRistOr((message) => new InputError({ reason: "bind_failed", message }));
    const secured = target.peers.some(
      (peer) => peer.secret !== null || peer.username !== null || peer.srpFile !== null,
    );
    const totals = ristTotals(secured);
    const fromFile = target.peers.some((peer) => peer.srpFile !== null);
    // Each srpfile is read beside the start, never awaited by it; a file that cannot be read is in the status.
    const lookups = yield* srpLookups(target, totals, srpDir);
    const where = target.peers.map((peer) => authority(peer.host, peer.port)).join(", ");
    yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          lib.open({
            role: "receiver",
            profile: target.profile,
            peers: ristPeers(target, lookups),
            statsMs: RIST_STATS_MS,
            onStats: (readings) => {
              for (const reading of readings) totals.add(reading, Date.now());
            },
            onData: framing === "rtp" ? asRtp(onDatagram) : (payload) => onDatagram(Buffer.from(payload)),
            onAuthFailure: (user) => totals.noteAuthFailure(shownSrpName(user), Date.now(), fromFile),
          }),
        catch: (error) =>
          new InputError({
            reason: "bind_failed",
            message: `cannot receive RIST on ${where}: ${error instanceof Error ? error.message : String(error)}`,
          }),
      }),
      (context) => Effect.promise(() => context.close()),
    );
    return { link: totals.figures };
  });
