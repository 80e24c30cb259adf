/**
 * What the redundancy tests need beyond test/support: a UDP sink that keeps each datagram's arrival time (to
 * measure the gap a failover leaves), and a paced sender that interleaves datagrams to several ports the way
 * an encoder sends media and FEC, or two pipelines send the same stream.
 */
import { createSocket } from "node:dgram";
import { Effect, type Scope } from "effect";
import { udpReceiver } from "./peers.ts";

export interface TimedSink {
  readonly port: number;
  readonly arrivals: ReadonlyArray<{ readonly atMs: number; readonly datagram: Buffer }>;
  readonly bytes: () => Buffer;
  /** The largest time between two datagrams, and where it fell (index of the datagram after it). */
  readonly largestGap: () => { readonly gapMs: number; readonly index: number };
}

export const timedUdpSink: Effect.Effect<TimedSink, never, Scope.Scope> = Effect.suspend(() => {
  const arrivals: Array<{ atMs: number; datagram: Buffer }> = [];
  return udpReceiver((datagram) => arrivals.push({ atMs: performance.now(), datagram })).pipe(
    Effect.map((port) => ({
      port,
      arrivals,
      bytes: () => Buffer.concat(arrivals.map((arrival) => arrival.datagram)),
      largestGap: () => {
        let gapMs = 0;
        let index = 0;
        for (let i = 1; i < arrivals.length; i++) {
          const gap = (arrivals[i]?.atMs ?? 0) - (arrivals[i - 1]?.atMs ?? 0);
          if (gap > gapMs) {
            gapMs = gap;
            index = i;
          }
        }
        return { gapMs, index };
      },
    })),
  );
});

export interface Outgoing {
  readonly port: number;
  readonly datagram: Uint8Array;
}

/**
 * Sends each slot of `slots` (datagrams due at the same moment) at `perMs` slots per millisecond, from one
 * socket per port so each stream has its own source, as separate senders would.
 */
export const sendSlots = (slots: ReadonlyArray<ReadonlyArray<Outgoing>>, perMs = 1) =>
  Effect.async<void>((resume) => {
    const sockets = new Map<number, ReturnType<typeof createSocket>>();
    const socketFor = (port: number) => {
      const existing = sockets.get(port);
      if (existing !== undefined) return existing;
      const socket = createSocket("udp4");
      sockets.set(port, socket);
      return socket;
    };
    const started = performance.now();
    let next = 0;
    let pending = 0;
    const finish = () => {
      if (next < slots.length || pending > 0) return;
      let open = sockets.size;
      if (open === 0) resume(Effect.void);
      for (const socket of sockets.values())
        socket.close(() => {
          open--;
          if (open === 0) resume(Effect.void);
        });
    };
    const sent = () => {
      pending--;
      finish();
    };
    const tick = () => {
      const due = Math.min(slots.length, Math.floor((performance.now() - started) * perMs) + 1);
      while (next < due) {
        for (const { port, datagram } of slots[next++] ?? []) {
          pending++;
          socketFor(port).send(datagram, port, "127.0.0.1", sent);
        }
      }
      if (next < slots.length) setTimeout(tick, 1);
      else finish();
    };
    tick();
  });
