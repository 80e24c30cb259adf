/**
 * RIST over a lossy link with delay: ristsender in enc calls the service's RIST input (main profile,
 * buffer=1000) through a relay in wan that holds every datagram 40 ms each way (in user space: this kernel has
 * no netem), with 5 % random loss both ways (data and RTCP). librist's retransmissions repair it: the UDP
 * output gets every byte and cue, and the input's statistics count what was recovered.
 *
 * Failover from such a RIST primary (through a second relay, port 9100 at both ends: the main profile carries
 * data and RTCP on one port, so one relayed port is enough; the simple profile would need the next one too) to
 * a UDP backup sent from bak: the primary's link cut, the backup on air within failover_after_ms + 100 ms and
 * the output the stream byte for byte, the primary's part then the backup's. The primary starts first: its data
 * comes a buffer (1 s) late, and a backup already flowing would go on air in the meantime and, sticky, stay
 * there, so that the primary's link looks as if it passed nothing.
 *
 *   enc ── wan ── svc ── rx
 *                  │
 *   bak ───────────┘
 */
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { analyse } from "../support/analyse.ts";
import { eventually } from "../support/app.ts";
import {
  bytesArrived,
  channelOf,
  cuedStream,
  newGenerator,
  sendStream,
  startedChannel,
} from "../support/lab-channel.ts";
import {
  describeLab,
  type LabService,
  type Link,
  labSink,
  type Namespace,
  useLab,
  written,
} from "../support/netlab.ts";

const BITRATE = 2_000_000;
const FAILOVER_AFTER_MS = 500;

interface RistInput {
  readonly rist?: {
    readonly recovered: number;
    readonly lost: number;
    readonly retries: number;
    readonly rtt_ms: number;
  } | null;
}

describeLab("RIST over a link with 5 % loss and 40 ms of delay each way", () => {
  const lab = useLab("rist");
  let service: LabService;
  let enc: Namespace;
  let rx: Namespace;
  let encWan: Link;
  let wanSvc: Link;
  let svcRx: Link;
  let bakSvc: Link;
  let bak: Namespace;

  beforeAll(async () => {
    enc = await lab.namespace("enc");
    const wan = await lab.namespace("wan");
    const svc = await lab.namespace("svc");
    rx = await lab.namespace("rx");
    encWan = await lab.link(enc, wan);
    wanSvc = await lab.link(wan, svc);
    svcRx = await lab.link(svc, rx);
    bak = await lab.namespace("bak");
    bakSvc = await lab.link(bak, svc);
    await written(
      lab.agent(wan, ["relay", `${encWan.b.address}:9000`, `${wanSvc.b.address}:9000`, "40", "2"]),
      "ready",
    );
    // A second relay, for the failover's RIST primary (its own port at both ends).
    await written(
      lab.agent(wan, ["relay", `${encWan.b.address}:9100`, `${wanSvc.b.address}:9100`, "40", "2"]),
      "ready",
    );
    service = await lab.service(svc);
  });

  /**
   * A channel whose RIST input listens on `port` (the relay in wan's port too) with a UDP output to rx on
   * `sinkPort`, and ristsender in enc calling it through the relay with what comes to its own UDP `input`.
   */
  const ristThroughRelay = async (
    name: string,
    port: number,
    sinkPort: number,
    more: Record<string, unknown>,
  ) => {
    const sink = await labSink(lab, rx, svcRx.b.address, sinkPort);
    const channel = await startedChannel(service, {
      name,
      rtp_ip: "0.0.0.0",
      rtp_port: port,
      input_url: `rist://@0.0.0.0:${port}?buffer=1000`,
      ...more,
      outputs: [{ id: "udp", name: "udp", protocol: "udp", url: `udp://${svcRx.b.address}:${sinkPort}` }],
    });
    const input = `127.0.0.1:${port - 1998}`;
    const sender = lab.spawn(enc, "ristsender", [
      ...["-i", `udp://${input}`, "-o", `rist://${encWan.b.address}:${port}?buffer=1000`],
      ...["-p", "1", "-S", "0", "-v", "6"],
    ]);
    await written(sender, "peer connected count is 1");
    return { sink, channel, sender, input };
  };

  it("input, buffer=1000: losses recovered, the UDP output byte for byte with every cue", async () => {
    const { sink, channel, sender, input } = await ristThroughRelay("RIST in", 9000, 7200, {});
    const generator = newGenerator(81, BITRATE);
    const sent: Uint8Array[] = [];
    // A lost first packet has no earlier one to show the gap either: the stream starts with 0.4 s over the
    // clean link, and its first datagram at the output, before the loss begins.
    const head = cuedStream(generator, BITRATE, 0.4);
    sent.push(head.ts);
    await (await sendStream(lab, enc, join(lab.dir, "rist-in-head"), head, input)).done;
    await eventually("the first datagram at the output", () => (sink.totalBytes() > 0 ? true : undefined));
    const [data, rtcp] = [await lab.loss(encWan.a, 5), await lab.loss(encWan.b, 5)];
    const stream = cuedStream(generator, BITRATE, 10, 2, 1);
    sent.push(stream.ts);
    await (await sendStream(lab, enc, join(lab.dir, "rist-in"), stream, input)).done;
    const [dataDropped, rtcpDropped] = [await data.dropped(), await rtcp.dropped()];
    // A lost last packet has no later one to show the gap: the stream ends with 0.4 s over the healed link.
    await data.heal();
    await rtcp.heal();
    const clean = cuedStream(generator, BITRATE, 0.4);
    sent.push(clean.ts);
    await (await sendStream(lab, enc, join(lab.dir, "rist-in-end"), clean, input)).done;
    const total = sent.reduce((sum, ts) => sum + ts.length, 0);
    await bytesArrived("the UDP output's receiver", sink.totalBytes, total, 30_000).catch(async (error) => {
      throw new Error(`${error}; the input: ${JSON.stringify((await channelOf(service, channel)).inputs)}`);
    });
    const received = sink.bytes();
    expect(received.length).toBe(total);
    expect(received.equals(Buffer.concat(sent)), "byte for byte").toBe(true);
    const whole = analyse(received);
    expect(whole.sections, "every cue").toEqual([...head.cues, ...stream.cues]);
    expect(whole.ccErrors).toBe(0);
    const link = await eventually(
      "the recovered packets in the input's statistics",
      async () => {
        const input = (await channelOf(service, channel)).inputs[0] as RistInput | undefined;
        return (input?.rist?.recovered ?? 0) > 0 ? input?.rist : undefined;
      },
      5_000,
    );
    console.log(
      `RIST input, 5 % loss each way, 40 ms each way, buffer 1000 ms: ${stream.datagrams.length} datagrams sent, ` +
        `${dataDropped} dropped toward the service and ${rtcpDropped} back; recovered ${link?.recovered}, ` +
        `lost ${link?.lost}, retries ${link?.retries}, RTT ${link?.rtt_ms} ms; the UDP output byte for byte`,
    );
    expect(dataDropped).toBeGreaterThan(0);
    expect(link?.lost).toBe(0);
    await sender.stop();
  }, 120_000);

  it("failover: the RIST primary's link cut, the UDP backup from another namespace on air within failover_after_ms + 100 ms", async () => {
    const { sink, channel, sender, input } = await ristThroughRelay("RIST primary", 9100, 7300, {
      backup_rtp_ip: bakSvc.b.address,
      backup_rtp_port: 5002,
      redundancy: { mode: "failover", failover_after_ms: FAILOVER_AFTER_MS, revert: "sticky" },
    });
    const stream = cuedStream(newGenerator(82, BITRATE), BITRATE, 12, 2, 1);
    const perSecond = Math.round(stream.perMs * 1000);
    const onAir = async () =>
      (await channelOf(service, channel)).inputs.find((input) => input.active === true)?.role;
    // The primary first: RIST's buffer holds its data a second, and a backup already flowing would be on air
    // before it (the channel takes whichever input brings data while the other is silent).
    const primary = await sendStream(lab, enc, join(lab.dir, "rist-primary"), stream, input);
    await eventually("the primary on air", async () =>
      sink.arrivals.length > 0 && (await onAir()) === "primary" ? true : undefined,
    );
    // The loss begins once the first datagram is through: a lost first packet has no earlier one to show the gap.
    const [data, rtcp] = [await lab.loss(encWan.a, 5), await lab.loss(encWan.b, 5)];
    const backup = await sendStream(
      lab,
      bak,
      join(lab.dir, "rist-backup"),
      stream,
      `${bakSvc.b.address}:5002`,
    );
    // Four more seconds at the output, all of it through RIST (the backup stands by).
    const seen = sink.arrivals.length;
    await eventually("four more seconds at the output", () =>
      sink.arrivals.length >= seen + 4 * perSecond ? true : undefined,
    );
    expect(await onAir()).toBe("primary");
    const cut = await lab.partition(encWan.a);
    const cutAt = performance.timeOrigin + performance.now();
    await eventually(
      "the backup on air",
      async () => ((await onAir()) === "backup" ? true : undefined),
      10_000,
    );
    await Promise.all([primary.done, backup.done]);
    const tail = Buffer.from(stream.ts.subarray(stream.ts.length - 1316));
    await eventually("the end of the stream at the output", () =>
      sink.arrivals.at(-1)?.datagram.equals(tail) ? true : undefined,
    );
    const [dataDropped, cutDropped] = [await data.dropped(), await cut.dropped()];
    await Promise.all([cut.heal(), data.heal(), rtcp.heal()]);
    // The longest gap at the output is the switch: before it the primary's datagrams, after it the backup's.
    const arrivals = sink.arrivals;
    let gapMs = 0;
    let gapEnd = 0;
    for (let i = 1; i < arrivals.length; i++) {
      const gap = (arrivals[i]?.atMs ?? 0) - (arrivals[i - 1]?.atMs ?? 0);
      if (gap <= gapMs) continue;
      gapMs = gap;
      gapEnd = i;
    }
    const ts = Buffer.from(stream.ts);
    // What the primary sent until 0.3 s before the cut (a buffer, 1 s, later at the output) had time for its
    // retransmissions; a datagram lost just before the cut has none, and librist lets it go.
    const repaired = arrivals.slice(0, gapEnd).filter((arrival) => arrival.atMs < cutAt + 700);
    const fromPrimary = Buffer.concat(repaired.map((arrival) => arrival.datagram));
    const fromBackup = Buffer.concat(arrivals.slice(gapEnd).map((arrival) => arrival.datagram));
    const switched = (await (
      await service.api(`/api/channels/${channel}/events?type=input_switched`)
    ).json()) as { events: Array<{ from: string; to: string; reason: string }> };
    console.log(
      `Failover from RIST over 5 % loss and 40 ms each way: ${dataDropped} datagrams dropped toward the ` +
        `service before the cut, ${cutDropped} at the cut; ${Math.round(gapMs)} ms without data at the output ` +
        `(failover_after_ms ${FAILOVER_AFTER_MS}); ${fromPrimary.length} bytes from the primary until 0.3 s before the cut, ` +
        `${fromBackup.length} from the backup`,
    );
    expect(dataDropped).toBeGreaterThan(0);
    expect(gapMs).toBeLessThanOrEqual(FAILOVER_AFTER_MS + 100);
    expect(switched.events).toMatchObject([{ from: "primary", to: "backup", reason: "silence" }]);
    // Byte for byte: the primary's part is the stream's beginning (its losses repaired), the backup's its end.
    expect(repaired.length).toBeGreaterThan(4 * perSecond);
    expect(fromPrimary.equals(ts.subarray(0, fromPrimary.length)), "the primary's part").toBe(true);
    expect(fromBackup.equals(ts.subarray(ts.length - fromBackup.length)), "the backup's part").toBe(true);
    expect(analyse(fromPrimary).ccErrors + analyse(fromBackup).ccErrors).toBe(0);
    await sender.stop();
  }, 120_000);
});
