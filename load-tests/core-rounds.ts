/**
 * What the packet core benchmarks replay: a pool of RTP-wrapped 1316-byte datagrams (PAT/PMT, PCR, random
 * access points, SCTE-35 cues) and the rounds that push it into a core as a channel would — one datagram a
 * call (`push`), or as whole reads of the read slots (`pushMany`, with `land` standing in for the kernel's
 * write). Typed by the calls it makes, so another checkout's core (bench-core-vs.ts) takes the same rounds.
 */
import { RtpWrapper, spliceNull, TsGenerator, timeSignal } from "../test/support/ts-generator.ts";

export const POOL = 8192;

/** The calls the rounds make: every checkout's PacketCore has them. */
export interface BenchedCore {
  push(datagram: Uint8Array, nowMs?: number): number;
  pushMany(from: number, count: number, nowMs: number): number;
  drainEvents(onEvent: () => void): number;
  reset(): void;
  trustSender(slot: number): void;
  ping(): number;
  readonly readSlots: {
    /** The core's whole memory (from offset 0). */
    readonly memory: Uint8Array;
    readonly headers: number;
    readonly names: number;
    readonly data: number;
    readonly slots: number;
    readonly slotBytes: number;
  };
}

export const makePool = () => {
  const generator = new TsGenerator({ seed: 1, bitrate: 20_000_000 });
  for (let ms = 50; ms < 10_000; ms += 100)
    generator.insertScte35(ms % 200 === 50 ? spliceNull() : timeSignal(ms * 90), ms);
  const rtp = new RtpWrapper({ ssrc: 0x5eed });
  const datagrams: Uint8Array[] = [];
  const times: number[] = [];
  for (let i = 0; i < POOL; i++) {
    times.push(generator.nowMs);
    datagrams.push(rtp.wrap(generator.datagram()));
  }
  return { datagrams, times, spanMs: generator.nowMs };
};
export type Pool = ReturnType<typeof makePool>;

/** The rounds of one core over `pool`; `sink` keeps what they return from being optimised away. */
export const roundsOf = (core: BenchedCore, pool: Pool) => {
  const { datagrams, times, spanMs } = pool;
  let sink = 0;
  let clockBase = 0;
  const count = () => sink++;
  const push = () => {
    // Replaying the pool restarts sequence numbers and continuity counters; offset the clock so time still
    // moves forward, and reset so the replay is not counted as loss.
    core.reset();
    for (let i = 0; i < POOL; i++) {
      sink += core.push(datagrams[i] as Uint8Array, clockBase + (times[i] as number));
      if ((i & 1023) === 1023) core.drainEvents(count);
    }
    core.drainEvents(count);
    clockBase += spanMs;
  };
  const { memory, headers, names, data, slots, slotBytes } = core.readSlots;
  const words = new DataView(memory.buffer, memory.byteOffset);
  for (let slot = 0; slot < slots; slot++) {
    words.setUint16(names + slot * 32, 2, true);
    words.setUint32(names + slot * 32 + 4, 0x0100007f, true);
  }
  const land = (from: number) => {
    for (let slot = 0; slot < slots; slot++) {
      const datagram = datagrams[from + slot] as Uint8Array;
      memory.set(datagram, data + slot * slotBytes);
      words.setUint32(headers + slot * 64 + 56, datagram.length, true);
    }
  };
  /** What recvmmsg(2) would write into the read slots, written here in JavaScript: not the core's cost. */
  const landOnly = () => {
    for (let i = 0; i < POOL; i += slots) land(i);
  };
  const pushMany = () => {
    core.reset();
    core.trustSender(0);
    for (let i = 0; i < POOL; i += slots) {
      land(i);
      sink += core.pushMany(0, slots, clockBase + (times[i] as number));
      if ((i & 1023) === 1024 - slots) core.drainEvents(count);
    }
    core.drainEvents(count);
    clockBase += spanMs;
  };
  const ping = () => {
    for (let i = 0; i < POOL; i++) sink += core.ping();
  };
  return { push, pushMany, landOnly, ping, slots, sink: () => sink };
};

/** ns per operation of one round of `per` operations. */
export const timed = (per: number, round: () => void): number => {
  const start = process.hrtime.bigint();
  round();
  return Number(process.hrtime.bigint() - start) / per;
};
