/**
 * UDP and RTP outputs, in process: TS datagrams of up to 7×188 bytes, sent as they arrive (no added latency),
 * unicast or multicast.
 */
import { createSocket, type Socket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import * as Deferred from "effect/Deferred";
import * as Effect from "effect/Effect";
import * as Exit from "effect/Exit";
import type * as Scope from "effect/Scope";
import { RTP_HEADER_SIZE } from "../../core/rtp-header.ts";
import { OutputError } from "../../domain/channel/output-error.ts";
import type { DatagramTarget } from "../../domain/url/datagram.ts";
import { authority } from "../../domain/url/shared.ts";
import { markOwnPort } from "../runtime/sockets/own-ports.ts";
import { type DatagramSender, makeDatagramSender } from "../runtime/sockets/segmented.ts";
import { openLibcSender, usesLibcSender } from "../runtime/sockets/udp-sender.ts";
import type { WriterContext } from "./context.ts";
import { DATAGRAM_PAYLOAD } from "./queue.ts";
import { makeRtpFramer } from "./rtp.ts";

const errorCode = (cause: unknown): string =>
  cause instanceof Error && "code" in cause && typeof cause.code === "string" ? cause.code : String(cause);

/**
 * Resolved once per attempt: `dgram.send` with a name would look it up for every datagram. An address is
 * itself; a name its IPv4 address, or its IPv6 one when it has none (an IPv6-only host).
 */
export const resolveHost = (host: string): Effect.Effect<string, OutputError> =>
  isIP(host) !== 0
    ? Effect.succeed(host)
    : Effect.tryPromise({
        try: () =>
          lookup(host, { family: 4 })
            .catch(() => lookup(host, { family: 6 }))
            .then((result) => result.address),
        catch: (cause) =>
          new OutputError({
            reason: "resolve_failed",
            message: `cannot resolve ${host} (${errorCode(cause)})`,
          }),
      });

/** `address:port`, an IPv6 address in brackets. */
export const shownSocket = authority;

/**
 * The interface an IPv6 multicast goes out of, as dgram takes it (`::%eth1`), from the local address to send
 * from; IPv4 takes the address itself.
 */
const multicastInterface = (localAddress: string): string => {
  if (isIP(localAddress) !== 6) return localAddress;
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (addresses?.some((entry) => entry.family === "IPv6" && entry.address === localAddress))
      return `::%${name}`;
  }
  throw new Error(`${localAddress} is not an address of this machine`);
};

const openSocket = (
  target: DatagramTarget,
  address: string,
): Effect.Effect<Socket, OutputError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<Socket, OutputError>((resume) => {
      const socket = createSocket({ type: isIP(address) === 6 ? "udp6" : "udp4", reuseAddr: false });
      const onError = (cause: unknown) => {
        socket.close();
        const from = target.localAddress ?? "any address";
        resume(
          Effect.fail(
            new OutputError({
              reason: "write_failed",
              message: `cannot open a UDP socket on ${from} (${errorCode(cause)})`,
            }),
          ),
        );
      };
      socket.once("error", onError);
      socket.bind(
        { port: 0, ...(target.localAddress === null ? {} : { address: target.localAddress }) },
        () => {
          socket.off("error", onError);
          // Send errors arrive through send callbacks; this keeps a stray asynchronous one from crashing the process.
          socket.on("error", () => {});
          resume(Effect.succeed(socket));
        },
      );
    }),
    (socket) =>
      Effect.async<void>((resume) => {
        socket.close(() => resume(Effect.void));
      }),
  ).pipe(
    // Inputs drop what comes from this port (own-ports.ts): an output aimed at an input cannot loop.
    Effect.tap((socket) =>
      Effect.acquireRelease(
        Effect.sync(() => markOwnPort(socket.address().port)),
        (release) => Effect.sync(release),
      ),
    ),
    Effect.tap((socket) =>
      Effect.try({
        try: () => {
          if (target.multicast) {
            if (target.ttl !== null) socket.setMulticastTTL(target.ttl);
            if (target.localAddress !== null)
              socket.setMulticastInterface(multicastInterface(target.localAddress));
          } else if (target.ttl !== null) {
            socket.setTTL(target.ttl);
          }
        },
        catch: (cause) =>
          new OutputError({
            reason: "write_failed",
            message: `cannot set ttl or interface (${cause instanceof Error && !("code" in cause) ? cause.message : errorCode(cause)})`,
          }),
      }),
    ),
  );

/**
 * Connects a UDP socket to its one destination. A connected socket sends without the name lookup Node's
 * dgram otherwise defers every datagram through (a process.nextTick per send, which under load bunches sends
 * into bursts), and the kernel routes once instead of per datagram. A failed connect (no route, an address
 * the socket cannot reach) arrives as the socket's "error" event instead of the callback: it fails the
 * attempt with its reason, so the writer retries rather than waiting for ever.
 */
const connectSocket = (socket: Socket, port: number, address: string): Effect.Effect<void, OutputError> =>
  Effect.async<void, OutputError>((resume) => {
    const failed = (cause: unknown) =>
      resume(
        Effect.fail(
          new OutputError({
            reason: "connect_refused",
            message: `cannot connect to ${shownSocket(address, port)} (${errorCode(cause)})`,
          }),
        ),
      );
    socket.once("error", failed);
    try {
      socket.connect(port, address, () => {
        socket.off("error", failed);
        resume(Effect.void);
      });
    } catch (cause) {
      socket.off("error", failed);
      failed(cause);
    }
  });

/**
 * Sends `chunk` as datagrams of at most 7×188 bytes, each with its own header when `header` is given: the
 * sender queues what the kernel cannot take at once, and errors arrive as the socket's "error" event.
 */
const sendAsDatagrams = (
  sender: Pick<DatagramSender, "send">,
  chunk: Uint8Array,
  header: (() => Uint8Array) | null,
): void => {
  // The common case, one input datagram of up to 7 packets, goes out as it is: no view to allocate.
  if (chunk.length <= DATAGRAM_PAYLOAD) {
    sender.send(chunk, header === null ? null : header());
    return;
  }
  for (let at = 0; at < chunk.length; at += DATAGRAM_PAYLOAD)
    sender.send(chunk.subarray(at, at + DATAGRAM_PAYLOAD), header === null ? null : header());
};

// A connected UDP socket reports an ICMP "port unreachable" from the destination as ECONNREFUSED on a later
// send. For a UDP destination that only means nobody listens yet: keep sending, as an unconnected socket would.
const harmless = (cause: unknown) => errorCode(cause) === "ECONNREFUSED";

const sendFailed = (shown: string, cause: unknown) =>
  new OutputError({ reason: "write_failed", message: `cannot send to ${shown} (${errorCode(cause)})` });

/**
 * Runs until the socket reports a send error. Data goes out straight from the channel's fan-out while this
 * runs (the queue's direct delivery): a UDP send never waits, so there is nothing to queue for. With
 * `sendBatch`, what the queue held goes first, then the channel's turn batches (WriterContext.joinBatches).
 */
const deliverUntilError = (
  socket: Socket,
  context: WriterContext,
  deliver: (chunk: Uint8Array) => void,
  describeError: (cause: unknown) => OutputError,
  sendBatch: ((batch: Buffer, length: number) => void) | null = null,
): Effect.Effect<never, OutputError, Scope.Scope> =>
  Effect.gen(function* () {
    const failed = yield* Deferred.make<never, OutputError>();
    socket.removeAllListeners("error");
    socket.on("error", (cause) => {
      if (!harmless(cause)) Deferred.unsafeDone(failed, Exit.fail(describeError(cause)));
    });
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        context.queue.deliverDirectly((chunk) => {
          deliver(chunk);
          context.countSent(chunk.length);
        });
        if (sendBatch !== null)
          context.joinBatches((batch, length) => {
            sendBatch(batch, length);
            context.countSent(length);
          });
      }),
      () =>
        Effect.sync(() => {
          context.joinBatches(null);
          context.queue.deliverDirectly(null);
        }),
    );
    return yield* Deferred.await(failed);
  });

/**
 * The same attempt through a socket of our own on Deno (src/effects/runtime/sockets/udp-sender.ts: its node:dgram
 * reorders bursts), for a plain unicast destination: errors arrive through a callback instead of socket events.
 */
const libcAttempt = (
  target: DatagramTarget,
  context: WriterContext,
  address: string,
  shown: string,
): Effect.Effect<never, OutputError, Scope.Scope> | null => {
  if (
    target.multicast ||
    target.ttl !== null ||
    target.localAddress !== null ||
    isIP(address) === 6 ||
    !usesLibcSender()
  )
    return null;
  return Effect.gen(function* () {
    const failed = yield* Deferred.make<never, OutputError>();
    const report = (cause: unknown) => {
      if (!harmless(cause)) Deferred.unsafeDone(failed, Exit.fail(sendFailed(shown, cause)));
    };
    const rtp = target.protocol === "rtp" ? yield* makeRtpFramer(context.term(), context.rtpKey) : null;
    const segment = (rtp === null ? 0 : RTP_HEADER_SIZE) + DATAGRAM_PAYLOAD;
    // What waits for the end of the turn is sent when the sender closes.
    const sender = yield* Effect.acquireRelease(
      Effect.try({
        try: () => openLibcSender(address, target.port, segment, report),
        catch: (cause) =>
          new OutputError({
            reason: "write_failed",
            message: `cannot open a UDP socket (${errorCode(cause)})`,
          }),
      }),
      (sender) => Effect.promise(() => sender.close()),
    );
    yield* context.markConnected;
    const header = rtp === null ? null : rtp.nextHeader;
    yield* Effect.acquireRelease(
      Effect.sync(() =>
        context.queue.deliverDirectly((chunk) => {
          sendAsDatagrams(sender, chunk, header);
          context.countSent(chunk.length);
        }),
      ),
      () => Effect.sync(() => context.queue.deliverDirectly(null)),
    );
    return yield* Deferred.await(failed);
  });
};

export const datagramAttempt = (
  target: DatagramTarget,
  context: WriterContext,
): Effect.Effect<never, OutputError, Scope.Scope> =>
  Effect.gen(function* () {
    const address = yield* resolveHost(target.host);
    const shown = shownSocket(target.host, target.port);
    const ownSocket = libcAttempt(target, context, address, shown);
    if (ownSocket !== null) return yield* ownSocket;
    const socket = yield* openSocket(target, address);
    const rtp = target.protocol === "rtp" ? yield* makeRtpFramer(context.term(), context.rtpKey) : null;
    yield* connectSocket(socket, target.port, address);
    const header = rtp === null ? null : rtp.nextHeader;
    // Datagrams of one turn leave in one system call where the kernel segments them (segmented.ts); what
    // waits is sent before the socket closes.
    // Plain UDP to a unicast or multicast group the socket needs no option for may send its turn batches
    // through the thread's one socket (runtime/sockets/thread-sender.ts), this one taking what that cannot send.
    const shared = rtp === null && context.batches && target.ttl === null && target.localAddress === null;
    const sender = makeDatagramSender(
      socket,
      (rtp === null ? 0 : RTP_HEADER_SIZE) + DATAGRAM_PAYLOAD,
      shared && isIP(address) === 4 ? { address, port: target.port } : null,
    );
    yield* Effect.addFinalizer(() => Effect.sync(sender.close));
    yield* context.markConnected;
    // Plain UDP sends the channel's turn batches as they are (runtime/sockets/turn-batch.ts): no datagram of its own.
    const sendBatch = rtp === null && context.batches ? sender.sendBatch : null;
    return yield* deliverUntilError(
      socket,
      context,
      (chunk) => sendAsDatagrams(sender, chunk, header),
      (cause) => sendFailed(shown, cause),
      sendBatch,
    );
  });
