/**
 * A stream whose PMT no longer fits in one packet: each PMT on a PID made 200 bytes longer (a private
 * descriptor ahead of program_info) and sent as two packets, the PID's continuity counters renumbered. The
 * rest of the stream is byte for byte the same. Written independently of the service's TS toolkit.
 */
import { concat, packetizeSections, withCrc } from "./ts-generator.ts";

const PACKET = 188;
const EXTRA = 200;

/** The PMT `section` with a 200-byte private descriptor (tag 0x80) first in program_info, CRC again. */
export const lengthenedPmt = (section: Uint8Array): Uint8Array => {
  const infoLength = (((section[10] ?? 0) & 0x0f) << 8) | (section[11] ?? 0);
  const descriptor = new Uint8Array(EXTRA).map((_, i) => (i === 0 ? 0x80 : i === 1 ? EXTRA - 2 : i & 0x7f));
  const body = concat([section.subarray(0, 12), descriptor, section.subarray(12, section.length - 4)]);
  const sectionLength = body.length + 4 - 3;
  body[1] = ((body[1] ?? 0) & 0xf0) | (sectionLength >> 8);
  body[2] = sectionLength & 0xff;
  body[10] = ((body[10] ?? 0) & 0xf0) | ((infoLength + EXTRA) >> 8);
  body[11] = (infoLength + EXTRA) & 0xff;
  return withCrc(body);
};

/** `ts` with every PMT on `pmtPid` (each in one packet, pointer_field 0) lengthened to span two packets. */
export const withTwoPacketPmts = (ts: Uint8Array, pmtPid: number): Uint8Array => {
  const out: Uint8Array[] = [];
  let cc = 0;
  let pmts = 0;
  for (let at = 0; at + PACKET <= ts.length; at += PACKET) {
    const packet = ts.subarray(at, at + PACKET);
    const pid = (((packet[1] ?? 0) & 0x1f) << 8) | (packet[2] ?? 0);
    if (pid !== pmtPid) {
      out.push(packet);
      continue;
    }
    const start = ((packet[3] ?? 0) & 0x20) !== 0 ? 5 + (packet[4] ?? 0) : 4;
    if (((packet[1] ?? 0) & 0x40) === 0 || packet[start] !== 0)
      throw new Error("the input's PMTs should each fit in one packet, pointer_field 0");
    const section = packet.subarray(start + 1);
    const length = 3 + ((((section[1] ?? 0) & 0x0f) << 8) | (section[2] ?? 0));
    const packets = packetizeSections(pmtPid, [lengthenedPmt(section.subarray(0, length))], cc);
    if (packets.length !== 2) throw new Error(`a lengthened PMT in ${packets.length} packets`);
    out.push(...packets);
    cc = (cc + packets.length) & 0x0f;
    pmts += 1;
  }
  if (pmts === 0) throw new Error(`no PMT on PID ${pmtPid}`);
  return concat(out);
};
