/**
 * Corrupt frames as contribution feeds carry them (bit errors on a satellite or ASI leg, an encoder fault, a
 * stranger's bytes): the payloads of chosen video and audio TS packets are rewritten while their TS headers,
 * PIDs, continuity counters and adaptation fields stay valid, so the TS layer sees nothing wrong and only
 * what reads inside the frames does. Deterministic for a seed, so a failure can be replayed. `lossyMedia` is
 * the link's own damage: packets lost, and bursts of bit errors anywhere in a payload.
 */
import { PACKET_SIZE } from "./ts-generator.ts";

export const CORRUPTIONS = [
  /** Random bytes over the payload. */
  "random",
  /** A PES header whose PES_packet_length and PES_header_data_length lie (on a packet that starts a PES). */
  "lying_pes",
  /** The payload full of `00 00 01` start codes. */
  "start_codes",
  /** An H.264 SPS-like NAL unit, `00 00 00 01 67 ff ff ff …`: every exp-Golomb in it overruns. */
  "bad_sps",
  /** ADTS headers with impossible frame lengths (0, 1, 8191) back to back. */
  "bad_adts",
] as const;
export type Corruption = (typeof CORRUPTIONS)[number];

/** A small seeded generator (mulberry32): the same seed, the same corruption. */
export const seeded = (seed: number) => {
  let state = seed >>> 0;
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
};

const pidOf = (ts: Uint8Array, at: number) => (((ts[at + 1] ?? 0) & 0x1f) << 8) | (ts[at + 2] ?? 0);

/** Where a packet's payload starts (after its adaptation field), or -1 when it has none. */
const payloadStart = (ts: Uint8Array, at: number): number => {
  const control = ((ts[at + 3] ?? 0) >> 4) & 3;
  if ((control & 1) === 0) return -1;
  const start = at + (control === 3 ? 5 + (ts[at + 4] ?? 0) : 4);
  return start < at + PACKET_SIZE ? start : -1;
};

/** Rewrites ts[from, to) as `kind` says; `starts` is whether the payload begins a PES. */
const corrupt = (
  ts: Uint8Array,
  from: number,
  to: number,
  kind: Corruption,
  starts: boolean,
  random: () => number,
) => {
  const fill = (pattern: ReadonlyArray<number>, at = from) => {
    for (let i = at; i < to; i++) ts[i] = pattern[(i - at) % pattern.length] ?? 0;
  };
  switch (kind) {
    case "random":
      for (let i = from; i < to; i++) ts[i] = Math.floor(random() * 256);
      return;
    case "lying_pes":
      if (starts && to - from >= 9) {
        // PES_packet_length: far more or far less than the PES holds; PES_header_data_length past the packet.
        ts[from + 4] = random() < 0.5 ? 0xff : 0x00;
        ts[from + 5] = random() < 0.5 ? 0xff : 0x03;
        ts[from + 8] = 0xf0 + Math.floor(random() * 16);
      } else for (let i = from; i < to; i++) ts[i] = Math.floor(random() * 256);
      return;
    case "start_codes":
      fill([0x00, 0x00, 0x01]);
      return;
    case "bad_sps":
      fill([0x00, 0x00, 0x00, 0x01, 0x67, 0x64, 0x00, 0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
      return;
    case "bad_adts": {
      const lengths = [0, 1, 8191];
      const length = lengths[Math.floor(random() * lengths.length)] ?? 0;
      // syncword, MPEG-4, no CRC; AAC LC, 48 kHz, 2 channels; frame_length as chosen; fullness 0x7ff.
      fill([0xff, 0xf1, 0x4c, 0x80 | (length >> 11), (length >> 3) & 0xff, ((length & 7) << 5) | 0x1f, 0xfc]);
      return;
    }
  }
};

export interface Corrupted {
  /** The stream as sent: the input with the chosen packets' payloads rewritten, the same length. */
  readonly ts: Buffer;
  /** How many packets each kind of corruption rewrote. */
  readonly counts: Readonly<Record<Corruption, number>>;
  /** Video and audio packets in the stream, corrupted or not. */
  readonly mediaPackets: number;
}

/**
 * Rewrites the payloads of `fraction` of the packets on `pids` (the video and audio), each with one of
 * `kinds` in turn, chosen by a generator seeded with `seed`.
 */
export const corruptMedia = (
  input: Uint8Array,
  options: {
    readonly pids: ReadonlyArray<number>;
    readonly fraction: number;
    readonly seed: number;
    readonly kinds?: ReadonlyArray<Corruption>;
  },
): Corrupted => {
  const ts = Buffer.from(input);
  const random = seeded(options.seed);
  const kinds = options.kinds ?? CORRUPTIONS;
  const counts = Object.fromEntries(CORRUPTIONS.map((kind) => [kind, 0])) as Record<Corruption, number>;
  let mediaPackets = 0;
  let turn = 0;
  for (let at = 0; at + PACKET_SIZE <= ts.length; at += PACKET_SIZE) {
    if (!options.pids.includes(pidOf(ts, at))) continue;
    mediaPackets++;
    const from = payloadStart(ts, at);
    if (from < 0 || random() >= options.fraction) continue;
    const kind = kinds[turn++ % kinds.length] ?? "random";
    corrupt(ts, from, at + PACKET_SIZE, kind, ((ts[at + 1] ?? 0) & 0x40) !== 0, random);
    counts[kind]++;
  }
  return { ts, counts, mediaPackets };
};

export interface Lossy {
  /** The stream as sent: shorter by the packets lost. */
  readonly ts: Buffer;
  /** Packets dropped on the way, and packets whose payload took a burst of bit errors. */
  readonly lost: number;
  readonly flipped: number;
  /** Packets on the PIDs chosen, hit or not. */
  readonly mediaPackets: number;
}

/**
 * A contribution link's damage, as a receiver of the TS gets it: `fraction` of the packets on `pids` hit,
 * half of them lost (gone from the stream, so their PID's continuity counter skips), the others with a burst
 * of one to four bytes of their payload flipped (bit errors the link's FEC did not catch). Every other burst
 * lands anywhere in its packet's payload; the others are aimed at the first 24 bytes of the next packet that
 * starts a PES, a frame's PES header and delimiter (on a real link no likelier than anywhere else, but here
 * the damage that once cost the rest of a GOP is met in every run). TS headers and every other packet are
 * untouched. Deterministic for a seed.
 */
export const lossyMedia = (
  input: Uint8Array,
  options: { readonly pids: ReadonlyArray<number>; readonly fraction: number; readonly seed: number },
): Lossy => {
  const random = seeded(options.seed);
  const kept: Uint8Array[] = [];
  let lost = 0;
  let flipped = 0;
  let mediaPackets = 0;
  let bursts = 0;
  let aimed = false;
  const burst = (packet: Buffer, from: number, to: number) => {
    const length = 1 + Math.floor(random() * 4);
    const start = from + Math.floor(random() * (to - from));
    for (let i = start; i < Math.min(PACKET_SIZE, start + length); i++)
      packet[i] = (packet[i] ?? 0) ^ (1 + Math.floor(random() * 255));
    flipped++;
  };
  for (let at = 0; at + PACKET_SIZE <= input.length; at += PACKET_SIZE) {
    const packet = Buffer.from(input.subarray(at, at + PACKET_SIZE));
    if (options.pids.includes(pidOf(packet, 0))) {
      mediaPackets++;
      const from = payloadStart(packet, 0);
      if (aimed && from >= 0 && ((packet[1] ?? 0) & 0x40) !== 0) {
        aimed = false;
        burst(packet, from, Math.min(PACKET_SIZE, from + 24));
      } else if (random() < options.fraction) {
        if (random() < 0.5) {
          lost++;
          continue;
        }
        if (++bursts % 2 === 0) aimed = true;
        else if (from >= 0) burst(packet, from, PACKET_SIZE);
      }
    }
    kept.push(packet);
  }
  return { ts: Buffer.concat(kept), lost, flipped, mediaPackets };
};
