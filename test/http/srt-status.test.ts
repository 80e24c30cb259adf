/**
 * SRT link figures as people and Prometheus see them: a listener output with two receivers lists both in
 * GET /api/channels/{id}, each with its own statistics read from libsrt, and /metrics counts them.
 */
import { Effect, Exit, Scope } from "effect";
import { describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, udpSource, useAppWithPeers } from "../support/app.ts";
import * as peers from "../support/peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const startApp = useAppWithPeers();

interface PeerView {
  readonly peer: string;
  readonly stream_id: string | null;
  readonly send_rate_mbps: number;
  readonly rtt_ms: number;
}

describe("SRT statistics in the API and /metrics", () => {
  it("a listener output lists each receiver with its own figures; /metrics counts the receivers", async () => {
    const { test, inside } = await startApp();
    const [input, listen] = [await freeUdpPort(), await freeUdpPort()];
    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "srt-stats",
        name: "SRT stats",
        rtp_ip: "127.0.0.1",
        rtp_port: input,
        outputs: [
          {
            id: "partners",
            name: "Partners",
            protocol: "srt",
            url: `srt://127.0.0.1:${listen}?mode=listener&latency=80&passphrase=partners-only-0123`,
          },
        ],
      }),
    });
    expect(created.status).toBe(201);
    expect((await test.request("/api/channels/srt-stats/start", { method: "POST" })).status).toBe(200);
    const [a, b] = [await inside(peers.udpSink), await inside(peers.udpSink)];
    for (const [sink, streamId] of [
      [a, "partner/a"],
      [b, "partner/b"],
    ] as const) {
      await inside(
        peers.srtCallerPeer({
          port: listen,
          forwardTo: sink.port,
          passphrase: "partners-only-0123",
          streamId,
        }),
      );
    }

    const { createSocket } = await import("node:dgram");
    const socket = createSocket("udp4");
    const datagrams = chunkTs(new TsGenerator({ seed: 41 }).packets(7 * 2000));
    let next = 0;
    const timer = setInterval(() => {
      for (let i = 0; i < 4; i++) {
        const datagram = datagrams[next++ % datagrams.length];
        if (datagram !== undefined) socket.send(datagram, input, "127.0.0.1");
      }
    }, 5);
    try {
      const listed = await eventually(
        "both receivers listed with a send rate",
        async () => {
          const channel = await json(await test.request("/api/channels/srt-stats"));
          const output = (
            channel.outputs as Array<{ srt: { receivers: number; peers: PeerView[] } | null }>
          )[0];
          const srt = output?.srt;
          return srt != null && srt.receivers === 2 && srt.peers.every((peer) => peer.send_rate_mbps > 0)
            ? srt
            : undefined;
        },
        20_000,
      );
      expect(listed.peers.map((peer) => peer.stream_id).sort()).toEqual(["partner/a", "partner/b"]);
      expect(listed.peers.every((peer) => /^127\.0\.0\.1:\d+$/.test(peer.peer))).toBe(true);
      expect(JSON.stringify(listed)).not.toContain("partners-only-0123");

      const metrics = await (await test.request("/metrics")).text();
      expect(metrics).toContain('distributary_output_srt_receivers{channel="srt-stats",output="partners"} 2');
      expect(metrics).toMatch(
        /distributary_output_srt_flight_packets\{channel="srt-stats",output="partners"\} \d+/,
      );
    } finally {
      clearInterval(timer);
      socket.close();
    }
  });
});

describe("an SRT listener output whose receivers come and go", () => {
  it("ten callers that leave bring receivers back to 0 and the output back to waiting, with no error", async () => {
    const { test, inside } = await startApp();
    const [input, listen] = [await freeUdpPort(), await freeUdpPort()];
    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "srt-fans",
        name: "SRT fans",
        rtp_ip: "127.0.0.1",
        rtp_port: input,
        outputs: [
          {
            id: "fans",
            name: "Fans",
            protocol: "srt",
            url: `srt://127.0.0.1:${listen}?mode=listener&latency=80&maxreceivers=16`,
          },
        ],
      }),
    });
    expect(created.status).toBe(201);
    expect((await test.request("/api/channels/srt-fans/start", { method: "POST" })).status).toBe(200);
    const source = udpSource(input);
    interface OutputView {
      readonly state: string;
      readonly error_count: number;
      readonly srt: { readonly receivers: number } | null;
    }
    const output = async () =>
      ((await json(await test.request("/api/channels/srt-fans"))).outputs as Array<OutputView>)[0];
    try {
      const callers = Effect.runSync(Scope.make());
      const sinks: Array<peers.UdpSink> = [];
      for (let i = 0; i < 10; i++) {
        const sink = await inside(peers.udpSink);
        sinks.push(sink);
        await Effect.runPromise(
          Scope.extend(peers.srtCallerPeer({ port: listen, forwardTo: sink.port }), callers),
        );
      }
      await eventually(
        "ten receivers, each getting the stream",
        async () =>
          (await output())?.srt?.receivers === 10 && sinks.every((sink) => sink.totalBytes() > 0)
            ? true
            : undefined,
        20_000,
      );
      await Effect.runPromise(Scope.close(callers, Exit.void));
      const after = await eventually(
        "the receivers gone and the listener waiting",
        async () => {
          const view = await output();
          return view?.srt?.receivers === 0 && view.state === "connecting" ? view : undefined;
        },
        15_000,
      );
      expect(after).toMatchObject({ state: "connecting", error_count: 0, srt: { receivers: 0 } });
    } finally {
      await source.close();
    }
  });
});

describe("an SRT input through the API", () => {
  it("input_url takes the stream over SRT; GET shows it masked; a non-SRT input_url is a 400 on that field", async () => {
    const { test, inside } = await startApp();
    const secret = "input-secret-passphrase-77";
    const port = await freeUdpPort();
    const sink = await inside(peers.udpSink);

    const refused = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        name: "bad input",
        rtp_ip: "127.0.0.1",
        rtp_port: port,
        input_url: `udp://127.0.0.1:${port}`,
      }),
    });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(await refused.json())).toContain("input_url");

    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "srt-in",
        name: "SRT in",
        rtp_ip: "127.0.0.1",
        rtp_port: port,
        input_url: `srt://127.0.0.1:${port}?mode=listener&latency=80&passphrase=${secret}`,
        outputs: [{ name: "sink", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
      }),
    });
    expect(created.status).toBe(201);
    expect((await test.request("/api/channels/srt-in/start", { method: "POST" })).status).toBe(200);
    const sender = await inside(peers.srtSenderPeer({ mode: "caller", port, passphrase: secret }));
    const ts = new TsGenerator({ seed: 61 }).packets(7 * 300);
    await Effect.runPromise(sendPaced(chunkTs(ts), sender.udpPort, 0.25));
    await eventually("the stream at the output", () => (sink.totalBytes() >= ts.length ? true : undefined));
    expect(sink.bytes().equals(Buffer.from(ts))).toBe(true);

    const shown = await test.request("/api/channels/srt-in");
    const text = await shown.text();
    expect(JSON.parse(text)).toMatchObject({
      input_url: `srt://127.0.0.1:${port}?mode=listener&latency=80&passphrase=****`,
      backup_input_url: null,
    });
    expect(text).not.toContain(secret);
    const exported = await (await test.request("/api/config")).text();
    expect(exported).toContain("passphrase=****");
    expect(exported).not.toContain(secret);

    // Back to plain UDP on the same port, live: the SRT listener is closed and the port bound again.
    const patched = await test.request("/api/channels/srt-in", {
      method: "PATCH",
      body: JSON.stringify({ input_url: null }),
    });
    expect(patched.status, await patched.clone().text()).toBe(200);
    const before = sink.totalBytes();
    const udp = new TsGenerator({ seed: 62 }).packets(7 * 100);
    await eventually(
      "the channel to take plain UDP on the port",
      async () => {
        await Effect.runPromise(sendPaced(chunkTs(udp).slice(0, 1), port, 1));
        return sink.totalBytes() > before ? true : undefined;
      },
      5000,
    );
    const channel = await json(await test.request("/api/channels/srt-in"));
    expect(channel).toMatchObject({ status: "running", input_url: null });
  });
});
