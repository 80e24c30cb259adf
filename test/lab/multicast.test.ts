/**
 * Multicast in a facility: the encoder, the service and two receivers on one bridge, each in its own
 * namespace. The service joins the input group the encoder sends to, and its multicast output reaches both
 * receivers byte for byte; stopping the channel leaves the group and the output's traffic stops.
 *
 *   enc ─┐
 *   svc ─┼─ bridge
 *   rx1 ─┤
 *   rx2 ─┘
 */
import { join } from "node:path";
import { expect, it } from "vitest";
import { analyse } from "../support/analyse.ts";
import { eventually } from "../support/app.ts";
import {
  bytesArrived,
  cuedStream,
  newGenerator,
  sendStream,
  startedChannel,
} from "../support/lab-channel.ts";
import { describeLab, labSink, useLab } from "../support/netlab.ts";

const BITRATE = 2_000_000;
const INPUT_GROUP = "239.18.0.1";
const OUTPUT_GROUP = "239.18.0.2";

describeLab("multicast on a bridge", () => {
  const lab = useLab("mcast");

  it("the service joins the input group, two receivers get the multicast output byte for byte, a stop leaves", async () => {
    const enc = await lab.namespace("enc");
    const svc = await lab.namespace("svc");
    const rx1 = await lab.namespace("rx1");
    const rx2 = await lab.namespace("rx2");
    const { ends } = await lab.bridge([enc, svc, rx1, rx2]);
    const [encEnd, svcEnd, rx1End, rx2End] = ends;
    if (encEnd === undefined || svcEnd === undefined || rx1End === undefined || rx2End === undefined)
      throw new Error("the bridge has four ports");
    const service = await lab.service(svc);
    const sinks = [
      await labSink(lab, rx1, rx1End.address, 6000, OUTPUT_GROUP),
      await labSink(lab, rx2, rx2End.address, 6000, OUTPUT_GROUP),
    ];
    const channel = await startedChannel(service, {
      name: "Multicast",
      rtp_ip: INPUT_GROUP,
      rtp_port: 5000,
      outputs: [{ id: "mc", name: "multicast", protocol: "udp", url: `udp://${OUTPUT_GROUP}:6000` }],
    });
    const joined = async () =>
      (await svc.exec("ip", ["maddr", "show", "dev", svcEnd.dev])).includes(INPUT_GROUP);
    await eventually("the service to join the input group", async () =>
      (await joined()) ? true : undefined,
    );

    const generator = newGenerator(6, BITRATE);
    const stream = cuedStream(generator, BITRATE, 8);
    const sender = await sendStream(lab, enc, join(lab.dir, "multicast"), stream, `${INPUT_GROUP}:5000`);
    await sender.done;
    for (const [index, sink] of sinks.entries()) {
      await bytesArrived(`receiver ${index + 1}`, sink.totalBytes, stream.ts.length);
      expect(sink.bytes().equals(Buffer.from(stream.ts)), `receiver ${index + 1}: byte for byte`).toBe(true);
      expect(analyse(sink.bytes()).sections).toEqual(stream.cues);
    }

    // The encoder goes on sending; the channel stops.
    const more = cuedStream(generator, BITRATE, 4);
    const still = await sendStream(lab, enc, join(lab.dir, "multicast-more"), more, `${INPUT_GROUP}:5000`);
    await eventually("the output to carry the new stream", () =>
      sinks.every((sink) => sink.totalBytes() > stream.ts.length) ? true : undefined,
    );
    expect((await service.api(`/api/channels/${channel}/stop`, { method: "POST" })).status).toBe(200);
    await eventually("the service to leave the input group", async () =>
      (await joined()) ? undefined : true,
    );
    const atStop = sinks.map((sink) => sink.totalBytes());
    // Nothing to await here but time: a second of an encoder still sending, and no datagram at the receivers.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const afterStop = sinks.map((sink) => sink.totalBytes());
    const grew = afterStop.map((bytes, index) => bytes - (atStop[index] ?? 0));
    await still.done;
    console.log(
      `Multicast: ${stream.datagrams.length} datagrams from the encoder to ${INPUT_GROUP}, the output to ` +
        `${OUTPUT_GROUP} received byte for byte by both receivers (${sinks.map((sink) => sink.arrivals.length).join(" and ")} ` +
        `datagrams by the stop); after the stop the group was left and ${grew[0]} and ` +
        `${grew[1]} bytes arrived in a second`,
    );
    expect(afterStop).toEqual(atStop);
  }, 120_000);
});
