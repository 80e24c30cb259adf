/**
 * The TS packets of the FLV → TS muxer (ts-mux.ts): PSI and SCTE-35 sections and PES cut into 188-byte
 * packets, continuity counters per PID, the discontinuity_indicator on each PID's first packet after a
 * publisher joined, and datagrams of up to 7 packets handed to `onDatagram`.
 */
import {
  nextCc,
  PACKET,
  PTS_WRAP,
  SYNC,
  sectionPacketCount,
  writePcr,
  writeSectionPackets,
  writeTimestamp,
} from "../ts/index.ts";

const DATAGRAM_PACKETS = 7;

export class TsPacketWriter {
  private readonly onDatagram: (datagram: Uint8Array) => void;
  private readonly out = new Uint8Array(DATAGRAM_PACKETS * PACKET);
  private filled = 0;
  private readonly cc = new Map<number, number>();
  /** PIDs whose next packet says discontinuity_indicator (a publisher joined). */
  private readonly joining = new Set<number>();

  constructor(onDatagram: (datagram: Uint8Array) => void) {
    this.onDatagram = onDatagram;
  }

  /** The next packet on each of `pids` says discontinuity_indicator. */
  discontinuity(pids: ReadonlyArray<number>): void {
    for (const pid of pids) this.joining.add(pid);
  }

  private nextCc(pid: number): number {
    const cc = nextCc(this.cc.get(pid) ?? 15);
    this.cc.set(pid, cc);
    return cc;
  }

  private packet(): number {
    if (this.filled === DATAGRAM_PACKETS) this.flush();
    const at = this.filled * PACKET;
    this.filled++;
    return at;
  }

  /** The packets written so far, as one datagram. */
  flush(): void {
    if (this.filled === 0) return;
    this.onDatagram(Buffer.from(this.out.subarray(0, this.filled * PACKET)));
    this.filled = 0;
  }

  /** A PSI section (or SCTE-35 section) on `pid`: pointer_field 0, 0xff stuffing (the kit's packetizer). */
  section(pid: number, section: Uint8Array): void {
    const discontinuity = this.joining.delete(pid);
    const run = new Uint8Array(sectionPacketCount(section, discontinuity) * PACKET);
    writeSectionPackets(run, 0, section, pid, () => this.nextCc(pid), discontinuity);
    for (let from = 0; from < run.length; from += PACKET)
      this.out.set(run.subarray(from, from + PACKET), this.packet());
  }

  /**
   * One PES on `pid`; its first packet carries the random access flag (with `priority`, the
   * elementary_stream_priority_indicator too, as AV1's carriage asks of a key frame) and, when `pcr` is not
   * negative, that PCR (27 MHz).
   */
  pes(
    pid: number,
    streamId: number,
    pts: number,
    dts: number | null,
    payload: Uint8Array,
    randomAccess: boolean,
    pcr: number,
    priority = false,
  ): void {
    const withDts = dts !== null && dts !== pts;
    const headerLength = withDts ? 10 : 5;
    const header = new Uint8Array(9 + headerLength);
    header.set([0, 0, 1, streamId]);
    const length = 3 + headerLength + payload.length;
    // Unbounded (0) only for video, as the standard allows: H.264's and HEVC's 0xE0, AV1's 0xBD.
    const pesLength = (streamId === 0xe0 || streamId === 0xbd) && length > 0xffff ? 0 : length;
    header[4] = pesLength >> 8;
    header[5] = pesLength & 0xff;
    header[6] = 0x84;
    header[7] = withDts ? 0xc0 : 0x80;
    header[8] = headerLength;
    header[9] = withDts ? 0x30 : 0x20;
    writeTimestamp(header, 9, pts % PTS_WRAP);
    if (withDts) {
      header[14] = 0x10;
      writeTimestamp(header, 14, (dts as number) % PTS_WRAP);
    }
    const whole = new Uint8Array(header.length + payload.length);
    whole.set(header);
    whole.set(payload, header.length);
    const total = whole.length;
    let written = 0;
    let first = true;
    const p = this.out;
    while (written < total) {
      const at = this.packet();
      const disc = first && this.joining.delete(pid);
      const flags = first
        ? (disc ? 0x80 : 0) | (randomAccess ? 0x40 : 0) | (priority ? 0x20 : 0) | (pcr >= 0 ? 0x10 : 0)
        : 0;
      let adaptation = flags === 0 ? 0 : 2 + (pcr >= 0 && first ? 6 : 0);
      const room = PACKET - 4 - adaptation;
      const left = total - written;
      if (left < room) adaptation = adaptation === 0 ? PACKET - 4 - left : adaptation + (room - left);
      p[at] = SYNC;
      p[at + 1] = (first ? 0x40 : 0) | ((pid >> 8) & 0x1f);
      p[at + 2] = pid & 0xff;
      p[at + 3] = (adaptation > 0 ? 0x30 : 0x10) | this.nextCc(pid);
      let offset = at + 4;
      if (adaptation > 0) {
        p[offset] = adaptation - 1;
        if (adaptation > 1) {
          p[offset + 1] = flags;
          let fill = offset + 2;
          if (first && pcr >= 0) {
            writePcr(p, fill, pcr);
            fill += 6;
          }
          p.fill(0xff, fill, offset + adaptation);
        }
        offset += adaptation;
      }
      const take = at + PACKET - offset;
      p.set(whole.subarray(written, written + take), offset);
      written += take;
      first = false;
    }
  }
}
