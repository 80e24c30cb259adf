/**
 * Datagrams someone other than the broadcaster sends to an input port, of every kind a channel must drop:
 * RTP whose payload is not whole TS, RTP from another SSRC or with another payload type, plain TS on an RTP
 * input, a TS sync byte followed by noise, noise without any sync byte, and runts. The TS in them reuses the
 * real stream's PIDs, so one that got through would also break the outputs' continuity counters.
 *
 * Each kind keeps a small pool of variants made once: a million datagrams cost no allocation per datagram.
 */
import { prng, rtpPacket, TsGenerator } from "./ts-generator.ts";

export const FOREIGN_KINDS = [
  "rtp_no_sync",
  "rtp_one_bad_sync",
  "rtp_bad_length",
  "rtp_other_ssrc",
  "rtp_other_payload_type",
  "raw_sync_then_noise",
  "raw_no_sync",
  "raw_ts",
  "runt",
] as const;
export type ForeignKind = (typeof FOREIGN_KINDS)[number];

/** The counter each kind lands in on an RTP input locked to the real SSRC (see CoreRejections). */
export const REASON_ON_RTP_INPUT: Readonly<
  Record<ForeignKind, "notTs" | "otherKind" | "foreignSsrc" | "payloadType">
> = {
  rtp_no_sync: "notTs",
  rtp_one_bad_sync: "notTs",
  rtp_bad_length: "notTs",
  rtp_other_ssrc: "foreignSsrc",
  rtp_other_payload_type: "payloadType",
  raw_sync_then_noise: "otherKind",
  raw_no_sync: "notTs",
  raw_ts: "otherKind",
  runt: "notTs",
};

/** The same reasons as the API and /metrics name them (`rejected.not_ts`, …). */
export const API_REASON_ON_RTP_INPUT = Object.fromEntries(
  Object.entries(REASON_ON_RTP_INPUT).map(([kind, reason]) => [
    kind,
    reason.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`),
  ]),
) as Readonly<Record<ForeignKind, string>>;

/** An input's `rejected` counters in the API before anything is rejected: every reason, at zero. */
export const NO_REJECTIONS: Readonly<Record<string, number>> = {
  not_ts: 0,
  other_kind: 0,
  foreign_ssrc: 0,
  payload_type: 0,
  sender_not_allowed: 0,
  own_output: 0,
};

/** The SSRC sender.ts's asRtp gives the real stream. */
export const REAL_SSRC = 0x0d15_7a1b;

const VARIANTS = 32;

export class ForeignDatagrams {
  readonly #pools: Record<ForeignKind, Uint8Array[]>;
  readonly #random: () => number;

  /** `ssrc`: the real stream's, which the RTP kinds that must fail on their payload carry. */
  constructor(options: { readonly ssrc: number; readonly seed?: number }) {
    const random = prng(options.seed ?? 99);
    this.#random = random;
    const noise = (length: number) => Uint8Array.from({ length }, () => (random() * 256) | 0);
    /** Noise whose every 188-byte boundary holds anything but the sync byte. */
    const noSync = (length: number) => {
      const bytes = noise(length);
      for (let at = 0; at < length; at += 188) if (bytes[at] === 0x47) bytes[at] = 0x46;
      return bytes;
    };
    const ts = new TsGenerator({ seed: options.seed ?? 99 });
    const sequence = () => (random() * 0x10000) | 0;
    const make = (build: () => Uint8Array) => Array.from({ length: VARIANTS }, build);
    this.#pools = {
      rtp_no_sync: make(() => rtpPacket(noSync(1316), { sequence: sequence(), ssrc: options.ssrc })),
      rtp_one_bad_sync: make(() => {
        const payload = ts.datagram().slice();
        payload[188 * ((random() * 7) | 0)] = 0x00;
        return rtpPacket(payload, { sequence: sequence(), ssrc: options.ssrc });
      }),
      rtp_bad_length: make(() =>
        rtpPacket(ts.datagram().subarray(0, 1000), { sequence: sequence(), ssrc: options.ssrc }),
      ),
      rtp_other_ssrc: make(() =>
        rtpPacket(ts.datagram(), { sequence: sequence(), ssrc: (options.ssrc + 1 + random() * 1e6) >>> 0 }),
      ),
      rtp_other_payload_type: make(() =>
        rtpPacket(ts.datagram(), { sequence: sequence(), ssrc: options.ssrc, payloadType: 96 }),
      ),
      raw_sync_then_noise: make(() => {
        const bytes = noise(1316);
        bytes[0] = 0x47;
        return bytes;
      }),
      raw_no_sync: make(() => {
        const bytes = noSync(1316);
        // Neither a sync byte nor RTP version 2 in front.
        bytes[0] = (bytes[0] ?? 0) & 0x3f;
        if (bytes[0] === 0x47) bytes[0] = 0x00;
        return bytes;
      }),
      raw_ts: make(() => ts.datagram().slice()),
      runt: make(() => {
        const bytes = noise(1 + ((random() * 11) | 0));
        // Too short for anything; never a sync byte in front (that would be plain TS, the other kind).
        if (bytes[0] === 0x47) bytes[0] = 0x80;
        return bytes;
      }),
    };
  }

  /** One datagram of `kind` (a shared buffer: send or push it before asking for the next of that kind). */
  of(kind: ForeignKind): Uint8Array {
    const pool = this.#pools[kind];
    return pool[(this.#random() * pool.length) | 0] ?? pool[0] ?? new Uint8Array(0);
  }

  /** One datagram of each kind in turn, starting anywhere. */
  next(index: number): { readonly kind: ForeignKind; readonly datagram: Uint8Array } {
    const kind = FOREIGN_KINDS[index % FOREIGN_KINDS.length] ?? "runt";
    return { kind, datagram: this.of(kind) };
  }
}
