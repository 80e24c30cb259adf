/**
 * Lab streams sent at their own pace and found again at an output: each input's datagrams put in the sender's
 * slots by their PCR, and each datagram that reached an output told by its bytes (which input sent it, and
 * where it sits in that input's stream).
 */
import type { Slot } from "./netlab.ts";
import type { PacedChunk } from "./pcr-chunks.ts";

/**
 * One slot a millisecond: each stream's datagrams at their PCR's time, `streams[i]` to destination `i` (and
 * to `i + streams.length` … for each copy).
 */
export const pacedSlots = (streams: ReadonlyArray<ReadonlyArray<PacedChunk>>, copies = 1): Slot[] => {
  const lastMs = Math.max(...streams.map((chunks) => Math.ceil((chunks.at(-1)?.due ?? 0) * 1000)));
  const slots: Array<Array<{ to: number; datagram: Uint8Array }>> = Array.from(
    { length: lastMs + 1 },
    () => [],
  );
  streams.forEach((chunks, index) => {
    for (const chunk of chunks)
      for (let copy = 0; copy < copies; copy++)
        slots[Math.round(chunk.due * 1000)]?.push({
          to: index + copy * streams.length,
          datagram: chunk.bytes,
        });
  });
  return slots;
};

/** Where each datagram of `chunks` sits in its stream, by its bytes. */
const indexOf = (chunks: ReadonlyArray<PacedChunk>) =>
  new Map(chunks.map((chunk, index) => [Buffer.from(chunk.bytes).toString("latin1"), index]));

/**
 * Each datagram at an output: from which input (`either` when both sent those bytes, as all-null datagrams
 * where the video was dropped; `other` for neither: the slate) and where it sits in that input's stream.
 */
export const sourced = (
  arrivals: ReadonlyArray<{ readonly atMs: number; readonly datagram: Buffer }>,
  primary: ReadonlyArray<PacedChunk>,
  backup: ReadonlyArray<PacedChunk>,
) => {
  const [fromPrimary, fromBackup] = [indexOf(primary), indexOf(backup)];
  return arrivals.map(({ atMs, datagram }) => {
    const key = datagram.toString("latin1");
    const p = fromPrimary.get(key);
    const b = fromBackup.get(key);
    const input =
      p !== undefined && b !== undefined
        ? "either"
        : p !== undefined
          ? "primary"
          : b !== undefined
            ? "backup"
            : "other";
    return { atMs, input, index: p ?? b ?? -1 };
  });
};

/** The first chunk bringing a picture at or after `seconds` into the stream. */
export const chunkAt = (chunks: ReadonlyArray<PacedChunk>, seconds: number) =>
  chunks.findIndex((chunk) => chunk.position >= seconds);
