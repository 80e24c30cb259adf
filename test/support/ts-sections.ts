/**
 * A test's own reading of a TS, as a receiver does and independent of the service's code: packets, PSI
 * sections (pointer_field, sections across packets, stuffing), the PAT's first programme, PMTs (with a
 * bit-by-bit CRC check) and continuity counter errors per PID.
 */

const PACKET = 188;

export const pidOf = (ts: Uint8Array, at: number) => (((ts[at + 1] ?? 0) & 0x1f) << 8) | (ts[at + 2] ?? 0);
export const packetsOf = (ts: Uint8Array): Uint8Array[] => {
  const packets: Uint8Array[] = [];
  for (let at = 0; at + PACKET <= ts.length; at += PACKET) packets.push(ts.subarray(at, at + PACKET));
  return packets;
};

/** CRC-32/MPEG-2, bit by bit: a whole section with its CRC gives 0. */
export const crc32Mpeg2 = (bytes: Uint8Array): number => {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte << 24;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
  }
  return crc >>> 0;
};

export interface Section {
  readonly pid: number;
  /** Index of the packet in which it started. */
  readonly packet: number;
  readonly bytes: Uint8Array;
}

/**
 * Every PSI section on every PID that carries no PES (a PID whose first unit starts 00 00 01 is left out),
 * reassembled from payload_unit_start and pointer_field, stuffing skipped.
 */
export const sectionsOf = (ts: Uint8Array): Section[] => {
  const sections: Section[] = [];
  const pes = new Set<number>();
  const open = new Map<number, { packet: number; bytes: number[] }>();
  const take = (pid: number, packet: number, data: Uint8Array, continuing: boolean) => {
    let at = 0;
    let current = continuing ? open.get(pid) : undefined;
    while (at < data.length) {
      if (current === undefined) {
        if (data[at] === 0xff) return;
        current = { packet, bytes: [] };
      }
      current.bytes.push(data[at] ?? 0);
      at++;
      const have = current.bytes;
      if (have.length >= 3) {
        const total = 3 + ((((have[1] ?? 0) & 0x0f) << 8) | (have[2] ?? 0));
        if (have.length === total) {
          sections.push({ pid, packet: current.packet, bytes: Uint8Array.from(have) });
          current = undefined;
        }
      }
    }
    if (current === undefined) open.delete(pid);
    else open.set(pid, current);
  };
  packetsOf(ts).forEach((packet, index) => {
    const pid = pidOf(packet, 0);
    if (pid === 0x1fff || pes.has(pid) || ((packet[3] ?? 0) & 0x10) === 0) return;
    const start = ((packet[3] ?? 0) & 0x20) !== 0 ? 5 + (packet[4] ?? 0) : 4;
    if (start >= PACKET) return;
    const payload = packet.subarray(start);
    if (((packet[1] ?? 0) & 0x40) === 0) {
      if (open.has(pid)) take(pid, index, payload, true);
      return;
    }
    if (payload[0] === 0 && payload[1] === 0 && payload[2] === 1) {
      pes.add(pid);
      open.delete(pid);
      return;
    }
    const pointer = payload[0] ?? 0;
    if (open.has(pid)) take(pid, index, payload.subarray(1, 1 + pointer), true);
    open.delete(pid);
    take(pid, index, payload.subarray(1 + pointer), false);
  });
  return sections;
};

export const pmtPidOf = (ts: Uint8Array): number => {
  const pat = sectionsOf(ts).find((section) => section.pid === 0 && section.bytes[0] === 0x00);
  if (pat === undefined) throw new Error("no PAT");
  for (let at = 8; at + 4 <= pat.bytes.length - 4; at += 4) {
    const program = ((pat.bytes[at] ?? 0) << 8) | (pat.bytes[at + 1] ?? 0);
    if (program !== 0) return (((pat.bytes[at + 2] ?? 0) & 0x1f) << 8) | (pat.bytes[at + 3] ?? 0);
  }
  throw new Error("no programme in the PAT");
};

export interface Pmt {
  readonly crcOk: boolean;
  readonly version: number;
  /** program_info's descriptors: tag and body. */
  readonly descriptors: ReadonlyArray<{ readonly tag: number; readonly body: Uint8Array }>;
  readonly streams: ReadonlyArray<{ readonly type: number; readonly pid: number }>;
}

export const parsePmt = (section: Uint8Array): Pmt => {
  const end = section.length - 4;
  const infoEnd = 12 + ((((section[10] ?? 0) & 0x0f) << 8) | (section[11] ?? 0));
  const descriptors: Array<{ tag: number; body: Uint8Array }> = [];
  for (let at = 12; at + 2 <= infoEnd; at += 2 + (section[at + 1] ?? 0))
    descriptors.push({
      tag: section[at] ?? 0,
      body: section.subarray(at + 2, at + 2 + (section[at + 1] ?? 0)),
    });
  const streams: Array<{ type: number; pid: number }> = [];
  for (
    let at = infoEnd;
    at + 5 <= end;
    at += 5 + ((((section[at + 3] ?? 0) & 0x0f) << 8) | (section[at + 4] ?? 0))
  )
    streams.push({
      type: section[at] ?? 0,
      pid: (((section[at + 1] ?? 0) & 0x1f) << 8) | (section[at + 2] ?? 0),
    });
  return { crcOk: crc32Mpeg2(section) === 0, version: ((section[5] ?? 0) >> 1) & 0x1f, descriptors, streams };
};

/** Continuity errors per PID as a receiver counts them: a payload packet must add one, one without repeats it. */
export const continuityErrors = (ts: Uint8Array): Map<number, number> => {
  const last = new Map<number, number>();
  const errors = new Map<number, number>();
  for (const packet of packetsOf(ts)) {
    const pid = pidOf(packet, 0);
    if (pid === 0x1fff) continue;
    const cc = (packet[3] ?? 0) & 0x0f;
    const payload = ((packet[3] ?? 0) & 0x10) !== 0;
    const discontinuity =
      ((packet[3] ?? 0) & 0x20) !== 0 && (packet[4] ?? 0) > 0 && ((packet[5] ?? 0) & 0x80) !== 0;
    const before = last.get(pid);
    if (before !== undefined && !discontinuity) {
      const want = payload ? (before + 1) & 0x0f : before;
      if (cc !== want) errors.set(pid, (errors.get(pid) ?? 0) + 1);
    }
    last.set(pid, cc);
  }
  return errors;
};
