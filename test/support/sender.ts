import { createSocket } from "node:dgram";
import { Effect } from "effect";
import { pace } from "./pace.ts";
import { RtpWrapper } from "./ts-generator.ts";

export const DATAGRAM_BYTES = 7 * 188;

/** Splits a TS into 1316-byte datagrams (the last may be shorter, still whole packets). */
export const chunkTs = (ts: Uint8Array): Uint8Array[] => {
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < ts.length; offset += DATAGRAM_BYTES)
    chunks.push(ts.subarray(offset, offset + DATAGRAM_BYTES));
  return chunks;
};

export const asRtp = (chunks: ReadonlyArray<Uint8Array>, firstSequence = 0): Uint8Array[] => {
  const rtp = new RtpWrapper({ sequence: firstSequence, ssrc: 0x0d15_7a1b });
  return chunks.map((chunk, index) => rtp.wrap(chunk, index * 90));
};

/**
 * Sends datagrams to 127.0.0.1:port at about `perMs` datagrams per millisecond (1 ≈ 10.5 Mbit/s of TS),
 * the way a live encoder paces them, so no receive buffer on the way overflows.
 */
export const sendPaced = (datagrams: ReadonlyArray<Uint8Array>, port: number, perMs = 1) =>
  Effect.async<void>((resume) => {
    const socket = createSocket("udp4");
    pace(
      datagrams.length,
      perMs,
      (index, sent) => {
        const datagram = datagrams[index];
        if (datagram === undefined) return 0;
        socket.send(datagram, port, "127.0.0.1", sent);
        return 1;
      },
      () => socket.close(() => resume(Effect.void)),
    );
  });

/** One sender of `sendInterleaved`: its own socket, bound to `from` (a loopback address) when given. */
export interface SenderStream {
  /** A hole (undefined) sends nothing in that slot. */
  readonly datagrams: ReadonlyArray<Uint8Array | undefined>;
  readonly from?: string;
}

/**
 * Sends several streams to host:port (127.0.0.1 unless told) at once, each from its own socket: slot i carries datagram i of
 * every stream that has one, at about `perMs` slots per millisecond (pacing as sendPaced). For a real stream
 * with strangers' datagrams mixed in, or two senders on 127.0.0.1 and 127.0.0.2 (on Linux the whole
 * 127.0.0.0/8 is loopback).
 */
export const sendInterleaved = (
  streams: ReadonlyArray<SenderStream>,
  port: number,
  perMs = 1,
  /** Where to: 127.0.0.1 or ::1, the senders bound in the same family. */
  host = "127.0.0.1",
) =>
  Effect.async<void>((resume) => {
    let bound = 0;
    const sockets = streams.map((stream) => {
      const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
      socket.bind({ port: 0, address: stream.from ?? host }, () => {
        bound++;
        if (bound === streams.length) start();
      });
      return socket;
    });
    const slots = Math.max(0, ...streams.map((stream) => stream.datagrams.length));
    let next = 0;
    let pending = 0;
    let closed = false;
    const finish = () => {
      if (closed || next < slots || pending > 0) return;
      closed = true;
      let open = sockets.length;
      if (open === 0) resume(Effect.void);
      for (const socket of sockets)
        socket.close(() => {
          open--;
          if (open === 0) resume(Effect.void);
        });
    };
    const sent = () => {
      pending--;
      finish();
    };
    const start = () => {
      const started = performance.now();
      const tick = () => {
        const due = Math.min(slots, Math.floor((performance.now() - started) * perMs) + 1);
        while (next < due) {
          for (const [index, stream] of streams.entries()) {
            const datagram = stream.datagrams[next];
            if (datagram === undefined) continue;
            pending++;
            sockets[index]?.send(datagram, port, host, sent);
          }
          next++;
        }
        if (next < slots) setTimeout(tick, 1);
        else finish();
      };
      tick();
    };
    if (streams.length === 0) resume(Effect.void);
  });
