/**
 * Back to live when an input returns to a channel on the slate (splicer.ts). The slate goes on until the live
 * video's first random access point; from that packet on the live TS is sent untouched, and before the first
 * live packet of each PID that the slate wrote on, an adaptation-only "bridge" packet flags the jump of the
 * continuity counter (discontinuity_indicator = 1, CC = the live packet's CC − 1 when it has a payload, else
 * its CC), so that a decoder or a TR 101 290 probe sees a signalled discontinuity, not a lost packet. On the
 * PCR PID the bridge flags the change of time base (no PCR in it).
 *
 * The packets dropped while the slate played and before the random access point break the counters of the
 * live's other PIDs too (the SDT, the NIT, a data PID the slate keeps silent): every PID the live carried before
 * the slate (`livePids`, the input's) and every PID seen while returning gets a bridge the same way before its
 * first packet sent, and the return is not done until each did (or 5 s of live passed). An SI table repeated
 * every 2 s may well come back only after the video, audio and PSI are through: without waiting for it, its
 * counter would jump unflagged.
 *
 *   const back = makeLiveReturn(format, livePids)
 *   for each live chunk: const out = back.push(chunk); if (out === null) keep the slate on; else send(out)
 *   once back.done(): send the live as it comes, without push
 *
 * A TS filter (ts-filter.ts). Live packets are never modified; a chunk that gets bridges goes out from the
 * filter's own memory, reused.
 */

import {
  ccAt,
  hasPayloadAt,
  NULL_PID,
  PACKET,
  PCR_WRAP,
  PID_COUNT,
  pcrOf,
  pidAt,
  previousCc,
  SYNC,
  unitStartAt,
  writeAdaptationOnly,
} from "../ts/index.ts";
import type { TsFilter } from "../ts-filter.ts";
import { isRandomAccess } from "../ts-start.ts";
import type { SlateFormat } from "./types.ts";

/** After this much live (by its PCR), the return is done whatever PID still waits for a bridge. */
const GIVE_UP = 5 * 27_000_000;
/** … or after this many live packets when no PCR comes (about 5 s at 30 Mb/s). */
const GIVE_UP_PACKETS = 100_000;

export interface LiveReturn extends TsFilter {
  /** Takes the next live chunk (whole packets, untouched input TS). While no random access point has come: returns null (the slate goes on; nothing of this chunk is sent). At the chunk with the video's first random access point: returns the packets to send, starting AT that packet (the packets before it in the chunk are dropped), with bridges inserted. After that: returns the chunk as is, or with bridges inserted while some PID still needs one (a view into the filter's own memory, valid until the next push), and finally the chunk untouched. */
  push(chunk: Uint8Array): Uint8Array | null;
  /** True once live has resumed and every PID the slate wrote on got its bridge (or 5 s of live passed): the caller may stop calling push. */
  done(): boolean;
}

export const makeLiveReturn = (format: SlateFormat, livePids: Iterable<number> = []): LiveReturn => {
  /** 1: this PID still needs its bridge before its next packet sent. */
  const needs = new Uint8Array(PID_COUNT);
  /** 1: the return is not done until this PID got its bridge. */
  const awaited = new Uint8Array(PID_COUNT);
  let waiting = 0;
  const await_ = (pid: number) => {
    if (pid === NULL_PID || awaited[pid] === 1) return;
    awaited[pid] = 1;
    needs[pid] = 1;
    waiting += 1;
  };
  for (const pid of [0, format.pmtPid, format.video.pid, format.pcrPid, ...format.audio.map((a) => a.pid)])
    await_(pid);
  for (const pid of livePids) await_(pid);

  let live = false;
  let finished = false;
  let firstPcr = -1;
  let packets = 0;

  const videoPid = format.video.pid;

  /** Whether 5 s of live have gone by (by the PCR), seeing this packet. */
  const clock = (chunk: Uint8Array, at: number, pid: number) => {
    packets += 1;
    if (pid !== format.pcrPid) return;
    const pcr = pcrOf(chunk, at);
    if (pcr < 0) return;
    if (firstPcr < 0) firstPcr = pcr;
    else if ((((pcr - firstPcr) % PCR_WRAP) + PCR_WRAP) % PCR_WRAP >= GIVE_UP) finished = true;
  };

  /** Per packet of the chunk being bridged: the bridge's CC before it, or -1 (reused). */
  let bridges = new Int8Array(64);

  /** What goes out when bridges are put in: the filter's own memory, reused. */
  let out = new Uint8Array(16 * PACKET);

  /** The chunk from `from` on, a bridge before each packet that needs one. */
  const bridged = (chunk: Uint8Array, from: number): Uint8Array => {
    const count = Math.floor((chunk.length - from) / PACKET);
    if (bridges.length < count) bridges = new Int8Array(count);
    let inserted = 0;
    for (let k = 0; k < count; k++) {
      const at = from + k * PACKET;
      const pid = pidAt(chunk, at);
      clock(chunk, at, pid);
      bridges[k] = -1;
      if (needs[pid] !== 1) continue;
      needs[pid] = 0;
      waiting -= 1;
      inserted += 1;
      const cc = ccAt(chunk, at);
      bridges[k] = hasPayloadAt(chunk, at) ? previousCc(cc) : cc;
    }
    if (waiting === 0 || packets > GIVE_UP_PACKETS) finished = true;
    if (inserted === 0) return from === 0 ? chunk : chunk.subarray(from);
    const size = (count + inserted) * PACKET;
    if (out.length < size) out = new Uint8Array(Math.max(size, out.length * 2));
    let to = 0;
    for (let k = 0; k < count; k++) {
      const at = from + k * PACKET;
      const cc = bridges[k] ?? -1;
      if (cc >= 0) {
        writeAdaptationOnly(out, to, pidAt(chunk, at), cc, true, -1);
        to += PACKET;
      }
      out.set(chunk.subarray(at, at + PACKET), to);
      to += PACKET;
    }
    return out.subarray(0, to);
  };

  const push = (chunk: Uint8Array): Uint8Array | null => {
    if (finished) return chunk;
    if (live) return bridged(chunk, 0);
    for (let at = 0; at + PACKET <= chunk.length; at += PACKET) {
      if (chunk[at] !== SYNC) continue;
      const pid = pidAt(chunk, at);
      if (pid === videoPid && unitStartAt(chunk, at)) {
        if (isRandomAccess(chunk.subarray(at, at + PACKET), format.video.streamType)) {
          live = true;
          return bridged(chunk, at);
        }
      }
      // A PID whose packets are dropped here has a gap in its counters: it gets a bridge too.
      await_(pid);
    }
    return null;
  };

  return { push, done: () => finished };
};
