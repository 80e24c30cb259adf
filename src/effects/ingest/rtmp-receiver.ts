/**
 * RTMP and RTMPS inputs: encoders (OBS, vMix, ffmpeg, GStreamer, our own RTMP outputs) publish to the service,
 * which turns their FLV tags into TS (src/core/flv/ts-mux.ts) and hands it to the channel's input path as an
 * SRT input's datagrams are handed: up to 7 TS packets at a time.
 *
 * One listener per port in the process, shared by every channel whose input names that port: each channel
 * registers its application and stream key, and a publisher is routed by what `connect` and `publish` name
 * (src/core/rtmp/server.ts speaks the protocol). A key no channel on the application takes is refused at
 * `publish` with NetStream.Publish.BadName and counted on the application's channels; a second publisher to a
 * key that has one is refused in words and counted on its channel. The listener closes with its last channel.
 *
 * A publisher that goes is an input that went silent: the channel's failover, slate and health rules take it
 * from there, as for RTP. The channel's muxer stays, so the next publisher continues its PMT, PCR and
 * continuity counters.
 */
import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import * as Effect from "effect/Effect";
import * as Either from "effect/Either";
import * as Redacted from "effect/Redacted";
import type * as Scope from "effect/Scope";
import { type FlvTsCounters, FlvTsMux } from "../../core/flv/ts-mux.ts";
import { type PublishRefusal, RtmpServerSession } from "../../core/rtmp/server.ts";
import type { RtmpInputTarget } from "../../domain/url/rtmp-input.ts";
import { authority } from "../../domain/url/shared.ts";
import { rtmpInputTarget } from "../../domain/url/url.ts";
import { InputError } from "./udp-receiver.ts";

export type RtmpRefusalReason = "wrong_key" | "busy";

export interface RtmpRefusal {
  readonly reason: RtmpRefusalReason;
  /** The publisher's address:port. */
  readonly publisher: string;
  readonly message: string;
  readonly atEpochMs: number;
}

/** What an RTMP input tells its channel's status. */
export interface RtmpInputFigures {
  readonly listen: string;
  readonly app: string;
  readonly publisher: string | null;
  readonly publishes: number;
  readonly refusals: { readonly wrong_key: number; readonly busy: number };
  readonly lastRefusal: RtmpRefusal | null;
  readonly mux: FlvTsCounters;
}

interface Registration {
  readonly app: string;
  readonly key: string;
  readonly mux: FlvTsMux;
  publisher: {
    readonly session: RtmpServerSession;
    readonly socket: Socket;
    readonly address: string;
  } | null;
  publishes: number;
  readonly refusals: { wrong_key: number; busy: number };
  lastRefusal: RtmpRefusal | null;
  readonly onRefused: (refusal: RtmpRefusal) => void;
}

interface Listener {
  readonly host: string;
  readonly protocol: "rtmp" | "rtmps";
  readonly certFile: string | null;
  readonly certKeyFile: string | null;
  readonly server: Server;
  readonly ready: Promise<string | null>;
  readonly registrations: Set<Registration>;
  readonly sockets: Set<Socket>;
}

/** Every RTMP listener of the process, by port. */
const listeners = new Map<number, Listener>();

/** An RTMP input's URL as a target, or the input's error in words. */
export const rtmpInputTargetOf = (url: string): Effect.Effect<RtmpInputTarget, InputError> => {
  const target = rtmpInputTarget(url);
  return Either.isLeft(target)
    ? Effect.fail(
        new InputError({ reason: "bind_failed", message: `RTMP input URL: ${target.left.message}` }),
      )
    : Effect.succeed(target.right);
};

/** A connection that sends nothing this long (before or while it publishes) is closed. */
const IDLE_MS = 30_000;

/**
 * A publish refused: counted on each registration it concerns and handed to its `onRefused`; the publisher is
 * told NetStream.Publish.BadName with the refusal's words.
 */
const refused = (registrations: ReadonlyArray<Registration>, refusal: RtmpRefusal): PublishRefusal => {
  for (const registration of registrations) {
    registration.refusals[refusal.reason]++;
    registration.lastRefusal = refusal;
    registration.onRefused(refusal);
  }
  return { code: "NetStream.Publish.BadName", description: refusal.message };
};

/** Whether `given` is `key`, in a time that does not tell how much of it matched. */
const sameKey = (given: string, key: string): boolean => {
  const a = Buffer.from(given);
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
};

const serve = (listener: Listener, socket: Socket): void => {
  listener.sockets.add(socket);
  socket.setNoDelay(true);
  socket.setTimeout(IDLE_MS, () => socket.destroy());
  const address = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
  let registration: Registration | null = null;
  const session: RtmpServerSession = new RtmpServerSession({
    write: (bytes) => {
      if (!socket.destroyed) socket.write(bytes);
    },
    close: () => {
      socket.end();
      setTimeout(() => socket.destroy(), 2000).unref();
    },
    connect: (app) =>
      [...listener.registrations].some((candidate) => candidate.app === app)
        ? null
        : `no channel takes the application '${app}' on this port`,
    publish: (app, name): PublishRefusal | null => {
      const key = name.split("?")[0] ?? "";
      const onApp = [...listener.registrations].filter((candidate) => candidate.app === app);
      const match = onApp.find((candidate) => sameKey(key, candidate.key));
      if (match === undefined) {
        const message = `the stream key is not valid for the application '${app}': check the key`;
        return refused(onApp, { reason: "wrong_key", publisher: address, message, atEpochMs: Date.now() });
      }
      if (match.publisher !== null) {
        const message = `the stream key is already in use: another publisher (${match.publisher.address}) is sending to this channel`;
        return refused([match], { reason: "busy", publisher: address, message, atEpochMs: Date.now() });
      }
      match.publisher = { session, socket, address };
      match.publishes++;
      match.mux.join(Date.now());
      registration = match;
      return null;
    },
    media: (message) => registration?.mux.tag(message.type, message.timestamp, message.body, Date.now()),
    unpublish: () => {
      const ended = registration;
      registration = null;
      if (ended === null || ended.publisher?.session !== session) return;
      ended.publisher = null;
      ended.mux.leave(Date.now());
    },
  });
  socket.on("data", (bytes: Buffer) => session.push(bytes));
  socket.on("error", () => socket.destroy());
  socket.on("close", () => {
    listener.sockets.delete(socket);
    session.closed();
  });
};

const sameListener = (listener: Listener, target: RtmpInputTarget): string | null => {
  const where = `port ${target.port}`;
  if (listener.host !== target.host)
    return `${where} already takes RTMP inputs on ${listener.host}; every channel on one port listens on the same address`;
  if (listener.protocol !== target.protocol)
    return `${where} already takes ${listener.protocol.toUpperCase()} inputs; one port takes RTMP or RTMPS, not both`;
  if (listener.certFile !== target.certFile || listener.certKeyFile !== target.certKeyFile)
    return `${where} already serves RTMPS with another certificate (cert and certkey must be the same on one port)`;
  return null;
};

const openListener = (target: RtmpInputTarget): Listener | InputError => {
  let server: Server;
  if (target.protocol === "rtmps") {
    try {
      server = createTlsServer({
        cert: readFileSync(target.certFile as string),
        key: readFileSync(target.certKeyFile as string),
      });
    } catch (error) {
      return new InputError({
        reason: "bind_failed",
        message: `RTMPS input: cannot use the certificate ${target.certFile} and its key ${target.certKeyFile}: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`,
      });
    }
  } else server = createServer();
  const ready = new Promise<string | null>((resolve) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      resolve(
        error.code === "EADDRINUSE"
          ? `cannot listen for RTMP on ${authority(target.host, target.port)}: another program uses this port`
          : `cannot listen for RTMP on ${authority(target.host, target.port)}: ${error.message}`,
      ),
    );
    server.listen({ port: target.port, host: target.host }, () => resolve(null));
  });
  const listener: Listener = {
    host: target.host,
    protocol: target.protocol,
    certFile: target.certFile,
    certKeyFile: target.certKeyFile,
    server,
    ready,
    registrations: new Set(),
    sockets: new Set(),
  };
  // Every connection, a TLS one still in its handshake too, is closed with the listener.
  server.on("connection", (socket: Socket) => {
    listener.sockets.add(socket);
    socket.once("close", () => listener.sockets.delete(socket));
  });
  server.on(target.protocol === "rtmps" ? "secureConnection" : "connection", (socket: Socket) =>
    serve(listener, socket),
  );
  // A TLS handshake that fails (a plain RTMP client, a bad client) ends that socket alone.
  server.on("tlsClientError", () => {});
  return listener;
};

const closeListener = (port: number, listener: Listener): Promise<void> => {
  if (listeners.get(port) === listener) listeners.delete(port);
  for (const socket of listener.sockets) socket.destroy();
  return new Promise((resolve) => listener.server.close(() => resolve()));
};

/**
 * Takes `target`'s application and key on its port (opening the port's listener if this is its first channel)
 * until the scope closes. Each publisher's tags reach `onDatagram` as TS; each refusal, counted on the input,
 * reaches `onRefused` (which the caller throttles into events, as link-input.ts does).
 */
export const bindRtmpInput = (
  target: RtmpInputTarget,
  onDatagram: (datagram: Buffer) => void,
  onRefused: (refusal: RtmpRefusal) => void = () => {},
): Effect.Effect<{ readonly figures: () => RtmpInputFigures }, InputError, Scope.Scope> =>
  Effect.gen(function* () {
    const key = Redacted.value(target.key);
    const registration: Registration = {
      app: target.app,
      key,
      mux: new FlvTsMux((datagram) =>
        onDatagram(Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength)),
      ),
      publisher: null,
      publishes: 0,
      refusals: { wrong_key: 0, busy: 0 },
      lastRefusal: null,
      onRefused,
    };
    const listener = yield* Effect.acquireRelease(
      Effect.suspend(() => {
        const existing = listeners.get(target.port);
        if (existing !== undefined) {
          const problem = sameListener(existing, target);
          if (problem !== null)
            return Effect.fail(new InputError({ reason: "bind_failed", message: problem }));
          const taken = [...existing.registrations].some(
            (other) => other.app === target.app && other.key === key,
          );
          if (taken)
            return Effect.fail(
              new InputError({
                reason: "bind_failed",
                message: `another channel takes the application '${target.app}' with this stream key on port ${target.port}: give each channel its own key`,
              }),
            );
          existing.registrations.add(registration);
          return Effect.succeed(existing);
        }
        const opened = openListener(target);
        if (opened instanceof InputError) return Effect.fail(opened);
        listeners.set(target.port, opened);
        opened.registrations.add(registration);
        return Effect.succeed(opened);
      }),
      (listener) =>
        Effect.promise(() => {
          listener.registrations.delete(registration);
          const publisher = registration.publisher;
          registration.publisher = null;
          if (publisher !== null) publisher.socket.destroy();
          return listener.registrations.size === 0 ? closeListener(target.port, listener) : Promise.resolve();
        }),
    );
    const problem = yield* Effect.promise(() => listener.ready);
    if (problem !== null) return yield* new InputError({ reason: "bind_failed", message: problem });
    return {
      figures: () => ({
        listen: `${target.protocol}://${authority(target.host, target.port)}`,
        app: target.app,
        publisher: registration.publisher?.address ?? null,
        publishes: registration.publishes,
        refusals: { ...registration.refusals },
        lastRefusal: registration.lastRefusal,
        mux: registration.mux.counters(),
      }),
    };
  });
