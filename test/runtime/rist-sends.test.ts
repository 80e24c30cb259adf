/**
 * RIST sends off the JavaScript thread (src/effects/runtime/links/rist-sends.ts and rist-writer.mjs), against a real
 * ristreceiver on loopback: chunks of every size, cut into 1316-byte messages by the writer thread, arrive byte
 * for byte over more than one lap of its 16 MiB ring, and a context closes once the writer has passed all it was
 * handed, while the next one opened starts a new writer.
 */
import { expect, it } from "@effect/vitest";
import { Effect } from "effect";
import { loadLibRist } from "../../src/effects/runtime/ffi/librist.ts";
import type { RistContext } from "../../src/effects/runtime/ffi/librist-api.ts";
import { eventually, freeUdpPort, udpSink } from "../support/peers.ts";
import { ristReceiverPeer } from "../support/rist-peers.ts";

/** More than the writer's ring holds, so that its records wrap round its end. */
const TOTAL_BYTES = 17 * 1024 * 1024;
/** Chunk sizes in turn: whole messages, several, and TS packets that end mid-message. */
const SIZES = [1316, 3 * 1316, 188, 5 * 188, 1316 + 188, 20 * 188];

const stream = () => {
  const bytes = Buffer.alloc(TOTAL_BYTES);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >>> 11)) & 0xff;
  for (let at = 0; at < bytes.length; at += 188) bytes[at] = 0x47;
  return bytes;
};

/** A sender context to a ristreceiver relaying to a UDP sink, once the receiver is heard. */
const linked = Effect.gen(function* () {
  const loaded = loadLibRist();
  if (!("lib" in loaded)) return yield* Effect.die(new Error(loaded.error));
  const [port, sink] = yield* Effect.all([freeUdpPort, udpSink]);
  yield* ristReceiverPeer({ mode: "listen", port, udpPort: sink.port, buffer: 500 });
  let heard = false;
  const sender: RistContext = yield* Effect.acquireRelease(
    Effect.sync(() =>
      loaded.lib.open({
        role: "sender",
        profile: "main",
        peers: [{ url: `rist://127.0.0.1:${port}?buffer=500`, username: null, password: null }],
        statsMs: 200,
        onStats: (readings) => {
          if (readings.some((reading) => reading.heard > 0)) heard = true;
        },
      }),
    ),
    (opened) => Effect.promise(() => opened.close()),
  );
  yield* eventually("the ristreceiver heard", () => (heard ? true : undefined));
  return { sender, sink };
});

it.scopedLive(
  "chunks of every size arrive byte for byte across more than a lap of the writer's ring; close waits for it",
  () =>
    Effect.gen(function* () {
      const { sender, sink } = yield* linked;
      const bytes = stream();
      let at = 0;
      let turn = 0;
      let refused = 0;
      // About 80 Mbit/s: 100 kB every 10 ms, each batch in one turn of the event loop as a forwarding turn.
      while (at < bytes.length) {
        const until = Math.min(bytes.length, at + 100_000);
        while (at < until) {
          const size = Math.min(SIZES[turn++ % SIZES.length] as number, bytes.length - at);
          if (!sender.send(bytes.subarray(at, at + size))) refused += 1;
          at += size;
        }
        yield* Effect.sleep("10 millis");
      }
      expect(refused).toBe(0);
      yield* eventually(
        "every byte at the sink",
        () => (sink.totalBytes() >= bytes.length ? true : undefined),
        {
          timeoutMs: 20_000,
        },
      );
      expect(sink.datagrams.every((datagram) => datagram.length <= 1316)).toBe(true);
      expect(sink.bytes().equals(bytes), "byte for byte").toBe(true);
      yield* Effect.promise(() => sender.close());
      expect(sender.send(bytes.subarray(0, 1316)), "a closed context refuses a send").toBe(false);
      // The writer stopped with its last context: a new context starts another, and sends through it.
      const next = yield* linked;
      expect(next.sender.send(bytes.subarray(0, 1316))).toBe(true);
      yield* eventually("the new context's message", () =>
        next.sink.datagrams[0]?.equals(bytes.subarray(0, 1316)) ? true : undefined,
      );
    }),
  60_000,
);
