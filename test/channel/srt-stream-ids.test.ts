/**
 * SRT stream-id routing (src/effects/runtime/links/srt-listeners.ts) through the API, against srt-live-transmit:
 * ten callers on one port feed ten channels by their stream ids, each UDP output byte for byte its own caller's
 * stream; a caller asking for a stream id no channel has and one with a wrong passphrase are refused before any
 * data, with the reason in the channel's status and an event; five receivers on one listener output port each get
 * the channel their stream id names.
 */
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, type TestApp, useAppWithPeers } from "../support/app.ts";
import * as peers from "../support/peers.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const startApp = useAppWithPeers();

/** About 1.3 s of a 1 Mbit/s TS of its own for each seed. */
const streamOf = (seed: number) => new TsGenerator({ seed, bitrate: 1_000_000 }).packets(7 * 120);

interface SrtInputView {
  readonly sender: string | null;
  readonly stream_id: string;
  readonly refusals: number;
  readonly last_refusal: {
    readonly caller: string;
    readonly reason: string;
    readonly code: number;
    readonly code_name: string;
    readonly message: string;
  } | null;
}

/** An SRT listener output's refused receivers, as its status shows them. */
type RefusalStatus = Pick<SrtInputView, "refusals" | "last_refusal">;

interface EventView {
  readonly type: string;
  readonly channel: string | null;
  readonly output?: string | null;
  readonly reason?: string;
  readonly code?: number;
  readonly code_name?: string;
  readonly stream_id?: string;
  readonly message?: string;
}

const srtInput = async (test: TestApp, id: string): Promise<SrtInputView | null> => {
  const channel = await json(await test.request(`/api/channels/${id}`));
  const inputs = channel.inputs as ReadonlyArray<{ readonly srt?: SrtInputView | null }> | undefined;
  return inputs?.[0]?.srt ?? null;
};

const refusalEvents = async (test: TestApp): Promise<ReadonlyArray<EventView>> =>
  (await json(await test.request("/api/events?type=srt_caller_refused&limit=100")))
    .events as Array<EventView>;

const createChannel = async (test: TestApp, body: Record<string, unknown>) => {
  const created = await test.request("/api/channels", { method: "POST", body: JSON.stringify(body) });
  expect(created.status, await created.clone().text()).toBe(201);
  const started = await test.request(`/api/channels/${body.id}/start`, { method: "POST" });
  expect(started.status, await started.clone().text()).toBe(200);
};

describe("SRT listener inputs sharing one port by stream id", () => {
  it("ten callers with ten stream ids on one port feed ten channels, each output byte for byte its own caller's", async () => {
    // Two workers taking channels by count: those sharing the port still go to one, which holds its listener.
    const { test, inside } = await startApp({
      DISTRIBUTARY_WORKERS: "2",
      DISTRIBUTARY_WORKER_BUSY_PERCENT: "0",
    });
    const port = await freeUdpPort();
    const channels = Array.from({ length: 10 }, (_, index) => ({
      id: `h12-cam-${index}`,
      name: `camera ${index}`,
      passphrase: `camera-${index}-passphrase`,
      // The Access Control syntax for the even ones, a plain stream id for the odd ones.
      callerStreamId: index % 2 === 0 ? `#!::r=cam${index},m=publish` : `cam${index}`,
      ts: streamOf(100 + index),
    }));
    const sinks = await Promise.all(channels.map(() => inside(peers.udpSink)));
    for (const [index, channel] of channels.entries()) {
      await createChannel(test, {
        id: channel.id,
        name: channel.name,
        rtp_ip: "127.0.0.1",
        rtp_port: port,
        input_url: `srt://127.0.0.1:${port}?mode=listener&streamid=cam${index}&passphrase=${channel.passphrase}&latency=80`,
        outputs: [{ id: "out", name: "UDP", protocol: "udp", url: `udp://127.0.0.1:${sinks[index]?.port}` }],
      });
    }
    await inside(peers.udpPortBound(port));
    const senders = await Promise.all(
      channels.map((channel) =>
        inside(
          peers.srtSenderPeer({
            mode: "caller",
            port,
            passphrase: channel.passphrase,
            streamId: channel.callerStreamId,
          }),
        ),
      ),
    );
    for (const channel of channels) {
      await eventually(
        `${channel.id}'s caller to connect`,
        async () => (await srtInput(test, channel.id))?.sender ?? undefined,
        20_000,
      );
    }
    await inside(
      Effect.all(
        channels.map((channel, index) => sendPaced(chunkTs(channel.ts), senders[index]?.udpPort ?? 0, 0.1)),
        { concurrency: "unbounded" },
      ),
    );
    for (const [index, channel] of channels.entries()) {
      const sink = sinks[index];
      if (sink === undefined) throw new Error("no sink");
      await eventually(
        `${channel.id}'s ${channel.ts.length} bytes`,
        () => (sink.totalBytes() >= channel.ts.length ? true : undefined),
        20_000,
      );
      expect(sink.bytes().equals(Buffer.from(channel.ts)), `${channel.id}: its own caller's stream`).toBe(
        true,
      );
    }
    const workers = new Set(
      await Promise.all(
        channels.map(
          async (channel) => (await json(await test.request(`/api/channels/${channel.id}`))).worker,
        ),
      ),
    );
    expect([...workers]).toHaveLength(1);
    const status = await srtInput(test, "h12-cam-3");
    expect(status?.stream_id).toBe("cam3");
    // None refused for its passphrase, id or mode. On a loaded machine a caller whose handshake timed out on
    // its side calls again while the first connection still sends: that second call is refused as busy.
    if ((status?.refusals ?? 0) > 0) expect(status?.last_refusal?.reason).toBe("busy");
    // Two channels cannot have one stream id on one port.
    const duplicate = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "h12-cam-again",
        name: "camera 3 again",
        rtp_ip: "127.0.0.1",
        rtp_port: port,
        input_url: `srt://127.0.0.1:${port}?mode=listener&streamid=cam3`,
        outputs: [],
      }),
    });
    expect(duplicate.status).toBe(409);
    expect(await duplicate.text()).toContain(
      `the stream id 'cam3' on SRT port ${port} is already taken by the primary input of`,
    );
  });

  it("callers with an unknown stream id, a wrong passphrase or the wrong mode are refused before any data, with the reason", async () => {
    const { test, inside } = await startApp();
    const port = await freeUdpPort();
    const sink = await inside(peers.udpSink);
    const right = "the-right-passphrase-1";
    const wrong = "a-wrong-passphrase-22";
    await createChannel(test, {
      id: "h12-known",
      name: "known",
      rtp_ip: "127.0.0.1",
      rtp_port: port,
      input_url: `srt://127.0.0.1:${port}?mode=listener&streamid=known&passphrase=${right}&latency=80`,
      outputs: [{ id: "out", name: "UDP", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
    });
    await inside(peers.udpPortBound(port));
    const ts = streamOf(7);

    const stranger = await inside(
      peers.srtSenderPeer({ mode: "caller", port, passphrase: right, streamId: "#!::r=nobody,m=publish" }),
    );
    const unknown = await eventually(
      "the node's refusal of the unknown stream id",
      async () => (await refusalEvents(test)).find((event) => event.reason === "unknown_stream_id"),
      15_000,
    );
    expect(unknown.channel).toBeNull();
    expect(unknown.code).toBe(1404);
    expect(unknown.code_name).toBe("SRT_REJX_NOTFOUND");
    expect(unknown.stream_id).toBe("#!::r=nobody,m=publish");
    expect(unknown.message).toContain("no channel on this port has that stream id");

    const intruder = await inside(
      peers.srtSenderPeer({ mode: "caller", port, passphrase: wrong, streamId: "known" }),
    );
    const status = await eventually(
      "the channel's refusal of the wrong passphrase",
      async () => {
        const srt = await srtInput(test, "h12-known");
        return srt?.last_refusal?.reason === "wrong_passphrase" ? srt : undefined;
      },
      15_000,
    );
    expect(status.sender).toBeNull();
    expect(status.refusals).toBeGreaterThanOrEqual(1);
    expect(status.last_refusal?.code_name).toBe("SRT_REJ_BADSECRET");
    expect(status.last_refusal?.message).toContain("its passphrase does not match");
    expect(status.last_refusal?.caller).toMatch(/^127\.0\.0\.1:\d+$/);
    const event = await eventually("the channel's event", async () =>
      (await refusalEvents(test)).find((seen) => seen.reason === "wrong_passphrase"),
    );
    expect(event.channel).toBe("h12-known");

    // Asking to receive what is published to here is the wrong mode, said on the channel.
    const receiver = await inside(
      peers.srtSenderPeer({ mode: "caller", port, passphrase: right, streamId: "#!::r=known,m=request" }),
    );
    const wrongMode = await eventually("the channel's refusal of the wrong mode", async () =>
      (await refusalEvents(test)).find((seen) => seen.reason === "wrong_mode"),
    );
    expect([wrongMode.channel, wrongMode.code, wrongMode.code_name]).toEqual([
      "h12-known",
      1405,
      "SRT_REJX_BAD_MODE",
    ]);

    // They all send; none reaches the channel.
    await inside(
      Effect.all(
        [stranger, intruder, receiver].map((peer) => sendPaced(chunkTs(ts), peer.udpPort, 0.2)),
        {
          concurrency: "unbounded",
        },
      ),
    );
    const channel = await json(await test.request("/api/channels/h12-known"));
    expect(sink.totalBytes()).toBe(0);
    const said = JSON.stringify([channel, await refusalEvents(test)]) + test.logs.join("");
    expect(said).not.toContain(right);
    expect(said).not.toContain(wrong);
  });
});

describe("SRT listener outputs sharing one port by stream id", () => {
  it("five receivers on one listener output port each get the channel their stream id names", async () => {
    const { test, inside } = await startApp();
    const outPort = await freeUdpPort();
    const channels = await Promise.all(
      Array.from({ length: 5 }, async (_, index) => ({
        id: `h12-feed-${index}`,
        input: await freeUdpPort(),
        ts: streamOf(200 + index),
        // The Access Control syntax for some receivers, a plain stream id for the others.
        ask: index % 2 === 0 ? `#!::r=feed${index},m=request` : `feed${index}`,
      })),
    );
    for (const [index, channel] of channels.entries()) {
      await createChannel(test, {
        id: channel.id,
        name: `feed ${index}`,
        rtp_ip: "127.0.0.1",
        rtp_port: channel.input,
        outputs: [
          {
            id: "partners",
            name: "partners",
            protocol: "srt",
            url: `srt://127.0.0.1:${outPort}?mode=listener&streamid=feed${index}&latency=80`,
          },
        ],
      });
    }
    await inside(peers.udpPortBound(outPort));
    const sinks = await Promise.all(channels.map(() => inside(peers.udpSink)));
    for (const [index, channel] of channels.entries()) {
      await inside(
        peers.srtCallerPeer({ port: outPort, forwardTo: sinks[index]?.port ?? 0, streamId: channel.ask }),
      );
    }
    for (const channel of channels) {
      await eventually(
        `${channel.id}'s receiver`,
        async () => {
          const view = await json(await test.request(`/api/channels/${channel.id}`));
          const output = (view.outputs as Array<{ srt: { receivers: number } | null }>)[0];
          return output?.srt?.receivers === 1 ? true : undefined;
        },
        20_000,
      );
    }
    await inside(
      Effect.all(
        channels.map((channel) => sendPaced(chunkTs(channel.ts), channel.input, 0.1)),
        { concurrency: "unbounded" },
      ),
    );
    for (const [index, channel] of channels.entries()) {
      const sink = sinks[index];
      if (sink === undefined) throw new Error("no sink");
      await eventually(
        `${channel.id}'s receiver to get ${channel.ts.length} bytes`,
        () => (sink.totalBytes() >= channel.ts.length ? true : undefined),
        20_000,
      );
      expect(
        sink.bytes().equals(Buffer.from(channel.ts)),
        `${channel.id}: the channel its stream id names`,
      ).toBe(true);
    }
    // A receiver with a passphrase asking for a stream id that takes none, and one asking for a stream id no
    // channel serves: refused before any data; the first in feed0's output status and an event of that
    // output, the second an event of the node (no output has that stream id).
    const [wrongSink, unknownSink] = [await inside(peers.udpSink), await inside(peers.udpSink)];
    await inside(
      peers.srtCallerPeer({
        port: outPort,
        forwardTo: wrongSink.port,
        streamId: "#!::r=feed0,m=request",
        passphrase: "not-this-output-s",
      }),
    );
    await inside(peers.srtCallerPeer({ port: outPort, forwardTo: unknownSink.port, streamId: "feed9" }));
    const shown = await eventually("feed0's output to show the refused receiver", async () => {
      const view = await json(await test.request("/api/channels/h12-feed-0"));
      const output = (view.outputs as Array<{ srt_refusals: RefusalStatus | null }>)[0];
      return output?.srt_refusals?.last_refusal?.reason === "wrong_passphrase"
        ? output.srt_refusals
        : undefined;
    });
    expect(shown.refusals).toBeGreaterThanOrEqual(1);
    expect(shown.last_refusal?.code_name).toBe("SRT_REJ_UNSECURE");
    expect(shown.last_refusal?.caller).toMatch(/^127\.0\.0\.1:\d+$/);
    const told = await eventually("both refusals as events", async () => {
      const events = await refusalEvents(test);
      const wrong = events.find(
        (event) =>
          event.reason === "wrong_passphrase" &&
          event.channel === "h12-feed-0" &&
          event.output === "partners",
      );
      const unknown = events.find((event) => event.reason === "unknown_stream_id");
      return wrong !== undefined && unknown !== undefined ? { wrong, unknown } : undefined;
    });
    expect(told.wrong.message).toContain("SRT listener output");
    expect(told.unknown).toMatchObject({ channel: null, output: null, stream_id: "feed9" });
    expect(JSON.stringify(told)).not.toContain("not-this-output-s");
    expect(wrongSink.totalBytes() + unknownSink.totalBytes()).toBe(0);
  });
});
