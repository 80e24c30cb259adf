/**
 * An SRT input, in process through libsrt: the same shape as `bindInput` (UDP), so a channel can take its
 * primary or backup stream over SRT and feed the same packet core, failover and outputs. Each SRT message
 * (up to 7 TS packets) is handed to `onDatagram` as it is released by libsrt (after SRT's latency window).
 *
 * - listener (`srt://:port?mode=listener`): waits for one sender; when it goes, waits for the next. A second
 *   sender while one is connected is turned away.
 * - caller (`srt://host:port`): connects, and connects again one second after the link fails, for as long
 *   as the scope is open.
 *
 * Silence is not an error here: the channel's failover notices a sender that stopped, as it does for UDP.
 */
import { createSocket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import * as Effect from "effect/Effect";
import * as Redacted from "effect/Redacted";
import type * as Scope from "effect/Scope";
import { authority } from "../../domain/url/shared.ts";
import type { SrtTarget } from "../../domain/url/srt.ts";
import { listenerRoute, maskStreamId } from "../../domain/url/srt.ts";
import { type OutputTarget, parseOutputUrl } from "../../domain/url/url.ts";
import { loadLibSrt } from "../runtime/ffi/libsrt.ts";
import { type LibSrt, LibSrtError, SRT_EPOLL, SRTS } from "../runtime/ffi/libsrt-api.ts";
import { joinSrtListener, type SrtRefusal, sharedByStreamId } from "../runtime/links/srt-listeners.ts";
import { InputError } from "./udp-receiver.ts";

/** What a running SRT input can tell: whether a sender is connected, and its address. */
interface SrtInput {
  readonly sender: () => string | null;
  /** A routed listener's figures (its stream id, the callers it refused); null for any other SRT input. */
  readonly figures: (() => SrtInputFigures) | null;
}

/** A listener input's on a shared port: what status shows of it. */
export interface SrtInputFigures {
  /** address:port of the shared listener. */
  readonly listen: string;
  /** The stream id callers reach it by, masked. */
  readonly streamId: string;
  readonly sender: string | null;
  /** Callers refused since it started (a wrong passphrase, another sender while one is connected). */
  readonly refusals: number;
  readonly lastRefusal: (SrtRefusal & { readonly atEpochMs: number }) | null;
}

/**
 * Where a routed listener input (`streamid=` on a shared port) tells of the callers it refused: `refused` those
 * that asked for its stream id, `unrouted` those that asked for one no channel on the port has.
 */
export interface SrtRefusals {
  readonly refused: (refusal: SrtRefusal) => void;
  readonly unrouted: (refusal: SrtRefusal) => void;
}

const noRefusals: SrtRefusals = { refused: () => {}, unrouted: () => {} };

const RECONNECT_MS = 1000;

/** An SRT or RIST input's URL as its target (the same syntax and checks as an output's of the protocol). */
export const linkInputTarget = <P extends "srt" | "rist">(
  url: string,
  protocol: P,
): Effect.Effect<Extract<OutputTarget, { readonly protocol: P }>, InputError> => {
  const name = protocol.toUpperCase();
  return Effect.flatMap(
    Effect.mapError(
      parseOutputUrl(url),
      (error) => new InputError({ reason: "bind_failed", message: `${name} input URL: ${error.message}` }),
    ),
    (target) =>
      target.protocol === protocol
        ? Effect.succeed(target as Extract<OutputTarget, { readonly protocol: P }>)
        : Effect.fail(
            new InputError({
              reason: "bind_failed",
              message: `${protocol === "srt" ? "an" : "a"} ${name} input URL starts with ${protocol}://`,
            }),
          ),
  );
};

export const srtInputTarget = (url: string): Effect.Effect<SrtTarget, InputError> =>
  linkInputTarget(url, "srt");

const inputError = (target: SrtTarget, error: unknown): InputError => {
  const where = authority(target.host, target.port);
  if (error instanceof LibSrtError && (error.operation === "srt_bind" || error.operation === "srt_listen")) {
    return new InputError({
      reason: "bind_failed",
      message: `cannot listen for SRT on ${where}: another program or channel already uses this port`,
    });
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new InputError({ reason: "bind_failed", message: `SRT input ${where}: ${detail}` });
};

const socketOptions = (target: SrtTarget) => ({
  latencyMs: target.latencyMs,
  passphrase: target.passphrase === null ? null : Redacted.value(target.passphrase),
  pbkeylen: target.pbkeylen,
  streamId: target.mode === "caller" ? target.streamId : null,
  payloadSize: target.payloadSize,
});

/** Reads every message libsrt has released on `socket`, handing each to `onDatagram` as its own Buffer. */
const drain = (lib: LibSrt, socket: number, scratch: Buffer, onDatagram: (datagram: Buffer) => void) => {
  while (true) {
    const length = lib.receive(socket, scratch);
    if (length <= 0) return length;
    onDatagram(Buffer.from(scratch.subarray(0, length)));
  }
};

const bindsNow = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const probe = createSocket({ type: isIP(host) === 6 ? "udp6" : "udp4", reuseAddr: false });
    probe.once("error", () => {
      probe.close();
      resolve(false);
    });
    probe.bind({ port, address: host, exclusive: true }, () => probe.close(() => resolve(true)));
  });

/**
 * libsrt closes a listener's UDP socket from its own garbage collector, about 4.5 s after srt_close
 * (libsrt 1.5.1): waits (at most 8 s) until the port is free, so that whatever binds it next (the same input
 * as plain UDP, another channel) can.
 */
const portReleased = (host: string, port: number): Effect.Effect<void> =>
  Effect.gen(function* () {
    const deadline = Date.now() + 8000;
    while (Date.now() < deadline && !(yield* Effect.promise(() => bindsNow(host, port)))) {
      yield* Effect.sleep("50 millis");
    }
  });

export const bindSrtInput = (
  target: SrtTarget,
  onDatagram: (datagram: Buffer) => void,
  tell: SrtRefusals = noRefusals,
): Effect.Effect<SrtInput, InputError, Scope.Scope> =>
  Effect.gen(function* () {
    const loaded = loadLibSrt();
    if (!("lib" in loaded)) {
      return yield* Effect.fail(new InputError({ reason: "bind_failed", message: loaded.error }));
    }
    const lib = loaded.lib;
    const scratch = Buffer.alloc(1500);
    let sender: { socket: number; address: string } | null = null;
    let closed = false;

    const dropSender = () => {
      if (sender === null) return;
      lib.close(sender.socket);
      sender = null;
    };

    /** `called`: the address a caller called, which libsrt (1.5.1) does not give back for a caller's socket. */
    const serve = (socket: number, onGone: () => void, called?: string) => {
      sender = { socket, address: lib.peerAddress(socket) || (called ?? "") };
      lib.watch(socket, SRT_EPOLL.IN | SRT_EPOLL.ERR, (events) => {
        const result = drain(lib, socket, scratch, onDatagram);
        if ((events & SRT_EPOLL.ERR) !== 0 || result < 0 || lib.state(socket) >= SRTS.BROKEN) {
          dropSender();
          onGone();
        }
      });
    };

    const route = listenerRoute(target);
    if (route !== null) {
      // One listener per port in this thread, shared by the channels naming it: callers come by stream id.
      let refusals = 0;
      let lastRefusal: (SrtRefusal & { readonly atEpochMs: number }) | null = null;
      const port = yield* joinSrtListener(
        lib,
        { host: target.host, port: target.port, payloadSize: target.payloadSize, backlog: 16 },
        {
          name: route,
          mode: "publish",
          passphrase: target.passphrase === null ? null : Redacted.value(target.passphrase),
          pbkeylen: target.pbkeylen,
          latencyMs: target.latencyMs,
          full: () => sender !== null,
          accepted: (socket) => {
            if (sender !== null) return false;
            serve(socket, () => {});
            return true;
          },
          refused: (refusal) => {
            refusals += 1;
            lastRefusal = { ...refusal, atEpochMs: Date.now() };
            tell.refused(refusal);
          },
          unrouted: tell.unrouted,
        },
        (port) => portReleased(target.host, port),
      ).pipe(
        Effect.mapError((error) =>
          error instanceof LibSrtError
            ? inputError(target, error)
            : new InputError({ reason: "bind_failed", message: `SRT input: ${(error as Error).message}` }),
        ),
      );
      yield* Effect.addFinalizer(() => Effect.sync(dropSender));
      return {
        sender: () => sender?.address ?? null,
        figures: () => ({
          listen: authority(target.host, port),
          streamId: maskStreamId(route).shown,
          sender: sender?.address ?? null,
          refusals,
          lastRefusal,
        }),
      };
    }

    if (target.mode === "listener") {
      if (sharedByStreamId(target.port)) {
        return yield* Effect.fail(
          new InputError({
            reason: "bind_failed",
            message: `SRT port ${target.port} is shared by stream id among other channels: give this input a streamid too`,
          }),
        );
      }
      const listener = yield* Effect.acquireRelease(
        Effect.try({
          try: () => {
            const socket = lib.createSocket(socketOptions(target));
            try {
              lib.bind(socket, target.host, target.port);
              lib.listen(socket, 2);
            } catch (error) {
              lib.close(socket);
              throw error;
            }
            return socket;
          },
          catch: (error) => inputError(target, error),
        }),
        (socket) =>
          Effect.zipRight(
            Effect.sync(() => {
              dropSender();
              lib.close(socket);
            }),
            portReleased(target.host, target.port),
          ),
      );
      lib.watch(listener, SRT_EPOLL.IN | SRT_EPOLL.ERR, () => {
        while (true) {
          let socket: number | null;
          try {
            socket = lib.accept(listener);
          } catch {
            return;
          }
          if (socket === null) return;
          const allowed =
            target.allowedStreamIds === null || target.allowedStreamIds.includes(lib.streamId(socket));
          if (sender !== null || !allowed) {
            lib.close(socket);
            continue;
          }
          serve(socket, () => {});
        }
      });
      return { sender: () => sender?.address ?? null, figures: null };
    }

    // Caller: connect, and connect again a second after any failure, until the scope closes.
    const address = yield* Effect.tryPromise({
      try: () =>
        isIP(target.host) !== 0
          ? Promise.resolve(target.host)
          : lookup(target.host, { family: 4 })
              .catch(() => lookup(target.host, { family: 6 }))
              .then((result) => result.address),
      catch: () => new InputError({ reason: "bind_failed", message: `cannot resolve ${target.host}` }),
    });
    let retry: ReturnType<typeof setTimeout> | null = null;
    let connecting: number | null = null;
    const connect = () => {
      retry = null;
      if (closed) return;
      const again = () => {
        if (!closed) retry = setTimeout(connect, RECONNECT_MS);
      };
      let socket: number;
      try {
        socket = lib.createSocket(socketOptions(target));
      } catch {
        again();
        return;
      }
      connecting = socket;
      lib.watch(socket, SRT_EPOLL.OUT | SRT_EPOLL.ERR, (events) => {
        connecting = null;
        if ((events & SRT_EPOLL.ERR) === 0 && lib.state(socket) === SRTS.CONNECTED) {
          serve(socket, again, authority(address, target.port));
        } else {
          lib.close(socket);
          again();
        }
      });
      try {
        lib.connect(socket, address, target.port);
      } catch {
        connecting = null;
        lib.close(socket);
        again();
      }
    };
    yield* Effect.acquireRelease(
      Effect.sync(() => connect()),
      () =>
        Effect.sync(() => {
          closed = true;
          if (retry !== null) clearTimeout(retry);
          if (connecting !== null) lib.close(connecting);
          dropSender();
        }),
    );
    return { sender: () => sender?.address ?? null, figures: null };
  });
