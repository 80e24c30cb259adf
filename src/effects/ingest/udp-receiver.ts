import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import * as Data from "effect/Data";
import * as Effect from "effect/Effect";
import type { InputEndpoint } from "../../domain/channel/redundancy.ts";
import { sourceJoins } from "../../domain/channel/sources.ts";
import { type ReadInto, type ReadPace, readInBatches } from "../runtime/sockets/batch-reader.ts";
import { setReceiveBuffer } from "../runtime/sockets/datagram.ts";

export class InputError extends Data.TaggedError("InputError")<{
  readonly reason: "bind_failed" | "join_failed";
  readonly message: string;
}> {}

export const isMulticast = (ip: string): boolean => {
  if (isIPv6(ip)) return ip.toLowerCase().startsWith("ff");
  const first = Number(ip.split(".")[0]);
  return first >= 224 && first <= 239;
};

const describe = (endpoint: InputEndpoint) =>
  `${isIPv6(endpoint.ip) ? `[${endpoint.ip}]` : endpoint.ip}:${endpoint.port}`;

// A deep kernel queue absorbs the bursts a busy event loop would otherwise turn into loss.
const receiveBufferBytes = 8 * 1024 * 1024;

/**
 * Binds a UDP socket for one input while the scope is open. Every datagram goes to `onDatagram` synchronously,
 * with its sender: the per-packet path stays out of Effect so that it allocates nothing of its own. On Node.js
 * the datagrams are read in batches (src/effects/runtime/sockets/batch-reader.ts) and each is a view into memory that
 * is reused once `onDatagram` returns: what must be kept is copied.
 *
 * `takeOver` is for a channel moving to another worker while its stream flows: the new socket joins the old
 * one's port (SO_REUSEPORT) connected to the sender the old one hears, so the kernel hands that sender's
 * datagrams to the new socket from then on and the old one can close without losing any; `disconnect`
 * afterwards lets any sender in again. `pace` is how long the channel's outputs let its datagrams wait to be
 * read (batch-reader.ts); `into`, where they land and what takes them a read at a time (the input's packet core).
 */
export const bindInput = (
  endpoint: InputEndpoint,
  onDatagram: (datagram: Buffer, sender: RemoteInfo) => void,
  takeOver?: { readonly address: string; readonly port: number },
  pace?: ReadPace,
  into?: ReadInto,
) =>
  Effect.acquireRelease(
    Effect.async<Socket, InputError>((resumeWith) => {
      // Once bound (and connected, for a take-over), the socket is read in batches where the runtime allows.
      const resume = (effect: Effect.Effect<Socket, InputError>) =>
        resumeWith(
          Effect.map(effect, (bound) => {
            // A take-over's socket has the stream from its bind on: it is read from the next turn.
            stopReading.set(bound, readInBatches(bound, onDatagram, pace, into, takeOver !== undefined));
            return bound;
          }),
        );
      const multicast = isMulticast(endpoint.ip);
      // A unicast input is ours alone: without SO_REUSEADDR no other program's socket can bind the port and
      // take the stream while the channel shows running, and a port someone holds fails the start.
      // SO_REUSEPORT (kernel-checked: same user, every socket asking for it) lets a moving channel's next
      // socket join its port. Multicast groups are shared by design: several receivers may join one group.
      const socket = createSocket({
        type: isIPv6(endpoint.ip) ? "udp6" : "udp4",
        reuseAddr: multicast,
        reusePort: !multicast,
      });
      const onError = (error: Error) => {
        socket.close();
        resume(
          Effect.fail(
            new InputError({
              reason: "bind_failed",
              message:
                (error as NodeJS.ErrnoException).code === "EADDRINUSE"
                  ? `cannot listen on ${describe(endpoint)}: another program or channel already uses this port`
                  : `cannot listen on ${describe(endpoint)}: ${error.message}`,
            }),
          ),
        );
      };
      socket.once("error", onError);
      socket.on("message", onDatagram);
      // Binding a multicast input to the group address keeps other groups on the same port out.
      socket.bind({ port: endpoint.port, address: endpoint.ip, exclusive: false }, () => {
        socket.off("error", onError);
        socket.on("error", () => {
          // A receive error on a bound UDP socket is transient (ICMP noise); the silence detector reports real loss.
        });
        // The kernel caps the size at net.core.rmem_max; the default still works, only with less headroom.
        setReceiveBuffer(socket, receiveBufferBytes);
        if (multicast) {
          try {
            // A source-specific group is joined once per sender (IGMPv3/MLDv2 INCLUDE): a router forwards it
            // only so; any other group for every sender.
            const sources = endpoint.source
              ? [endpoint.source]
              : sourceJoins(endpoint.ip, endpoint.allowedSources);
            if (sources === null) socket.addMembership(endpoint.ip, endpoint.interface);
            else
              for (const source of sources)
                socket.addSourceSpecificMembership(source, endpoint.ip, endpoint.interface);
          } catch (error) {
            socket.close();
            const detail = error instanceof Error ? error.message : String(error);
            return resume(
              Effect.fail(
                new InputError({
                  reason: "join_failed",
                  message: `cannot join multicast group ${endpoint.ip}${endpoint.interface ? ` on ${endpoint.interface}` : ""}: ${detail}`,
                }),
              ),
            );
          }
        }
        if (takeOver === undefined || multicast) return resume(Effect.succeed(socket));
        // Not connected, the socket still works: it shares the sender's datagrams with the old one meanwhile.
        const unconnected = () => resume(Effect.succeed(socket));
        socket.once("error", unconnected);
        socket.connect(takeOver.port, takeOver.address, () => {
          socket.off("error", unconnected);
          resume(Effect.succeed(socket));
        });
      });
    }),
    (socket) =>
      Effect.async<void>((resume) => {
        stopReading.get(socket)?.();
        stopReading.delete(socket);
        socket.close(() => resume(Effect.void));
      }),
  );

/** How to give each batch-read socket back to node:dgram before it closes. */
const stopReading = new WeakMap<Socket, (() => void) | null>();

/**
 * For a move's cut: the function that reads what waits on a batch-read socket, hands it on and reads the
 * socket no more (it stays bound until its scope closes), or null for a socket node:dgram reads itself.
 */
export const lastRead = (socket: Socket): (() => void) | null => stopReading.get(socket) ?? null;
