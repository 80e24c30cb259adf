/**
 * SRT output, in process through libsrt (src/effects/runtime/ffi/libsrt.ts): no child, the passphrase only in this
 * process's memory.
 *
 * - caller: one non-blocking socket connects; libsrt reports the connection (or why it failed: the peer's
 *   reject reason, a timeout) through epoll; a broken link shows in a send's result or the socket's state.
 * - listener: serves up to `maxreceivers` callers at once, each sent every message, each with its own
 *   statistics; a caller whose stream id is not in `allowstreamid` is turned away. A receiver that leaves
 *   changes nothing for the others, one that comes back is served again; when the last one leaves, the
 *   listener waits for the next with its port open, as it waited for the first: no error, no backoff.
 *
 * Each message is `payloadsize` bytes of TS (1316 by default, 7 packets), sent with srt_sendmsg2; a send never
 * waits (libsrt copies it into its send buffer, or refuses it when that buffer is full, counted as a drop).
 * The peers, the gathering and the sending, once connected, are in srt-stream.ts.
 */
import { isIP } from "node:net";
import * as Deferred from "effect/Deferred";
import * as Effect from "effect/Effect";
import * as Exit from "effect/Exit";
import * as Redacted from "effect/Redacted";
import type * as Scope from "effect/Scope";
import { OutputError } from "../../domain/channel/output-error.ts";
import type { SrtTarget } from "../../domain/url/srt.ts";
import { listenerRoute } from "../../domain/url/srt.ts";
import { loadLibSrt } from "../runtime/ffi/libsrt.ts";
import { type LibSrt, LibSrtError, SRT_EPOLL, SRT_REJ, SRT_REJX, SRTS } from "../runtime/ffi/libsrt-api.ts";
import { joinSrtListener, sharedByStreamId, srtRefusal } from "../runtime/links/srt-listeners.ts";
import type { WriterContext } from "./context.ts";
import { makePeers, stream } from "./srt-stream.ts";
import { resolveHost, shownSocket } from "./udp.ts";

/** Callers let through by a listener's callback, until accepted or found dropped (a key that did not match). */
const pending = new Map<
  number,
  { readonly caller: string; readonly streamId: string; readonly since: number }
>();
const PENDING_CHECK_MS = 25;
const PENDING_MAX_MS = 5000;

/**
 * A listener of its own (no stream id routing) turns receivers away in its callback, before their handshake
 * completes and with SRT's reason: a stream id not in `allowstreamid` (SRT_REJX_NOTFOUND), no room under
 * `maxreceivers` (SRT_REJX_CONFLICT). One libsrt drops after the callback, for a passphrase that does not
 * match, is found by looking at it until it is accepted. Each is counted on the output and told as an event.
 */
const tellRefusals = (
  lib: LibSrt,
  listener: number,
  target: SrtTarget,
  context: WriterContext,
  served: () => number,
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const tell = context.srtRefused ?? (() => {});
      const mine = new Set<number>();
      let check: ReturnType<typeof setTimeout> | null = null;
      const checkPending = () => {
        check = null;
        const now = Date.now();
        for (const caller of mine) {
          const entry = pending.get(caller);
          if (entry === undefined) {
            mine.delete(caller);
            continue;
          }
          const state = lib.state(caller);
          if (state === SRTS.CONNECTED || state === SRTS.CONNECTING) {
            if (now - entry.since <= PENDING_MAX_MS) continue;
          } else {
            const code = target.passphrase === null ? SRT_REJ.UNSECURE : SRT_REJ.BADSECRET;
            const why =
              target.passphrase === null
                ? "it sent a passphrase, and this output takes receivers without one"
                : "its passphrase does not match the output's (or it gave none)";
            tell(srtRefusal(target.port, entry.caller, entry.streamId, "wrong_passphrase", code, why));
          }
          pending.delete(caller);
          mine.delete(caller);
        }
        if (mine.size > 0) check = setTimeout(checkPending, PENDING_CHECK_MS);
      };
      const refuse = (
        caller: number,
        code: number,
        reason: "unknown_stream_id" | "busy",
        why: string,
        address: string,
        streamId: string,
      ) => {
        lib.setRejectReason(caller, code);
        tell(srtRefusal(target.port, address, streamId, reason, code, why));
        return false;
      };
      lib.onCaller(listener, (caller, streamId, address) => {
        if (target.allowedStreamIds !== null && !target.allowedStreamIds.includes(streamId)) {
          const why = "this output serves only the stream ids of its allowstreamid";
          return refuse(caller, SRT_REJX.NOTFOUND, "unknown_stream_id", why, address, streamId);
        }
        if (served() >= target.maxReceivers) {
          const why = "this output serves as many receivers as its maxreceivers allows";
          return refuse(caller, SRT_REJX.CONFLICT, "busy", why, address, streamId);
        }
        pending.set(caller, { caller: address, streamId, since: Date.now() });
        mine.add(caller);
        check ??= setTimeout(checkPending, PENDING_CHECK_MS);
        return true;
      });
      return () => {
        if (check !== null) clearTimeout(check);
        for (const caller of mine) pending.delete(caller);
      };
    }),
    // Closed here, where its callback is let go too (the socket's own release then finds it closed).
    (stop) => Effect.sync(stop).pipe(Effect.zipRight(Effect.promise(() => lib.closeListener(listener)))),
  ).pipe(Effect.asVoid);

/** Handshakes a listener holds beyond its receivers while its thread gets round to accepting them. */
const LISTEN_BACKLOG_SPARE = 8;

/** libsrt, or the error that refuses SRT URLs when it cannot be loaded. */
const libSrtOrError: Effect.Effect<LibSrt, OutputError> = Effect.suspend(() => {
  const loaded = loadLibSrt();
  return "lib" in loaded
    ? Effect.succeed(loaded.lib)
    : Effect.fail(new OutputError({ reason: "not_installed", message: loaded.error }));
});

/** Why a caller's connection failed, from libsrt's reject reason, in words a person can act on. */
const connectFailure = (target: SrtTarget, reason: number, reasonText: string): OutputError => {
  const peer = shownSocket(target.host, target.port);
  switch (reason) {
    case SRT_REJ.BADSECRET:
      return new OutputError({
        reason: "auth_rejected",
        message: `the SRT peer at ${peer} rejected the passphrase`,
      });
    case SRT_REJ.UNSECURE:
      return new OutputError({
        reason: "auth_rejected",
        message:
          target.passphrase === null
            ? `the SRT peer at ${peer} requires a passphrase`
            : `the SRT peer at ${peer} does not expect a passphrase`,
      });
    case SRT_REJ.TIMEOUT:
      return new OutputError({
        reason: "connect_timeout",
        message: `no SRT listener answered at ${peer} (is it running, and does the firewall allow UDP ${target.port}?)`,
      });
    default:
      return new OutputError({
        reason: "auth_rejected",
        message: `the SRT peer at ${peer} rejected the connection: ${reasonText}`,
      });
  }
};

const srtFailure = (target: SrtTarget, error: unknown): OutputError => {
  const peer = shownSocket(target.host, target.port);
  const detail = error instanceof Error ? error.message : String(error);
  // libsrt shares a bound UDP port between its sockets: a second listener on it fails at srt_listen.
  if (error instanceof LibSrtError && (error.operation === "srt_bind" || error.operation === "srt_listen")) {
    return new OutputError({
      reason: "connect_refused",
      message: `cannot listen for SRT on ${peer}: the port is in use or the address is not on this machine`,
    });
  }
  return new OutputError({ reason: "write_failed", message: `SRT on ${peer}: ${detail}` });
};

/** A socket made with the URL's options, closed with the scope. */
const openSocket = (lib: LibSrt, target: SrtTarget): Effect.Effect<number, OutputError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () =>
        lib.createSocket({
          latencyMs: target.latencyMs,
          passphrase: target.passphrase === null ? null : Redacted.value(target.passphrase),
          pbkeylen: target.pbkeylen,
          streamId: target.streamId,
          maxbw: target.maxbw,
          oheadbw: target.oheadbw,
          payloadSize: target.payloadSize,
        }),
      catch: (error) => srtFailure(target, error),
    }),
    (socket) => Effect.sync(() => lib.close(socket)),
  );

/**
 * Local UDP ports this thread's SRT callers share. libsrt serves every socket bound to one port with one
 * multiplexer: one UDP socket with one send and one receive thread, where a caller left to bind by itself gets
 * a port and two threads of its own. Shared, the send thread wakes once for what several outputs handed over
 * in one turn instead of once per output (1 channel × 4 SRT outputs: 8 libsrt threads became 2, and the
 * service's CPU fell by a fifth). Peers are told apart by SRT's socket ids, so the outputs stay independent.
 * A port takes at most CALLERS_PER_PORT callers: 32 rather than 8 cut 10 channels × 4 SRT outputs from 42 to
 * 41 % of a core (libsrt's receive threads and the wake-ups of its send threads), and one send thread carries
 * 32 outputs of 7 Mbit/s in about 15 % of a core, so a busy worker still spreads its SRT over several. libsrt
 * refuses a port to a socket whose UDP settings differ, which then binds one of its own on connect.
 */
const CALLERS_PER_PORT = 32;
const sharedPorts: Array<{ readonly port: number; readonly any: string; users: number }> = [];

/** Binds a caller to a shared port of its peer's family (`address`: the peer's, IPv4 or IPv6). */
const bindShared = (lib: LibSrt, socket: number, address: string): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      try {
        const any = isIP(address) === 6 ? "::" : "0.0.0.0";
        let shared = sharedPorts.find((entry) => entry.any === any && entry.users < CALLERS_PER_PORT);
        if (shared === undefined) {
          lib.bind(socket, any, 0);
          shared = { port: lib.localPort(socket), any, users: 0 };
          sharedPorts.push(shared);
        } else lib.bind(socket, any, shared.port);
        shared.users += 1;
        return shared;
      } catch {
        return null;
      }
    }),
    (shared) =>
      Effect.sync(() => {
        if (shared === null) return;
        shared.users -= 1;
        // A port nobody uses any more goes with its multiplexer; the next caller picks a new one.
        if (shared.users === 0) sharedPorts.splice(sharedPorts.indexOf(shared), 1);
      }),
  ).pipe(Effect.asVoid);

/** One way of sending to SRT receivers (the target's mode): it lasts until it fails, for the reconnect schedule. */
type Attempt = (
  lib: LibSrt,
  target: SrtTarget,
  context: WriterContext,
) => Effect.Effect<never, OutputError, Scope.Scope>;

const callerAttempt: Attempt = (lib, target, context) =>
  Effect.gen(function* () {
    const address = yield* resolveHost(target.host);
    const socket = yield* openSocket(lib, target);
    yield* bindShared(lib, socket, address);
    const peers = makePeers(lib, context, target.payloadSize);
    const connected = yield* Deferred.make<void, OutputError>();
    const failed = yield* Deferred.make<never, OutputError>();
    const peer = shownSocket(target.host, target.port);
    const disconnected = () =>
      Deferred.unsafeDone(
        failed,
        Exit.fail(
          new OutputError({ reason: "disconnected", message: `the SRT peer at ${peer} disconnected` }),
        ),
      );

    yield* Effect.acquireRelease(
      Effect.sync(() =>
        lib.watch(socket, SRT_EPOLL.OUT | SRT_EPOLL.ERR, (events) => {
          if ((events & SRT_EPOLL.ERR) === 0 && lib.state(socket) === SRTS.CONNECTED) {
            Deferred.unsafeDone(connected, Exit.void);
          } else {
            const reason = lib.rejectReason(socket);
            Deferred.unsafeDone(
              connected,
              Exit.fail(connectFailure(target, reason, lib.rejectReasonText(reason))),
            );
          }
        }),
      ),
      () => Effect.sync(() => lib.unwatch(socket)),
    );
    yield* Effect.try({
      try: () => lib.connect(socket, address, target.port),
      catch: (error) => srtFailure(target, error),
    });
    yield* Deferred.await(connected);

    peers.add(socket, target.streamId, shownSocket(address, target.port));
    // Connected: nothing more to wait for. A broken link shows in a send's result or, while nothing is sent,
    // in the socket's state at the next statistics reading; a watched socket would keep libsrt's readiness
    // wait running, which wakes every 10 ms and on every change of any socket's readiness.
    lib.unwatch(socket);
    return yield* stream(context, peers, Deferred.await(failed), disconnected);
  });

/**
 * A listener's attempt lasts as long as its listening socket works: receivers come and go within it. While it
 * has none it waits (state `connecting`, its port open); only a failure of the socket itself (bind, listen,
 * accept) ends it, for the reconnect schedule.
 */
const listenerAttempt: Attempt = (lib, target, context) =>
  Effect.gen(function* () {
    const address = yield* resolveHost(target.host);
    const peers = makePeers(lib, context, target.payloadSize);
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const socket of [...peers.peers.keys()]) peers.remove(socket);
      }),
    );
    const failed = yield* Deferred.make<never, OutputError>();
    // Renewed at each turn between waiting and serving: done when a receiver came, when the last one left.
    let arrived = yield* Deferred.make<void>();
    let emptied = yield* Deferred.make<void>();

    const gone = (socket: number) => {
      peers.remove(socket);
      if (peers.peers.size === 0) Deferred.unsafeDone(emptied, Exit.void);
    };

    /** A receiver that may be served (its stream id allowed, room for it): served. */
    const take = (socket: number, streamId: string): boolean => {
      const allowed = target.allowedStreamIds === null || target.allowedStreamIds.includes(streamId);
      if (!allowed || peers.peers.size >= target.maxReceivers) return false;
      peers.add(socket, streamId);
      Deferred.unsafeDone(arrived, Exit.void);
      return true;
    };

    const route = listenerRoute(target);
    if (route !== null) {
      // A port shared by stream id: receivers ask for this output's (m=request) among the others'.
      yield* joinSrtListener(
        lib,
        {
          host: address,
          port: target.port,
          payloadSize: target.payloadSize,
          backlog: target.maxReceivers + LISTEN_BACKLOG_SPARE,
        },
        {
          name: route,
          mode: "request",
          passphrase: target.passphrase === null ? null : Redacted.value(target.passphrase),
          pbkeylen: target.pbkeylen,
          latencyMs: target.latencyMs,
          full: () => peers.peers.size >= target.maxReceivers,
          accepted: take,
          refused: context.srtRefused ?? (() => {}),
          unrouted: context.srtUnrouted ?? (() => {}),
        },
        () => Effect.void,
      ).pipe(Effect.mapError((error) => srtFailure(target, error)));
    } else {
      if (sharedByStreamId(target.port)) {
        return yield* Effect.fail(
          new OutputError({
            reason: "connect_refused",
            message: `SRT port ${target.port} is shared by stream id among other channels: give this output a streamid too`,
          }),
        );
      }
      const listener = yield* openSocket(lib, target);
      yield* Effect.try({
        try: () => {
          lib.bind(listener, address, target.port);
          // The backlog holds handshakes not yet accepted, turned-away callers among them: with room for only
          // `maxreceivers`, a caller it would turn away could make libsrt reject one it would serve.
          lib.listen(listener, target.maxReceivers + LISTEN_BACKLOG_SPARE);
        },
        catch: (error) => srtFailure(target, error),
      });
      yield* tellRefusals(lib, listener, target, context, () => peers.peers.size);
      yield* Effect.acquireRelease(
        Effect.sync(() => lib.watch(listener, SRT_EPOLL.IN | SRT_EPOLL.ERR, () => acceptAll(listener))),
        () => Effect.sync(() => lib.unwatch(listener)),
      );
    }

    function acceptAll(listener: number) {
      while (true) {
        let socket: number | null;
        try {
          socket = lib.accept(listener);
        } catch (error) {
          Deferred.unsafeDone(failed, Exit.fail(srtFailure(target, error)));
          return;
        }
        if (socket === null) return;
        pending.delete(socket);
        if (!take(socket, lib.streamId(socket))) lib.close(socket);
      }
    }
    // Between two turns of this loop the callbacks may run: a receiver that came or left meanwhile resolved
    // the previous Deferred, so each new one starts from the receivers there are now.
    while (true) {
      yield* Effect.raceFirst(Deferred.await(arrived), Deferred.await(failed));
      emptied = yield* Deferred.make<void>();
      if (peers.peers.size === 0) Deferred.unsafeDone(emptied, Exit.void);
      yield* Effect.scoped(
        stream(context, peers, Effect.raceFirst(Deferred.await(emptied), Deferred.await(failed)), gone),
      );
      arrived = yield* Deferred.make<void>();
      if (peers.peers.size > 0) Deferred.unsafeDone(arrived, Exit.void);
      else {
        // Everyone left: the receivers count drops to 0 now, not at a reading that no longer comes.
        peers.report(gone);
        yield* context.markWaiting;
      }
    }
  });

export const srtAttempt = (
  target: SrtTarget,
  context: WriterContext,
): Effect.Effect<never, OutputError, Scope.Scope> =>
  Effect.flatMap(libSrtOrError, (lib) =>
    target.mode === "caller" ? callerAttempt(lib, target, context) : listenerAttempt(lib, target, context),
  );
