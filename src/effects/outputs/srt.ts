/**
 * SRT output: an `srt-live-transmit` child per attempt, fed 7×188-byte datagrams over loopback UDP (a pipe
 * would lose the 1316-byte message boundaries SRT live mode sends as packets). Its JSON stats arrive on its stdout.
 *
 * The child runs with auto-reconnect off, so every drop ends the attempt and our reconnect schedule (and its
 * reconnect count) decides what happens next. srt-live-transmit 1.5.1 takes SRT options only inside its
 * URI: the passphrase therefore travels in the child's argv (nowhere else: not logged, masked in the stderr
 * tail and in status). There is no file or environment option for it in this version.
 */
import { createSocket, type Socket } from "node:dgram";
import { Deferred, Effect, Option, Redacted, Schema, type Scope } from "effect";
import { OutputError } from "../../domain/errors.ts";
import type { SrtTarget } from "../../domain/url.ts";
import { type ChildExit, describeExit, spawnChild } from "../child-process.ts";
import type { WriterContext } from "./context.ts";
import { connectSocket, deliverUntilError, sendAsDatagrams } from "./udp.ts";

const StatsLine = Schema.parseJson(
  Schema.Struct({
    link: Schema.Struct({ rtt: Schema.Number }),
    send: Schema.Struct({
      packetsLost: Schema.Number,
      packetsRetransmitted: Schema.Number,
      mbitRate: Schema.Number,
    }),
  }),
);
const decodeStatsLine = Schema.decodeUnknownOption(StatsLine);

const connectedLine = /^(SRT target connected|Accepted SRT target connection)/;

/** The URI srt-live-transmit gets; values go in raw because it does not percent-decode. */
export const srtChildUri = (target: SrtTarget): string => {
  const params = [`mode=${target.mode}`];
  if (target.latencyMs !== null) params.push(`latency=${target.latencyMs}`);
  if (target.passphrase !== null) params.push(`passphrase=${Redacted.value(target.passphrase)}`);
  if (target.pbkeylen !== null) params.push(`pbkeylen=${target.pbkeylen}`);
  if (target.streamId !== null) params.push(`streamid=${target.streamId}`);
  return `srt://${target.host}:${target.port}?${params.join("&")}`;
};

/**
 * A loopback UDP port nobody holds right now. The child binds it a moment later; if something takes it in
 * between, the child fails to start and the attempt is retried.
 */
const freeLoopbackPort = Effect.async<number, OutputError>((resume) => {
  const probe = createSocket("udp4");
  probe.once("error", (cause) => {
    probe.close();
    resume(
      Effect.fail(
        new OutputError({ reason: "child_exited", message: `no free loopback UDP port (${cause.message})` }),
      ),
    );
  });
  probe.bind(0, "127.0.0.1", () => {
    const { port } = probe.address();
    probe.close(() => resume(Effect.succeed(port)));
  });
});

const loopbackSender: Effect.Effect<Socket, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const socket = createSocket("udp4");
    // Loopback sends fail only if the child is gone, which its exit reports better.
    socket.on("error", () => {});
    return socket;
  }),
  (socket) =>
    Effect.async<void>((resume) => {
      socket.close(() => resume(Effect.void));
    }),
);

const lineMatching = (exit: ChildExit, pattern: RegExp): string | undefined =>
  exit.tail.find((line) => pattern.test(line));

/** Turns the child's end into words a person can act on. */
export const srtExitError = (target: SrtTarget, exit: ChildExit, wasConnected: boolean): OutputError => {
  const peer = `${target.host}:${target.port}`;
  if (exit.spawnFailed) {
    return new OutputError({
      reason: "not_installed",
      message:
        "srt-live-transmit could not be started: install srt-tools (Debian) and make sure it is on PATH",
    });
  }
  // A signal ended this child: that is what happened to this attempt, whatever its last lines said before.
  if (exit.signal !== null)
    return new OutputError({ reason: "child_exited", message: describeExit("srt-live-transmit", exit) });
  if (lineMatching(exit, /Incorrect passphrase|BADSECRET/) !== undefined) {
    return new OutputError({
      reason: "auth_rejected",
      message: `the SRT peer at ${peer} rejected the passphrase`,
    });
  }
  if (lineMatching(exit, /Password required or unexpected|UNSECURE/) !== undefined) {
    const message =
      target.passphrase === null
        ? `the SRT peer at ${peer} requires a passphrase`
        : `the SRT peer at ${peer} does not expect a passphrase`;
    return new OutputError({ reason: "auth_rejected", message });
  }
  const rejected = lineMatching(exit, /REJECT reported from HS processing: /);
  if (rejected !== undefined) {
    const why = rejected
      .split("REJECT reported from HS processing: ")[1]
      ?.replace(/ - not processing further$/, "");
    return new OutputError({
      reason: "auth_rejected",
      message: `the SRT peer at ${peer} rejected the connection: ${why}`,
    });
  }
  if (lineMatching(exit, /Bad parameters/) !== undefined) {
    return new OutputError({
      reason: "invalid_url",
      message: "srt-live-transmit rejected these SRT parameters",
    });
  }
  if (
    target.mode === "listener" &&
    lineMatching(exit, /srt_bind|unable to create\/configure SRT socket/) !== undefined
  ) {
    return new OutputError({
      reason: "child_exited",
      message: `cannot listen for SRT on ${peer}: the port is in use or the address is not on this machine`,
    });
  }
  if (wasConnected) {
    const who = target.mode === "caller" ? `the SRT peer at ${peer}` : `the SRT caller on ${peer}`;
    return new OutputError({ reason: "disconnected", message: `${who} disconnected` });
  }
  if (target.mode === "caller" && exit.code === 0) {
    return new OutputError({
      reason: "connect_timeout",
      message: `no SRT listener answered at ${peer} (is it running, and does the firewall allow UDP ${target.port}?)`,
    });
  }
  return new OutputError({ reason: "child_exited", message: describeExit("srt-live-transmit", exit) });
};

export const srtAttempt = (
  target: SrtTarget,
  context: WriterContext,
): Effect.Effect<never, OutputError, Scope.Scope> =>
  Effect.gen(function* () {
    const inputPort = yield* freeLoopbackPort;
    const connected = yield* Deferred.make<void>();
    const child = yield* spawnChild({
      command: "srt-live-transmit",
      args: [
        "-a:no",
        `-s:${context.srtStatsEveryPackets}`,
        "-f",
        "-pf:json",
        `udp://127.0.0.1:${inputPort}`,
        srtChildUri(target),
      ],
      secrets: target.secrets,
      onStderrLine: (line) => {
        if (connectedLine.test(line)) Deferred.unsafeDone(connected, Effect.void);
      },
      onStdoutLine: (line) => {
        Option.map(decodeStatsLine(line), ({ link, send }) =>
          context.reportSrt({
            rttMs: link.rtt,
            retransmits: send.packetsRetransmitted,
            lossPackets: send.packetsLost,
            sendRateMbps: send.mbitRate,
          }),
        );
      },
    });
    const socket = yield* loopbackSender;
    yield* connectSocket(socket, inputPort, "127.0.0.1");

    const ended = (wasConnected: boolean) =>
      Effect.flatMap(child.exit, (exit) => Effect.fail(srtExitError(target, exit, wasConnected)));

    yield* Effect.raceFirst(Deferred.await(connected), ended(false));
    // Whatever queued while nobody was connected is stale now.
    context.queue.clear();
    yield* context.markConnected;

    const pump = deliverUntilError(
      socket,
      context,
      (chunk) => sendAsDatagrams(socket, chunk, null),
      // Loopback sends fail only if the child is gone, which its exit reports better.
      () => new OutputError({ reason: "child_exited", message: "srt-live-transmit stopped reading" }),
    );
    return yield* Effect.raceFirst(pump, ended(true));
  });
