/**
 * SRT over a real lossy link with ~50 ms of round trip: an SRT output and an SRT input, each through a relay
 * that delays every datagram 25 ms ± 2 ms each way, with 2 % then 5 % random loss both ways (data and
 * acknowledgements), and a 1.5 s partition, longer than the latency, that SRT cannot repair.
 *
 *   enc ── svc            UDP input (clean)
 *   enc ── wan ── svc     SRT input: srt-live-transmit in enc calls the service through the relay in wan
 *          wan ── rx1     SRT output: the service calls srt-live-transmit in rx1 through the relay in wan
 *          svc ── rx2     UDP output (clean)
 */
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { analyse } from "../support/analyse.ts";
import { eventually } from "../support/app.ts";
import {
  bytesArrived,
  channelOf,
  connectedOutput,
  cuedStream,
  newGenerator,
  outputOf,
  sendStream,
  startedChannel,
} from "../support/lab-channel.ts";
import {
  describeLab,
  type LabService,
  type LabSink,
  type Link,
  labSink,
  type Namespace,
  useLab,
  written,
} from "../support/netlab.ts";

const BITRATE = 2_000_000;
// Eight round trips: the issue asks for at least four, and the rest absorbs a busy machine's pauses.
const LATENCY_MS = 400;

describeLab("SRT over a lossy link with a 50 ms round trip", () => {
  const lab = useLab("srt");
  let service: LabService;
  let enc: Namespace;
  let rx1: Namespace;
  let rx2: Namespace;
  let encSvc: Link;
  let encWan: Link;
  let wanSvc: Link;
  let wanRx1: Link;
  let svcRx2: Link;

  beforeAll(async () => {
    enc = await lab.namespace("enc");
    const svc = await lab.namespace("svc");
    const wan = await lab.namespace("wan");
    rx1 = await lab.namespace("rx1");
    rx2 = await lab.namespace("rx2");
    encSvc = await lab.link(enc, svc);
    encWan = await lab.link(enc, wan);
    wanSvc = await lab.link(wan, svc);
    wanRx1 = await lab.link(wan, rx1);
    svcRx2 = await lab.link(svc, rx2);
    for (const [listen, to] of [
      [`${wanSvc.a.address}:9001`, `${wanRx1.b.address}:9001`],
      [`${encWan.b.address}:9000`, `${wanSvc.b.address}:9000`],
    ] as const)
      await written(lab.agent(wan, ["relay", listen, to, "25", "2"]), "ready");
    service = await lab.service(svc);
  });

  it("output: 2 % then 5 % loss are repaired byte for byte with every cue; a partition longer than the latency is counted as drops, the UDP output unaffected", async () => {
    const srtSink = await labSink(lab, rx1, "127.0.0.1", 7000);
    const receiver = lab.spawn(rx1, "srt-live-transmit", [
      `srt://${wanRx1.b.address}:9001?mode=listener&latency=${LATENCY_MS}`,
      "udp://127.0.0.1:7000",
    ]);
    const udpSink: LabSink = await labSink(lab, rx2, svcRx2.b.address, 7100);
    const channel = await startedChannel(service, {
      name: "SRT out",
      rtp_ip: encSvc.b.address,
      rtp_port: 5000,
      outputs: [
        {
          id: "srt",
          name: "srt",
          protocol: "srt",
          url: `srt://${wanSvc.a.address}:9001?latency=${LATENCY_MS}`,
        },
        { id: "udp", name: "udp", protocol: "udp", url: `udp://${svcRx2.b.address}:7100` },
      ],
    });
    await connectedOutput(service, channel, "srt");
    const generator = newGenerator(41, BITRATE);
    const sent: Uint8Array[] = [];
    let schedules = 0;
    const send = async (seconds: number, firstEventId: number) => {
      const stream = cuedStream(generator, BITRATE, seconds, 2, firstEventId);
      sent.push(stream.ts);
      const file = join(lab.dir, `srt-out-${schedules++}`);
      const sender = await sendStream(lab, enc, file, stream, `${encSvc.b.address}:5000`);
      await sender.done;
      return stream;
    };
    const total = () => sent.reduce((sum, ts) => sum + ts.length, 0);

    for (const [percent, firstEventId] of [
      [2, 1],
      [5, 100],
    ] as const) {
      const before = await outputOf(service, channel, "srt");
      const [data, acks] = [await lab.loss(wanRx1.a, percent), await lab.loss(wanRx1.b, percent)];
      const stream = await send(10, firstEventId);
      const [dataDropped, acksDropped] = [await data.dropped(), await acks.dropped()];
      // A lost last packet has no later one to show the gap: the stream ends with 0.4 s over the healed link.
      await data.heal();
      await acks.heal();
      const clean = await send(0.4, firstEventId);
      await bytesArrived("the SRT receiver", srtSink.totalBytes, total(), 30_000);
      const received = srtSink.bytes();
      expect(received.length).toBe(total());
      expect(received.equals(Buffer.concat(sent)), `${percent} %: byte for byte`).toBe(true);
      const tail = received.subarray(total() - clean.ts.length - stream.ts.length, total() - clean.ts.length);
      expect(analyse(tail).sections, `${percent} %: every cue`).toEqual(stream.cues);
      expect(analyse(tail).ccErrors).toBe(0);
      const after = await eventually(
        "the retransmissions in the output's statistics",
        async () => {
          const output = await outputOf(service, channel, "srt");
          return (output.srt?.retransmits ?? 0) > (before.srt?.retransmits ?? 0) ? output : undefined;
        },
        5_000,
      );
      const retransmits = (after.srt?.retransmits ?? 0) - (before.srt?.retransmits ?? 0);
      console.log(
        `SRT output, ${percent} % loss each way, RTT ${after.srt?.rtt_ms} ms, latency ${LATENCY_MS} ms: ` +
          `${stream.datagrams.length} datagrams sent, ${dataDropped} dropped toward the receiver and ` +
          `${acksDropped} back; ${retransmits} retransmissions; ${stream.cues.length} cues; received byte for byte`,
      );
      expect(retransmits).toBeGreaterThan(0);
      expect(after.srt?.dropped_packets ?? 0).toBe(0);
    }

    // A partition of 1.5 s, six times the latency: SRT gives up on what it could not resend in time.
    const before = await outputOf(service, channel, "srt");
    const receivedBefore = srtSink.totalBytes();
    const partitioned = send(6, 200);
    await eventually("the stream to be flowing", () =>
      srtSink.totalBytes() > receivedBefore + 100_000 ? true : undefined,
    );
    const [data, acks] = [await lab.partition(wanRx1.a), await lab.partition(wanRx1.b)];
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await data.heal();
    await acks.heal();
    await partitioned;
    await bytesArrived("the UDP receiver", udpSink.totalBytes, total(), 30_000);
    expect(udpSink.bytes().equals(Buffer.concat(sent)), "the UDP output, byte for byte").toBe(true);
    const after = await eventually(
      "the SRT output to count what it dropped",
      async () => {
        const output = await outputOf(service, channel, "srt");
        return (output.srt?.dropped_packets ?? 0) > 0 ? output : undefined;
      },
      10_000,
    );
    const lastTs = sent.at(-1) ?? new Uint8Array(0);
    await eventually("the end of the stream at the SRT receiver", () =>
      srtSink
        .bytes()
        .subarray(-1316)
        .equals(Buffer.from(lastTs.subarray(lastTs.length - 1316)))
        ? true
        : undefined,
    );
    const missing = total() - srtSink.totalBytes();
    console.log(
      `SRT output, a 1.5 s partition (latency ${LATENCY_MS} ms): ${(await data.dropped()) + (await acks.dropped())} ` +
        `datagrams dropped by the link, ${after.srt?.dropped_packets} packets dropped by the sender, ` +
        `${(after.srt?.retransmits ?? 0) - (before.srt?.retransmits ?? 0)} retransmissions, ${missing / 188} TS ` +
        `packets missing at the receiver; the UDP output byte for byte (${udpSink.totalBytes()} bytes)`,
    );
    expect(missing).toBeGreaterThan(0);
    expect(after.state).toBe("connected");
    expect(after.reconnects).toBe(0);
    await receiver.stop();
  }, 180_000);

  it("input: 2 % then 5 % loss on the way in are repaired, and the UDP output gets every byte and cue", async () => {
    const sink = await labSink(lab, rx2, svcRx2.b.address, 7101);
    const channel = await startedChannel(service, {
      name: "SRT in",
      rtp_ip: "0.0.0.0",
      rtp_port: 9000,
      input_url: `srt://0.0.0.0:9000?mode=listener&latency=${LATENCY_MS}`,
      outputs: [{ id: "udp", name: "udp", protocol: "udp", url: `udp://${svcRx2.b.address}:7101` }],
    });
    const sender = lab.spawn(enc, "srt-live-transmit", [
      "-v",
      "udp://127.0.0.1:7002?rcvbuf=8388608",
      `srt://${encWan.b.address}:9000?mode=caller&latency=${LATENCY_MS}`,
    ]);
    await written(sender, "connected");
    const generator = newGenerator(42, BITRATE);
    const sent: Uint8Array[] = [];
    for (const [percent, firstEventId] of [
      [2, 1],
      [5, 100],
    ] as const) {
      const [data, acks] = [await lab.loss(encWan.a, percent), await lab.loss(encWan.b, percent)];
      const stream = cuedStream(generator, BITRATE, 10, 2, firstEventId);
      sent.push(stream.ts);
      const encoder = await sendStream(
        lab,
        enc,
        join(lab.dir, `srt-in-${percent}`),
        stream,
        "127.0.0.1:7002",
      );
      await encoder.done;
      const [dataDropped, acksDropped] = [await data.dropped(), await acks.dropped()];
      // SRT repairs a loss once a later packet shows the gap: a lost last packet has none, so the stream ends
      // with 0.4 s sent over the healed link.
      await data.heal();
      await acks.heal();
      const clean = cuedStream(generator, BITRATE, 0.4);
      sent.push(clean.ts);
      await (await sendStream(lab, enc, join(lab.dir, `srt-in-${percent}-end`), clean, "127.0.0.1:7002"))
        .done;
      const total = sent.reduce((sum, ts) => sum + ts.length, 0);
      await bytesArrived("the UDP output's receiver", sink.totalBytes, total, 30_000).catch(async (error) => {
        throw new Error(`${error}; the input: ${JSON.stringify((await channelOf(service, channel)).inputs)}`);
      });
      const received = sink.bytes();
      expect(received.length).toBe(total);
      expect(received.equals(Buffer.concat(sent)), `${percent} %: byte for byte`).toBe(true);
      const tail = analyse(
        received.subarray(total - clean.ts.length - stream.ts.length, total - clean.ts.length),
      );
      expect(tail.sections, `${percent} %: every cue`).toEqual(stream.cues);
      expect(tail.ccErrors).toBe(0);
      console.log(
        `SRT input, ${percent} % loss each way, RTT ~50 ms, latency ${LATENCY_MS} ms: ${stream.datagrams.length} ` +
          `datagrams sent, ${dataDropped} dropped toward the service and ${acksDropped} back; ` +
          `${stream.cues.length} cues; the UDP output byte for byte`,
      );
      expect(dataDropped).toBeGreaterThan(0);
    }
    const view = await channelOf(service, channel);
    expect(view.status).toBe("running");
    await sender.stop();
  }, 120_000);
});
