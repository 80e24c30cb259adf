/**
 * Failover on real links: the encoder sends the same RTP stream to the service over two links, primary and
 * backup. A primary that loses 20 % of its datagrams is lossy, not silent, and stays on air; when the
 * primary's link goes down (a partition: the sender still sends), the backup is on air within
 * failover_after_ms + 100 ms.
 *
 *   enc ══ svc ── rx      two links enc–svc (primary, backup); UDP output to rx
 */
import { join } from "node:path";
import { expect, it } from "vitest";
import { analyse } from "../support/analyse.ts";
import { eventually } from "../support/app.ts";
import { channelOf, cuedStream, newGenerator, startedChannel } from "../support/lab-channel.ts";
import { describeLab, labSend, throughService, useLab } from "../support/netlab.ts";
import { asRtp } from "../support/sender.ts";

const BITRATE = 2_000_000;
const FAILOVER_AFTER_MS = 500;

describeLab("failover when the primary's link fails", () => {
  const lab = useLab("fail");

  it("a lossy primary does not flap; a dead link puts the backup on air within failover_after_ms + 100 ms", async () => {
    const { enc, svc, service, sink, udpOutput } = await throughService(lab);
    const primary = await lab.link(enc, svc);
    const backup = await lab.link(enc, svc);
    const channel = await startedChannel(service, {
      name: "Failover",
      rtp_ip: primary.b.address,
      rtp_port: 5000,
      backup_rtp_ip: backup.b.address,
      backup_rtp_port: 5002,
      redundancy: { mode: "failover", failover_after_ms: FAILOVER_AFTER_MS, revert: "sticky" },
      outputs: [udpOutput],
    });
    const switches = async () => {
      const answer = (await (
        await service.api(`/api/channels/${channel}/events?type=input_switched`)
      ).json()) as {
        events: Array<{ from: string; to: string; reason: string }>;
      };
      return answer.events;
    };

    const stream = cuedStream(newGenerator(3, BITRATE), BITRATE, 16);
    const media = asRtp(stream.datagrams, 10_000);
    const perSecond = Math.round(stream.perMs * 1000);
    const lossy = await lab.loss(primary.a, 20);
    const sender = await labSend(
      lab,
      enc,
      join(lab.dir, "failover"),
      media.map((datagram) => [
        { to: 0, datagram },
        { to: 1, datagram },
      ]),
      stream.perMs,
      [`${primary.b.address}:5000`, `${backup.b.address}:5002`],
    );
    // Six seconds of a primary losing one datagram in five.
    await eventually(
      "six seconds of stream",
      () => (sink.arrivals.length >= 6 * perSecond ? true : undefined),
      20_000,
    );
    const lossyDropped = await lossy.dropped();
    await lossy.heal();
    const flapped = await switches();
    const active = (await channelOf(service, channel)).inputs.find((input) => input.active === true)?.role;
    console.log(
      `Failover, a lossy primary: 20 % loss for 6 s, ${lossyDropped} datagrams dropped; ` +
        `${flapped.length} switches, ${active} on air`,
    );
    expect(flapped).toEqual([]);
    expect(active).toBe("primary");

    // The primary's link goes down while its sender still sends.
    const down = await lab.partition(primary.a);
    const downAt = performance.timeOrigin + performance.now();
    await eventually(
      "the backup on air",
      async () =>
        (await channelOf(service, channel)).inputs.find((input) => input.active === true)?.role === "backup"
          ? true
          : undefined,
      10_000,
    );
    await sender.done;
    const tail = Buffer.from(stream.ts.subarray(stream.ts.length - 1316));
    await eventually("the end of the stream at the output", () =>
      sink.arrivals.at(-1)?.datagram.equals(tail) ? true : undefined,
    );
    const after = sink.arrivals.filter((arrival) => arrival.atMs >= downAt);
    const before = sink.arrivals.filter((arrival) => arrival.atMs < downAt).at(-1)?.atMs ?? downAt;
    let gapMs = (after[0]?.atMs ?? 0) - before;
    let gapEnd = 0;
    for (let i = 1; i < after.length; i++) {
      const gap = (after[i]?.atMs ?? 0) - (after[i - 1]?.atMs ?? 0);
      if (gap <= gapMs) continue;
      gapMs = gap;
      gapEnd = i;
    }
    const events = await switches();
    const droppedDown = await down.dropped();
    await down.heal();
    // After the gap, the backup's datagrams whole: the stream's own end, byte for byte, with no CC error.
    const fromBackup = Buffer.concat(after.slice(gapEnd).map((arrival) => arrival.datagram));
    const ts = Buffer.from(stream.ts);
    console.log(
      `Failover, the primary's link down: ${droppedDown} datagrams dropped on it; the backup on air after a ` +
        `${Math.round(gapMs)} ms gap at the output (failover_after_ms ${FAILOVER_AFTER_MS}); switches: ` +
        events.map((event) => `${event.from}→${event.to} (${event.reason})`).join(", "),
    );
    expect(gapMs).toBeLessThanOrEqual(FAILOVER_AFTER_MS + 100);
    expect(events).toMatchObject([{ from: "primary", to: "backup", reason: "silence" }]);
    expect(fromBackup.equals(ts.subarray(ts.length - fromBackup.length))).toBe(true);
    expect(analyse(fromBackup).ccErrors).toBe(0);
  }, 120_000);
});
