/**
 * A PAT or a PMT made again from what the packet core read of it (its `pat` and `pmt` events), as TS packets:
 * what a part of the service that starts late (a new output policy's rewriter) reads before the stream's next
 * copy arrives. The sections say what the input's said; their packets' continuity counters count from 0.
 */
import { crc32Mpeg2 } from "./ts/crc32.ts";
import type { CoreEvent } from "./packet-core.ts";

/** What the packet core reports of a PAT and of a PMT. */
export type PatEvent = Extract<CoreEvent, { readonly type: "pat" }>;
export type PmtEvent = Extract<CoreEvent, { readonly type: "pmt" }>;

import { packetizeSection } from "./slate/splicer.ts";

/** The section's packets in one run, their continuity counters counting from 0. */
const packets = (section: Uint8Array, pid: number): Uint8Array => {
  const run = concat(packetizeSection(section, pid));
  for (let at = 0, cc = 0; at < run.length; at += 188, cc++) run[at + 3] = 0x10 | (cc & 0x0f);
  return run;
};

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
};

/** A long-form section: the header, `body`, the CRC; `tableIdExtension` is the tsid or the programme. */
const section = (
  tableId: number,
  tableIdExtension: number,
  version: number,
  body: Uint8Array,
): Uint8Array => {
  const length = 5 + body.length + 4;
  const out = new Uint8Array(3 + length);
  out[0] = tableId;
  out[1] = 0xb0 | ((length >> 8) & 0x0f);
  out[2] = length & 0xff;
  out[3] = (tableIdExtension >> 8) & 0xff;
  out[4] = tableIdExtension & 0xff;
  out[5] = 0xc1 | ((version & 0x1f) << 1);
  out[6] = 0;
  out[7] = 0;
  out.set(body, 8);
  const crc = crc32Mpeg2(out, 0, out.length - 4);
  new DataView(out.buffer).setUint32(out.length - 4, crc);
  return out;
};

export const patPackets = (pat: PatEvent): Uint8Array => {
  const entries = [
    ...(pat.networkPid === null ? [] : [{ program: 0, pmtPid: pat.networkPid }]),
    ...pat.programs,
  ];
  const body = new Uint8Array(entries.length * 4);
  entries.forEach((entry, i) => {
    body[i * 4] = entry.program >> 8;
    body[i * 4 + 1] = entry.program & 0xff;
    body[i * 4 + 2] = 0xe0 | (entry.pmtPid >> 8);
    body[i * 4 + 3] = entry.pmtPid & 0xff;
  });
  return packets(section(0x00, pat.transportStreamId, pat.version, body), 0);
};

export const pmtPackets = (pmt: PmtEvent): Uint8Array => {
  const head = Uint8Array.of(
    0xe0 | (pmt.pcrPid >> 8),
    pmt.pcrPid & 0xff,
    0xf0 | (pmt.programInfo.length >> 8),
    pmt.programInfo.length & 0xff,
  );
  const streams = pmt.streams.map((stream) =>
    concat([
      Uint8Array.of(
        stream.streamType,
        0xe0 | (stream.pid >> 8),
        stream.pid & 0xff,
        0xf0 | (stream.descriptors.length >> 8),
        stream.descriptors.length & 0xff,
      ),
      stream.descriptors,
    ]),
  );
  const body = concat([head, pmt.programInfo, ...streams]);
  return packets(section(0x02, pmt.program, pmt.version, body), pmt.pid);
};
