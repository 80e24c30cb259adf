import { describe, expect, it } from "vitest";
import {
  ChunkReader,
  encodeMessage,
  encodeMessageInto,
  messageLength,
  type RtmpMessage,
} from "../../../src/core/rtmp/chunks.ts";

const read = (bytes: Uint8Array, step = bytes.length): RtmpMessage[] => {
  const reader = new ChunkReader();
  reader.chunkSize = 4096;
  const out: RtmpMessage[] = [];
  for (let at = 0; at < bytes.length; at += step)
    reader.push(bytes.subarray(at, at + step), (m) => out.push(m));
  return out;
};

describe("RTMP chunks", () => {
  it("repeats an extended timestamp in every continuation chunk, and reads it back from any split", () => {
    const body = Uint8Array.from({ length: 10_000 }, (_, i) => i & 0xff);
    const timestamp = 0x1234567; // past 2^24 ms
    const bytes = encodeMessage(4096, { chunkStream: 6, type: 9, streamId: 1, timestamp, body });
    // One 12-byte header + 4 extended; two continuation chunks of 1 byte + 4 extended each.
    expect(bytes.length).toBe(12 + 4 + 2 * (1 + 4) + body.length);
    expect([...bytes.subarray(1, 4)]).toEqual([0xff, 0xff, 0xff]);
    const second = 12 + 4 + 4096;
    expect(bytes[second]).toBe(0xc6); // format 3, chunk stream 6
    expect(Buffer.from(bytes.subarray(second + 1, second + 5)).readUInt32BE(0)).toBe(timestamp);
    for (const step of [bytes.length, 7, 1]) {
      const [message] = read(bytes, step);
      expect(message).toMatchObject({ chunkStream: 6, type: 9, streamId: 1, timestamp });
      expect(Buffer.compare(Buffer.from(message?.body ?? []), Buffer.from(body))).toBe(0);
    }
  });

  it("reads compressed headers: a format 2 delta, then a format 3 message repeating it", () => {
    const bytes = Uint8Array.of(
      ...[0x04, 0, 0, 100, 0, 0, 2, 8, 1, 0, 0, 0, 0xaa, 0xbb], // format 0: ts 100, 2 bytes, audio, stream 1
      ...[0x84, 0, 0, 20, 0xcc, 0xdd], // format 2: +20 ms, same length and type
      ...[0xc4, 0xee, 0xff], // format 3: a new message, +20 ms again
    );
    const messages = read(bytes);
    expect(messages.map((m) => [m.timestamp, m.type, m.streamId, [...m.body]])).toEqual([
      [100, 8, 1, [0xaa, 0xbb]],
      [120, 8, 1, [0xcc, 0xdd]],
      [140, 8, 1, [0xee, 0xff]],
    ]);
  });
});

describe("a message's chunks written into a buffer of one's own", () => {
  it("are encodeMessage's bytes, written where asked, the bytes around them untouched, and read back whole", () => {
    const body = Buffer.from(Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7) & 0xff));
    for (const length of [0, 1, 4095, 4096, 4097, 8192, 10_000])
      for (const timestamp of [0, 40, 0xfffffe, 0xffffff, 0x1234567])
        for (const chunkStream of [6, 70, 400]) {
          const message = { chunkStream, type: 9, streamId: 1, timestamp, body: body.subarray(0, length) };
          const size = messageLength(4096, message);
          const out = Buffer.alloc(size + 20, 0xee);
          expect(encodeMessageInto(4096, message, out, 10)).toBe(10 + size);
          expect(Buffer.compare(out.subarray(10, 10 + size), Buffer.from(encodeMessage(4096, message)))).toBe(
            0,
          );
          expect([...out.subarray(0, 10), ...out.subarray(10 + size)].every((byte) => byte === 0xee)).toBe(
            true,
          );
          expect(read(out.subarray(10, 10 + size))[0]?.body.length ?? 0).toBe(length);
        }
  });
});
