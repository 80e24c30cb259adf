/**
 * SMPTE 2022-7 over two real paths: the encoder sends the same RTP stream to the service over a direct link
 * (primary) and through a relay that holds every datagram 20 ms (backup). Each path loses 5 % of the
 * datagrams, chosen at random and dropped by nftables by RTP sequence number, so the test knows exactly
 * which: the output must miss exactly those both paths lost, and nothing else, and each input's RTP loss
 * counts exactly what its path lost.
 *
 *   enc ── svc            primary, 5 % loss
 *   enc ── wan ── svc     backup, 5 % loss, 20 ms later (relay in wan)
 *          svc ── rx      UDP output
 */
import { join } from "node:path";
import { expect, it } from "vitest";
import { analyse } from "../support/analyse.ts";
import { eventually } from "../support/app.ts";
import { bytesArrived, cuedStream, newGenerator, startedChannel } from "../support/lab-channel.ts";
import { describeLab, labSend, throughService, useLab, written } from "../support/netlab.ts";
import { asRtp } from "../support/sender.ts";
import { prng } from "../support/ts-generator.ts";

const BITRATE = 2_000_000;
const FIRST_SEQUENCE = 1_000;

describeLab("2022-7 merge over two lossy paths with 20 ms of skew", () => {
  const lab = useLab("merge");

  it("the output misses exactly the datagrams both paths lost, and nothing else; each input counts its path's loss", async () => {
    const { enc, svc, service, sink, udpOutput } = await throughService(lab);
    const wan = await lab.namespace("wan");
    const primary = await lab.link(enc, svc);
    const encWan = await lab.link(enc, wan);
    const wanSvc = await lab.link(wan, svc);
    await written(
      lab.agent(wan, ["relay", `${encWan.b.address}:5002`, `${wanSvc.b.address}:5002`, "20"]),
      "ready",
    );
    const channel = await startedChannel(service, {
      name: "2022-7",
      rtp_ip: primary.b.address,
      rtp_port: 5000,
      backup_rtp_ip: wanSvc.b.address,
      backup_rtp_port: 5002,
      redundancy: { mode: "merge" },
      outputs: [udpOutput],
    });

    const stream = cuedStream(newGenerator(7, BITRATE), BITRATE, 15);
    const media = asRtp(stream.datagrams, FIRST_SEQUENCE);
    // Each path's 5 %, drawn independently; the first datagrams are spared so both inputs lock at once.
    const random = prng(2022_7);
    const draw = () =>
      new Set(media.flatMap((_, index) => (index >= 10 && random() < 0.05 ? [FIRST_SEQUENCE + index] : [])));
    const [primaryLost, backupLost] = [draw(), draw()];
    const bothLost = new Set([...primaryLost].filter((sequence) => backupLost.has(sequence)));
    const primaryDrop = await lab.dropSequences(primary.a, 5000, primaryLost);
    const backupDrop = await lab.dropSequences(encWan.a, 5002, backupLost);

    const slots = media.map((datagram) => [
      { to: 0, datagram },
      { to: 1, datagram },
    ]);
    const sender = await labSend(lab, enc, join(lab.dir, "merge"), slots, stream.perMs, [
      `${primary.b.address}:5000`,
      `${encWan.b.address}:5002`,
    ]);
    await sender.done;
    const expected = Buffer.concat(
      stream.datagrams.filter((_, index) => !bothLost.has(FIRST_SEQUENCE + index)).map((d) => Buffer.from(d)),
    );
    await bytesArrived("the output's receiver", sink.totalBytes, expected.length);
    expect(await primaryDrop.dropped(), "the primary path dropped what was drawn for it").toBe(
      primaryLost.size,
    );
    expect(await backupDrop.dropped(), "the backup path dropped what was drawn for it").toBe(backupLost.size);

    const received = sink.bytes();
    expect(received.length).toBe(expected.length);
    expect(received.equals(expected), "exactly the datagrams not lost on both paths, in order").toBe(true);
    // The continuity errors are those the doubly lost datagrams cause, none elsewhere.
    const [got, want] = [analyse(received), analyse(expected)];
    expect(got.ccErrors).toBe(want.ccErrors);
    expect(got.sections).toEqual(want.sections);
    // An input counts a datagram lost when one after it arrives (RFC 3550), so what a path lost after the last
    // datagram it delivered is not loss yet.
    const countable = (lost: ReadonlySet<number>) => {
      let last = FIRST_SEQUENCE + media.length - 1;
      while (lost.has(last)) last--;
      return [...lost].filter((sequence) => sequence < last).length;
    };
    const paths = {
      primary: { delivered: media.length - primaryLost.size, lost: countable(primaryLost) },
      backup: { delivered: media.length - backupLost.size, lost: countable(backupLost) },
    };
    // Read live (GET /api/channels/{id} is the read model's view, up to a second old) once each input has
    // taken every datagram its path delivered: the backup's last ones come 20 ms after the output's.
    interface InputStats {
      readonly role: "primary" | "backup";
      readonly datagrams: number;
      readonly rtp: { readonly lost: number };
    }
    const inputs = await eventually("every delivered datagram counted at its input", async () => {
      const answer = await service.api(`/api/channels/${channel}/stats`);
      const { inputs } = (await answer.json()) as { inputs: ReadonlyArray<InputStats> };
      return inputs.every((input) => input.datagrams >= paths[input.role].delivered) ? inputs : undefined;
    });
    const lostAt = inputs.map((input) => `${input.role} ${input.rtp.lost}`);
    console.log(
      `2022-7, 5 % loss per path, backup 20 ms behind: ${media.length} datagrams sent on each path; primary ` +
        `dropped ${primaryLost.size}, backup ${backupLost.size}, both ${bothLost.size}; the output missed ` +
        `${(stream.ts.length - received.length) / 1316} datagrams (${got.ccErrors} continuity errors, all at those); ` +
        `RTP loss seen per input: ${lostAt.join(", ")}`,
    );
    for (const input of inputs) {
      expect(input.datagrams, `${input.role}: datagrams taken`).toBe(paths[input.role].delivered);
      expect(input.rtp.lost, `${input.role}: RTP loss`).toBe(paths[input.role].lost);
    }
  }, 120_000);
});
