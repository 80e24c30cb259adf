/**
 * RIST output, in process through librist (src/effects/runtime/ffi/librist.ts): one sender context per output with
 * each of its peers (rist://host:port connects to a receiver, rist://@:port waits for receivers; several peers,
 * comma-separated, share the stream by their `weight`, 0 sending each a whole copy). No child: the secret and
 * the EAP-SRP password stay in this process's memory.
 *
 * A send only copies the chunk for the thread's RIST writer (src/effects/runtime/links/rist-sends.ts), which hands it
 * to librist off the forwarding thread: rist_sender_data_write can wait on librist's own lock, and that wait is
 * the writer's alone. A dead peer never stalls this output's queue, and each output has its own context and
 * threads, so it never stalls another output; what the writer had no room for counts among the late drops.
 * The output is `connected` once a peer is heard (librist's readings: RTCP back from it), `connecting` before;
 * librist reconnects by itself. Statistics are read every second from librist's callback, per peer.
 */
import * as Effect from "effect/Effect";
import type * as Scope from "effect/Scope";
import { OutputError } from "../../domain/channel/output-error.ts";
import type { RistTarget } from "../../domain/url/rist.ts";
import { authority } from "../../domain/url/shared.ts";
import {
  libRistOr,
  RIST_STATS_MS,
  ristPeers,
  ristTotals,
  srpLookupsRead,
} from "../runtime/links/rist-link.ts";
import type { RistPeerLink, WriterContext } from "./context.ts";
import { TS_PACKET_SIZE } from "./queue.ts";

export const ristAttempt = (
  target: RistTarget,
  context: WriterContext,
  /** DISTRIBUTARY_RIST_SRP_DIR: where a listening output's srpfile may be; null: none may be read. */
  srpDir: string | null = null,
): Effect.Effect<never, OutputError, Scope.Scope> =>
  Effect.gen(function* () {
    const lib = yield* libRistOr((message) => new OutputError({ reason: "not_installed", message }));
    const secured = target.peers.some(
      (peer) => peer.secret !== null || peer.username !== null || peer.srpFile !== null,
    );
    // A listening output checks its receivers against its srpfile as an input checks its senders. The attempt
    // runs in the output's own fiber, so it reads the file first (bounded in size and time): one that cannot be
    // read ends the attempt in words before librist opens anything, and the output tries again after its delay.
    const lookups = yield* srpLookupsRead(
      target,
      srpDir,
      (message) => new OutputError({ reason: "auth_rejected", message }),
    );
    const where = target.peers.map((peer) => authority(peer.host, peer.port)).join(", ");
    // Each peer's totals by librist's peer id, named by its cname (address) once librist knows it.
    const peers = new Map<number, { name: string; totals: ReturnType<typeof ristTotals> }>();
    let heard = false;
    // TS packets the writer thread had no room for (it fell that far behind librist): each peer missed them.
    let refused = 0;
    const connected = () => Effect.runSync(context.markConnected);
    const sender = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          lib.open({
            role: "sender",
            profile: target.profile,
            peers: ristPeers(target, lookups),
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
              const list: Array<RistPeerLink> = [...peers.values()].map((peer) => {
                const figures = peer.totals.figures();
                return {
                  peer: peer.name === "" ? where : peer.name,
                  ...figures,
                  lateDrops: figures.lateDrops + refused,
                };
              });
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
          if (sender.send(chunk)) context.countSent(chunk.length);
          else refused += Math.ceil(chunk.length / TS_PACKET_SIZE);
        }),
      ),
      () => Effect.sync(() => context.queue.deliverDirectly(null)),
    );
    return yield* Effect.never;
  });
