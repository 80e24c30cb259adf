/**
 * A TS file cut into 1316-byte chunks, each with the time an encoder would send it (its PCR, from the
 * first) and the latest picture it brings (its PTS, from the first picture's), so that a test or a
 * benchmark can hand a consumer a recorded stream at its own pace and say how much of it was handed over.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  DATAGRAM,
  PACKET,
  PTS_HZ,
  packetPts,
  payloadOffset,
  pcrOf,
  unitStartAt,
} from "../../src/core/ts/index.ts";

export interface PacedChunk {
  readonly bytes: Uint8Array;
  /** When an encoder would send it: its PCR, from the first, in seconds. */
  readonly due: number;
  /** The latest picture it brings, in seconds from the first picture. */
  readonly position: number;
}

export const chunksByPcr = (ts: Uint8Array): ReadonlyArray<PacedChunk> => {
  const chunks: PacedChunk[] = [];
  let firstPcr = -1;
  let pcr = 0;
  let firstPts = -1;
  let pts = 0;
  for (let offset = 0; offset < ts.length; offset += DATAGRAM) {
    const bytes = ts.subarray(offset, Math.min(offset + DATAGRAM, ts.length));
    for (let at = 0; at + PACKET <= bytes.length; at += PACKET) {
      const packet = bytes.subarray(at, at + PACKET);
      const clock = pcrOf(packet);
      if (clock >= 0) {
        if (firstPcr < 0) firstPcr = clock;
        pcr = clock - firstPcr;
      }
      // A video PES (stream id 0xE0) starting here: its PTS is a picture's.
      if (unitStartAt(packet) && packet[payloadOffset(packet) + 3] === 0xe0) {
        const picture = packetPts(packet);
        if (picture >= 0) {
          if (firstPts < 0) firstPts = picture;
          pts = Math.max(pts, picture - firstPts);
        }
      }
    }
    chunks.push({ bytes, due: pcr / 27_000_000, position: pts / PTS_HZ });
  }
  return chunks;
};

/**
 * Hands the chunks to `offer` as their time comes, every `everyMs`, calling `after` with the position handed
 * over after each round; resolves once all are handed over.
 */
export const offerAtPace = async (
  chunks: ReadonlyArray<PacedChunk>,
  offer: (chunk: Uint8Array) => void,
  after: (position: number) => void = () => {},
  everyMs = 20,
): Promise<void> => {
  const started = performance.now();
  let next = 0;
  while (next < chunks.length) {
    const elapsed = (performance.now() - started) / 1000;
    for (; next < chunks.length && (chunks[next]?.due ?? 0) <= elapsed; next += 1)
      offer((chunks[next] as PacedChunk).bytes);
    after(chunks[next - 1]?.position ?? 0);
    await sleep(everyMs);
  }
};
