/**
 * RIST output, in process through librist (src/effects/runtime/librist.ts): one sender context per output with
 * each of its peers (rist://host:port connects to a receiver, rist://@:port waits for receivers; several peers,
 * comma-separated, share the stream by their `weight`, 0 sending each a whole copy). No child: the secret and
 * the EAP-SRP password stay in this process's memory.
 *
 * A send only hands librist a copy (rist_sender_data_write queues it and returns), so a dead peer never stalls
 * this output's queue, and each output has its own context and threads, so it never stalls another output.
 * The output is `connected` once a peer is heard (librist's readings: RTCP back from it), `connecting` before;
 * librist reconnects by itself. Statistics are read every second from librist's callback, per peer.
 */
import { Effect, type Scope } from "effect";
import { OutputError } from "../../domain/errors.ts";
import type { RistTarget } from "../../domain/url.ts";
import { libRistOr, RIST_STATS_MS, ristPeers, ristTotals } from "../runtime/rist-link.ts";
import type { RistPeerLink, WriterContext } from "./context.ts";

/** librist's largest message: seven TS packets, as every RIST peer sends them. */
const MESSAGE_BYTES = 1316;

export const ristAttempt = (
  target: RistTarget,
  context: WriterContext,
): Effect.Effect<never, OutputError, Scope.Scope> =>
  Effect.gen(function* () {
    const lib = yield* libRistOr((message) => new OutputError({ reason: "not_installed", message }));
    const secured = target.peers.some((peer) => peer.secret !== null || peer.username !== null);
    const where = target.peers.map((peer) => `${peer.host}:${peer.port}`).join(", ");
    // Each peer's totals by librist's peer id, named by its cname (address) once librist knows it.
    const peers = new Map<number, { name: string; totals: ReturnType<typeof ristTotals> }>();
    let heard = false;
    const connected = () => Effect.runSync(context.markConnected);
    const sender = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          lib.open({
            role: "sender",
            profile: target.profile,
            peers: ristPeers(target),
            statsMs: RIST_STATS_MS,
            onStats: (readings) => {
              const now = Date.now();
              for (const reading of readings) {
                const peer = peers.get(reading.peerId) ?? { name: "", totals: ristTotals(secured) };
                peers.set(reading.peerId, peer);
                if (reading.cname !== "") peer.name = reading.cname.replace(/^[^@]*@/, "");
                peer.totals.add({ ...reading, packets: reading.heard > 0 ? reading.packets : 0 }, now);
                if (reading.heard > 0 && !heard) {
                  heard = true;
                  connected();
                }
              }
              const list: Array<RistPeerLink> = [...peers.values()].map((peer) => ({
                peer: peer.name === "" ? where : peer.name,
                ...peer.totals.figures(),
              }));
              context.reportRist(list);
            },
          }),
        catch: (error) =>
          new OutputError({
            reason: "connect_refused",
            message: `cannot send RIST to ${where}: ${error instanceof Error ? error.message : String(error)}`,
          }),
      }),
      (opened) => Effect.promise(() => opened.close()),
    );
    yield* Effect.acquireRelease(
      Effect.sync(() =>
        context.queue.deliverDirectly((chunk) => {
          context.countSent(chunk.length);
          for (let at = 0; at < chunk.length; at += MESSAGE_BYTES) {
            sender.send(chunk.length <= MESSAGE_BYTES ? chunk : chunk.subarray(at, at + MESSAGE_BYTES));
          }
        }),
      ),
      () => Effect.sync(() => context.queue.deliverDirectly(null)),
    );
    return yield* Effect.never;
  });
