/**
 * The server's side of an RTMP publisher's connection, without sockets: our own client's messages (chunks.ts)
 * fed in pieces of any size, what the session writes back read with the same chunk reader, and what it asks of
 * its hooks (the application, the key) answered as a listener would.
 */
import { describe, expect, it } from "vitest";
import { type Amf0Value, decodeAmf0, encodeAmf0 } from "../../../src/core/flv/amf0.ts";
import {
  ChunkReader,
  controlMessage,
  encodeMessage,
  MESSAGE,
  type RtmpMessage,
  u32Body,
} from "../../../src/core/rtmp/chunks.ts";
import { type PublishRefusal, RtmpServerSession } from "../../../src/core/rtmp/server.ts";

const HANDSHAKE = 1536;

/** A session whose listener takes app `live` and key `good`, and what it wrote, closed and handed on. */
const harness = () => {
  const written: Uint8Array[] = [];
  const media: RtmpMessage[] = [];
  let closedWhy: string | null = null;
  let unpublished = 0;
  const session = new RtmpServerSession({
    write: (bytes) => written.push(bytes),
    close: (why) => {
      closedWhy = why;
    },
    connect: (app) => (app === "live" ? null : `no channel takes the application '${app}' on this port`),
    publish: (_app, name): PublishRefusal | null =>
      name.split("?")[0] === "good"
        ? null
        : { code: "NetStream.Publish.BadName", description: "the stream key is not valid" },
    media: (message) => media.push(message),
    unpublish: () => {
      unpublished++;
    },
  });
  const c1 = new Uint8Array(1 + HANDSHAKE);
  c1[0] = 3;
  for (let i = 9; i < c1.length; i++) c1[i] = i & 0xff;
  /** What the session wrote after the handshake, as messages. */
  const replies = (): RtmpMessage[] => {
    const all = Buffer.concat(written);
    const reader = new ChunkReader();
    const out: RtmpMessage[] = [];
    reader.push(all.subarray(1 + 2 * HANDSHAKE), (message) => out.push(message));
    return out;
  };
  const commands = () =>
    replies()
      .filter((message) => message.type === MESSAGE.command)
      .map((message) => {
        const values = decodeAmf0(message.body);
        return values._tag === "Right" ? values.right : [];
      });
  return {
    session,
    media,
    c1,
    written,
    replies,
    commands,
    closed: () => closedWhy,
    unpublished: () => unpublished,
  };
};

const command = (streamId: number, ...values: ReadonlyArray<Amf0Value>) =>
  encodeMessage(128, {
    chunkStream: streamId === 0 ? 3 : 8,
    type: MESSAGE.command,
    streamId,
    timestamp: 0,
    body: encodeAmf0(...values),
  });

/** Feeds `bytes` to the session in pieces of `size` bytes. */
const feed = (session: RtmpServerSession, bytes: Uint8Array, size: number) => {
  for (let at = 0; at < bytes.length; at += size) session.push(bytes.subarray(at, at + size));
};

const publisher = (key: string, app = "live") =>
  Buffer.concat([
    command(0, "connect", 1, { app, tcUrl: `rtmp://127.0.0.1/${app}` }),
    command(0, "releaseStream", 2, null, key),
    command(0, "FCPublish", 3, null, key),
    command(0, "createStream", 4, null),
    command(1, "publish", 0, null, key, "live"),
  ]);

describe("RtmpServerSession", () => {
  it("answers the handshake with S0, S1 and S2 (C1 echoed), whatever the pieces", () => {
    const h = harness();
    feed(h.session, h.c1, 100);
    const out = Buffer.concat(h.written);
    expect(out.length).toBe(1 + 2 * HANDSHAKE);
    expect(out[0]).toBe(3);
    // S1's version bytes are zero: no digest handshake.
    expect([...out.subarray(5, 9)]).toEqual([0, 0, 0, 0]);
    expect(Buffer.compare(out.subarray(1 + HANDSHAKE), Buffer.from(h.c1.subarray(1)))).toBe(0);
  });

  it("a publisher with the right key is told NetStream.Publish.Start and its media goes on", () => {
    const h = harness();
    const video = encodeMessage(128, {
      chunkStream: 6,
      type: MESSAGE.video,
      streamId: 1,
      timestamp: 40,
      body: new Uint8Array(300).fill(7),
    });
    const all = Buffer.concat([h.c1, new Uint8Array(HANDSHAKE), publisher("good?token=1"), video]);
    feed(h.session, all, 7);
    const replies = h.commands();
    expect(replies[0]?.[0]).toBe("_result");
    expect(replies[0]?.[3]).toMatchObject({ code: "NetConnection.Connect.Success" });
    expect(replies.find((values) => values[0] === "_result" && values[1] === 4)?.[3]).toBe(1);
    const status = replies.find((values) => values[0] === "onStatus");
    expect(status?.[3]).toMatchObject({ level: "status", code: "NetStream.Publish.Start" });
    expect(h.session.isPublishing).toBe(true);
    expect(h.media.map((message) => [message.type, message.timestamp, message.body.length])).toEqual([
      [MESSAGE.video, 40, 300],
    ]);
    expect(h.closed()).toBeNull();
    feed(h.session, command(1, "deleteStream", 5, null, 1), 3);
    expect(h.unpublished()).toBe(1);
    expect(h.session.isPublishing).toBe(false);
  });

  it("a wrong key is refused at publish with an onStatus error in words, and the connection closed", () => {
    const h = harness();
    feed(h.session, Buffer.concat([h.c1, new Uint8Array(HANDSHAKE), publisher("bad")]), 4096);
    const status = h.commands().find((values) => values[0] === "onStatus");
    expect(status?.[3]).toEqual({
      level: "error",
      code: "NetStream.Publish.BadName",
      description: "the stream key is not valid",
    });
    expect(h.closed()).toBe("the stream key is not valid");
    expect(h.session.isPublishing).toBe(false);
  });

  it("an application no channel takes is refused at connect (NetConnection.Connect.Rejected)", () => {
    const h = harness();
    feed(h.session, Buffer.concat([h.c1, new Uint8Array(HANDSHAKE), publisher("good", "other")]), 4096);
    const [reply] = h.commands();
    expect(reply?.[0]).toBe("_error");
    expect(reply?.[3]).toMatchObject({
      code: "NetConnection.Connect.Rejected",
      description: "no channel takes the application 'other' on this port",
    });
    expect(h.closed()).not.toBeNull();
  });

  it("follows the publisher's chunk size and acknowledges its window", () => {
    const h = harness();
    const big = encodeMessage(8192, {
      chunkStream: 6,
      type: MESSAGE.audio,
      streamId: 1,
      timestamp: 0,
      body: new Uint8Array(6000).fill(1),
    });
    const window = encodeMessage(128, controlMessage(MESSAGE.windowAckSize, u32Body(5000)));
    const chunkSize = encodeMessage(128, controlMessage(MESSAGE.setChunkSize, u32Body(8192)));
    feed(
      h.session,
      Buffer.concat([h.c1, new Uint8Array(HANDSHAKE), window, chunkSize, publisher("good"), big]),
      1000,
    );
    expect(h.media.map((message) => message.body.length)).toEqual([6000]);
    expect(h.replies().some((message) => message.type === MESSAGE.acknowledgement)).toBe(true);
  });

  it("garbage after the handshake closes the connection in words, never throws", () => {
    const h = harness();
    feed(
      h.session,
      Buffer.concat([h.c1, new Uint8Array(HANDSHAKE), Uint8Array.of(0x45, ...new Array(12).fill(1))]),
      4096,
    );
    expect(h.closed()).toMatch(/not RTMP/);
    const wrongVersion = harness();
    const c0 = Uint8Array.from(wrongVersion.c1);
    c0[0] = 6;
    feed(wrongVersion.session, c0, 4096);
    expect(wrongVersion.closed()).toMatch(/version 6/);
  });

  it("a stranger announcing huge messages or many chunk streams before publishing is closed, not served", () => {
    const huge = harness();
    const header = Uint8Array.of(0x03, 0, 0, 0, 0x10, 0, 0, 20, 0, 0, 0, 0);
    feed(
      huge.session,
      Buffer.concat([huge.c1, new Uint8Array(HANDSHAKE), header, new Uint8Array(128)]),
      4096,
    );
    expect(huge.closed()).toMatch(/a message of 1048576 bytes/);
    const many = harness();
    const streams = Array.from({ length: 40 }, (_, i) =>
      encodeMessage(128, {
        chunkStream: 10 + i,
        type: MESSAGE.command,
        streamId: 0,
        timestamp: 0,
        body: new Uint8Array(300),
      }),
    );
    feed(many.session, Buffer.concat([many.c1, new Uint8Array(HANDSHAKE), ...streams]), 4096);
    expect(many.closed()).toMatch(/more than 32 chunk streams/);
  });
});
