/**
 * The channel's frame memory (src/core/flv/frame-memory.ts): a body's memory goes to another frame only once
 * every holder let it go, and what the channel keeps free stays within its bound. Through the remux: frames a
 * listener holds keep their bytes while the stream goes on, and the memory of those it let go is used again.
 */
import { readFileSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FrameMemory } from "../../../src/core/flv/frame-memory.ts";
import type { FlvFrame } from "../../../src/core/flv/frames.ts";
import { FlvRemux } from "../../../src/core/flv/remux.ts";
import { ffmpeg, mediaDir } from "./media.ts";

const dir = mediaDir("flv-frame-memory-");

describe("frame memory", () => {
  it("hands a body's memory to another frame only after its last holder released it", () => {
    const memory = new FrameMemory();
    const first = memory.take(30_000);
    first.body.fill(1);
    first.hold(); // one connection queues it
    first.hold(); // and the other
    first.release(); // the remux's own hold, after its listeners
    first.release(); // one connection's socket wrote it
    const meanwhile = memory.take(30_000);
    expect(meanwhile.memory).not.toBe(first.memory);
    meanwhile.body.fill(2);
    expect(first.body.every((byte) => byte === 1)).toBe(true);
    first.release(); // the other connection's write
    const next = memory.take(20_000); // another size of the same class
    expect(next.memory).toBe(first.memory);
    expect(next.body.length).toBe(20_000);
    expect(memory.made).toBe(2);
    expect(memory.reused).toBe(1);
  });

  it("ignores a release past the last holder rather than handing out bytes twice", () => {
    const memory = new FrameMemory();
    const lease = memory.take(1000);
    lease.release();
    lease.release();
    expect(memory.overReleased).toBe(1);
    const a = memory.take(1000);
    const b = memory.take(1000);
    expect(a.memory).not.toBe(b.memory);
  });

  it("keeps no more free memory than its bound", () => {
    const memory = new FrameMemory(256 * 1024);
    const leases = Array.from({ length: 20 }, () => memory.take(60_000)); // 64 KiB each
    for (const lease of leases) lease.release();
    expect(memory.kept).toBe(256 * 1024);
    expect(memory.kept).toBeLessThanOrEqual(memory.maxFreeBytes);
  });

  it("gives a write's callback when the socket is destroyed with the write still pending", async () => {
    // What an RTMP output relies on to release a frame its dropped connection had in its socket's buffer.
    const server = createServer((socket) => socket.pause());
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const { port } = server.address() as { port: number };
    const socket = tcpConnect(port, "127.0.0.1");
    await new Promise<void>((done) => socket.once("connect", done));
    let called = 0;
    const big = Buffer.alloc(8 << 20);
    for (let i = 0; i < 4; i++) socket.write(big, () => called++);
    expect(socket.writableLength).toBeGreaterThan(0);
    socket.on("error", () => {});
    socket.destroy();
    await new Promise<void>((done) => socket.once("close", () => done()));
    await new Promise((done) => setImmediate(done));
    expect(called).toBe(4);
    server.close();
  });
});

describe("a remux that reuses its frames' memory", () => {
  const input = join(dir, "in.ts");
  ffmpeg(
    ...["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"],
    ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4"],
    ...["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "2"],
    ...["-c:a", "aac", "-ac", "2", "-f", "mpegts", input],
  );
  const ts = new Uint8Array(readFileSync(input));
  const bodies = (options: { reuseMemory: boolean }, keep: (frame: FlvFrame, i: number) => boolean) => {
    const remux = new FlvRemux(options);
    const held: FlvFrame[] = [];
    const all: string[] = [];
    remux.listen((frame) => {
      if (frame.kind !== "video" && frame.kind !== "audio") return;
      all.push(Buffer.from(frame.body).toString("hex"));
      if (keep(frame, all.length - 1)) {
        frame.lease?.hold();
        held.push(frame);
      }
    });
    for (let at = 0; at + 1316 <= ts.length; at += 1316) remux.push(ts.subarray(at, at + 1316));
    return { remux, held, all };
  };

  it("leaves the bytes of every frame a listener holds as they were made, and uses the others' memory again", () => {
    const plain = bodies({ reuseMemory: false }, () => false);
    // Every fifth frame held to the end, as a slow connection's queue would; the rest let go at once.
    const reusing = bodies({ reuseMemory: true }, (_, i) => i % 5 === 0);
    expect(reusing.all).toEqual(plain.all);
    expect(reusing.held.length).toBeGreaterThan(50);
    const heldNow = reusing.held.map((frame) => Buffer.from(frame.body).toString("hex"));
    expect(heldNow).toEqual(plain.all.filter((_, i) => i % 5 === 0));
    const memory = reusing.remux.memory;
    expect(memory).not.toBeNull();
    // The frames let go: their memory went to the frames after them.
    expect(memory?.reused).toBeGreaterThan(plain.all.length / 2);
    expect(memory?.made).toBeLessThan(reusing.held.length + 20);
    for (const frame of reusing.held) frame.lease?.release();
    expect(memory?.overReleased).toBe(0);
  });

  it("makes every body its own when asked not to reuse (a listener that keeps frames without holding them)", () => {
    const plain = bodies({ reuseMemory: false }, () => true);
    expect(plain.remux.memory).toBeNull();
    expect(plain.held.every((frame) => frame.lease === null)).toBe(true);
    expect(plain.held.map((frame) => Buffer.from(frame.body).toString("hex"))).toEqual(plain.all);
  });
});
