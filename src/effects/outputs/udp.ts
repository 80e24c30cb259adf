/**
 * UDP and RTP outputs, in process: TS datagrams of up to 7×188 bytes, coalesced from whatever is queued
 * without waiting for more (no added latency), unicast or multicast.
 */
import { createSocket, type Socket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { Effect, type Scope } from "effect";
import { OutputError } from "../errors.ts";
import { DATAGRAM_PAYLOAD } from "./queue.ts";
import { makeRtpFramer } from "./rtp.ts";
import type { DatagramTarget } from "./url.ts";
import type { WriterContext } from "./writer.ts";

const errorCode = (cause: unknown): string =>
  cause instanceof Error && "code" in cause && typeof cause.code === "string" ? cause.code : String(cause);

/** Resolved once per attempt: `dgram.send` with a name would look it up for every datagram. */
export const resolveIPv4 = (host: string): Effect.Effect<string, OutputError> =>
  Effect.tryPromise({
    try: () => lookup(host, { family: 4 }).then((result) => result.address),
    catch: (cause) =>
      new OutputError({ reason: "resolve_failed", message: `cannot resolve ${host} (${errorCode(cause)})` }),
  });

const openSocket = (target: DatagramTarget): Effect.Effect<Socket, OutputError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<Socket, OutputError>((resume) => {
      const socket = createSocket({ type: "udp4", reuseAddr: false });
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
    Effect.tap((socket) =>
      Effect.try({
        try: () => {
          if (target.multicast) {
            if (target.ttl !== null) socket.setMulticastTTL(target.ttl);
            if (target.localAddress !== null) socket.setMulticastInterface(target.localAddress);
          } else if (target.ttl !== null) {
            socket.setTTL(target.ttl);
          }
        },
        catch: (cause) =>
          new OutputError({
            reason: "write_failed",
            message: `cannot set ttl or interface (${errorCode(cause)})`,
          }),
      }),
    ),
  );

const send = (
  socket: Socket,
  parts: ReadonlyArray<Uint8Array>,
  port: number,
  address: string,
  shown: string,
) =>
  Effect.async<void, OutputError>((resume) => {
    socket.send(parts, port, address, (cause) => {
      resume(
        cause === null || cause === undefined
          ? Effect.void
          : Effect.fail(
              new OutputError({
                reason: "write_failed",
                message: `cannot send to ${shown} (${errorCode(cause)})`,
              }),
            ),
      );
    });
  });

export const datagramAttempt = (
  target: DatagramTarget,
  context: WriterContext,
): Effect.Effect<never, OutputError, Scope.Scope> =>
  Effect.gen(function* () {
    const address = yield* resolveIPv4(target.host);
    const socket = yield* openSocket(target);
    const rtp = target.protocol === "rtp" ? yield* makeRtpFramer : null;
    const shown = `${target.host}:${target.port}`;
    yield* context.markConnected;
    while (true) {
      const segments = yield* context.queue.takeUpTo(DATAGRAM_PAYLOAD);
      const parts = rtp === null ? segments : [rtp.nextHeader(), ...segments];
      yield* send(socket, parts, target.port, address, shown);
      context.countSent(segments.reduce((total, segment) => total + segment.length, 0));
    }
  });
