/**
 * Real RIST peers on 127.0.0.1, each tied to the test's Scope: ristsender relaying what it receives on a UDP
 * port over RIST, ristreceiver relaying what RIST brings to a UDP port, ffmpeg's and GStreamer's RIST senders.
 * The tools take a secret in their URL (that is theirs to do); the children's stderr tails mask it.
 */
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Redacted, type Scope } from "effect";
import { spawnChild } from "../../src/effects/runtime/process/child-process.ts";
import { freeUdpPort, udpPortBound } from "./peers.ts";

export interface RistToolOptions {
  /** `listen`: the tool waits on `port` (rist://@); `connect`: it calls `port`. */
  readonly mode: "listen" | "connect";
  /** Several ports: one peer on each, each sent a whole copy (weight 0), as over two network paths. */
  readonly port: number | ReadonlyArray<number>;
  readonly profile?: "simple" | "main";
  readonly secret?: string;
  readonly aesType?: 128 | 256;
  readonly username?: string;
  readonly password?: string;
  /** ristsrppasswd lines the listening tool checks callers against (EAP-SRP). */
  readonly srpFile?: string;
  readonly buffer?: number;
  readonly host?: string;
}

const ristUrl = (options: RistToolOptions) => {
  const query = [
    ...(options.buffer === undefined ? [] : [`buffer=${options.buffer}`]),
    ...(options.secret === undefined
      ? []
      : [`secret=${options.secret}`, `aes-type=${options.aesType ?? 128}`]),
    ...(options.username === undefined
      ? []
      : [`username=${options.username}`, `password=${options.password}`]),
  ];
  const host = options.host ?? "127.0.0.1";
  const ports = typeof options.port === "number" ? [options.port] : options.port;
  const shared = ports.length > 1 ? [...query, "weight=0"] : query;
  return ports
    .map(
      (port) =>
        `rist://${options.mode === "listen" ? "@" : ""}${host}:${port}${shared.length === 0 ? "" : `?${shared.join("&")}`}`,
    )
    .join(",");
};

const toolArgs = (options: RistToolOptions) => [
  ...["-p", options.profile === "simple" ? "0" : "1", "-S", "1000", "-v", "4"],
  ...(options.srpFile === undefined ? [] : ["-F", options.srpFile]),
];

const secretsOf = (options: RistToolOptions) =>
  [options.secret, options.password]
    .filter((value) => value !== undefined)
    .map((value) => Redacted.make(value));

/** ristsender: what arrives on `udpPort` goes out over RIST. */
export const ristSenderPeer = (
  options: RistToolOptions,
): Effect.Effect<
  { readonly udpPort: number; readonly tail: () => ReadonlyArray<string> },
  never,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const udpPort = yield* freeUdpPort;
    const child = yield* spawnChild({
      command: "ristsender",
      args: ["-i", `udp://127.0.0.1:${udpPort}`, "-o", ristUrl(options), ...toolArgs(options)],
      secrets: secretsOf(options),
    });
    yield* Effect.orDie(udpPortBound(udpPort));
    return { udpPort, tail: child.tail };
  });

/** ristreceiver: what RIST brings goes to UDP `udpPort` on 127.0.0.1. */
export const ristReceiverPeer = (
  options: RistToolOptions & { readonly udpPort: number },
): Effect.Effect<{ readonly tail: () => ReadonlyArray<string> }, never, Scope.Scope> =>
  Effect.map(
    spawnChild({
      command: "ristreceiver",
      args: ["-i", ristUrl(options), "-o", `udp://127.0.0.1:${options.udpPort}`, ...toolArgs(options)],
      secrets: secretsOf(options),
    }),
    (child) => ({ tail: child.tail }),
  );

/** A directory of srpfiles, removed with the scope: what a test app's DISTRIBUTARY_RIST_SRP_DIR names. */
export const srpDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "distributary-srp-"))),
  (path) => Effect.promise(() => rm(path, { recursive: true, force: true })),
);

/**
 * A ristsrppasswd line for `username`/`password` in a file of its own, in `inDir` (a test app's srpfile
 * directory) or a directory of its own; yields the file's path.
 */
export const srpFile = (
  username: string,
  password: string,
  inDir?: string,
): Effect.Effect<string, never, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = inDir ?? (yield* srpDir);
    const file = join(dir, `${username}-${Math.random().toString(36).slice(2, 10)}.srp`);
    const line = yield* Effect.promise(
      () =>
        new Promise<string>((resolve, reject) =>
          execFile("ristsrppasswd", [username, password], (error, stdout) =>
            error
              ? reject(error)
              : resolve(stdout.split("\n").find((text) => text.startsWith(`${username}:`)) ?? ""),
          ),
        ),
    );
    yield* Effect.promise(() => writeFile(file, `${line}\n`));
    return file;
  });

/**
 * A free even UDP port whose next is free too: the simple profile sends RTCP on the port after the data's, and
 * GStreamer's ristsink takes only an even one.
 */
export const freeEvenPort: Effect.Effect<number> = Effect.gen(function* () {
  while (true) {
    const port = yield* freeUdpPort;
    if (port % 2 !== 0 || port > 65000) continue;
    const free = yield* Effect.async<boolean>((resume) => {
      const socket = createSocket("udp4");
      socket.once("error", () => resume(Effect.succeed(false)));
      socket.bind(port + 1, "127.0.0.1", () => socket.close(() => resume(Effect.succeed(true))));
    });
    if (free) return port;
  }
});

/** A sender of ffmpeg (its `rist` protocol) or GStreamer (ristsink) relaying UDP `udpPort` to our `port`. */
export const foreignRistSender = (
  tool: "ffmpeg" | "gstreamer",
  port: number,
): Effect.Effect<{ readonly udpPort: number }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const udpPort = yield* freeUdpPort;
    yield* spawnChild(
      tool === "ffmpeg"
        ? {
            command: "ffmpeg",
            args: [
              ...["-hide_banner", "-nostdin", "-loglevel", "error"],
              ...["-probesize", "32", "-analyzeduration", "0", "-fflags", "nobuffer"],
              ...["-f", "data", "-i", `udp://127.0.0.1:${udpPort}`, "-map", "0", "-c", "copy"],
              ...["-flush_packets", "1", "-f", "data"],
              `rist://127.0.0.1:${port}?pkt_size=1316`,
            ],
          }
        : {
            command: "gst-launch-1.0",
            args: [
              "-q",
              ...["udpsrc", `port=${udpPort}`, "address=127.0.0.1", "buffer-size=8388608"],
              "caps=video/mpegts,systemstream=(boolean)true,packetsize=(int)188",
              // ristsink takes RTP: the TS packets go into RTP as they are (7 a datagram).
              ...["!", "rtpmp2tpay", "!", "ristsink", "address=127.0.0.1", `port=${port}`],
            ],
          },
    );
    yield* Effect.orDie(udpPortBound(udpPort));
    return { udpPort };
  });
