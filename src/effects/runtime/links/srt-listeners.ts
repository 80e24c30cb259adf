/**
 * SRT listeners shared by stream id: `srt://:9000?mode=listener&streamid=name` of several channels (inputs that
 * callers publish to, outputs that receivers request from) is one libsrt listener on port 9000 in this thread,
 * and each caller is routed by the stream id it sends: `#!::r=name,m=publish` (SRT's Access Control
 * convention) or a plain `name`.
 *
 * libsrt asks about each caller before its handshake completes (srt_listen_callback, libsrt.ts `onCaller`):
 * an unknown name, a malformed stream id, a mode the name is not served in or a route that takes no more
 * callers is refused there with SRT's reject code (SRT_REJX_*), which the caller's libsrt reports; a known one
 * gets its route's passphrase and latency set on its socket, and libsrt then checks the caller's key. A caller
 * whose key does not match never reaches srt_accept: its socket closes at once, which is how a wrong passphrase
 * is told (libsrt gives no reason for a socket it dropped), unless another caller has taken the route by then:
 * that one is told as busy, since a caller whose handshake timed out closes the same way. Each refusal goes to
 * the route's owner, or, for a name no route has, to the port's `unrouted` listeners (a node-level event: no
 * channel owns it). Nothing of it holds a passphrase; the stream id is shown masked (domain/url/srt.ts).
 *
 * The callback runs on this thread while libsrt's receive thread for the port waits holding that port's
 * listener lock and nothing else; nothing this thread calls of libsrt takes that lock except srt_listen on the
 * port (done before the callback is set) and srt_close of the listener, which runs off this thread
 * (`closeListener`), so the wait always ends.
 */
import * as Effect from "effect/Effect";
import type * as Scope from "effect/Scope";
import type { SrtStreamRequest } from "../../../domain/url/srt.ts";
import { maskStreamId, parseStreamId } from "../../../domain/url/srt.ts";
import { type LibSrt, SRT_EPOLL, SRT_REJ, SRT_REJX, SRTS } from "../ffi/libsrt-api.ts";

export type SrtRouteMode = "publish" | "request";

/** Why a caller was refused, in words and as SRT's code. No passphrase in it. */
export interface SrtRefusal {
  /** The caller's address:port. */
  readonly caller: string;
  /** The stream id it sent, masked and printable. */
  readonly streamId: string;
  readonly reason: "unknown_stream_id" | "bad_stream_id" | "wrong_mode" | "busy" | "wrong_passphrase";
  /** SRT's reject reason: SRT_REJX_* (1400…) from the listener's callback, SRT_REJ_* (libsrt's own) else. */
  readonly code: number;
  readonly codeName: string;
  readonly message: string;
  readonly port: number;
}

export interface SrtRoute {
  readonly name: string;
  readonly mode: SrtRouteMode;
  readonly passphrase: string | null;
  readonly pbkeylen: number | null;
  readonly latencyMs: number | null;
  /** Whether the route takes no more callers now (an input's sender is connected; an output is full). */
  readonly full: () => boolean;
  /** A caller that completed its handshake; false hands it back (closed). */
  readonly accepted: (socket: number, streamId: string) => boolean;
  readonly refused: (refusal: SrtRefusal) => void;
  /** A caller no route of the port takes: told once, by the first route joined that is still there. */
  readonly unrouted: (refusal: SrtRefusal) => void;
}

export interface SrtListenerPlace {
  readonly host: string;
  readonly port: number;
  /** The listener's own options (those of its first route): a route's passphrase and latency are per caller. */
  readonly payloadSize: number;
  readonly backlog: number;
}

interface Hub {
  readonly key: string;
  readonly socket: number;
  readonly port: number;
  /** By `mode name`. */
  readonly routes: Map<string, SrtRoute>;
  /** Callers let through the callback, until accepted or found dropped. */
  readonly pending: Map<
    number,
    { readonly route: SrtRoute; readonly streamId: string; readonly caller: string; readonly since: number }
  >;
  check: ReturnType<typeof setTimeout> | null;
}

const hubs = new Map<string, Hub>();

const routeKey = (mode: SrtRouteMode, name: string) => `${mode} ${name}`;
const placeKey = (host: string, port: number) => `${host === "" ? "0.0.0.0" : host}:${port}`;

/** The most of a stream id that is shown: it comes from the network. */
const SHOWN_STREAM_ID = 128;

const shownStreamId = (raw: string): string => {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced.
  const printable = maskStreamId(raw).shown.replace(/[\u0000-\u001f\u007f]/g, "?");
  return printable.length > SHOWN_STREAM_ID ? `${printable.slice(0, SHOWN_STREAM_ID)}…` : printable;
};

const CODE_NAMES: Record<number, string> = {
  [SRT_REJX.BAD_REQUEST]: "SRT_REJX_BAD_REQUEST",
  [SRT_REJX.NOTFOUND]: "SRT_REJX_NOTFOUND",
  [SRT_REJX.BAD_MODE]: "SRT_REJX_BAD_MODE",
  [SRT_REJX.CONFLICT]: "SRT_REJX_CONFLICT",
  [SRT_REJ.BADSECRET]: "SRT_REJ_BADSECRET",
  [SRT_REJ.UNSECURE]: "SRT_REJ_UNSECURE",
};

/** A refusal as the status and events tell it: who, which stream id (masked), why, with SRT's code. */
export const srtRefusal = (
  port: number,
  caller: string,
  streamId: string,
  reason: SrtRefusal["reason"],
  code: number,
  why: string,
): SrtRefusal => {
  const shown = shownStreamId(streamId);
  const codeName = CODE_NAMES[code] ?? `reason ${code}`;
  return {
    caller,
    streamId: shown,
    reason,
    code,
    codeName,
    port,
    message: `the SRT caller ${caller} asking for stream id '${shown}' on port ${port} was refused (${codeName}): ${why}`,
  };
};

/** How often, and how long, a caller let through is looked at until it is accepted or found dropped. */
const PENDING_CHECK_MS = 25;
const PENDING_MAX_MS = 5000;

const makeHub = (lib: LibSrt, place: SrtListenerPlace, key: string): Hub => {
  const socket = lib.createSocket({ payloadSize: place.payloadSize });
  try {
    lib.bind(socket, place.host, place.port);
    lib.listen(socket, place.backlog);
  } catch (error) {
    lib.close(socket);
    throw error;
  }
  const port = place.port === 0 ? lib.localPort(socket) : place.port;
  const hub: Hub = { key, socket, port, routes: new Map(), pending: new Map(), check: null };

  const unrouted = (told: SrtRefusal) => {
    const first = hub.routes.values().next();
    if (!first.done) first.value.unrouted(told);
  };

  const refuse = (caller: number, code: number, told: SrtRefusal, route: SrtRoute | null) => {
    lib.setRejectReason(caller, code);
    if (route === null) unrouted(told);
    else route.refused(told);
    return false;
  };

  /** Callers let through whose socket closed before srt_accept had them: their key did not match. */
  const checkPending = () => {
    hub.check = null;
    const now = Date.now();
    for (const [caller, entry] of hub.pending) {
      const state = lib.state(caller);
      // Dropped means broken, closing, closed or gone. Before that a socket may still be as the callback left
      // it (libsrt's receive thread, held off the CPU, has not gone on with the handshake yet).
      if (state < SRTS.BROKEN) {
        if (now - entry.since > PENDING_MAX_MS) hub.pending.delete(caller);
        continue;
      }
      hub.pending.delete(caller);
      const { route } = entry;
      if (route.full()) {
        // Let through while the stream id was free, dropped once another caller had taken it (on a loaded
        // machine, often the same caller calling again after its first handshake timed out on its side):
        // libsrt keeps no reason for a socket it closed, so what is known is said, not a wrong passphrase.
        const why = "another caller took this stream id while its handshake was under way";
        route.refused(srtRefusal(hub.port, entry.caller, entry.streamId, "busy", SRT_REJX.CONFLICT, why));
        continue;
      }
      const code = route.passphrase === null ? SRT_REJ.UNSECURE : SRT_REJ.BADSECRET;
      const why =
        route.passphrase === null
          ? "it sent a passphrase, and this stream id takes callers without one"
          : "its passphrase does not match the one of this stream id (or it gave none)";
      route.refused(srtRefusal(hub.port, entry.caller, entry.streamId, "wrong_passphrase", code, why));
    }
    if (hub.pending.size > 0) hub.check = setTimeout(checkPending, PENDING_CHECK_MS);
  };

  const notFound = {
    code: SRT_REJX.NOTFOUND,
    reason: "unknown_stream_id",
    why: "no channel on this port has that stream id",
    route: null,
  } as const;

  /** The route a caller's stream id asks for, or why none takes it (with SRT's code). */
  const routeFor = (
    request: SrtStreamRequest,
  ):
    | SrtRoute
    | {
        readonly code: number;
        readonly reason: SrtRefusal["reason"];
        readonly why: string;
        readonly route: SrtRoute | null;
      } => {
    const named = (mode: SrtRouteMode) => hub.routes.get(routeKey(mode, request.name));
    const shown = shownStreamId(request.name);
    if (request.mode !== null) {
      const route = named(request.mode);
      if (route !== undefined) return route;
      const other = named(request.mode === "publish" ? "request" : "publish");
      if (other === undefined) return notFound;
      const why =
        other.mode === "publish"
          ? `'${shown}' is published to here (m=publish), not requested from`
          : `'${shown}' is requested from here (m=request), not published to`;
      return { code: SRT_REJX.BAD_MODE, reason: "wrong_mode", why, route: other };
    }
    const [publish, requested] = [named("publish"), named("request")];
    if (publish !== undefined && requested !== undefined) {
      const why = `'${shown}' is both published to and requested from here: say which with #!::r=${shown},m=publish or m=request`;
      return { code: SRT_REJX.BAD_REQUEST, reason: "bad_stream_id", why, route: null };
    }
    return publish ?? requested ?? notFound;
  };

  lib.onCaller(socket, (caller, streamId, address) => {
    const request = parseStreamId(streamId);
    // What is wrong with it is not repeated: its pieces come from the network and may hold a secret.
    const found =
      typeof request === "string"
        ? {
            code: SRT_REJX.BAD_REQUEST,
            reason: "bad_stream_id" as const,
            why: "its stream id starts with #!:: but is not #!::r=name,m=publish (or m=request)",
            route: null,
          }
        : routeFor(request);
    if (!("accepted" in found)) {
      const { code, reason, why, route } = found;
      return refuse(caller, code, srtRefusal(hub.port, address, streamId, reason, code, why), route);
    }
    const route = found;
    if (route.full()) {
      const why =
        route.mode === "publish"
          ? "another sender is already connected to this stream id"
          : "this stream id serves as many receivers as its maxreceivers allows";
      return refuse(
        caller,
        SRT_REJX.CONFLICT,
        srtRefusal(hub.port, address, streamId, "busy", SRT_REJX.CONFLICT, why),
        route,
      );
    }
    lib.configureCaller(caller, {
      passphrase: route.passphrase,
      pbkeylen: route.pbkeylen,
      latencyMs: route.latencyMs,
    });
    hub.pending.set(caller, { route, streamId, caller: address, since: Date.now() });
    // libsrt checks the caller's key right after this returns; a look soon after tells whether it passed.
    hub.check ??= setTimeout(checkPending, PENDING_CHECK_MS);
    return true;
  });

  lib.watch(socket, SRT_EPOLL.IN | SRT_EPOLL.ERR, () => {
    while (true) {
      let caller: number | null;
      try {
        caller = lib.accept(socket);
      } catch {
        return;
      }
      if (caller === null) return;
      const entry = hub.pending.get(caller);
      hub.pending.delete(caller);
      const streamId = entry?.streamId ?? lib.streamId(caller);
      const route = entry?.route ?? null;
      // A route gone meanwhile (its channel stopped), or one full by now, hands the caller back.
      const live = route !== null && hub.routes.get(routeKey(route.mode, route.name)) === route;
      if (!live || route === null || !route.accepted(caller, streamId)) lib.close(caller);
    }
  });
  return hub;
};

/**
 * Joins `route` to the listener at `place` (made with its first route, closed after its last), for as long as
 * the scope is open. Fails with a message when another route of this thread has the same name and mode there,
 * or with libsrt's error when the port cannot be listened on. The release says whether the listener closed.
 */
export const joinSrtListener = (
  lib: LibSrt,
  place: SrtListenerPlace,
  route: SrtRoute,
  onClosed: (port: number) => Effect.Effect<void>,
): Effect.Effect<number, unknown, Scope.Scope> => {
  const key = placeKey(place.host, place.port);
  return Effect.acquireRelease(
    Effect.try({
      try: () => {
        const hub = hubs.get(key) ?? makeHub(lib, place, key);
        hubs.set(key, hub);
        const name = routeKey(route.mode, route.name);
        if (hub.routes.has(name)) {
          throw new Error(
            `stream id '${shownStreamId(route.name)}' is already ${route.mode === "publish" ? "an input's" : "an output's"} on SRT port ${hub.port}: give each channel its own`,
          );
        }
        hub.routes.set(name, route);
        return hub;
      },
      catch: (error) => error,
    }),
    (hub) =>
      Effect.suspend(() => {
        const name = routeKey(route.mode, route.name);
        if (hub.routes.get(name) === route) hub.routes.delete(name);
        for (const [caller, entry] of hub.pending) if (entry.route === route) hub.pending.delete(caller);
        if (hub.routes.size > 0) return Effect.void;
        hubs.delete(hub.key);
        if (hub.check !== null) clearTimeout(hub.check);
        return Effect.zipRight(
          Effect.promise(() => lib.closeListener(hub.socket)),
          onClosed(hub.port),
        );
      }),
  ).pipe(Effect.map((hub) => hub.port));
};

/**
 * The shortest time between two refusal events of one route or input and reason (`srt_caller_refused`,
 * `rtmp_publish_refused`): a caller retrying. Here, not beside the events' schema in src/domain/events/events.ts,
 * because forwarding threads read it and load no Schema.
 */
export const REFUSAL_EVENT_MS = 10_000;

/** A refusal as an `srt_caller_refused` event tells it, but for whose listener it was and the message. */
export const refusalFields = (refusal: SrtRefusal, refusals: number) => ({
  caller: refusal.caller,
  stream_id: refusal.streamId,
  port: refusal.port,
  reason: refusal.reason,
  code: refusal.code,
  code_name: refusal.codeName,
  refusals,
});

/**
 * `tell` at most once per reason every `ms`, with how many refusals of that reason came since it last told:
 * a caller retrying makes one event a window, not one a second.
 */
export const throttledRefusals = <R extends { readonly reason: string }>(
  ms: number,
  tell: (refusal: R, refusals: number) => void,
): ((refusal: R) => void) => {
  const told = new Map<string, { at: number; since: number }>();
  return (refusal) => {
    const now = Date.now();
    const last = told.get(refusal.reason);
    if (last !== undefined && now - last.at < ms) {
      last.since += 1;
      return;
    }
    told.set(refusal.reason, { at: now, since: 0 });
    tell(refusal, (last?.since ?? 0) + 1);
  };
};

/**
 * Whether this thread's listener shared by stream id holds `port`. A listener of its own may not go there:
 * srt_listen would wait for the port's receive thread, which may be waiting for this thread in the callback.
 */
export const sharedByStreamId = (port: number): boolean => {
  for (const hub of hubs.values()) if (hub.port === port) return true;
  return false;
};
