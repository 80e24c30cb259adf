import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { it } from "@effect/vitest";
import { Effect, Exit, Fiber, Scope } from "effect";
import koffi from "koffi";
import { describe, expect } from "vitest";
import { makeOutput, type Output, type OutputEvent } from "../../src/effects/outputs/writer.ts";
import { loadLibSrtFrom } from "../../src/effects/runtime/ffi/libsrt.ts";
import { TraceBStats } from "../../src/effects/runtime/ffi/libsrt-structs.ts";
import {
  eventually,
  ffmpegSrtListenerPeer,
  freeUdpPort,
  srtCallerPeer,
  srtListenerPeer,
  type UdpSink,
  udpSink,
} from "../support/peers.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const passphrase = "correct-horse-battery";

const connected = (output: Output, timeoutMs = 15_000) =>
  eventually(
    `${output.maskedUrl} to connect (${output.status().lastError})`,
    () => (output.status().state === "connected" ? true : undefined),
    { timeoutMs },
  );

/** Offers `datagrams` 7-packet chunks at about 1.5 Mb/s, as a live channel would, and returns them. */
const sendLive = (to: Output | ReadonlyArray<Output>, generator: TsGenerator, datagrams: number) =>
  Effect.gen(function* () {
    const outputs = "offer" in to ? [to] : to;
    const sent: Array<Uint8Array> = [];
    for (let i = 0; i < datagrams; i++) {
      const chunk = generator.datagram();
      sent.push(chunk);
      for (const output of outputs) output.offer(chunk);
      if (i % 2 === 1) yield* Effect.sleep("10 millis");
    }
    return Buffer.concat(sent.map((chunk) => Buffer.from(chunk)));
  });

const received = (sink: UdpSink, expected: Buffer) =>
  eventually(`${expected.length} bytes at the sink (have ${sink.totalBytes()})`, () =>
    sink.totalBytes() >= expected.length ? true : undefined,
  ).pipe(Effect.map(() => sink.bytes()));

const options = { srtStatsIntervalMs: 100 };

describe("srt output", () => {
  it.scopedLive("caller: a listener peer forwards the same TS byte for byte, and link stats appear", () =>
    Effect.gen(function* () {
      const sink = yield* udpSink;
      const peer = yield* srtListenerPeer({ forwardTo: sink.port });
      const output = yield* makeOutput(`srt://127.0.0.1:${peer.port}?latency=80`, options);
      yield* Effect.forkScoped(output.run);
      yield* connected(output);
      const expected = yield* sendLive(output, new TsGenerator({ seed: 11 }), 150);
      const bytes = yield* received(sink, expected);
      expect(bytes.equals(expected)).toBe(true);
      expect(sink.datagrams.every((datagram) => datagram.length === 1316)).toBe(true);
      const stats = yield* eventually("srt stats", () => output.status().srt ?? undefined);
      expect(typeof stats.rttMs).toBe("number");
      expect(stats.sendRateMbps).toBeGreaterThanOrEqual(0);
      expect(output.status()).toMatchObject({ bytesSent: expected.length, reconnects: 0, queueDrops: 0 });
    }),
  );

  it.scopedLive("listener with a passphrase: a caller peer connects and gets the same TS", () =>
    Effect.gen(function* () {
      const sink = yield* udpSink;
      const port = yield* freeUdpPort;
      const output = yield* makeOutput(
        `srt://127.0.0.1:${port}?mode=listener&passphrase=${passphrase}`,
        options,
      );
      yield* Effect.forkScoped(output.run);
      expect(output.status().url).toBe(`srt://127.0.0.1:${port}?mode=listener&passphrase=****`);
      yield* srtCallerPeer({ port, forwardTo: sink.port, passphrase });
      yield* connected(output);
      const expected = yield* sendLive(output, new TsGenerator({ seed: 12 }), 100);
      expect((yield* received(sink, expected)).equals(expected)).toBe(true);
      yield* eventually("srt stats", () => output.status().srt ?? undefined);
    }),
  );

  it.scopedLive("caller with a passphrase; a wrong one is reported in words, without the secret", () =>
    Effect.gen(function* () {
      const sink = yield* udpSink;
      const peer = yield* srtListenerPeer({ forwardTo: sink.port, passphrase });
      const good = yield* makeOutput(
        `srt://127.0.0.1:${peer.port}?passphrase=${passphrase}&pbkeylen=32`,
        options,
      );
      yield* Effect.forkScoped(good.run);
      yield* connected(good);
      const expected = yield* sendLive(good, new TsGenerator({ seed: 13 }), 60);
      expect((yield* received(sink, expected)).equals(expected)).toBe(true);

      // srt-live-transmit serves one caller at a time, so the wrong passphrase gets a listener of its own.
      const second = yield* srtListenerPeer({ forwardTo: sink.port, passphrase });
      const wrong = yield* makeOutput(
        `srt://127.0.0.1:${second.port}?passphrase=not-the-passphrase`,
        options,
      );
      yield* Effect.forkScoped(wrong.run);
      const message = yield* eventually("an error", () => wrong.status().lastError ?? undefined);
      expect(message).toBe(`the SRT peer at 127.0.0.1:${second.port} rejected the passphrase`);
      expect(wrong.status()).toMatchObject({ lastErrorReason: "auth_rejected" });
      expect(JSON.stringify(wrong.status())).not.toContain("not-the-passphrase");
    }),
  );

  it.scopedLive("a listener that goes away and comes back is reconnected without anyone acting", () =>
    Effect.gen(function* () {
      const sink = yield* udpSink;
      const peerScope = yield* Scope.make();
      const peer = yield* srtListenerPeer({ forwardTo: sink.port }).pipe(Scope.extend(peerScope));
      const output = yield* makeOutput(`srt://127.0.0.1:${peer.port}?latency=80`, options);
      yield* Effect.forkScoped(output.run);
      yield* connected(output);

      yield* Scope.close(peerScope, Exit.void);
      // The SRT sender notices the peer is gone once its keepalives go unanswered.
      const during = yield* Effect.fork(sendLive(output, new TsGenerator({ seed: 14 }), 400));
      yield* eventually(
        "the loss to be noticed",
        () => (output.status().state !== "connected" ? true : undefined),
        {
          timeoutMs: 20_000,
        },
      );

      yield* srtListenerPeer({ forwardTo: sink.port, port: peer.port });
      yield* connected(output, 30_000);
      yield* Fiber.join(during);
      expect(output.status().reconnects).toBeGreaterThanOrEqual(1);
      expect(output.status().lastError).toMatch(/127\.0\.0\.1:\d+ (disconnected|\(is it running)/);
      const expected = yield* sendLive(output, new TsGenerator({ seed: 15 }), 60);
      // Data sent before the reconnect may still drain in front of it; what was sent after must end the stream.
      yield* eventually("the data sent after the reconnect, byte for byte", () => {
        const all = sink.bytes();
        return all.length >= expected.length && all.subarray(all.length - expected.length).equals(expected)
          ? true
          : undefined;
      });
    }),
  );

  it.scopedLive("every failed attempt is one error, counted as it fails; a spent budget ends in error", () =>
    Effect.gen(function* () {
      const port = yield* freeUdpPort;
      const holder = yield* makeOutput(`srt://127.0.0.1:${port}?mode=listener`);
      yield* Effect.forkScoped(holder.run);
      yield* eventually("the first listener to hold its port", () =>
        holder.status().state === "connecting" ? true : undefined,
      );
      // Same port: each attempt fails at once; three attempts, then it gives up.
      const announced: Array<string> = [];
      const second = yield* makeOutput(
        `srt://127.0.0.1:${port}?mode=listener`,
        { reconnect: { maxAttempts: 3, firstDelay: "50 millis", maxDelay: "50 millis" } },
        (event) => announced.push(event.type === "state" ? event.state : "reconnect"),
      );
      expect(second.status().state).toBe("starting");
      const exit = yield* Effect.exit(second.run);
      expect(Exit.isFailure(exit)).toBe(true);
      expect(second.status()).toMatchObject({ state: "error", errors: 3, reconnects: 2 });
      expect(announced.filter((type) => type === "reconnect")).toHaveLength(2);
      expect(announced.at(-1)).toBe("error");
      expect(second.status().lastError).toContain(`cannot listen for SRT on 127.0.0.1:${port}`);
      expect(holder.status()).toMatchObject({ state: "connecting", errors: 0, queueDrops: 0 });
    }),
  );

  it.scopedLive("caller to ffmpeg's SRT listener: the same TS byte for byte", () =>
    Effect.gen(function* () {
      const peer = yield* ffmpegSrtListenerPeer({ passphrase });
      // A second of latency: ffmpeg, slow to start on a loaded machine, drops what comes later than that.
      const output = yield* makeOutput(
        `srt://127.0.0.1:${peer.port}?passphrase=${passphrase}&latency=1000`,
        options,
      );
      yield* Effect.forkScoped(output.run);
      yield* connected(output);
      const expected = yield* sendLive(output, new TsGenerator({ seed: 16 }), 120);
      let have = 0;
      yield* eventually(`${expected.length} bytes in ffmpeg's file`, async () => {
        have = (await peer.received()).length;
        return have >= expected.length ? true : undefined;
      }).pipe(
        Effect.mapError(
          (error) => new Error(`${error.message}: ${have} there, ffmpeg said ${JSON.stringify(peer.tail())}`),
        ),
      );
      expect((yield* Effect.promise(peer.received)).equals(expected)).toBe(true);
    }),
  );

  it.scopedLive(
    "a listener serves two receivers at once, each byte for byte, each with its own statistics",
    () =>
      Effect.gen(function* () {
        const [first, second] = [yield* udpSink, yield* udpSink];
        const port = yield* freeUdpPort;
        const output = yield* makeOutput(`srt://127.0.0.1:${port}?mode=listener&latency=80`, options);
        yield* Effect.forkScoped(output.run);
        yield* srtCallerPeer({ port, forwardTo: first.port, streamId: "one" });
        yield* srtCallerPeer({ port, forwardTo: second.port, streamId: "two" });
        const peers = yield* eventually("two receivers listed", () =>
          output.status().srt?.peers.length === 2 ? output.status().srt?.peers : undefined,
        );
        expect(peers.map((peer) => peer.streamId).sort()).toEqual(["one", "two"]);
        expect(peers.every((peer) => /^127\.0\.0\.1:\d+$/.test(peer.peer))).toBe(true);
        expect(output.status().state).toBe("connected");

        const expected = yield* sendLive(output, new TsGenerator({ seed: 17 }), 150);
        expect((yield* received(first, expected)).equals(expected)).toBe(true);
        expect((yield* received(second, expected)).equals(expected)).toBe(true);
        // Each peer's own figures, read from libsrt: both were sent every packet.
        const sentBoth = yield* eventually("each peer's send rate", () => {
          const listed = output.status().srt?.peers ?? [];
          return listed.length === 2 && listed.every((peer) => peer.sendRateMbps > 0) ? listed : undefined;
        });
        expect(sentBoth.map((peer) => peer.rttMs >= 0 && peer.flightSize >= 0)).toEqual([true, true]);
        expect(output.status()).toMatchObject({ bytesSent: expected.length, reconnects: 0 });
      }),
  );

  it.scopedLive(
    "a receiver that vanishes and returns is served again; the other one is never interrupted",
    () =>
      Effect.gen(function* () {
        const [steady, returning] = [yield* udpSink, yield* udpSink];
        const port = yield* freeUdpPort;
        const output = yield* makeOutput(`srt://127.0.0.1:${port}?mode=listener&latency=80`, options);
        yield* Effect.forkScoped(output.run);
        yield* srtCallerPeer({ port, forwardTo: steady.port, streamId: "steady" });
        const leaving = yield* Scope.make();
        yield* srtCallerPeer({ port, forwardTo: returning.port, streamId: "returning" }).pipe(
          Scope.extend(leaving),
        );
        yield* eventually("two receivers", () =>
          output.status().srt?.peers.length === 2 ? true : undefined,
        );

        const sending = yield* Effect.fork(sendLive(output, new TsGenerator({ seed: 18 }), 400));
        yield* Scope.close(leaving, Exit.void);
        yield* eventually("the gone receiver dropped from the list", () => {
          const listed = output.status().srt?.peers ?? [];
          return listed.length === 1 && listed[0]?.streamId === "steady" ? true : undefined;
        });
        const returnedAt = returning.totalBytes();
        yield* srtCallerPeer({ port, forwardTo: returning.port, streamId: "returning" });
        yield* eventually("the receiver served again", () =>
          output.status().srt?.peers.length === 2 && returning.totalBytes() > returnedAt ? true : undefined,
        );
        const everything = yield* Fiber.join(sending);
        expect((yield* received(steady, everything)).equals(everything)).toBe(true);
        expect(output.status()).toMatchObject({ state: "connected", reconnects: 0 });
      }),
  );

  it.scopedLive(
    "a listener whose receivers all left waits for the next at once: no error, no backoff, its port open",
    () =>
      Effect.gen(function* () {
        const port = yield* freeUdpPort;
        const states: Array<string> = [];
        const output = yield* makeOutput(
          `srt://127.0.0.1:${port}?mode=listener&latency=80`,
          options,
          (event) => {
            if (event.type === "state") states.push(event.state);
          },
        );
        yield* Effect.forkScoped(output.run);
        yield* eventually("the listener to wait", () =>
          output.status().state === "connecting" ? true : undefined,
        );
        // The channel's stream, all along: each receiver must get bytes of it soon after it calls.
        const generator = new TsGenerator({ seed: 23 });
        yield* Effect.forkScoped(
          Effect.forever(
            Effect.zipRight(
              Effect.sync(() => output.offer(generator.datagram())),
              Effect.sleep("10 millis"),
            ),
          ),
        );
        const joins: Array<number> = [];
        for (let cycle = 0; cycle < 5; cycle++) {
          const sink = yield* udpSink;
          const leaving = yield* Scope.make();
          const calledAt = performance.now();
          yield* srtCallerPeer({ port, forwardTo: sink.port }).pipe(Scope.extend(leaving));
          // The old listener closed its port for the reconnect backoff (1, 2, 4, 8, 16 s): the fifth caller
          // waited 16 s. A waiting listener answers within SRT's handshake, well under 3 s.
          yield* eventually(
            `receiver ${cycle + 1} to get bytes`,
            () => (sink.totalBytes() > 0 ? true : undefined),
            {
              timeoutMs: 3000,
            },
          );
          joins.push(Math.round(performance.now() - calledAt));
          expect(output.status().state).toBe("connected");
          yield* Scope.close(leaving, Exit.void);
          yield* eventually(`receiver ${cycle + 1} to be gone and the listener waiting`, () => {
            const status = output.status();
            return status.state === "connecting" && status.srt?.peers.length === 0 ? true : undefined;
          });
          expect(ownUdpPorts().has(port)).toBe(true);
        }
        console.log(`listener rejoin times (ms): ${joins.join(", ")}`);
        expect(states).not.toContain("reconnecting");
        expect(output.status()).toMatchObject({ errors: 0, reconnects: 0, lastError: null, queueDrops: 0 });
      }),
  );

  it.scopedLive(
    "a receiver killed without a word while nothing flows is dropped at a statistics reading; the listener waits again",
    () =>
      Effect.gen(function* () {
        const [first, next] = [yield* udpSink, yield* udpSink];
        const port = yield* freeUdpPort;
        const output = yield* makeOutput(`srt://127.0.0.1:${port}?mode=listener&latency=80`, options);
        yield* Effect.forkScoped(output.run);
        const caller = yield* srtCallerPeer({ port, forwardTo: first.port });
        yield* connected(output);
        const generator = new TsGenerator({ seed: 24 });
        const expected = yield* sendLive(output, generator, 20);
        expect((yield* received(first, expected)).equals(expected)).toBe(true);

        // SIGKILL: no shutdown message; libsrt gives the link up once the peer has been silent for its idle
        // timeout (5 s), and with no send to fail only the socket's state at a reading shows it.
        process.kill(caller.pid ?? 0, "SIGKILL");
        yield* eventually(
          "the silent receiver dropped and the listener waiting",
          () => {
            const status = output.status();
            return status.state === "connecting" && status.srt?.peers.length === 0 ? true : undefined;
          },
          { timeoutMs: 15_000 },
        );
        expect(output.status()).toMatchObject({ errors: 0, reconnects: 0 });

        yield* srtCallerPeer({ port, forwardTo: next.port });
        yield* connected(output);
        const after = yield* sendLive(output, generator, 20);
        expect((yield* received(next, after)).equals(after)).toBe(true);
      }),
  );

  it.scopedLive(
    "listener with a passphrase: a caller with a wrong one gets nothing; the right one is served",
    () =>
      Effect.gen(function* () {
        const [wrongSink, rightSink] = [yield* udpSink, yield* udpSink];
        const port = yield* freeUdpPort;
        const events: OutputEvent[] = [];
        const output = yield* makeOutput(
          `srt://127.0.0.1:${port}?mode=listener&passphrase=${passphrase}`,
          options,
          (event) => events.push(event),
        );
        yield* Effect.forkScoped(output.run);
        const wrong = yield* srtCallerPeer({
          port,
          forwardTo: wrongSink.port,
          passphrase: "not-the-passphrase",
        });
        // The handshake fails on the caller's side, in its own words; our listener never lists it as a
        // receiver, and says in its status and an event which caller it refused and why.
        yield* eventually("the wrong caller to give up", () =>
          wrong.tail().some((line) => /passphrase|BADSECRET|rejected/i.test(line)) ? true : undefined,
        );
        const refused = yield* eventually(
          "the refusal in the output's status",
          () => output.status().srtRefusals?.lastRefusal ?? undefined,
        );
        expect(refused).toMatchObject({
          caller: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
          reason: "wrong_passphrase",
          codeName: "SRT_REJ_BADSECRET",
          port,
        });
        expect(refused.message).not.toContain("not-the-passphrase");
        expect(output.status().srtRefusals?.refusals).toBeGreaterThanOrEqual(1);
        expect(events).toContainEqual(
          expect.objectContaining({
            type: "srt_refused",
            node: false,
            refusal: expect.objectContaining({ reason: "wrong_passphrase" }),
          }),
        );
        expect(output.status().state).toBe("connecting");
        expect(output.status().srt).toBeNull();
        yield* srtCallerPeer({ port, forwardTo: rightSink.port, passphrase });
        yield* connected(output);
        const expected = yield* sendLive(output, new TsGenerator({ seed: 22 }), 60);
        expect((yield* received(rightSink, expected)).equals(expected)).toBe(true);
        expect(wrongSink.totalBytes()).toBe(0);
      }),
  );

  it.scopedLive(
    "a stream-id allow-list serves the callers it names and turns others away; maxreceivers caps",
    () =>
      Effect.gen(function* () {
        const [allowed, refused, extra] = [yield* udpSink, yield* udpSink, yield* udpSink];
        const port = yield* freeUdpPort;
        const events: OutputEvent[] = [];
        const output = yield* makeOutput(
          `srt://127.0.0.1:${port}?mode=listener&allowstreamid=live/a,live/b&maxreceivers=1`,
          options,
          (event) => events.push(event),
        );
        expect(output.status().url).toBe(
          `srt://127.0.0.1:${port}?mode=listener&allowstreamid=live/a,live/b&maxreceivers=1`,
        );
        yield* Effect.forkScoped(output.run);
        yield* srtCallerPeer({ port, forwardTo: refused.port, streamId: "live/other" });
        yield* srtCallerPeer({ port, forwardTo: allowed.port, streamId: "live/a" });
        yield* connected(output);
        yield* srtCallerPeer({ port, forwardTo: extra.port, streamId: "live/b" });
        const expected = yield* sendLive(output, new TsGenerator({ seed: 19 }), 100);
        expect((yield* received(allowed, expected)).equals(expected)).toBe(true);
        expect(output.status().srt?.peers.map((peer) => peer.streamId)).toEqual(["live/a"]);
        expect(refused.totalBytes()).toBe(0);
        expect(extra.totalBytes()).toBe(0);
        // Each turned away before its handshake completed, with SRT's reason, in an event and the status.
        const reasons = yield* eventually("both refusals told", () => {
          const told = events.flatMap((event) => (event.type === "srt_refused" ? [event.refusal] : []));
          return told.some((one) => one.reason === "busy") ? told : undefined;
        });
        expect(reasons).toContainEqual(
          expect.objectContaining({
            reason: "unknown_stream_id",
            streamId: "live/other",
            codeName: "SRT_REJX_NOTFOUND",
          }),
        );
        expect(reasons).toContainEqual(
          expect.objectContaining({ reason: "busy", streamId: "live/b", codeName: "SRT_REJX_CONFLICT" }),
        );
        expect(output.status().srtRefusals?.refusals).toBeGreaterThanOrEqual(2);
        expect(output.status().srtRefusals?.lastRefusal?.reason).toMatch(/^(unknown_stream_id|busy)$/);
      }),
  );

  it.scopedLive("the receiver gets the stream paced as it was offered, not in the bursts it is sent in", () =>
    Effect.gen(function* () {
      const sink = yield* udpSink;
      const peer = yield* srtListenerPeer({ forwardTo: sink.port });
      const output = yield* makeOutput(`srt://127.0.0.1:${peer.port}?latency=120`, options);
      yield* Effect.forkScoped(output.run);
      yield* connected(output);
      const generator = new TsGenerator({ seed: 21 });
      const offeredAt: Array<number> = [];
      for (let i = 0; i < 60; i++) {
        offeredAt.push(performance.now());
        output.offer(generator.datagram());
        yield* Effect.sleep("8 millis");
      }
      yield* eventually("60 datagrams at the sink", () => (sink.arrivals.length >= 60 ? true : undefined));
      // Offered one every 8+ ms: SRT's receiver releases each at its source time plus the latency, so the
      // gaps at the sink follow the gaps at the offer, though the sender hands libsrt up to 20 ms at once.
      const gaps = (times: ReadonlyArray<number>) => times.slice(1).map((at, i) => at - (times[i] ?? at));
      const median = (values: ReadonlyArray<number>) =>
        [...values].sort((a, b) => a - b)[values.length >> 1] ?? 0;
      const offered = median(gaps(offeredAt));
      const arrived = median(gaps(sink.arrivals.slice(0, 60)));
      expect(arrived).toBeGreaterThan(offered * 0.6);
    }),
  );

  it.scopedLive("payloadsize sets the TS bytes per SRT message", () =>
    Effect.gen(function* () {
      const sink = yield* udpSink;
      const peer = yield* srtListenerPeer({ forwardTo: sink.port });
      const output = yield* makeOutput(
        `srt://127.0.0.1:${peer.port}?payloadsize=376&maxbw=5000000&oheadbw=25`,
        options,
      );
      yield* Effect.forkScoped(output.run);
      yield* connected(output);
      const expected = yield* sendLive(output, new TsGenerator({ seed: 20 }), 40);
      expect((yield* received(sink, expected)).equals(expected)).toBe(true);
      // A 7-packet chunk goes out as 376 + 376 + 376 + 188: no message is larger, none splits a packet.
      const sizes = new Set(sink.datagrams.map((datagram) => datagram.length));
      expect([...sizes].sort()).toEqual([188, 376]);
    }),
  );
});

/** The local ports of this process's UDP sockets (IPv4), from /proc: what a packet capture would show. */
const ownUdpPorts = (): Set<number> => {
  const inodes = new Set(
    readdirSync("/proc/self/fd").flatMap((fd) => {
      try {
        const link = readlinkSync(`/proc/self/fd/${fd}`);
        return link.startsWith("socket:[") ? [link.slice(8, -1)] : [];
      } catch {
        return [];
      }
    }),
  );
  const ports = new Set<number>();
  for (const line of readFileSync("/proc/net/udp", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    const [local, inode] = [fields[1], fields[9]];
    if (local !== undefined && inode !== undefined && inodes.has(inode))
      ports.add(Number.parseInt(local.split(":")[1] ?? "0", 16));
  }
  return ports;
};

describe("srt callers of one thread", () => {
  it.scopedLive(
    "share one local UDP port (one libsrt multiplexer); each stays byte for byte, stops and reconnects on its own",
    () =>
      Effect.gen(function* () {
        const sinks = [yield* udpSink, yield* udpSink, yield* udpSink];
        const listeners = [];
        // The second listener can go away and come back on its port.
        const [testScope, leaving] = [yield* Effect.scope, yield* Scope.make()];
        for (const [index, sink] of sinks.entries())
          listeners.push(
            yield* srtListenerPeer({ forwardTo: sink.port }).pipe(
              Scope.extend(index === 1 ? leaving : testScope),
            ),
          );
        const before = ownUdpPorts();
        const outputs = [];
        const fibers = [];
        for (const listener of listeners) {
          const output = yield* makeOutput(`srt://127.0.0.1:${listener.port}?latency=80`, options);
          fibers.push(yield* Effect.forkScoped(output.run));
          outputs.push(output);
        }
        for (const output of outputs) yield* connected(output);
        const added = [...ownUdpPorts()].filter((port) => !before.has(port));
        expect(added).toHaveLength(1);

        const generator = new TsGenerator({ seed: 21 });
        const first = yield* sendLive(outputs, generator, 60);
        for (const sink of sinks) expect((yield* received(sink, first)).equals(first)).toBe(true);

        // The first output stops; the other two go on through the same port, every byte, no reconnect.
        yield* Fiber.interrupt(fibers[0] as Fiber.RuntimeFiber<never, unknown>);
        const second = yield* sendLive(outputs.slice(1), generator, 60);
        const both = Buffer.concat([first, second]);
        for (const sink of sinks.slice(1)) expect((yield* received(sink, both)).equals(both)).toBe(true);
        for (const output of outputs.slice(1))
          expect(output.status()).toMatchObject({ state: "connected", reconnects: 0 });
        expect(sinks[0]?.totalBytes()).toBe(first.length);

        // The second one's receiver goes away and comes back: it reconnects through the shared port, and the
        // third is served all along, every byte, without a reconnect of its own.
        const [, returning, steady] = outputs as [Output, Output, Output];
        const streaming = yield* Effect.fork(sendLive([returning, steady], generator, 300));
        yield* Scope.close(leaving, Exit.void);
        yield* eventually(
          "the second output to see its receiver gone",
          () => (returning.status().state !== "connected" ? true : undefined),
          { timeoutMs: 20_000 },
        );
        yield* srtListenerPeer({ forwardTo: sinks[1]?.port ?? 0, port: listeners[1]?.port ?? 0 });
        yield* connected(returning, 30_000);
        const during = yield* Fiber.join(streaming);
        const after = yield* sendLive([returning, steady], generator, 40);
        const all = Buffer.concat([both, during, after]);
        expect((yield* received(sinks[2] as UdpSink, all)).equals(all)).toBe(true);
        expect(steady.status()).toMatchObject({ state: "connected", reconnects: 0 });
        yield* eventually("the data sent after the reconnect, at the end of the second stream", () => {
          const got = sinks[1]?.bytes() ?? Buffer.alloc(0);
          return got.length >= after.length && got.subarray(got.length - after.length).equals(after)
            ? true
            : undefined;
        });
        expect(returning.status().reconnects).toBeGreaterThanOrEqual(1);
        expect([...ownUdpPorts()].filter((port) => !before.has(port))).toEqual(added);
      }),
  );
});

describe("the libsrt binding", () => {
  it("SRT_TRACEBSTATS has the layout of libsrt 1.5.1's srt.h (as gcc lays it out: 496 bytes, msRTT at 328)", () => {
    expect(koffi.sizeof(TraceBStats)).toBe(496);
    expect(koffi.offsetof(TraceBStats, "msRTT")).toBe(328);
    expect(koffi.offsetof(TraceBStats, "byteRecvUnique")).toBe(488);
  });

  it("a libsrt that cannot be loaded is named, with the command that installs it", () => {
    const result = loadLibSrtFrom(["/nonexistent/libsrt.so.1.5"]);
    expect("error" in result ? result.error : "loaded").toBe(
      "SRT needs libsrt, which cannot be loaded (/nonexistent/libsrt.so.1.5); install it with: apt-get install libsrt1.5-openssl",
    );
  });
});
