/**
 * Faults at the TS layer, injected a known number of times into a clean stream (one ffmpeg made), so a test
 * can check that the packet core's TR 101 290 indicators count exactly what was injected: unflagged PCR jumps,
 * PTS gaps, a PMT with a bad CRC, transport_error_indicator, a PID dropped for a while, a burst of continuity
 * errors. The stream keeps its length and every packet its place (a removed packet becomes a null packet),
 * so the arrival times `packetClock` read from the clean stream still hold for the faulty one.
 * corrupt.ts is its counterpart inside the frames: there the TS layer stays clean.
 */
import {
  NULL_PID,
  PACKET,
  payloadOffset,
  pcrOf,
  pidAt,
  ptsAt,
  unitStartAt,
  writePcr,
} from "../../src/core/ts/index.ts";

const PCR_TICKS_PER_MS = 27_000;

const packetAt = (ts: Uint8Array, index: number) => ts.subarray(index * PACKET, (index + 1) * PACKET);
const packetCount = (ts: Uint8Array) => Math.floor(ts.length / PACKET);

/** The first PID that carries a PCR. */
export const pcrPidOf = (ts: Uint8Array): number => {
  for (let i = 0; i < packetCount(ts); i++) if (pcrOf(packetAt(ts, i)) >= 0) return pidAt(packetAt(ts, i));
  throw new Error("ts-faults: the stream carries no PCR");
};

/**
 * Each packet's arrival in milliseconds, as a sender pacing the stream by its PCR would send it: a packet
 * with a PCR at its PCR, the others in proportion between the PCRs on either side (the first ones at the
 * first PCR, the last at the last). Starts at `startMs`; whole milliseconds, so PCRs 40 ms apart arrive
 * exactly 40 ms apart.
 */
export const packetClock = (ts: Uint8Array, startMs = 1000): number[] => {
  const pcrPid = pcrPidOf(ts);
  const marks: Array<[number, number]> = [];
  for (let i = 0; i < packetCount(ts); i++) {
    const packet = packetAt(ts, i);
    if (pidAt(packet) === pcrPid && pcrOf(packet) >= 0) marks.push([i, pcrOf(packet) / PCR_TICKS_PER_MS]);
  }
  const [firstIndex, firstMs] = marks[0] as [number, number];
  const times: number[] = [];
  let mark = 0;
  for (let i = 0; i < packetCount(ts); i++) {
    while (mark + 1 < marks.length && (marks[mark + 1] as [number, number])[0] <= i) mark++;
    const [index, ms] = marks[mark] as [number, number];
    const next = marks[mark + 1];
    const at =
      i <= firstIndex
        ? firstMs
        : next === undefined
          ? ms
          : ms + ((next[1] - ms) * (i - index)) / (next[0] - index);
    times.push(startMs + Math.round(at - firstMs));
  }
  return times;
};

export type TsFault =
  /**
   * `count` jumps of `jumpMs` (200; negative: backwards) in the PCR, every PCR after each moved with it;
   * none with the discontinuity_indicator unless `flagged`.
   */
  | {
      readonly kind: "pcr_jump";
      readonly count: number;
      readonly jumpMs?: number;
      readonly flagged?: boolean;
    }
  /** `count` stretches of `gapMs` (1000) on `pid` whose PES headers lose their PTS (and DTS). */
  | { readonly kind: "pts_gap"; readonly pid: number; readonly count: number; readonly gapMs?: number }
  /** `count` sections on `pid` (a PMT's) with their CRC_32 broken. */
  | { readonly kind: "crc"; readonly pid: number; readonly count: number }
  /** `count` packets of `pid` with transport_error_indicator set. */
  | { readonly kind: "transport_error"; readonly pid: number; readonly count: number }
  /** Every packet of `pid` from `fromMs` for `forMs` replaced by a null packet. */
  | { readonly kind: "drop_pid"; readonly pid: number; readonly fromMs: number; readonly forMs: number }
  /** `count` continuity errors on `pid` in a row: every other packet of it removed from `fromMs` on. */
  | { readonly kind: "cc_burst"; readonly pid: number; readonly count: number; readonly fromMs: number };

export interface Injected {
  /** The stream with the faults, as long as the input. */
  readonly ts: Buffer;
  /** How many faults went in (packets dropped, for drop_pid). */
  readonly injected: number;
  /** The arrival (packetClock) of each. */
  readonly atMs: ReadonlyArray<number>;
}

/** `fault` injected into a copy of `input`; `times` is the clean stream's packetClock. */
export const injectFault = (input: Uint8Array, times: ReadonlyArray<number>, fault: TsFault): Injected => {
  const ts = Buffer.from(input);
  const atMs: number[] = [];
  const time = (index: number) => times[index] ?? 0;
  const packets = (pid: number, keep: (packet: Uint8Array) => boolean) =>
    [...Array(packetCount(ts)).keys()].filter((i) => pidAt(packetAt(ts, i)) === pid && keep(packetAt(ts, i)));
  // `count` of `indices` spread evenly through them, the first and last left alone.
  const spread = (indices: ReadonlyArray<number>, count: number) =>
    Array.from(
      { length: count },
      (_, k) => indices[Math.floor(((k + 1) * indices.length) / (count + 1))] ?? 0,
    );
  // A packet with payload only, no PCR, not starting a unit: losing or flagging it touches nothing else.
  const plain = (packet: Uint8Array) => ((packet[3] ?? 0) & 0x30) === 0x10 && !unitStartAt(packet);

  switch (fault.kind) {
    case "pcr_jump": {
      const pcrPid = pcrPidOf(ts);
      const withPcr = packets(pcrPid, (packet) => pcrOf(packet) >= 0);
      const jumps = new Set(spread(withPcr, fault.count));
      let offset = 0;
      for (const i of withPcr) {
        if (jumps.has(i)) {
          offset += (fault.jumpMs ?? 200) * PCR_TICKS_PER_MS;
          if (fault.flagged) ts[i * PACKET + 5] = (ts[i * PACKET + 5] ?? 0) | 0x80;
          atMs.push(time(i));
        }
        if (offset !== 0) writePcr(ts, i * PACKET + 6, pcrOf(packetAt(ts, i)) + offset);
      }
      break;
    }
    case "pts_gap": {
      const starts = packets(fault.pid, (packet) => ptsAt(packet, payloadOffset(packet)) >= 0);
      const gapMs = fault.gapMs ?? 1000;
      for (const first of spread(starts, fault.count)) {
        atMs.push(time(first));
        for (const i of starts) {
          if (time(i) < time(first) || time(i) >= time(first) + gapMs) continue;
          const flags = i * PACKET + payloadOffset(packetAt(ts, i)) + 7;
          ts[flags] = (ts[flags] ?? 0) & 0x3f;
        }
      }
      break;
    }
    case "crc":
      for (const i of spread(packets(fault.pid, unitStartAt), fault.count)) {
        const pointer = i * PACKET + payloadOffset(packetAt(ts, i));
        const section = pointer + 1 + (ts[pointer] ?? 0);
        const end = section + 3 + ((((ts[section + 1] ?? 0) & 0x0f) << 8) | (ts[section + 2] ?? 0));
        ts[end - 1] = (ts[end - 1] ?? 0) ^ 0xff;
        atMs.push(time(i));
      }
      break;
    case "transport_error":
      for (const i of spread(packets(fault.pid, plain), fault.count)) {
        ts[i * PACKET + 1] = (ts[i * PACKET + 1] ?? 0) | 0x80;
        atMs.push(time(i));
      }
      break;
    case "drop_pid":
      for (const i of packets(fault.pid, () => true)) {
        if (time(i) < fault.fromMs || time(i) >= fault.fromMs + fault.forMs) continue;
        nullPacket(ts, i);
        atMs.push(time(i));
      }
      break;
    case "cc_burst": {
      const after = packets(fault.pid, plain).filter((i) => time(i) >= fault.fromMs);
      for (let k = 0; k < fault.count; k++) {
        const i = after[2 * k] ?? 0;
        nullPacket(ts, i);
        atMs.push(time(i));
      }
      break;
    }
  }
  return { ts, injected: atMs.length, atMs };
};

const nullPacket = (ts: Uint8Array, index: number) => {
  ts.fill(0xff, index * PACKET, (index + 1) * PACKET);
  ts.set([0x47, NULL_PID >> 8, NULL_PID & 0xff, 0x10], index * PACKET);
};
