/**
 * A small deterministic MPEG-TS generator for tests and benchmarks: PAT, PMT (CUEI registration and a
 * SCTE-35 stream), a PCR-bearing video-like PID with random access points, an optional audio-like PID, and
 * SCTE-35 sections inserted at chosen stream times. Faults (continuity gaps, duplicates, discontinuities)
 * can be injected on purpose. Also builds RTP datagrams around TS payloads.
 */
import { crc32Mpeg2 } from "../../src/core/ts/crc32.ts";

export const PACKET_SIZE = 188;
export const PACKETS_PER_DATAGRAM = 7;
export const STREAM_TYPE_H264 = 0x1b;
export const STREAM_TYPE_AAC = 0x0f;
export const STREAM_TYPE_SCTE35 = 0x86;
/** registration_descriptor with format_identifier "CUEI" (SCTE 35 §8.1). */
export const CUEI_REGISTRATION: Uint8Array = Uint8Array.of(0x05, 0x04, 0x43, 0x55, 0x45, 0x49);

/** The parts one after another, in one new array. */
export const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
};

/** Appends the CRC_32 to a section whose section_length already counts it. */
export const withCrc = (withoutCrc: Uint8Array): Uint8Array => {
  const crc = crc32Mpeg2(withoutCrc);
  return concat([withoutCrc, Uint8Array.of(crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff)]);
};

const longSection = (tableId: number, extension: number, version: number, body: Uint8Array): Uint8Array => {
  const sectionLength = 5 + body.length + 4;
  const header = Uint8Array.of(
    tableId,
    0xb0 | (sectionLength >> 8),
    sectionLength & 0xff,
    extension >> 8,
    extension & 0xff,
    0xc1 | ((version & 0x1f) << 1),
    0,
    0,
  );
  return withCrc(concat([header, body]));
};

export interface PatSpec {
  readonly transportStreamId?: number;
  readonly version?: number;
  readonly programs: ReadonlyArray<{ readonly program: number; readonly pmtPid: number }>;
}

export const buildPat = (spec: PatSpec): Uint8Array => {
  const body = new Uint8Array(spec.programs.length * 4);
  spec.programs.forEach(({ program, pmtPid }, i) => {
    body.set([program >> 8, program & 0xff, 0xe0 | (pmtPid >> 8), pmtPid & 0xff], i * 4);
  });
  return longSection(0x00, spec.transportStreamId ?? 1, spec.version ?? 0, body);
};

export interface PmtStreamSpec {
  readonly streamType: number;
  readonly pid: number;
  readonly descriptors?: Uint8Array;
}
export interface PmtSpec {
  readonly program: number;
  readonly version?: number;
  readonly pcrPid: number;
  readonly programInfo?: Uint8Array;
  readonly streams: ReadonlyArray<PmtStreamSpec>;
}

export const buildPmt = (spec: PmtSpec): Uint8Array => {
  const programInfo = spec.programInfo ?? new Uint8Array(0);
  const parts: Uint8Array[] = [
    Uint8Array.of(
      0xe0 | (spec.pcrPid >> 8),
      spec.pcrPid & 0xff,
      0xf0 | (programInfo.length >> 8),
      programInfo.length & 0xff,
    ),
    programInfo,
  ];
  for (const stream of spec.streams) {
    const descriptors = stream.descriptors ?? new Uint8Array(0);
    parts.push(
      Uint8Array.of(
        stream.streamType,
        0xe0 | (stream.pid >> 8),
        stream.pid & 0xff,
        0xf0 | (descriptors.length >> 8),
        descriptors.length & 0xff,
      ),
      descriptors,
    );
  }
  return longSection(0x02, spec.program, spec.version ?? 0, concat(parts));
};

/** A splice_info_section (SCTE 35) with the given command and no descriptors. */
export const scte35Section = (commandType: number, command: Uint8Array, ptsAdjustment = 0): Uint8Array => {
  const sectionLength = 11 + command.length + 2 + 4;
  return withCrc(
    concat([
      Uint8Array.of(
        0xfc,
        0x30 | (sectionLength >> 8),
        sectionLength & 0xff,
        0, // protocol_version
        Math.floor(ptsAdjustment / 2 ** 32) & 1,
        (ptsAdjustment >>> 24) & 0xff,
        (ptsAdjustment >>> 16) & 0xff,
        (ptsAdjustment >>> 8) & 0xff,
        ptsAdjustment & 0xff,
        0, // cw_index
        0xff, // tier (12 bits, all ones) and splice_command_length (12 bits) follow
        0xf0 | (command.length >> 8),
        command.length & 0xff,
        commandType,
      ),
      command,
      Uint8Array.of(0, 0), // descriptor_loop_length
    ]),
  );
};

export const spliceNull = (): Uint8Array => scte35Section(0x00, new Uint8Array(0));

/** time_signal with a specified 33-bit pts_time in 90 kHz ticks. */
export const timeSignal = (pts: number): Uint8Array =>
  scte35Section(
    0x06,
    Uint8Array.of(
      0xfe | (Math.floor(pts / 2 ** 32) & 1),
      (pts >>> 24) & 0xff,
      (pts >>> 16) & 0xff,
      (pts >>> 8) & 0xff,
      pts & 0xff,
    ),
  );

export interface AdaptationSpec {
  readonly discontinuity?: boolean;
  readonly randomAccess?: boolean;
  /** Program clock reference in 27 MHz ticks. */
  readonly pcr?: number;
}

export interface PacketSpec {
  readonly pid: number;
  readonly cc: number;
  readonly pusi?: boolean;
  readonly payload?: Uint8Array;
  readonly adaptation?: AdaptationSpec;
  /** Fill a short payload with 0xFF after it (sections) instead of adaptation-field stuffing (PES). */
  readonly stuffAfterPayload?: boolean;
}

/** One 188-byte TS packet. A payload longer than fits is an error. */
export const tsPacket = (spec: PacketSpec): Uint8Array => {
  const packet = new Uint8Array(PACKET_SIZE).fill(0xff);
  const { payload, adaptation } = spec;
  let afBody: Uint8Array | null = null;
  if (adaptation !== undefined) {
    const flags = (adaptation.discontinuity ? 0x80 : 0) | (adaptation.randomAccess ? 0x40 : 0);
    afBody = Uint8Array.of(flags);
    if (adaptation.pcr !== undefined) {
      const base = Math.floor(adaptation.pcr / 300) % 2 ** 33;
      const ext = adaptation.pcr % 300;
      afBody = Uint8Array.of(
        flags | 0x10,
        Math.floor(base / 2 ** 25) & 0xff,
        Math.floor(base / 2 ** 17) & 0xff,
        Math.floor(base / 2 ** 9) & 0xff,
        Math.floor(base / 2) & 0xff,
        ((base % 2) << 7) | 0x7e | (ext >> 8),
        ext & 0xff,
      );
    }
  }
  // Bytes the adaptation field takes, its length byte included; 0 for none.
  let afTotal = afBody === null ? 0 : 1 + afBody.length;
  if (payload === undefined) afTotal = 184;
  else if (afTotal + payload.length > 184) throw new Error(`payload of ${payload.length} bytes does not fit`);
  else if (!spec.stuffAfterPayload) afTotal = 184 - payload.length;
  packet[0] = 0x47;
  packet[1] = (spec.pusi ? 0x40 : 0) | (spec.pid >> 8);
  packet[2] = spec.pid & 0xff;
  packet[3] = (afTotal > 0 ? 0x20 : 0) | (payload !== undefined ? 0x10 : 0) | (spec.cc & 0x0f);
  if (afTotal > 0) {
    packet[4] = afTotal - 1;
    if (afTotal > 1) packet.set(afBody ?? [0], 5);
  }
  if (payload !== undefined) packet.set(payload, 4 + afTotal);
  return packet;
};

/**
 * Splits sections into packets of one PID. `packed` puts each section right after the previous one
 * (several may share a packet, one may span several); otherwise each section starts a new packet.
 */
export const packetizeSections = (
  pid: number,
  sections: ReadonlyArray<Uint8Array>,
  firstCc = 0,
  packed = true,
): Uint8Array[] => {
  const packets: Uint8Array[] = [];
  let cc = firstCc;
  const emit = (pusi: boolean, payload: Uint8Array) => {
    packets.push(tsPacket({ pid, cc, pusi, payload, stuffAfterPayload: true }));
    cc = (cc + 1) & 0x0f;
  };
  if (!packed) {
    for (const section of sections) {
      packets.push(...packetizeSections(pid, [section], cc, true));
      cc = (firstCc + packets.length) & 0x0f;
    }
    return packets;
  }
  const stream = concat(sections);
  const starts = new Set<number>();
  let offset = 0;
  for (const section of sections) {
    starts.add(offset);
    offset += section.length;
  }
  let at = 0;
  while (at < stream.length) {
    // The first section start inside this packet's 183 bytes after a pointer_field, if any.
    let first = -1;
    for (let i = at; i < Math.min(at + 183, stream.length); i++) {
      if (starts.has(i)) {
        first = i;
        break;
      }
    }
    if (first < 0) {
      const chunk = stream.subarray(at, at + 184);
      emit(false, chunk);
      at += chunk.length;
    } else {
      const chunk = stream.subarray(at, at + 183);
      emit(true, concat([Uint8Array.of(first - at), chunk]));
      at += chunk.length;
    }
  }
  return packets;
};

/** Splits TS bytes into datagrams of `packets` packets (the last may be shorter). */
export const datagramsOf = (ts: Uint8Array, packets = PACKETS_PER_DATAGRAM): Uint8Array[] => {
  const out: Uint8Array[] = [];
  const size = packets * PACKET_SIZE;
  for (let at = 0; at < ts.length; at += size) out.push(ts.subarray(at, Math.min(at + size, ts.length)));
  return out;
};

export interface RtpHeaderSpec {
  readonly sequence: number;
  readonly timestamp?: number;
  readonly ssrc?: number;
  readonly payloadType?: number;
  readonly marker?: boolean;
  readonly csrc?: ReadonlyArray<number>;
  /** Header extension: profile-defined id and data (a multiple of 4 bytes). */
  readonly extension?: { readonly profile: number; readonly data: Uint8Array };
  /** Padding bytes to append (1-255); the last one holds the count. */
  readonly padding?: number;
}

export const rtpPacket = (payload: Uint8Array, spec: RtpHeaderSpec): Uint8Array => {
  const csrc = spec.csrc ?? [];
  const extension = spec.extension;
  const padding = spec.padding ?? 0;
  const headerLength = 12 + csrc.length * 4 + (extension ? 4 + extension.data.length : 0);
  const out = new Uint8Array(headerLength + payload.length + padding);
  const view = new DataView(out.buffer);
  out[0] = 0x80 | (padding > 0 ? 0x20 : 0) | (extension ? 0x10 : 0) | csrc.length;
  out[1] = (spec.marker ? 0x80 : 0) | ((spec.payloadType ?? 33) & 0x7f);
  view.setUint16(2, spec.sequence & 0xffff);
  view.setUint32(4, (spec.timestamp ?? 0) >>> 0);
  view.setUint32(8, (spec.ssrc ?? 0x12345678) >>> 0);
  let at = 12;
  for (const id of csrc) {
    view.setUint32(at, id >>> 0);
    at += 4;
  }
  if (extension) {
    view.setUint16(at, extension.profile);
    view.setUint16(at + 2, extension.data.length / 4);
    out.set(extension.data, at + 4);
    at += 4 + extension.data.length;
  }
  out.set(payload, at);
  if (padding > 0) out[out.length - 1] = padding;
  return out;
};

/** Wraps successive payloads in RTP with an incrementing 16-bit sequence number. */
export class RtpWrapper {
  sequence: number;
  readonly #spec: Omit<RtpHeaderSpec, "sequence">;

  constructor(spec: Partial<RtpHeaderSpec> = {}) {
    this.sequence = spec.sequence ?? 0;
    this.#spec = spec;
  }

  wrap(payload: Uint8Array, timestamp90k?: number): Uint8Array {
    const packet = rtpPacket(payload, { ...this.#spec, sequence: this.sequence, timestamp: timestamp90k });
    this.sequence = (this.sequence + 1) & 0xffff;
    return packet;
  }
}

/** mulberry32: a tiny seeded PRNG so generated streams are the same on every run. */
export const prng = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

export interface TsGeneratorOptions {
  readonly seed?: number;
  /** Stream bitrate in bit/s; sets how stream time advances per packet. */
  readonly bitrate?: number;
  readonly transportStreamId?: number;
  readonly program?: number;
  readonly pmtPid?: number;
  readonly videoPid?: number;
  /** null for a stream without audio. */
  readonly audioPid?: number | null;
  readonly scte35Pid?: number;
  readonly psiIntervalMs?: number;
  readonly pcrIntervalMs?: number;
  readonly frameIntervalMs?: number;
  readonly randomAccessIntervalMs?: number;
  /** Every n-th elementary packet is audio. */
  readonly audioEvery?: number;
}

type Fault = "gap" | "duplicate" | "discontinuity";

export class TsGenerator {
  readonly transportStreamId: number;
  readonly program: number;
  readonly pmtPid: number;
  readonly videoPid: number;
  readonly audioPid: number | null;
  readonly scte35Pid: number;
  readonly pat: Uint8Array;
  readonly pmt: Uint8Array;
  #index = 0;
  readonly #msPerPacket: number;
  readonly #options: TsGeneratorOptions;
  readonly #random: () => number;
  readonly #cc = new Map<number, number>();
  readonly #queue: Uint8Array[] = [];
  readonly #cues: Array<{ atMs: number; section: Uint8Array }> = [];
  readonly #faults = new Map<number, Fault[]>();
  #nextPsiMs = 0;
  #nextPcrMs = 0;
  #nextFrameMs = 0;
  #nextRandomAccessMs = 0;
  #elementary = 0;

  constructor(options: TsGeneratorOptions = {}) {
    this.#options = options;
    this.#random = prng(options.seed ?? 1);
    this.#msPerPacket = (PACKET_SIZE * 8 * 1000) / (options.bitrate ?? 8_000_000);
    this.transportStreamId = options.transportStreamId ?? 1;
    this.program = options.program ?? 1;
    this.pmtPid = options.pmtPid ?? 0x1000;
    this.videoPid = options.videoPid ?? 0x100;
    this.audioPid = options.audioPid === undefined ? 0x101 : options.audioPid;
    this.scte35Pid = options.scte35Pid ?? 0x1f0;
    this.pat = buildPat({
      transportStreamId: this.transportStreamId,
      programs: [{ program: this.program, pmtPid: this.pmtPid }],
    });
    const streams: PmtStreamSpec[] = [{ streamType: STREAM_TYPE_H264, pid: this.videoPid }];
    if (this.audioPid !== null) {
      streams.push({
        streamType: STREAM_TYPE_AAC,
        pid: this.audioPid,
        descriptors: Uint8Array.of(0x0a, 4, 0x65, 0x6e, 0x67, 0),
      });
    }
    streams.push({ streamType: STREAM_TYPE_SCTE35, pid: this.scte35Pid });
    this.pmt = buildPmt({
      program: this.program,
      pcrPid: this.videoPid,
      programInfo: CUEI_REGISTRATION,
      streams,
    });
  }

  /** Stream time of the next packet, in milliseconds from the first. */
  get nowMs(): number {
    return this.#index * this.#msPerPacket;
  }

  /** The 27 MHz clock at the next packet. */
  get pcr(): number {
    return Math.round(this.nowMs * 27_000);
  }

  /** Sends `section` (a whole SCTE-35 section, CRC included) on the SCTE-35 PID at stream time `atMs`. */
  insertScte35(section: Uint8Array, atMs: number = this.nowMs): void {
    this.#cues.push({ atMs, section });
    this.#cues.sort((a, b) => a.atMs - b.atMs);
  }

  /** The next packet on `pid` skips `1` continuity count. */
  injectCcGap(pid: number): void {
    this.#fault(pid, "gap");
  }

  /** The next packet on `pid` is sent twice (same bytes, same continuity counter). */
  injectDuplicate(pid: number): void {
    this.#fault(pid, "duplicate");
  }

  /** The next video packet sets discontinuity_indicator and jumps its continuity counter. */
  injectDiscontinuity(): void {
    this.#fault(this.videoPid, "discontinuity");
  }

  nextPacket(): Uint8Array {
    const queued = this.#queue.shift();
    if (queued !== undefined) return queued;
    const now = this.nowMs;
    if (now >= this.#nextPsiMs) {
      this.#nextPsiMs = now + (this.#options.psiIntervalMs ?? 100);
      this.#queueSections(0, [this.pat]);
      this.#queueSections(this.pmtPid, [this.pmt]);
    }
    const cue = this.#cues[0];
    if (cue !== undefined && cue.atMs <= now) {
      this.#cues.shift();
      this.#queueSections(this.scte35Pid, [cue.section]);
    }
    const next = this.#queue.shift();
    if (next !== undefined) return next;
    this.#index++;
    return this.#elementaryPacket(now);
  }

  /** `count` packets back to back. */
  packets(count: number): Uint8Array {
    const out = new Uint8Array(count * PACKET_SIZE);
    for (let i = 0; i < count; i++) out.set(this.nextPacket(), i * PACKET_SIZE);
    return out;
  }

  /** One UDP datagram of `packets` TS packets (1316 bytes by default). */
  datagram(packets = PACKETS_PER_DATAGRAM): Uint8Array {
    return this.packets(packets);
  }

  #fault(pid: number, fault: Fault): void {
    const list = this.#faults.get(pid) ?? [];
    list.push(fault);
    this.#faults.set(pid, list);
  }

  #takeFault(pid: number): Fault | undefined {
    return this.#faults.get(pid)?.shift();
  }

  #nextCc(pid: number, fault: Fault | undefined): number {
    const cc =
      ((this.#cc.get(pid) ?? 15) + 1 + (fault === "gap" ? 1 : fault === "discontinuity" ? 7 : 0)) & 0x0f;
    this.#cc.set(pid, cc);
    return cc;
  }

  // Table packets go through the queue, so each one counts as a packet of stream time when it is sent.
  #queueSections(pid: number, sections: ReadonlyArray<Uint8Array>): void {
    for (const packet of packetizeSections(pid, sections)) {
      const fault = this.#takeFault(pid);
      packet[3] =
        ((packet[3] ?? 0) & 0xf0) | this.#nextCc(pid, fault === "discontinuity" ? undefined : fault);
      this.#queue.push(packet);
      if (fault === "duplicate") this.#queue.push(packet.slice());
      this.#index++;
    }
  }

  #elementaryPacket(now: number): Uint8Array {
    this.#elementary++;
    const audioEvery = this.#options.audioEvery ?? 8;
    const audioPid = this.audioPid;
    const audio = audioPid !== null && this.#elementary % audioEvery === 0;
    const pid = audio && audioPid !== null ? audioPid : this.videoPid;
    const fault = this.#takeFault(pid);
    let pusi = false;
    let adaptation: AdaptationSpec | undefined;
    if (!audio) {
      const frame = now >= this.#nextFrameMs;
      const pcrDue = now >= this.#nextPcrMs;
      const randomAccess = frame && now >= this.#nextRandomAccessMs;
      if (frame) {
        this.#nextFrameMs = now + (this.#options.frameIntervalMs ?? 40);
        pusi = true;
      }
      if (randomAccess) this.#nextRandomAccessMs = now + (this.#options.randomAccessIntervalMs ?? 1000);
      if (pcrDue) this.#nextPcrMs = now + (this.#options.pcrIntervalMs ?? 40);
      if (pcrDue || randomAccess || fault === "discontinuity") {
        adaptation = {
          randomAccess,
          discontinuity: fault === "discontinuity",
          ...(pcrDue ? { pcr: Math.round(now * 27_000) } : {}),
        };
      }
    } else {
      pusi = this.#elementary % (audioEvery * 4) === 0;
    }
    const room = 184 - (adaptation === undefined ? 0 : adaptation.pcr === undefined ? 2 : 8);
    const payload = new Uint8Array(room);
    for (let i = 0; i < room; i++) payload[i] = (this.#random() * 256) | 0;
    if (pusi) payload.set([0, 0, 1, audio ? 0xc0 : 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1], 0);
    const packet = tsPacket({
      pid,
      cc: this.#nextCc(pid, fault),
      pusi,
      payload,
      ...(adaptation ? { adaptation } : {}),
    });
    if (fault === "duplicate") this.#queue.push(packet.slice());
    return packet;
  }
}
