/**
 * Real peers for output tests, all on 127.0.0.1 with free ports, each tied to the test's Scope: a UDP sink,
 * srt-live-transmit as listener or caller forwarding to a sink, nginx with the RTMP module recording
 * what it receives, and ffmpeg as an RTSP server (listen mode) recording the one stream announced to it. Helpers to poll for a condition and to read our child processes from /proc.
 */
import type { ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duration, Effect, Redacted, type Scope } from "effect";
import { spawnChild } from "../../src/effects/runtime/process/child-process.ts";

/**
 * Polls `check` until it returns a value other than undefined, failing with `what` after the deadline, and with
 * what `seen` says then (what the test last saw), if given.
 */
export const eventually = <A>(
  what: string,
  check: () => A | undefined | Promise<A | undefined>,
  options: { readonly timeoutMs?: number; readonly intervalMs?: number; readonly seen?: () => string } = {},
): Effect.Effect<A, Error> =>
  Effect.gen(function* () {
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    while (true) {
      const value = yield* Effect.promise(async () => check());
      if (value !== undefined) return value;
      if (Date.now() > deadline)
        return yield* Effect.fail(
          new Error(
            `timed out waiting for ${what}${options.seen === undefined ? "" : `: ${options.seen()}`}`,
          ),
        );
      yield* Effect.sleep(Duration.millis(options.intervalMs ?? 50));
    }
  });

/**
 * Ends `child`: SIGTERM, SIGKILL if it has not exited `graceMs` later, and waits for it to exit (at once when it
 * has already), so that nothing a test started outlives it.
 */
export const stopChild = async (child: ChildProcess, graceMs = 5_000): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
};

/**
 * Ports handed out by this process. A port is free when handed out but nothing keeps it so: a stopped channel's
 * configured input is not bound, and the kernel may offer that port again to the next caller. So a port is
 * never handed out twice.
 */
const handedOut = new Set<number>();

const unseen = (bind: Effect.Effect<number>): Effect.Effect<number> =>
  Effect.flatMap(bind, (port) => {
    if (handedOut.has(port)) return unseen(bind);
    handedOut.add(port);
    return Effect.succeed(port);
  });

export const freeUdpPort: Effect.Effect<number> = unseen(
  Effect.async((resume) => {
    const socket = createSocket("udp4");
    socket.bind(0, "127.0.0.1", () => {
      const { port } = socket.address();
      socket.close(() => resume(Effect.succeed(port)));
    });
  }),
);

export const freeTcpPort: Effect.Effect<number> = unseen(
  Effect.async((resume) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resume(Effect.succeed(port)));
    });
  }),
);

export interface UdpSink {
  readonly port: number;
  readonly datagrams: ReadonlyArray<Buffer>;
  /** When each datagram arrived (performance.now(), ms). */
  readonly arrivals: ReadonlyArray<number>;
  readonly bytes: () => Buffer;
  readonly totalBytes: () => number;
}

/**
 * A UDP socket bound to a free port on 127.0.0.1, handing each datagram to `receive`, closed with the scope.
 * Yields the port.
 */
export const udpReceiver = (receive: (datagram: Buffer) => void): Effect.Effect<number, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<ReturnType<typeof createSocket>>((resume) => {
      const socket = createSocket("udp4");
      socket.on("message", receive);
      socket.bind(0, "127.0.0.1", () => {
        // A burst of datagrams must not be lost in the kernel before the test reads them.
        socket.setRecvBufferSize(8 * 1024 * 1024);
        resume(Effect.succeed(socket));
      });
    }),
    (socket) => Effect.promise(() => new Promise<void>((done) => socket.close(() => done()))),
  ).pipe(Effect.map((socket) => socket.address().port));

export const udpSink: Effect.Effect<UdpSink, never, Scope.Scope> = Effect.suspend(() => {
  const datagrams: Array<Buffer> = [];
  const arrivals: Array<number> = [];
  let total = 0;
  return udpReceiver((message) => {
    datagrams.push(message);
    arrivals.push(performance.now());
    total += message.length;
  }).pipe(
    Effect.map((port) => ({
      port,
      datagrams,
      arrivals,
      bytes: () => Buffer.concat(datagrams),
      totalBytes: () => total,
    })),
  );
});

export interface SrtPeer {
  readonly port: number;
  readonly pid: number | undefined;
  readonly tail: () => ReadonlyArray<string>;
}

const srtOptions = (passphrase: string | undefined) =>
  passphrase === undefined ? "" : `&passphrase=${passphrase}`;

/** srt-live-transmit listening for our SRT caller output and forwarding what it receives to a UDP sink. */
export const srtListenerPeer = (options: {
  readonly forwardTo: number;
  readonly passphrase?: string;
  readonly port?: number;
}): Effect.Effect<SrtPeer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const port = options.port ?? (yield* freeUdpPort);
    const child = yield* spawnChild({
      command: "srt-live-transmit",
      args: [
        `srt://127.0.0.1:${port}?mode=listener${srtOptions(options.passphrase)}`,
        `udp://127.0.0.1:${options.forwardTo}`,
      ],
      secrets: options.passphrase === undefined ? [] : [Redacted.make(options.passphrase)],
    });
    return { port, pid: child.pid, tail: child.tail };
  });

/**
 * srt-live-transmit calling our SRT listener output (retrying until it answers) and forwarding to a sink,
 * asking for `streamId` when given.
 */
export const srtCallerPeer = (options: {
  readonly port: number;
  readonly forwardTo: number;
  readonly passphrase?: string;
  readonly streamId?: string;
}): Effect.Effect<SrtPeer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const streamId = options.streamId === undefined ? "" : `&streamid=${options.streamId}`;
    const child = yield* spawnChild({
      command: "srt-live-transmit",
      args: [
        `srt://127.0.0.1:${options.port}?mode=caller${srtOptions(options.passphrase)}${streamId}`,
        `udp://127.0.0.1:${options.forwardTo}`,
      ],
    });
    return { port: options.port, pid: child.pid, tail: child.tail };
  });

/** Waits until some process on this machine has bound UDP `port` (a peer's input is ready for a stream). */
export const udpPortBound = (port: number): Effect.Effect<true, Error> => {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, "0")} `;
  return eventually(`UDP port ${port} to be bound`, async () =>
    (await readFile("/proc/net/udp", "utf8")).includes(hexPort) ? true : undefined,
  );
};

/**
 * srt-live-transmit sending over SRT what it receives on a UDP port (`udpPort`): as a caller to our SRT
 * input's listener on `port`, or as a listener on `port` for our SRT input's caller.
 */
export const srtSenderPeer = (options: {
  readonly mode: "caller" | "listener";
  readonly port: number;
  readonly passphrase?: string;
  readonly streamId?: string;
}): Effect.Effect<SrtPeer & { readonly udpPort: number }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const udpPort = yield* freeUdpPort;
    const streamId = options.streamId === undefined ? "" : `&streamid=${options.streamId}`;
    const child = yield* spawnChild({
      command: "srt-live-transmit",
      args: [
        // A deep receive buffer: on a busy machine the tool may not read for a while, and a test's stream
        // must not be lost on its way in.
        `udp://127.0.0.1:${udpPort}?rcvbuf=8388608`,
        `srt://127.0.0.1:${options.port}?mode=${options.mode}${srtOptions(options.passphrase)}${streamId}`,
      ],
      secrets: options.passphrase === undefined ? [] : [Redacted.make(options.passphrase)],
    });
    yield* Effect.orDie(udpPortBound(udpPort));
    return { port: options.port, udpPort, pid: child.pid, tail: child.tail };
  });

/**
 * ffmpeg's own SRT listener (libsrt inside ffmpeg) for our caller, writing what it receives untouched to a
 * file (`-f data`: no demuxing, no remuxing). `received` reads that file.
 */
export const ffmpegSrtListenerPeer = (options: {
  readonly passphrase?: string;
}): Effect.Effect<SrtPeer & { readonly received: () => Promise<Buffer> }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const port = yield* freeUdpPort;
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(join(tmpdir(), "distributary-ffmpeg-srt-"))),
      (path) => Effect.promise(() => rm(path, { recursive: true, force: true })),
    );
    const file = join(dir, "received.ts");
    const child = yield* spawnChild({
      command: "ffmpeg",
      args: [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-f",
        "data",
        "-i",
        `srt://127.0.0.1:${port}?mode=listener${srtOptions(options.passphrase)}`,
        "-map",
        "0",
        "-c",
        "copy",
        "-flush_packets",
        "1",
        "-f",
        "data",
        file,
      ],
      secrets: options.passphrase === undefined ? [] : [Redacted.make(options.passphrase)],
    });
    return {
      port,
      pid: child.pid,
      tail: child.tail,
      received: () => readFile(file).catch(() => Buffer.alloc(0)),
    };
  });

export interface RtmpServer {
  readonly port: number;
  readonly pid: number | undefined;
  readonly recordDir: string;
  readonly recordings: () => Promise<ReadonlyArray<string>>;
}

const tcpAccepts = (port: number) =>
  new Promise<true | undefined>((done) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(undefined));
  });

export interface RtmpServerOptions {
  /** Listen here (a server that comes back on the port an output already uses); default a free port. */
  readonly port?: number;
  /** nginx-rtmp asks this URL before each publish (`on_publish`); an answer other than 2xx refuses it. */
  readonly onPublish?: string;
}

/**
 * nginx with the RTMP module in a temp dir, recording every stream published to application `live` as FLV
 * (one file per publish).
 */
export const nginxRtmpServer = (
  options: RtmpServerOptions = {},
): Effect.Effect<RtmpServer, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(join(tmpdir(), "distributary-nginx-"))),
      (path) => Effect.promise(() => rm(path, { recursive: true, force: true })),
    );
    const recordDir = join(dir, "record");
    const port = options.port ?? (yield* freeTcpPort);
    const onPublish = options.onPublish === undefined ? "" : ` on_publish ${options.onPublish};`;
    const config = `
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
events { worker_connections 64; }
rtmp {
  server {
    listen 127.0.0.1:${port};
    application live { live on; record all; record_path ${recordDir}; record_unique on;${onPublish} }
  }
}
`;
    yield* Effect.promise(async () => {
      await mkdir(recordDir);
      await writeFile(join(dir, "nginx.conf"), config);
    });
    const server = yield* spawnChild({
      command: "nginx",
      args: ["-c", join(dir, "nginx.conf"), "-p", dir, "-e", join(dir, "error.log")],
    });
    yield* eventually(`nginx to listen on ${port} (${server.tail().join(" | ")})`, () => tcpAccepts(port), {
      timeoutMs: 5_000,
    });
    return {
      port,
      pid: server.pid,
      recordDir,
      recordings: async () =>
        (await readdir(recordDir))
          .filter((name) => name.endsWith(".flv"))
          .map((name) => join(recordDir, name)),
    };
  });

export const nginxRtmp: Effect.Effect<RtmpServer, Error, Scope.Scope> = nginxRtmpServer();

/** A TCP port in LISTEN state on 127.0.0.1, read from /proc (connecting would use up a one-shot listener). */
const tcpListening = async (port: number) => {
  const table = await readFile("/proc/net/tcp", "utf8");
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return table.split("\n").some((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[1] === local && fields[3] === "0A";
  })
    ? true
    : undefined;
};

export interface RtspServer {
  readonly port: number;
  /** The URL path it takes a stream on. */
  readonly path: string;
  /** Fragmented MP4 of what was announced and recorded: ffprobe reads it while it grows. */
  readonly recording: string;
}

/**
 * ffmpeg's RTSP server mode (`-rtsp_flags listen`): it takes one ANNOUNCE/RECORD session on `path` and keeps
 * the streams, copied, in a fragmented MP4. It asks for no credentials.
 */
export const ffmpegRtspServer = (path = "/live/cam"): Effect.Effect<RtspServer, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(join(tmpdir(), "distributary-rtsp-"))),
      (folder) => Effect.promise(() => rm(folder, { recursive: true, force: true })),
    );
    const port = yield* freeTcpPort;
    const recording = join(dir, "recorded.mp4");
    const server = yield* spawnChild({
      command: "ffmpeg",
      args: [
        ...["-hide_banner", "-loglevel", "error", "-rtsp_flags", "listen"],
        ...["-i", `rtsp://127.0.0.1:${port}${path}`, "-c", "copy"],
        ...["-f", "mp4", "-movflags", "frag_every_frame+empty_moov+default_base_moof", recording],
      ],
    });
    yield* eventually(
      `ffmpeg to listen on ${port} (${server.tail().join(" | ")})`,
      () => tcpListening(port),
      {
        timeoutMs: 5_000,
      },
    );
    return { port, path, recording };
  });

export interface ProcessEntry {
  readonly pid: number;
  readonly command: string;
  readonly state: string;
}

/** The direct children of `parent` (default: this process), zombies included, from /proc. */
export const childProcesses = async (parent: number = process.pid): Promise<ReadonlyArray<ProcessEntry>> => {
  const entries = await readdir("/proc");
  const children: Array<ProcessEntry> = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // The command sits in parentheses and may itself contain spaces or parentheses.
    const close = stat.lastIndexOf(")");
    const fields = stat.slice(close + 2).split(" ");
    if (Number(fields[1]) === parent) {
      children.push({
        pid: Number(entry),
        command: stat.slice(stat.indexOf("(") + 1, close),
        state: fields[0] ?? "?",
      });
    }
  }
  return children;
};
