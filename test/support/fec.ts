/**
 * A SMPTE 2022-1 (Pro-MPEG CoP3) FEC encoder for tests: XOR column and row FEC over RTP media datagrams in
 * L×D matrices, with the 16-byte FEC header after a plain RTP header (payload type 96). The recovery fields
 * for P, X, CC and M travel XORed in the FEC packet's own RTP header, as in RFC 2733.
 */
export interface FecPacket {
  readonly kind: "column" | "row";
  readonly datagram: Uint8Array;
}

/** One datagram of the schedule a sender follows: media, or FEC sent right after the last packet it covers. */
export interface Scheduled {
  readonly stream: "media" | "column" | "row";
  readonly datagram: Uint8Array;
  /** Index of the media datagram (media only). */
  readonly index: number;
}

const fecPacket = (
  media: ReadonlyArray<Uint8Array>,
  options: { readonly row: boolean; readonly offset: number; readonly sequence: number },
): Uint8Array => {
  const payloadLength = Math.max(...media.map((packet) => packet.length - 12));
  const out = new Uint8Array(12 + 16 + payloadLength);
  const view = new DataView(out.buffer);
  let bits = 0;
  let marker = 0;
  let lengthRecovery = 0;
  let typeRecovery = 0;
  let timestampRecovery = 0;
  for (const packet of media) {
    const packetView = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
    bits ^= (packet[0] ?? 0) & 0x3f;
    marker ^= (packet[1] ?? 0) & 0x80;
    typeRecovery ^= (packet[1] ?? 0) & 0x7f;
    lengthRecovery ^= packet.length - 12;
    timestampRecovery = (timestampRecovery ^ packetView.getUint32(4)) >>> 0;
    for (let i = 12; i < packet.length; i++) out[28 + i - 12] = (out[28 + i - 12] ?? 0) ^ (packet[i] ?? 0);
  }
  const first = media[0] ?? new Uint8Array(12);
  out[0] = 0x80 | bits;
  out[1] = marker | 96;
  view.setUint16(2, options.sequence & 0xffff);
  view.setUint16(12, new DataView(first.buffer, first.byteOffset).getUint16(2));
  view.setUint16(14, lengthRecovery);
  out[16] = 0x80 | typeRecovery;
  view.setUint32(20, timestampRecovery);
  out[24] = options.row ? 0x40 : 0;
  out[25] = options.offset;
  out[26] = media.length;
  return out;
};

/**
 * Column (L apart, D deep) and row (L wide) FEC for `media`, in matrices of L×D from its first datagram; the
 * schedule interleaves each FEC packet right after the last media datagram it protects. A trailing partial
 * matrix gets no FEC.
 */
export const encodeFec = (
  media: ReadonlyArray<Uint8Array>,
  columns: number,
  rows: number,
): { readonly schedule: ReadonlyArray<Scheduled>; readonly fec: ReadonlyArray<FecPacket> } => {
  const schedule: Scheduled[] = [];
  const fec: FecPacket[] = [];
  let columnSequence = 0;
  let rowSequence = 0;
  const matrix = columns * rows;
  for (const [index, datagram] of media.entries()) {
    schedule.push({ stream: "media", datagram, index });
    const base = index - (index % matrix);
    if (base + matrix > media.length) continue;
    const position = index - base;
    if (position % columns === columns - 1) {
      const start = index - columns + 1;
      const datagram = fecPacket(media.slice(start, index + 1), {
        row: true,
        offset: 1,
        sequence: rowSequence++,
      });
      schedule.push({ stream: "row", datagram, index: -1 });
      fec.push({ kind: "row", datagram });
    }
    if (position >= matrix - columns) {
      const column = Array.from({ length: rows }, (_, k) => media[base + (position % columns) + k * columns]);
      const datagram = fecPacket(
        column.filter((packet): packet is Uint8Array => packet !== undefined),
        { row: false, offset: columns, sequence: columnSequence++ },
      );
      schedule.push({ stream: "column", datagram, index: -1 });
      fec.push({ kind: "column", datagram });
    }
  }
  return { schedule, fec };
};
