/**
 * An RTMP publisher's connection, up to the server's `NetStream.Publish.Start`: TCP (RTMPS: TLS with SNI and
 * the certificate checked against the system's CAs or the output's `ca` file, never accepted unchecked), the
 * plain handshake, Set Chunk Size 4096 and the acknowledgement window, `connect`, `releaseStream`,
 * `FCPublish`, `createStream` and `publish`. Afterwards it keeps answering the server: pings, its chunk size,
 * acknowledgements of what it sent us. A refusal is told in words that say what to change.
 *
 * The stream key is in `publish` and the server may repeat it in its descriptions: every text from the server
 * is masked with the target's secrets before it becomes a message.
 */
import { readFile } from "node:fs/promises";
import { type Socket, connect as tcpConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import * as Deferred from "effect/Deferred";
import * as Effect from "effect/Effect";
import * as Redacted from "effect/Redacted";
import type * as Scope from "effect/Scope";
import { type Amf0Value, decodeAmf0, encodeAmf0 } from "../../core/flv/amf0.ts";
import {
  ChunkReader,
  controlMessage,
  encodeMessage,
  MESSAGE,
  type RtmpMessage,
  readU32,
  u32Body,
} from "../../core/rtmp/chunks.ts";
import { HANDSHAKE_SIZE, PeerUpkeep } from "../../core/rtmp/peer.ts";
import { OutputError } from "../../domain/channel/output-error.ts";
import type { RtmpTarget } from "../../domain/url/rtmp-rtsp.ts";
import { authority } from "../../domain/url/shared.ts";

const CHUNK_SIZE = 4096;
const WINDOW = 2_500_000;
const REPLY_TIMEOUT = "10 seconds";

interface RtmpConnection {
  readonly socket: Socket;
  readonly streamId: number;
  /** Writes one message (its chunks); false when the socket's buffer is past its mark. */
  readonly send: (message: RtmpMessage) => boolean;
  /** The chunk size this side announced: a message encoded with it elsewhere (`encodeMessage`) goes as it is. */
  readonly chunkSize: number;
  /** Bytes the server acknowledged receiving (its Acknowledgement messages). */
  readonly acknowledged: () => number;
  /** Fails when the connection ends, in words. */
  readonly closed: Effect.Effect<never, OutputError>;
}

const mask = (target: RtmpTarget, text: string): string =>
  target.secrets.reduce((out, secret) => {
    const value = Redacted.value(secret);
    return value === "" ? out : out.split(value).join("****");
  }, text);

const server = (target: RtmpTarget) => authority(target.host, target.port);

/** A socket error before or during the exchange, in words. */
const socketError = (target: RtmpTarget, error: NodeJS.ErrnoException): OutputError => {
  const at = server(target);
  switch (error.code) {
    case "ECONNREFUSED":
      return new OutputError({
        reason: "connect_refused",
        message: `connection refused by ${at} (is the RTMP server running?)`,
      });
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new OutputError({ reason: "resolve_failed", message: `cannot resolve ${target.host}` });
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new OutputError({
        reason: "connect_timeout",
        message: `no answer from ${at} (check the address and the firewall)`,
      });
    case "ECONNRESET":
    case "EPIPE":
      return new OutputError({
        reason: "disconnected",
        message: `the RTMP server at ${at} closed the connection`,
      });
  }
  if (
    error.code?.startsWith("ERR_TLS") ||
    /certificate|SSL|TLS|self.signed|CERT/i.test(`${error.code} ${error.message}`)
  ) {
    return new OutputError({
      reason: "connect_refused",
      message: `the TLS handshake with ${at} failed: ${mask(target, error.message)} (a private CA's file goes in the URL's ca= option)`,
    });
  }
  return new OutputError({
    reason: "disconnected",
    message: `the connection to ${at} failed: ${mask(target, error.message)}`,
  });
};

/** What an `_error` or `onStatus` says: its code and description. */
const statusOf = (values: ReadonlyArray<Amf0Value>): { code: string; description: string } => {
  const info = values.find((value, i) => i >= 2 && typeof value === "object" && value !== null) as
    | Record<string, Amf0Value>
    | undefined;
  return { code: String(info?.code ?? ""), description: String(info?.description ?? "") };
};

export const connectRtmp = (target: RtmpTarget): Effect.Effect<RtmpConnection, OutputError, Scope.Scope> =>
  Effect.gen(function* () {
    const at = server(target);
    const ca =
      target.caFile === null
        ? undefined
        : yield* Effect.tryPromise({
            try: () => readFile(target.caFile as string),
            catch: () =>
              new OutputError({ reason: "invalid_url", message: `cannot read the CA file ${target.caFile}` }),
          });
    const ended = yield* Deferred.make<never, OutputError>();
    // What the exchange waits for next: a transaction's reply, or the publish status.
    const replies = new Map<number, Deferred.Deferred<ReadonlyArray<Amf0Value>>>();
    const status = yield* Deferred.make<{ code: string; description: string; level: string }>();
    let stage: "connecting" | "connect_sent" | "publish_sent" | "publishing" = "connecting";
    let acknowledged = 0;
    const peer = new PeerUpkeep(WINDOW);

    const socket = yield* Effect.acquireRelease(
      Effect.async<Socket, OutputError>((resume) => {
        const options = { host: target.host, port: target.port };
        const s =
          target.protocol === "rtmps"
            ? tlsConnect({
                ...options,
                servername: /^[\d.]+$|:/.test(target.host) ? undefined : target.host,
                ...(ca === undefined ? {} : { ca }),
              })
            : tcpConnect(options);
        const timer = setTimeout(() => {
          s.destroy();
          resume(
            Effect.fail(
              new OutputError({
                reason: "connect_timeout",
                message: `no answer from ${at} (check the address and the firewall)`,
              }),
            ),
          );
        }, 10_000);
        const fail = (error: Error) => {
          clearTimeout(timer);
          resume(Effect.fail(socketError(target, error)));
        };
        s.once("error", fail);
        s.once(target.protocol === "rtmps" ? "secureConnect" : "connect", () => {
          clearTimeout(timer);
          s.off("error", fail);
          s.setNoDelay(true);
          resume(Effect.succeed(s));
        });
      }),
      (s) => Effect.sync(() => s.destroy()),
    );

    const send = (message: RtmpMessage) => socket.write(encodeMessage(CHUNK_SIZE, message));
    const reader = new ChunkReader();
    const onMessage = (message: RtmpMessage) => {
      if (peer.take(message, send)) return;
      switch (message.type) {
        case MESSAGE.acknowledgement:
          acknowledged = readU32(message.body, 0);
          return;
        case MESSAGE.command: {
          const decoded = decodeAmf0(message.body);
          if (decoded._tag === "Left") return;
          const values = decoded.right;
          const name = values[0];
          if (name === "_result" || name === "_error") {
            const waiting = replies.get(Number(values[1]));
            if (waiting !== undefined) Deferred.unsafeDone(waiting, Effect.succeed(values));
          } else if (name === "onStatus") {
            const info = statusOf(values);
            const object = values[3] as Record<string, Amf0Value> | undefined;
            Deferred.unsafeDone(status, Effect.succeed({ ...info, level: String(object?.level ?? "") }));
          }
          return;
        }
      }
    };

    const closedWords = (): OutputError => {
      const app = target.app === "" ? "(none)" : target.app;
      switch (stage) {
        case "connect_sent":
          return new OutputError({
            reason: "auth_rejected",
            message: `the RTMP server at ${at} refused the application "${app}": check the application name in the URL`,
          });
        case "publish_sent":
          return new OutputError({
            reason: "auth_rejected",
            message: `the server refused the stream key: the RTMP server at ${at} accepted the application "${app}" and closed the connection when publishing began (a wrong key, or the key is already in use)`,
          });
        default:
          return new OutputError({
            reason: "disconnected",
            message: `the RTMP server at ${at} closed the connection`,
          });
      }
    };

    // The handshake: C0 C1 out, S0 S1 S2 in, C2 (S1 echoed) out; then chunks.
    const handshake = yield* Deferred.make<void, OutputError>();
    let greeting: Uint8Array = new Uint8Array(0);
    let handshakeDone = false;
    const c1 = new Uint8Array(1 + HANDSHAKE_SIZE);
    c1[0] = 3;
    crypto.getRandomValues(c1.subarray(9));
    socket.on("data", (data: Buffer) => {
      peer.read(data.length);
      // Acknowledged as the server's window asks, counted from the first byte, sent once chunks may flow.
      const acknowledgement = handshakeDone ? peer.acknowledgement() : null;
      if (acknowledgement !== null) send(acknowledgement);
      let bytes: Uint8Array = data;
      if (greeting.length < 1 + 2 * HANDSHAKE_SIZE && !handshakeDone) {
        const merged = new Uint8Array(greeting.length + bytes.length);
        merged.set(greeting);
        merged.set(bytes, greeting.length);
        greeting = merged;
        if (greeting.length < 1 + 2 * HANDSHAKE_SIZE) return;
        handshakeDone = true;
        socket.write(greeting.subarray(1, 1 + HANDSHAKE_SIZE));
        bytes = greeting.subarray(1 + 2 * HANDSHAKE_SIZE);
        Deferred.unsafeDone(handshake, Effect.void);
      }
      try {
        reader.push(bytes, onMessage);
      } catch (error) {
        socket.destroy();
        Deferred.unsafeDone(
          ended,
          Effect.fail(
            new OutputError({
              reason: "disconnected",
              message: `the RTMP server at ${at} sent what is not RTMP: ${String(error)}`,
            }),
          ),
        );
      }
    });
    socket.on("error", (error) => Deferred.unsafeDone(ended, Effect.fail(socketError(target, error))));
    socket.on("close", () => Deferred.unsafeDone(ended, Effect.fail(closedWords())));
    socket.write(c1);

    const orEnded = <A>(effect: Effect.Effect<A, OutputError>, what: string) =>
      Effect.raceFirst(effect, Deferred.await(ended)).pipe(
        Effect.timeoutFail({
          duration: REPLY_TIMEOUT,
          onTimeout: () =>
            new OutputError({
              reason: "connect_timeout",
              message: `the RTMP server at ${at} did not answer ${what}`,
            }),
        }),
      );
    yield* orEnded(Deferred.await(handshake), "the handshake");

    send(controlMessage(MESSAGE.setChunkSize, u32Body(CHUNK_SIZE)));
    send(controlMessage(MESSAGE.windowAckSize, u32Body(WINDOW)));
    const command = (transaction: number, streamId: number, ...values: ReadonlyArray<Amf0Value>) =>
      Effect.gen(function* () {
        const reply = yield* Deferred.make<ReadonlyArray<Amf0Value>>();
        if (transaction > 0) replies.set(transaction, reply);
        send({
          chunkStream: streamId === 0 ? 3 : 8,
          type: MESSAGE.command,
          streamId,
          timestamp: 0,
          body: encodeAmf0(values[0] ?? null, transaction, ...values.slice(1)),
        });
        return reply;
      });

    const tcUrl = `${target.protocol}://${authority(target.host, target.port)}/${target.app}`;
    stage = "connect_sent";
    const connected = yield* command(1, 0, "connect", {
      app: target.app,
      type: "nonprivate",
      flashVer: "FMLE/3.0 (compatible; distributary)",
      tcUrl,
      ...(target.hevc || target.av1
        ? { fourCcList: [...(target.av1 ? ["av01"] : []), ...(target.hevc ? ["hvc1"] : []), "avc1"] }
        : {}),
    });
    const result = yield* orEnded(Deferred.await(connected), "connect");
    if (result[0] === "_error") {
      const { code, description } = statusOf(result);
      const words = mask(target, `${code} ${description}`.trim());
      const auth = /auth/i.test(words);
      return yield* new OutputError({
        reason: "auth_rejected",
        message: auth
          ? `the RTMP server at ${at} asks for authentication the URL does not give: ${words}`
          : `the RTMP server at ${at} refused the application "${target.app}": ${words}`,
      });
    }
    stage = "connecting";
    const name = Redacted.value(target.streamName);
    yield* command(2, 0, "releaseStream", null, name);
    yield* command(3, 0, "FCPublish", null, name);
    const created = yield* command(4, 0, "createStream", null);
    const stream = yield* orEnded(Deferred.await(created), "createStream");
    const streamId = typeof stream[3] === "number" ? stream[3] : 1;
    stage = "publish_sent";
    yield* command(0, streamId, "publish", null, name, "live");
    const published = yield* orEnded(Deferred.await(status), "publish");
    if (published.code !== "NetStream.Publish.Start") {
      const words = mask(target, `${published.code} ${published.description}`.trim());
      const why =
        published.code === "NetStream.Publish.BadName"
          ? "the stream key is already in use or not valid"
          : /auth|unauthori[sz]ed/i.test(words)
            ? "authentication is required"
            : "it rejected the stream";
      return yield* new OutputError({
        reason: "auth_rejected",
        message: `the server refused the stream key: the RTMP server at ${at} said ${words} (${why})`,
      });
    }
    stage = "publishing";
    return {
      socket,
      streamId,
      send,
      chunkSize: CHUNK_SIZE,
      acknowledged: () => acknowledged,
      closed: Deferred.await(ended),
    };
  });
