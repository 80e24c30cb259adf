/**
 * SMPTE 2022-1 FEC over a real lossy link: the encoder sends RTP media with column and row FEC (L=10, D=10,
 * on port+2 and port+4) over one link that loses 1 % of every stream, plus a 2×2 square of media datagrams in
 * one matrix, which no row or column can rebuild. nftables drops them by RTP sequence number, so the test
 * knows what was lost and works out what the matrix can repair (rows and columns, each recovery possibly
 * completing another): the output misses exactly what it cannot repair, and the service counts that as
 * unrecoverable and exactly the rest as recovered.
 *
 *   enc ── svc ── rx
 */
import { join } from "node:path";
import { expect, it } from "vitest";
import { eventually } from "../support/app.ts";
import { encodeFec } from "../support/fec.ts";
import { bytesArrived, channelOf, cuedStream, newGenerator, startedChannel } from "../support/lab-channel.ts";
import { describeLab, labSend, type Slot, throughService, useLab } from "../support/netlab.ts";
import { asRtp } from "../support/sender.ts";
import { prng } from "../support/ts-generator.ts";

const BITRATE = 2_000_000;
const [L, D] = [10, 10];
const FIRST_SEQUENCE = 2_000;

interface Protection {
  readonly kind: "column" | "row";
  readonly sequence: number;
  readonly covers: ReadonlyArray<number>;
}

/** What each FEC packet of `encodeFec`'s schedule protects, in the order sent. */
const protections = (schedule: ReturnType<typeof encodeFec>["schedule"]): Protection[] => {
  const found: Protection[] = [];
  const next = { column: 0, row: 0 };
  let last = -1;
  for (const item of schedule) {
    if (item.stream === "media") {
      last = item.index;
      continue;
    }
    const base = last - (last % (L * D));
    const covers =
      item.stream === "row"
        ? Array.from({ length: L }, (_, k) => last - L + 1 + k)
        : Array.from({ length: D }, (_, k) => base + ((last - base) % L) + k * L);
    found.push({ kind: item.stream, sequence: next[item.stream]++, covers });
  }
  return found;
};

/** Rebuilds what the FEC that arrived can rebuild, again until nothing changes: what is recovered, what is not. */
const repair = (lost: ReadonlySet<number>, arrived: ReadonlyArray<Protection>) => {
  const missing = new Set(lost);
  let recovered = 0;
  for (let progress = true; progress; ) {
    progress = false;
    for (const fec of arrived) {
      const gone = fec.covers.filter((index) => missing.has(index));
      if (gone.length !== 1) continue;
      missing.delete(gone[0] as number);
      recovered++;
      progress = true;
    }
  }
  return { recovered, residual: missing };
};

describeLab("Pro-MPEG FEC over a lossy link", () => {
  const lab = useLab("fec");

  it("1 % loss on media, column and row FEC: the output misses exactly what the matrix cannot rebuild, counted as unrecoverable, and the rest as recovered", async () => {
    const { enc, svc, service, sink, udpOutput } = await throughService(lab);
    const link = await lab.link(enc, svc);
    const channel = await startedChannel(service, {
      name: "FEC",
      rtp_ip: link.b.address,
      rtp_port: 5000,
      redundancy: { fec: true },
      outputs: [udpOutput],
    });

    const stream = cuedStream(newGenerator(5, BITRATE), BITRATE, 15);
    const media = asRtp(stream.datagrams, FIRST_SEQUENCE);
    const { schedule } = encodeFec(media, L, D);
    const fec = protections(schedule);
    // Losses only inside whole matrices, away from the first (the input locks) and the last two (nothing
    // after them tells the decoder a loss is final).
    const matrices = Math.floor(media.length / (L * D));
    const random = prng(2022_1);
    const inRange = (index: number) => index >= L * D && index < (matrices - 2) * L * D;
    const lostMedia = new Set(
      media.flatMap((_, index) => (inRange(index) && random() < 0.01 ? [index] : [])),
    );
    const square = 5 * L * D + 3 * L + 4;
    for (const index of [square, square + 1, square + L, square + L + 1]) lostMedia.add(index);
    const lostFec = new Set(fec.filter((packet) => inRange(packet.covers[0] ?? 0) && random() < 0.01));
    const { recovered, residual } = repair(
      lostMedia,
      fec.filter((packet) => !lostFec.has(packet)),
    );

    const drops = [
      await lab.dropSequences(
        link.a,
        5000,
        [...lostMedia].map((index) => FIRST_SEQUENCE + index),
      ),
      ...(await Promise.all(
        (["column", "row"] as const).flatMap((kind) => {
          const sequences = [...lostFec]
            .filter((packet) => packet.kind === kind)
            .map((packet) => packet.sequence);
          return sequences.length === 0
            ? []
            : [lab.dropSequences(link.a, kind === "column" ? 5002 : 5004, sequences)];
        }),
      )),
    ];
    const port = { media: 0, column: 1, row: 2 } as const;
    const slots: Array<Array<Slot[number]>> = [];
    for (const item of schedule) {
      if (item.stream === "media") slots.push([]);
      slots[slots.length - 1]?.push({ to: port[item.stream], datagram: item.datagram });
    }
    const sender = await labSend(lab, enc, join(lab.dir, "fec"), slots, stream.perMs, [
      `${link.b.address}:5000`,
      `${link.b.address}:5002`,
      `${link.b.address}:5004`,
    ]);
    await sender.done;

    const expected = Buffer.concat(
      stream.datagrams.filter((_, index) => !residual.has(index)).map((datagram) => Buffer.from(datagram)),
    );
    await bytesArrived("the output's receiver", sink.totalBytes, expected.length);
    let dropped = 0;
    for (const drop of drops) dropped += await drop.dropped();
    expect(dropped, "the link dropped what was drawn").toBe(lostMedia.size + lostFec.size);
    expect(sink.bytes().equals(expected), "every datagram but those the matrix cannot rebuild").toBe(true);
    // The view (GET /api/channels/{id}) is the read model's, up to a second old: the counters are read from
    // one taken once the input had every datagram the output got, each media one or its rebuild.
    const counters = await eventually("a view with every datagram counted at the input", async () => {
      const input = (await channelOf(service, channel)).inputs[0] as {
        datagrams: number;
        fec: { recovered: number; unrecoverable: number };
      };
      return input.datagrams >= media.length - residual.size ? input.fec : undefined;
    });
    console.log(
      `FEC L=${L} D=${D}, 1 % loss: ${media.length} media datagrams and ${fec.length} FEC sent; lost ${lostMedia.size} ` +
        `media (4 of them a 2×2 square) and ${lostFec.size} FEC; the matrix can rebuild ${recovered}, leaving ` +
        `${residual.size}; the service counted ${counters.recovered} recovered and ${counters.unrecoverable} ` +
        `unrecoverable; the output ` +
        `missed ${(stream.ts.length - expected.length) / 1316} datagrams`,
    );
    expect(counters.unrecoverable).toBe(residual.size);
    // The service may read an FEC socket before the media datagram of the same moment and rebuild it: such a
    // rebuild fills no gap and is not counted.
    expect(counters.recovered).toBe(recovered);
    expect(residual.size).toBeGreaterThanOrEqual(4);
  }, 120_000);
});
