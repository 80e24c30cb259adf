/**
 * RTMP receivers for the RTMP output's tests, each started on 127.0.0.1 and stopped by the test: ffmpeg as an
 * RTMP listener writing what it gets to an FLV file, node-media-server recording to FLV, nginx's `stream`
 * module as an RTMPS front (TLS with a self-signed CA made here) before an RTMP server, and a small receiver
 * of our own that decodes every message (AMF0 data messages, E-RTMP video tags, raw timestamps) and can stop
 * reading to play a slow server.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, type Scope } from "effect";
import { type Amf0Value, decodeAmf0, encodeAmf0 } from "../../src/core/flv/amf0.ts";
import {
  ChunkReader,
  controlMessage,
  encodeMessage,
  MESSAGE,
  type RtmpMessage,
  USER_CONTROL,
  u32Body,
  userControl,
} from "../../src/core/rtmp/chunks.ts";
import { spawnChild } from "../../src/effects/runtime/process/child-process.ts";
import { eventually } from "./peers.ts";

export const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), prefix))),
    (path) => Effect.promise(() => rm(path, { recursive: true, force: true })),
  );

const listening = (port: number) =>
  eventually(
    `a listener on ${port}`,
    async () => {
      const hex = port.toString(16).toUpperCase().padStart(4, "0");
      const { readFile } = await import("node:fs/promises");
      const table = await readFile("/proc/net/tcp", "utf8");
      return table.split("\n").some((line) => line.includes(`:${hex} 00000000:0000 0A`)) ? true : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 50 },
  );

/**
 * ffmpeg listening for one RTMP publish on `port`, copying it into `file` (FLV) with the times it received
 * (`-copyts`: not moved to start at 0).
 */
export const ffmpegRtmpListener = (port: number, file: string) =>
  Effect.gen(function* () {
    const child = yield* spawnChild({
      command: "ffmpeg",
      args: [
        ...["-hide_banner", "-loglevel", "error", "-y", "-listen", "1"],
        ...["-i", `rtmp://127.0.0.1:${port}/live/key`, "-copyts", "-c", "copy", "-f", "flv", file],
      ],
    });
    yield* listening(port);
    return child;
  });

/** node-media-server (npm) on `port`, recording each published stream under `dir` as FLV. */
export const nodeMediaServer = (port: number, httpPort: number, dir: string) =>
  Effect.gen(function* () {
    const config = {
      bind: "127.0.0.1",
      rtmp: { port },
      http: { port: httpPort },
      record: { path: join(dir, "record") },
      store: { path: join(dir, "store") },
      webadmin: { enable: false },
    };
    const script = `const NMS = require("node-media-server"); new NMS(${JSON.stringify(config)}).run();`;
    yield* spawnChild({ command: process.execPath, args: ["-e", script] });
    yield* listening(port);
    return {
      recordings: async (): Promise<string[]> => {
        const found: string[] = [];
        const walk = async (at: string): Promise<void> => {
          for (const entry of await readdir(at, { withFileTypes: true }).catch(() => [])) {
            const path = join(at, entry.name);
            if (entry.isDirectory()) await walk(path);
            else if (entry.name.endsWith(".flv")) found.push(path);
          }
        };
        await walk(join(dir, "record"));
        return found;
      },
    };
  });

/** A CA and a server certificate for 127.0.0.1 and `localhost` signed by it, made with openssl. */
export const selfSignedCa = (dir: string) => {
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=test CA",
    "-keyout",
    at("ca.key"),
    "-out",
    at("ca.pem"),
  );
  openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-keyout",
    at("server.key"),
    "-out",
    at("server.csr"),
  );
  execFileSync("sh", ["-c", `printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ${at("ext.cnf")}`]);
  openssl(
    "x509",
    "-req",
    "-in",
    at("server.csr"),
    "-CA",
    at("ca.pem"),
    "-CAkey",
    at("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    at("ext.cnf"),
    "-out",
    at("server.pem"),
  );
  return { ca: at("ca.pem"), cert: at("server.pem"), key: at("server.key") };
};

/** nginx's stream module terminating TLS on `port` and passing the bytes on to 127.0.0.1:`to`. */
export const tlsFront = (port: number, to: number, dir: string, cert: { cert: string; key: string }) =>
  Effect.gen(function* () {
    const config = `
daemon off;
master_process off;
pid ${dir}/front.pid;
error_log ${dir}/front-error.log info;
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
events { worker_connections 64; }
stream {
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${cert.cert};
    ssl_certificate_key ${cert.key};
    proxy_pass 127.0.0.1:${to};
  }
}
`;
    yield* Effect.promise(() => writeFile(join(dir, "front.conf"), config));
    yield* spawnChild({
      command: "nginx",
      args: ["-c", join(dir, "front.conf"), "-p", dir, "-e", join(dir, "front-error.log")],
    });
    yield* listening(port);
  });

export interface ReceivedMessage extends RtmpMessage {
  /** AMF0 values of a command or data message. */
  readonly values: ReadonlyArray<Amf0Value> | null;
}

export interface TestReceiver {
  readonly messages: ReceivedMessage[];
  readonly connections: () => number;
  /** Stops (true) or resumes reading from the publisher: a server that cannot keep up. */
  readonly pause: (paused: boolean) => void;
}

/**
 * An RTMP server that accepts any publish and keeps every message it gets, decoded, in arrival order. It
 * answers as nginx-rtmp does: Window Acknowledgement Size, Set Peer Bandwidth, Set Chunk Size, `_result`s and
 * `NetStream.Publish.Start`.
 */
export interface TestReceiverOptions {
  /** The acknowledgement window it asks the publisher for (default 5,000,000 bytes). */
  readonly window?: number;
  /** Sends a ping request (user control 6) with this timestamp once the publish started. */
  readonly ping?: number;
  /** Answers `publish` with this error code instead of NetStream.Publish.Start. */
  readonly refuse?: string;
  /** The address to listen on (default 127.0.0.1; an IPv6 one for a lab without IPv4). */
  readonly host?: string;
}

export const testReceiver = (
  port: number,
  options: TestReceiverOptions = {},
): Effect.Effect<TestReceiver, never, Scope.Scope> =>
  Effect.gen(function* () {
    const messages: ReceivedMessage[] = [];
    const sockets = new Set<Socket>();
    let count = 0;
    let paused = false;
    const server: Server = createServer((socket) => {
      sockets.add(socket);
      count++;
      if (paused) socket.pause();
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
      const reader = new ChunkReader();
      let handshake: Buffer = Buffer.alloc(0);
      let shaken = false;
      const send = (message: RtmpMessage) => socket.write(encodeMessage(4096, message));
      const reply = (streamId: number, ...values: Amf0Value[]) =>
        send({ chunkStream: 3, type: MESSAGE.command, streamId, timestamp: 0, body: encodeAmf0(...values) });
      socket.on("data", (data: Buffer) => {
        let bytes: Buffer = data;
        if (!shaken) {
          handshake = Buffer.concat([handshake, data]);
          if (handshake.length === 1537) {
            const s1 = Buffer.alloc(1536);
            socket.write(Buffer.concat([Buffer.of(3), s1, handshake.subarray(1)]));
          }
          if (handshake.length < 1537 + 1536) return;
          shaken = true;
          bytes = handshake.subarray(1537 + 1536);
          send(controlMessage(MESSAGE.windowAckSize, u32Body(options.window ?? 5_000_000)));
          send(controlMessage(MESSAGE.setChunkSize, u32Body(4096)));
        }
        reader.push(bytes, (message) => {
          const decoded =
            message.type === MESSAGE.command || message.type === MESSAGE.data
              ? decodeAmf0(message.body)
              : null;
          const values = decoded !== null && decoded._tag === "Right" ? decoded.right : null;
          messages.push({ ...message, values });
          if (message.type !== MESSAGE.command || values === null) return;
          const [name, transaction] = values;
          if (name === "connect")
            reply(
              0,
              "_result",
              transaction ?? 1,
              { fmsVer: "test" },
              { code: "NetConnection.Connect.Success", level: "status" },
            );
          else if (name === "createStream") reply(0, "_result", transaction ?? 0, null, 1);
          else if (name === "publish") {
            reply(message.streamId, "onStatus", 0, null, {
              level: options.refuse === undefined ? "status" : "error",
              code: options.refuse ?? "NetStream.Publish.Start",
              description: options.refuse === undefined ? "go" : `${String(values[3])} is already publishing`,
            });
            if (options.ping !== undefined) send(userControl(USER_CONTROL.pingRequest, options.ping));
          }
        });
      });
    });
    yield* Effect.acquireRelease(
      Effect.async<void>(
        (resume) => void server.listen(port, options.host ?? "127.0.0.1", () => resume(Effect.void)),
      ),
      () =>
        Effect.async<void>((resume) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => resume(Effect.void));
        }),
    );
    return {
      messages,
      connections: () => count,
      pause: (value) => {
        paused = value;
        for (const socket of sockets) {
          if (value) socket.pause();
          else socket.resume();
        }
      },
    };
  });
