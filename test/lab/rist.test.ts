/**
 * RIST over a lossy link with delay: ristsender in enc calls the service's RIST input (main profile,
 * buffer=1000) through a relay in wan that holds every datagram 40 ms each way (in user space: this kernel has
 * no netem), with 5 % random loss both ways (data and RTCP). librist's retransmissions repair it: the UDP
 * output gets every byte and cue, and the input's statistics count what was recovered. (Failover from a RIST
 * primary: test/redundancy/rist-input.timing.test.ts.)
 *
 *   enc ── wan ── svc ── rx
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

  beforeAll(async () => {
    enc = await lab.namespace("enc");
    const wan = await lab.namespace("wan");
    const svc = await lab.namespace("svc");
    rx = await lab.namespace("rx");
    encWan = await lab.link(enc, wan);
    wanSvc = await lab.link(wan, svc);
    svcRx = await lab.link(svc, rx);
    await written(
      lab.agent(wan, ["relay", `${encWan.b.address}:9000`, `${wanSvc.b.address}:9000`, "40", "2"]),
      "ready",
    );
    service = await lab.service(svc);
  });

  it("input, buffer=1000: losses recovered, the UDP output byte for byte with every cue", async () => {
    const sink = await labSink(lab, rx, svcRx.b.address, 7200);
    const channel = await startedChannel(service, {
      name: "RIST in",
      rtp_ip: "0.0.0.0",
      rtp_port: 9000,
      input_url: "rist://@0.0.0.0:9000?buffer=1000",
      outputs: [{ id: "udp", name: "udp", protocol: "udp", url: `udp://${svcRx.b.address}:7200` }],
    });
    const sender = lab.spawn(enc, "ristsender", [
      ...["-i", "udp://127.0.0.1:7002", "-o", `rist://${encWan.b.address}:9000?buffer=1000`],
      ...["-p", "1", "-S", "0", "-v", "6"],
    ]);
    await written(sender, "peer connected count is 1");
    const generator = newGenerator(81, BITRATE);
    const sent: Uint8Array[] = [];
    const [data, rtcp] = [await lab.loss(encWan.a, 5), await lab.loss(encWan.b, 5)];
    const stream = cuedStream(generator, BITRATE, 10, 2, 1);
    sent.push(stream.ts);
    await (await sendStream(lab, enc, join(lab.dir, "rist-in"), stream, "127.0.0.1:7002")).done;
    const [dataDropped, rtcpDropped] = [await data.dropped(), await rtcp.dropped()];
    // A lost last packet has no later one to show the gap: the stream ends with 0.4 s over the healed link.
    await data.heal();
    await rtcp.heal();
    const clean = cuedStream(generator, BITRATE, 0.4);
    sent.push(clean.ts);
    await (await sendStream(lab, enc, join(lab.dir, "rist-in-end"), clean, "127.0.0.1:7002")).done;
    const total = sent.reduce((sum, ts) => sum + ts.length, 0);
    await bytesArrived("the UDP output's receiver", sink.totalBytes, total, 30_000).catch(async (error) => {
      throw new Error(`${error}; the input: ${JSON.stringify((await channelOf(service, channel)).inputs)}`);
    });
    const received = sink.bytes();
    expect(received.length).toBe(total);
    expect(received.equals(Buffer.concat(sent)), "byte for byte").toBe(true);
    const tail = analyse(received.subarray(0, stream.ts.length));
    expect(tail.sections, "every cue").toEqual(stream.cues);
    expect(tail.ccErrors).toBe(0);
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
});
