/**
 * The HLS output on real streams: an ffmpeg-encoded H.264 + AAC stream cut into segments that ffprobe reads,
 * each starting with PAT, PMT and a keyframe, within the target duration, and holding the input's packets
 * byte for byte; a stream with SCTE-35 cues gets one EXT-X-DATERANGE per cue carrying the section's bytes,
 * and segments split where the cues splice; segments and playlists PUT to an HTTP origin, a down origin
 * retried until everything arrives.
 */
import { mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { it } from "@effect/vitest";
import { Effect, Fiber } from "effect";
import { execa } from "execa";
import { describe, expect } from "vitest";
import { bytesToHex, encodeSection } from "../../src/core/scte35/index.ts";
import type { PushAddressPolicy } from "../../src/domain/channel/addresses.ts";
import { parseOutputUrl } from "../../src/domain/url/url.ts";
import { maskSecrets } from "../../src/effects/events/logging.ts";
import { makeOutput, type Output } from "../../src/effects/outputs/writer.ts";
import { immediateSpliceOut, spliceInsertSection } from "../support/cues.ts";
import { encodeTestStream, probeMedia, streamFigures } from "../support/media.ts";
import { eventually, freeTcpPort } from "../support/peers.ts";
import { spliceNull, TsGenerator } from "../support/ts-generator.ts";

const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "distributary-hls-"))),
  (path) => Effect.promise(() => rm(path, { recursive: true, force: true })),
);

const offerAll = (output: Output, ts: Uint8Array) => {
  for (let at = 0; at < ts.length; at += 1316) output.offer(ts.subarray(at, Math.min(at + 1316, ts.length)));
};

const pidOf = (packet: Uint8Array) => (((packet[1] ?? 0) & 0x1f) << 8) | (packet[2] ?? 0);

interface Listed {
  readonly name: string;
  readonly duration: number;
}

const segmentsOf = (playlist: string): ReadonlyArray<Listed> => {
  const lines = playlist.split("\n");
  const listed: Listed[] = [];
  lines.forEach((line, index) => {
    if (!line.startsWith("#EXTINF:")) return;
    listed.push({ name: lines[index + 1] ?? "", duration: Number(line.slice(8).replace(/,$/, "")) });
  });
  return listed;
};

const firstVideoFrameIsKey = async (path: string) => {
  const result = await execa("ffprobe", [
    ...["-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1"],
    ...["-show_entries", "frame=key_frame", "-of", "csv=p=0", path],
  ]);
  return result.stdout.trim().split("\n")[0]?.replace(/,$/, "");
};

describe("hls output", () => {
  it.scopedLive(
    "an encoded stream becomes segments ffprobe reads, each PAT, PMT and a keyframe first, within the target, the input's packets byte for byte",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir;
        const sourcePath = join(dir, "source.ts");
        yield* encodeTestStream(sourcePath, 13);
        const source = new Uint8Array(yield* Effect.promise(() => readFile(sourcePath)));
        const out = join(dir, "hls");
        const output = yield* makeOutput(`hls://?dir=${out}&target=4&mode=event`);
        const writer = yield* Effect.forkScoped(output.run);
        offerAll(output, source);
        yield* eventually("the queue to drain", () => (output.status().queuedBytes === 0 ? true : undefined));
        yield* Fiber.interrupt(writer);

        const playlist = yield* Effect.promise(() => readFile(join(out, "index.m3u8"), "utf8"));
        expect(playlist).toContain("#EXT-X-TARGETDURATION:4");
        expect(playlist).toContain("#EXT-X-PLAYLIST-TYPE:VOD");
        expect(playlist).toContain("#EXT-X-ENDLIST");
        expect(playlist.match(/#EXT-X-PROGRAM-DATE-TIME:\d{4}-\d\d-\d\dT[\d:.]+Z/g)?.length).toBe(
          segmentsOf(playlist).length,
        );
        const listed = segmentsOf(playlist);
        expect(listed.length).toBeGreaterThanOrEqual(3);
        const files = (yield* Effect.promise(() => readdir(out)))
          .filter((name) => name.endsWith(".ts"))
          .sort();
        expect(files.sort()).toEqual(listed.map((segment) => segment.name).sort());

        const programs = yield* Effect.promise(() =>
          execa("ffprobe", ["-v", "error", "-show_entries", "program=pmt_pid", "-of", "csv=p=0", sourcePath]),
        );
        const pmtPid = Number.parseInt(programs.stdout.trim(), 10);
        expect(pmtPid).toBeGreaterThan(0);
        const rest: Uint8Array[] = [];
        for (const segment of listed) {
          expect(segment.duration).toBeGreaterThan(0);
          expect(segment.duration).toBeLessThanOrEqual(4);
          const path = join(out, segment.name);
          const bytes = new Uint8Array(yield* Effect.promise(() => readFile(path)));
          expect(bytes.length % 188).toBe(0);
          expect(pidOf(bytes.subarray(0, 188))).toBe(0);
          expect(pidOf(bytes.subarray(188, 376))).toBe(pmtPid);
          const probed = yield* Effect.promise(() => probeMedia(path));
          expect(probed?.codecs).toEqual(["aac", "h264"]);
          // The video (25 frames a second) lasts what EXTINF says, within the target; the audio interleaved
          // around it may reach a few frames further, as in any TS segment.
          const frames = (yield* Effect.promise(() => streamFigures(path)))?.video?.packets ?? 0;
          expect(frames / 25).toBeLessThanOrEqual(4);
          expect(Math.abs(frames / 25 - segment.duration)).toBeLessThan(0.05);
          expect(yield* Effect.promise(() => firstVideoFrameIsKey(path))).toBe("1");
          rest.push(bytes.subarray(376));
        }
        // Everything after each segment's PAT and PMT copies is the input, from the first keyframe, untouched.
        const joined = Buffer.concat(rest);
        const first = rest[0]?.subarray(0, 188) ?? new Uint8Array(0);
        const startsAt = Buffer.from(source).indexOf(Buffer.from(first));
        expect(startsAt).toBeGreaterThanOrEqual(0);
        expect(startsAt).toBeLessThan(source.length / 10);
        expect(Buffer.compare(joined, Buffer.from(source.subarray(startsAt)))).toBe(0);
      }),
    60_000,
  );

  it.scopedLive(
    "each SCTE-35 cue becomes one EXT-X-DATERANGE with the section's bytes; splices split the segments",
    () =>
      Effect.gen(function* () {
        const generator = new TsGenerator({ seed: 7, bitrate: 1_000_000 });
        const out = immediateSpliceOut(41);
        const back = spliceInsertSection({
          splice_event_id: 41,
          splice_event_cancel_indicator: false,
          out_of_network_indicator: false,
          program_splice_flag: true,
          duration_flag: false,
          splice_immediate_flag: true,
          event_id_compliance_flag: true,
          unique_program_id: 1,
          avail_num: 0,
          avails_expected: 0,
        });
        const cues = [
          { atMs: 1500, section: encodeSection(out), attribute: "SCTE35-OUT" },
          { atMs: 4600, section: encodeSection(back), attribute: "SCTE35-IN" },
          { atMs: 7200, section: spliceNull(), attribute: "SCTE35-CMD" },
        ];
        for (const cue of cues) generator.insertScte35(cue.section, cue.atMs);
        const ts = generator.packets(Math.ceil((16_000 * 1_000_000) / 8 / 188 / 1000));

        const output = yield* makeOutput("hls://?target=4&window=20&cuetags=1");
        const served = output.hls;
        expect(served).not.toBeNull();
        yield* Effect.forkScoped(output.run);
        offerAll(output, ts);
        const playlist = yield* eventually("a playlist past the third cue", () => {
          const text = served?.playlist() ?? null;
          return text !== null && segmentsOf(text).length >= 3 && text.includes("SCTE35-CMD")
            ? text
            : undefined;
        });

        const ranges = playlist.split("\n").filter((line) => line.startsWith("#EXT-X-DATERANGE:"));
        expect(ranges).toHaveLength(cues.length);
        cues.forEach((cue, index) => {
          expect(ranges[index]).toContain(`${cue.attribute}=0x${bytesToHex(cue.section)}`);
          expect(ranges[index]).toMatch(/ID="[^"]+",START-DATE="\d{4}-[^"]+Z"/);
        });
        expect(new Set(ranges.map((line) => /ID="([^"]+)"/.exec(line)?.[1])).size).toBe(cues.length);
        expect(playlist).toContain("#EXT-X-CUE-OUT");
        expect(playlist).toContain("#EXT-X-CUE-IN");

        // The OUT and IN splice at once: a segment starts at the first keyframe after each (keyframes about
        // every second), where the target alone would not have cut (it cuts every third keyframe).
        const lines = playlist.split("\n");
        let elapsed = 0;
        const startsAt = new Map<string, number>();
        let pendingCue: string[] = [];
        for (const line of lines) {
          if (line.startsWith("#EXT-X-DATERANGE:")) pendingCue.push(/SCTE35-(\w+)=/.exec(line)?.[1] ?? "");
          if (line.startsWith("#EXTINF:")) {
            for (const cue of pendingCue) startsAt.set(cue, elapsed);
            pendingCue = [];
            elapsed += Number(line.slice(8).replace(/,$/, ""));
          }
        }
        const outAt = startsAt.get("OUT") ?? 0;
        const inAt = startsAt.get("IN") ?? 0;
        expect(outAt).toBeGreaterThan(1.5);
        expect(outAt).toBeLessThan(2.6);
        expect(inAt).toBeGreaterThan(4.6);
        expect(inAt).toBeLessThan(5.7);
        for (const segment of segmentsOf(playlist)) {
          expect(segment.duration).toBeLessThanOrEqual(4);
          const bytes = served?.segment(segment.name) ?? null;
          expect(bytes).not.toBeNull();
          expect(pidOf(bytes?.subarray(0, 188) ?? new Uint8Array(188))).toBe(0);
          expect(pidOf(bytes?.subarray(188, 376) ?? new Uint8Array(188))).toBe(generator.pmtPid);
          expect(pidOf(bytes?.subarray(376, 564) ?? new Uint8Array(188))).toBe(generator.videoPid);
        }
      }),
    30_000,
  );
});

/** Loopback let through, for origins these tests start on 127.0.0.1; everything else as the service's. */
const testOrigins: PushAddressPolicy = { allowPrivate: false, allowLoopback: true };

interface Origin {
  /** The body of the last PUT to each path. */
  readonly received: Map<string, Buffer>;
  /** Paths in the order their PUTs completed. */
  readonly puts: string[];
  readonly server: Server;
}

/** An HTTP origin taking PUTs, as a WebDAV or MediaPackage-style ingest does, on `port` until the scope ends. */
const httpOrigin = (port: number) =>
  Effect.acquireRelease(
    Effect.async<Origin>((resume) => {
      const received = new Map<string, Buffer>();
      const puts: string[] = [];
      const server = createServer((request, response) => {
        const parts: Buffer[] = [];
        request.on("data", (part: Buffer) => parts.push(part));
        request.on("end", () => {
          if (request.method === "PUT") {
            received.set(request.url ?? "", Buffer.concat(parts));
            puts.push(request.url ?? "");
          }
          response.writeHead(request.method === "PUT" ? 201 : 405).end();
        });
      });
      server.listen(port, "127.0.0.1", () => resume(Effect.succeed({ received, puts, server })));
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void));
        server.closeAllConnections();
      }),
  );

describe("hls live window", () => {
  it.scopedLive(
    "a live playlist lists the last `window` segments and the dir keeps only two more behind them",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir;
        const output = yield* makeOutput(`hls://?dir=${dir}&target=1&window=3`);
        yield* Effect.forkScoped(output.run);
        // About twenty one-second segments, offered at once: the test looks once the writer has taken them all.
        offerAll(output, new TsGenerator({ seed: 4, bitrate: 1_000_000 }).packets(14_000));
        yield* eventually("the queue to drain", () => (output.status().queuedBytes === 0 ? true : undefined));
        // The last segment's publishing may still be under way: wait for the dir and the playlist to agree.
        const { playlist, files } = yield* eventually("the playlist to name the newest segment", async () => {
          const text = await readFile(join(dir, "index.m3u8"), "utf8").catch(() => "");
          const names = (await readdir(dir)).filter((name) => name.endsWith(".ts"));
          const newest = (names: ReadonlyArray<string>) =>
            Math.max(-1, ...names.map((name) => Number(/segment-(\d+)\.ts/.exec(name)?.[1] ?? -1)));
          const inPlaylist = segmentsOf(text).map((segment) => segment.name);
          return newest(inPlaylist) >= 15 && newest(inPlaylist) === newest(names)
            ? { playlist: text, files: names }
            : undefined;
        });
        const listed = segmentsOf(playlist).map((segment) => segment.name);
        expect(listed).toHaveLength(3);
        const sequence = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(playlist)?.[1]);
        expect(listed[0]).toBe(`segment-${sequence}.ts`);
        // The window and two more behind it: the five newest segments, and nothing older.
        const numbers = files.map((name) => Number(/\d+/.exec(name)?.[0])).sort((a, b) => a - b);
        expect(numbers).toEqual([sequence - 2, sequence - 1, sequence, sequence + 1, sequence + 2]);
        for (const name of listed) expect(output.hls?.segment(name)).not.toBeNull();
        expect(output.hls?.segment("segment-0.ts")).toBeNull();
      }),
    30_000,
  );
});

describe("hls dir on a full disk", () => {
  it.scopedLive(
    "a segment that cannot be written is an output error in the recording's words, and leaves no temporary file",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir;
        // The first segment's temporary file leads to /dev/full, where every write fails with ENOSPC.
        yield* Effect.promise(() => symlink("/dev/full", join(dir, ".segment-0.ts.tmp")));
        const output = yield* makeOutput(`hls://?dir=${dir}&target=1&window=3`, {
          reconnect: { firstDelay: "1 minute", maxDelay: "1 minute" },
        });
        yield* Effect.forkScoped(output.run);
        offerAll(output, new TsGenerator({ seed: 4, bitrate: 1_000_000 }).packets(2_000));
        const error = yield* eventually("the error", () => output.status().lastError ?? undefined);
        expect(error).toBe(`the disk is full: cannot write segment-0.ts in ${dir}`);
        expect(output.status().lastErrorReason).toBe("write_failed");
        expect((yield* Effect.promise(() => readdir(dir))).filter((name) => name.endsWith(".tmp"))).toEqual(
          [],
        );
      }),
    30_000,
  );
});

describe("hls dir behind a symbolic link", () => {
  it.scopedLive("a dir whose link leads out of the recordings directory fails, writing nothing", () =>
    Effect.gen(function* () {
      const root = yield* tempDir;
      const elsewhere = yield* tempDir;
      yield* Effect.promise(() => symlink(elsewhere, join(root, "evil")));
      for (const dir of [`${root}/evil`, `${root}/evil/hls`]) {
        const output = yield* makeOutput(`hls://?dir=${dir}&target=1`, { recordingsRoot: root });
        yield* Effect.forkScoped(output.run);
        offerAll(output, new TsGenerator({ seed: 4, bitrate: 1_000_000 }).packets(2_000));
        const error = yield* eventually("the error", () => output.status().lastError ?? undefined);
        expect(error).toBe(
          `${dir} leads outside the recordings directory ${root} through a symbolic link: record in a real directory under it`,
        );
      }
      expect(yield* Effect.promise(() => readdir(elsewhere))).toEqual([]);
    }),
  );
});

/** Whether a thread of this process waits in open(2) for a FIFO's other end (a writer held at a FIFO). */
const heldAtFifo = async () => {
  for (const task of await readdir("/proc/self/task")) {
    const wchan = await readFile(`/proc/self/task/${task}/wchan`, "utf8").catch(() => "");
    if (wchan === "wait_for_partner") return true;
  }
  return undefined;
};

describe("hls live window behind a link swapped in mid-attempt", () => {
  it.scopedLive(
    "old segments are not deleted through a link that now leads out of the recordings directory",
    () =>
      Effect.gen(function* () {
        const root = yield* tempDir;
        const elsewhere = yield* tempDir;
        const dir = join(root, "hls");
        yield* Effect.promise(() => mkdir(dir));
        // The sixth segment's temporary file is a FIFO: the writer, past its check, waits there to write it, and
        // its live window then deletes segment-1.ts.
        yield* Effect.promise(() => execa("mkfifo", [join(dir, ".segment-5.ts.tmp")]));
        const output = yield* makeOutput(`hls://?dir=${dir}&target=1&window=2&mode=live`, {
          recordingsRoot: root,
          reconnect: { firstDelay: "1 minute", maxDelay: "1 minute" },
        });
        yield* Effect.forkScoped(output.run);
        offerAll(output, new TsGenerator({ seed: 4, bitrate: 1_000_000 }).packets(14_000));
        yield* eventually("the writer to wait at the FIFO", heldAtFifo);

        // Meanwhile the dir becomes a link to a directory outside, holding files of the same names.
        const victims = ["segment-0.ts", "segment-1.ts", "segment-2.ts", "segment-3.ts", "segment-4.ts"];
        yield* Effect.promise(async () => {
          for (const name of [...victims, ".segment-5.ts.tmp"]) await writeFile(join(elsewhere, name), name);
          await rename(dir, join(root, "hls-moved"));
          await symlink(elsewhere, dir);
        });
        yield* Effect.promise(() => readFile(join(root, "hls-moved", ".segment-5.ts.tmp")));

        const error = yield* eventually("the error", () => output.status().lastError ?? undefined);
        expect(error).toBe(
          `${dir} leads outside the recordings directory ${root} through a symbolic link: record in a real directory under it`,
        );
        const left = yield* Effect.promise(() => readdir(elsewhere));
        for (const name of victims) expect(left, name).toContain(name);
      }),
  );
});

describe("hls push to an HTTP origin", () => {
  it.scopedLive(
    "a down origin is retried on the reconnect schedule; once up it receives every segment and the playlist",
    () =>
      Effect.gen(function* () {
        const port = yield* freeTcpPort;
        const path = "live/channel-7f3k9q2z";
        const output = yield* makeOutput(`hls://?target=4&window=20&push=http://127.0.0.1:${port}/${path}`, {
          reconnect: { firstDelay: "100 millis", maxDelay: "300 millis" },
          // The origin listens on loopback, which the service's own policy refuses (see the refusals below).
          pushAddresses: testOrigins,
        });
        expect(output.status().url).toBe(`hls://?target=4&window=20&push=http://127.0.0.1:${port}/****`);
        yield* Effect.forkScoped(output.run);
        offerAll(output, new TsGenerator({ seed: 3, bitrate: 1_000_000 }).packets(10_700));

        const down = yield* eventually("a failed PUT, retried", () => {
          const status = output.status();
          return status.errors >= 2 && status.lastError !== null ? status : undefined;
        });
        expect(down.lastError).toBe(
          `could not deliver to the origin http://127.0.0.1:${port}/****: no HTTP answer`,
        );
        expect(JSON.stringify(down)).not.toContain("7f3k9q2z");

        const origin = yield* httpOrigin(port);
        const playlist = yield* eventually(
          "the playlist of every segment at the origin",
          () => {
            const text = origin.received.get(`/${path}/index.m3u8`)?.toString("utf8");
            return text !== undefined && text === output.hls?.playlist() && segmentsOf(text).length >= 3
              ? text
              : undefined;
          },
          { timeoutMs: 15_000 },
        );
        expect(output.status().state).toBe("connected");
        for (const segment of segmentsOf(playlist)) {
          const arrived = origin.received.get(`/${path}/${segment.name}`);
          expect(arrived, segment.name).toBeDefined();
          expect(
            Buffer.compare(arrived ?? Buffer.alloc(0), Buffer.from(output.hls?.segment(segment.name) ?? [])),
          ).toBe(0);
        }
        // Each segment arrives before a playlist that lists it.
        const first = segmentsOf(playlist)[0]?.name ?? "";
        expect(origin.puts.indexOf(`/${path}/${first}`)).toBeLessThan(
          origin.puts.indexOf(`/${path}/index.m3u8`),
        );
      }),
    30_000,
  );
});

/** The first error of an HLS output pushing to `push`, its stream offered at once. */
const pushError = (push: string, pushAddresses?: PushAddressPolicy) =>
  Effect.gen(function* () {
    const output = yield* makeOutput(`hls://?target=1&window=5&push=${push}`, {
      reconnect: { firstDelay: "1 minute", maxDelay: "1 minute" },
      ...(pushAddresses === undefined ? {} : { pushAddresses }),
    });
    yield* Effect.forkScoped(output.run);
    offerAll(output, new TsGenerator({ seed: 3, bitrate: 1_000_000 }).packets(2_000));
    return yield* eventually("the push to fail", () => output.status().lastError ?? undefined, {
      timeoutMs: 15_000,
    });
  });

/** `server` listening on 127.0.0.1:`port` until the scope ends, when its connections are cut. */
const listening = <S extends NetServer>(server: S, port: number) =>
  Effect.acquireRelease(
    Effect.async<S>((resume) => {
      server.listen(port, "127.0.0.1", () => resume(Effect.succeed(server)));
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void));
        for (const socket of connections.get(server) ?? []) socket.destroy();
      }),
  ).pipe(
    Effect.tap((server) =>
      Effect.sync(() => {
        const open = new Set<Socket>();
        connections.set(server, open);
        server.on("connection", (socket: Socket) => {
          open.add(socket);
          socket.on("close", () => open.delete(socket));
        });
      }),
    ),
  );
const connections = new WeakMap<NetServer, Set<Socket>>();

describe("hls push: where it may go", () => {
  it.scopedLive("a loopback origin is refused in words, literal or by name, and no PUT reaches it", () =>
    Effect.gen(function* () {
      const port = yield* freeTcpPort;
      const origin = yield* httpOrigin(port);
      // The service's own policy: makeOutput without one.
      expect(yield* pushError(`http://127.0.0.1:${port}/live/k3y`)).toBe(
        `the push origin http://127.0.0.1:${port}/**** is a loopback address: HLS push goes to public addresses only`,
      );
      // A name is checked on what it resolves to, when the attempt connects.
      expect(yield* pushError(`http://localhost:${port}/live/k3y`)).toMatch(
        new RegExp(
          `^the push origin http://localhost:${port}/\\*{4} resolves to (127\\.0\\.0\\.1|::1), a loopback address: HLS push goes to public addresses only$`,
        ),
      );
      expect(origin.puts).toEqual([]);
    }),
  );

  it.scopedLive("a redirect fails the attempt and its target gets no request", () =>
    Effect.gen(function* () {
      const targetPort = yield* freeTcpPort;
      const target = yield* httpOrigin(targetPort);
      for (const status of [307, 308]) {
        const port = yield* freeTcpPort;
        yield* Effect.acquireRelease(
          Effect.async<Server>((resume) => {
            const server = createServer((request, response) => {
              request.resume();
              response
                .writeHead(status, {
                  location: `http://127.0.0.1:${targetPort}/stolen`,
                })
                .end();
            });
            server.listen(port, "127.0.0.1", () => resume(Effect.succeed(server)));
          }),
          (server) =>
            Effect.async<void>((resume) => {
              server.close(() => resume(Effect.void));
              server.closeAllConnections();
            }),
        );
        expect(yield* pushError(`http://127.0.0.1:${port}/live/k3y`, testOrigins)).toBe(
          `the origin http://127.0.0.1:${port}/**** answered a redirect (${status}) to the PUT of segment-0.ts: redirects are not followed`,
        );
      }
      expect(target.puts).toEqual([]);
    }),
  );

  it.scopedLive("a closed port, a listener that is not HTTP and a TLS-only one read the same", () =>
    Effect.gen(function* () {
      const closed = yield* freeTcpPort;
      const garbage = yield* freeTcpPort;
      yield* listening(
        createNetServer((socket) => socket.end("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")),
        garbage,
      );
      const tlsPort = yield* freeTcpPort;
      const dir = yield* tempDir;
      yield* Effect.promise(() =>
        execa("openssl", [
          ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
          ...[
            "-keyout",
            join(dir, "key.pem"),
            "-out",
            join(dir, "cert.pem"),
            "-days",
            "1",
            "-subj",
            "/CN=origin",
          ],
        ]),
      );
      const [key, cert] = yield* Effect.promise(() =>
        Promise.all([readFile(join(dir, "key.pem")), readFile(join(dir, "cert.pem"))]),
      );
      yield* listening(
        createTlsServer({ key, cert }, (socket) => socket.end("HTTP/1.1 200 OK\r\n\r\n")),
        tlsPort,
      );
      for (const port of [closed, garbage, tlsPort]) {
        expect(yield* pushError(`http://127.0.0.1:${port}/live/k3y`, testOrigins)).toBe(
          `could not deliver to the origin http://127.0.0.1:${port}/****: no HTTP answer`,
        );
      }
    }),
  );
});

describe("hls url", () => {
  it("is validated with messages that say what to change; a push origin's path is masked", () => {
    const problem = (url: string) => {
      const parsed = parseOutputUrl(url);
      return parsed._tag === "Left" ? parsed.left.message : "accepted";
    };
    expect(problem("hls://?target=0")).toContain("target must be a whole number from 1 to 60");
    expect(problem("hls://?mode=vod")).toContain("mode must be live or event");
    expect(problem("hls://?mode=event")).toContain("give a dir or a push origin");
    expect(problem("hls://?dir=relative/path")).toContain("dir must be an absolute path");
    expect(problem("hls://?push=ftp://origin/x")).toContain("push must be an http:// or https:// URL");
    expect(problem("hls://?speed=2")).toContain("unknown parameter 'speed'");
    const parsed = parseOutputUrl("hls://?push=http://127.0.0.1:8080/live/s3cr3t-path&target=2");
    expect(parsed._tag === "Right" && parsed.right.masked).toBe(
      "hls://?push=http://127.0.0.1:8080/****&target=2",
    );
    expect(maskSecrets("output hls://?push=http://127.0.0.1:8080/live/s3cr3t-path&target=2 started")).toBe(
      "output hls://?push=http://127.0.0.1:8080/****&target=2 started",
    );
  });
});
