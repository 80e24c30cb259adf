/**
 * Plans of single edits checked against what then happens on the wire (real UDP sources and sinks on
 * 127.0.0.1): an output renamed sends on byte for byte, an output's new URL moves that output alone, a
 * channel's new input changes that channel alone; and an SRT passphrase given by reference reaches
 * srt-live-transmit while the plan and the export show only the reference.
 */
import { Effect } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort, udpSource, useAppWithPeers } from "../support/app.ts";
import { ref } from "../support/config-code.ts";
import { srtListenerPeer, type UdpSink, udpSink } from "../support/peers.ts";
import { chunkTs } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const start = useAppWithPeers();

/** The packets udpSource sends, in order, over and over. */
const sent = chunkTs(new TsGenerator({ seed: 1, bitrate: 2_000_000 }).packets(7 * 200)).flatMap((datagram) =>
  Array.from({ length: datagram.length / 188 }, (_, i) =>
    Buffer.from(datagram.subarray(i * 188, (i + 1) * 188)),
  ),
);

/** Whether the sink's packets are the source's, in its order, none missing, from its first one on. */
const unbroken = (sink: UdpSink): boolean => {
  const bytes = sink.bytes();
  const packets = Array.from({ length: bytes.length / 188 }, (_, i) =>
    bytes.subarray(i * 188, (i + 1) * 188),
  );
  const first = packets[0];
  if (first === undefined || bytes.length % 188 !== 0) return false;
  return sent.some(
    (candidate, anchor) =>
      candidate.equals(first) &&
      packets.every((packet, i) => packet.equals(sent[(anchor + i) % sent.length] as Buffer)),
  );
};

const SECRET = "h13-live-srt-pass-7Hq2";
beforeAll(() => {
  process.env.DISTRIBUTARY_SECRET_H13_LIVE_SRT = SECRET;
});
afterAll(() => {
  delete process.env.DISTRIBUTARY_SECRET_H13_LIVE_SRT;
});

describe("plans checked on the wire", () => {
  it("rename: byte for byte; new URL: that output alone reconnects; new input: that channel alone", async () => {
    const { test, inside } = await start();
    const [sinkFirst, sinkSecond, sinkMoved, sinkOther] = await inside(
      Effect.all([udpSink, udpSink, udpSink, udpSink]),
    );
    const [inA, inA2, inB] = [await freeUdpPort(), await freeUdpPort(), await freeUdpPort()];
    const sources = [udpSource(inA), udpSource(inB)];
    const document = (portA: number, firstName: string, secondPort: number) => `version: 1
channels:
  alpha:
    name: Alpha
    desired: running
    rtp_ip: 127.0.0.1
    rtp_port: ${portA}
    outputs:
      first: { name: ${firstName}, protocol: udp, url: "udp://127.0.0.1:${sinkFirst.port}" }
      second: { name: Second, protocol: udp, url: "udp://127.0.0.1:${secondPort}" }
  bravo:
    name: Bravo
    desired: running
    rtp_ip: 127.0.0.1
    rtp_port: ${inB}
    outputs:
      main: { name: Main, protocol: udp, url: "udp://127.0.0.1:${sinkOther.port}" }
`;
    const planOf = async (text: string) => {
      const response = await test.request("/api/config/plan", {
        method: "POST",
        body: JSON.stringify({ document: text }),
      });
      expect(response.status, await response.clone().text()).toBe(200);
      return (await response.json()) as {
        plan_id: string;
        changes: Array<{ id: string; fields: Array<{ field: string }>; cost: string }>;
      };
    };
    const apply = async (planId: string) => {
      const response = await test.request("/api/config/apply", {
        method: "POST",
        body: JSON.stringify({ plan_id: planId }),
      });
      expect(response.status, await response.clone().text()).toBe(200);
    };
    const receiving = (sink: UdpSink, what: string) => {
      const from = sink.totalBytes();
      return eventually(`${what} to receive`, () => (sink.totalBytes() > from + 188 * 70 ? true : undefined));
    };
    /** Packets the output handed on since it was made: a reconnected output starts again from 0. */
    const sentBy = async (path: string) =>
      ((await (await test.request(`/api/channels/${path}`)).json()) as { packets_sent: number }).packets_sent;
    try {
      await apply((await planOf(document(inA, "First", sinkSecond.port))).plan_id);
      await Promise.all([
        receiving(sinkFirst, "first"),
        receiving(sinkSecond, "second"),
        receiving(sinkOther, "bravo"),
      ]);

      // A rename: no interruption, and the output sends on byte for byte.
      const renamed = await planOf(document(inA, "First renamed", sinkSecond.port));
      expect(
        renamed.changes.map(({ id, fields, cost }) => ({ id, fields: fields.map((f) => f.field), cost })),
      ).toEqual([{ id: "alpha/first", fields: ["name"], cost: "no interruption" }]);
      const beforeRename = await sentBy("alpha/outputs/first");
      await apply(renamed.plan_id);
      await receiving(sinkFirst, "first after the rename");
      expect(unbroken(sinkFirst)).toBe(true);
      expect(await sentBy("alpha/outputs/first")).toBeGreaterThan(beforeRename);

      // A new URL: that output reconnects, to its new destination; the others send on unbroken.
      const moved = await planOf(document(inA, "First renamed", sinkMoved.port));
      expect(
        moved.changes.map(({ id, fields, cost }) => ({ id, fields: fields.map((f) => f.field), cost })),
      ).toEqual([{ id: "alpha/second", fields: ["url"], cost: "output Second reconnects" }]);
      const [firstBefore, otherBefore] = [
        await sentBy("alpha/outputs/first"),
        await sentBy("bravo/outputs/main"),
      ];
      await apply(moved.plan_id);
      await receiving(sinkMoved, "the moved output");
      const left = sinkSecond.totalBytes();
      await receiving(sinkFirst, "first after the move");
      expect(sinkSecond.totalBytes()).toBe(left);
      expect(unbroken(sinkFirst)).toBe(true);
      expect(unbroken(sinkOther)).toBe(true);
      expect(await sentBy("alpha/outputs/first")).toBeGreaterThan(firstBefore);
      expect(await sentBy("bravo/outputs/main")).toBeGreaterThan(otherBefore);

      // A new input for alpha: bravo is not touched.
      sources.push(udpSource(inA2));
      const input = await planOf(document(inA2, "First renamed", sinkMoved.port));
      expect(input.changes.map(({ id, fields }) => ({ id, fields: fields.map((f) => f.field) }))).toEqual([
        { id: "alpha", fields: ["rtp_port"] },
      ]);
      expect(input.changes[0]?.cost).toMatch(
        /^channel Alpha's inputs re-open on their new addresses.*no other channel is touched$/,
      );
      await sources.shift()?.close();
      const bravoBefore = await sentBy("bravo/outputs/main");
      await apply(input.plan_id);
      await receiving(sinkFirst, "first from the new input");
      await receiving(sinkOther, "bravo after alpha's change");
      expect(unbroken(sinkOther)).toBe(true);
      expect(await sentBy("bravo/outputs/main")).toBeGreaterThan(bravoBefore);
    } finally {
      for (const source of sources) await source.close();
    }
  });

  it("an SRT passphrase by reference reaches srt-live-transmit; plan and export show the reference", async () => {
    const { test, inside } = await start();
    const sink = await inside(udpSink);
    const peer = await inside(srtListenerPeer({ forwardTo: sink.port, passphrase: SECRET }));
    const input = await freeUdpPort();
    const source = udpSource(input);
    try {
      const text = `version: 1
channels:
  srt-out:
    name: SRT out
    desired: running
    rtp_ip: 127.0.0.1
    rtp_port: ${input}
    outputs:
      peer:
        name: Peer
        protocol: srt
        url: "srt://127.0.0.1:${peer.port}?mode=caller&passphrase=${ref("H13_LIVE_SRT")}"
`;
      const planned = await test.request("/api/config/plan", {
        method: "POST",
        body: JSON.stringify({ document: text }),
      });
      const plan = await planned.text();
      expect(plan).toContain(ref("H13_LIVE_SRT"));
      expect(plan).not.toContain(SECRET);
      const applied = await test.request("/api/config/apply", {
        method: "POST",
        body: JSON.stringify({ plan_id: (JSON.parse(plan) as { plan_id: string }).plan_id }),
      });
      expect(applied.status).toBe(200);
      await eventually("srt-live-transmit to forward what it decrypted", () =>
        sink.totalBytes() > 188 * 100 ? true : undefined,
      );
      const exported = await (await test.request("/api/config/document?format=yaml")).text();
      expect(exported).toContain(`passphrase=${ref("H13_LIVE_SRT")}`);
      expect(exported).not.toContain(SECRET);
      expect(test.logs.join("\n")).not.toContain(SECRET);
      expect(await (await test.request("/api/events?limit=500")).text()).not.toContain(SECRET);
    } finally {
      await source.close();
    }
  });
});
