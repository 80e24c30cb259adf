/**
 * A fleet hand-over between two different copies of one programme (MediaLive's two pipelines to two nodes: the
 * same frames and timestamps, other bytes), where no datagram of one copy is in the other: the old holder cuts
 * just before a video random access point and names its PTS; the new holder begins at the first random access
 * point of its own copy whose PTS is at or after it, its PAT and PMT first, with the discontinuity_indicator
 * set on the first packet of each PID it sends (docs/fleet.md, "Hitless moves and drains"). Pure: the forwarding
 * thread's cut stage (src/effects/channel/cut-stage.ts) runs it.
 */
import {
  ccAt,
  firstProgram,
  hasAdaptationAt,
  NULL_PID,
  PACKET,
  PTS_WRAP,
  packetPts,
  pidAt,
  previousCc,
  randomAccessIndicator,
  readPat,
  readPmt,
  SectionPackets,
  SYNC,
  unitStartAt,
  VIDEO_STREAM_TYPES,
  writeAdaptationOnly,
} from "../ts/index.ts";

/** What a stream says of its programme: its video PIDs and its last PAT and PMT, as the packets that carried them. */
export class ProgramWatch {
  private pmtPid = -1;
  /** The video PIDs the last PMT lists. */
  videoPids: ReadonlySet<number> = new Set();
  /** Copies of the packets that carried the last PAT and PMT (sections reassembled, CRC checked). */
  pat: Uint8Array | null = null;
  pmt: Uint8Array | null = null;
  private readonly patReader = new SectionPackets((section, packets) => {
    const program = firstProgram(readPat(section));
    if (program === undefined) return;
    if (program.pid !== this.pmtPid) this.pmtReader.reset();
    this.pmtPid = program.pid;
    this.pat = packets.slice();
  });
  private readonly pmtReader = new SectionPackets((section, packets) => {
    const pmt = readPmt(section);
    if (pmt === null) return;
    this.videoPids = new Set(
      pmt.streams.filter((stream) => VIDEO_STREAM_TYPES.has(stream.streamType)).map((stream) => stream.pid),
    );
    this.pmt = packets.slice();
  });

  /** Reads the PAT and PMT packets of a datagram. */
  observe(datagram: Uint8Array): void {
    for (let at = 0; at + PACKET <= datagram.length; at += PACKET) {
      if (datagram[at] !== SYNC) continue;
      const pid = pidAt(datagram, at);
      if (pid === 0) this.patReader.read(datagram, at);
      else if (pid === this.pmtPid) this.pmtReader.read(datagram, at);
    }
  }
}

/**
 * The first video random access point in the datagram: the packet that begins a PES of a video PID with
 * random_access_indicator set, and that PES's PTS; null when the datagram has none (or its PES no PTS).
 */
export const randomAccessIn = (
  datagram: Uint8Array,
  videoPids: ReadonlySet<number>,
): { readonly packet: number; readonly pts: number } | null => {
  if (videoPids.size === 0) return null;
  for (let at = 0; at + PACKET <= datagram.length; at += PACKET) {
    if (datagram[at] !== SYNC || !unitStartAt(datagram, at) || !videoPids.has(pidAt(datagram, at))) continue;
    const packet = datagram.subarray(at, at + PACKET);
    if (!randomAccessIndicator(packet)) continue;
    const pts = packetPts(packet);
    if (pts >= 0) return { packet: at / PACKET, pts };
  }
  return null;
};

/** Whether PTS `a` is at or after `b`, round the 33-bit wrap (within half of it). */
export const ptsAtOrAfter = (a: number, b: number): boolean => (a - b + PTS_WRAP) % PTS_WRAP < PTS_WRAP / 2;

/** Makes the packet at `out[at]` a null packet. */
const nullPacket = (out: Uint8Array, at: number) => {
  out.fill(0xff, at, at + PACKET);
  out.set([SYNC, 0x1f, 0xff, 0x10], at);
};

/**
 * A new holder's start on its own copy: each PID begins where one of its units (a PES, a section) begins — the
 * packets before that, the tails of units the old holder's copy had begun, become null packets — and the
 * first packet kept of each PID sets discontinuity_indicator. A packet that has an adaptation field gets the
 * flag in it; one that has none cannot without moving its payload, so an adaptation-only packet with the flag
 * goes just before it, its counter the one before the packet's (a packet without payload repeats the counter).
 */
export class DiscontinuityMarker {
  private readonly seen = new Set<number>();

  /**
   * `after`: the PTS of the last PES of each PID the old holder sent; a PID here begins with a PES after it (its
   * units the old holder's copy carried already are not sent twice).
   */
  private readonly after: ReadonlyMap<number, number>;

  constructor(after: ReadonlyMap<number, number> = new Map()) {
    this.after = after;
  }

  /** Whether the packet at `at` may begin its PID here: a unit's start, after what the old holder sent of it. */
  private begins(datagram: Uint8Array, at: number, pid: number): boolean {
    if (!unitStartAt(datagram, at)) return false;
    const last = this.after.get(pid);
    if (last === undefined) return true;
    const pts = packetPts(datagram.subarray(at, at + PACKET));
    return pts < 0 || (pts !== last && ptsAtOrAfter(pts, last));
  }

  /**
   * The datagram as it goes out: a copy with the flags set (and the packets before `fromPacket`, and before
   * each PID's first unit, made null), and before it the packets added; as is when nothing changes.
   */
  mark(datagram: Uint8Array, fromPacket = 0): ReadonlyArray<Uint8Array> {
    let copy: Uint8Array | null = null;
    const added: number[] = [];
    for (let at = 0; at + PACKET <= datagram.length; at += PACKET) {
      const pid = pidAt(datagram, at);
      if (datagram[at] !== SYNC || pid === NULL_PID || this.seen.has(pid)) continue;
      if (at < fromPacket * PACKET || !this.begins(datagram, at, pid)) {
        copy ??= datagram.slice();
        nullPacket(copy, at);
        continue;
      }
      this.seen.add(pid);
      if (hasAdaptationAt(datagram, at) && (datagram[at + 4] ?? 0) > 0) {
        copy ??= datagram.slice();
        copy[at + 5] = (copy[at + 5] ?? 0) | 0x80;
      } else added.push(at);
    }
    if (copy === null && added.length === 0) return [datagram];
    const out: Uint8Array[] = [];
    for (let i = 0; i < added.length; i += 7) {
      const chunk = added.slice(i, i + 7);
      const packets = new Uint8Array(chunk.length * PACKET);
      chunk.forEach((at, j) => {
        writeAdaptationOnly(
          packets,
          j * PACKET,
          pidAt(datagram, at),
          previousCc(ccAt(datagram, at)),
          true,
          -1,
        );
      });
      out.push(packets);
    }
    out.push(copy ?? datagram);
    return out;
  }
}
