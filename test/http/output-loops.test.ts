/**
 * A UDP or RTP output aimed at an input of this host sends the stream back into the service, which forwards it
 * again: a loop that multiplies it until the channel stops. The API refuses one it can see (400, in words),
 * whichever way round it is built; a loop it cannot see (a name that resolves to this host) is cut at the
 * input, which drops what the service's own outputs send and counts it as own_output, while the channel's
 * other outputs get exactly the input's bytes.
 */
import { createSocket } from "node:dgram";
import { networkInterfaces } from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";
import { chunkTs } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

let app: TestApp | undefined;
const cleanups: Array<() => void> = [];
afterEach(async () => {
  await app?.close();
  app = undefined;
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const call = async (method: string, path: string, body?: unknown) => {
  const response = await (app as TestApp).request(path, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, type: response.headers.get("content-type"), body: await json(response) };
};

const channel = (id: string, ip: string, port: number, extra: Record<string, unknown> = {}) =>
  call("POST", "/api/channels", { id, name: id.toUpperCase(), rtp_ip: ip, rtp_port: port, ...extra });

const addOutput = (id: string, url: string) =>
  call("POST", `/api/channels/${id}/outputs`, { protocol: url.slice(0, 3), url });

/** A 400 problem whose detail says, in words, which input the URL would feed. */
const expectLoop = (
  answer: { status: number; type: string | null; body: Record<string, unknown> },
  ...words: string[]
) => {
  expect(answer.status, JSON.stringify(answer.body)).toBe(400);
  expect(answer.type).toContain("application/problem+json");
  const detail = String(answer.body.detail);
  expect(detail).toContain("a loop that multiplies");
  for (const word of words) expect(detail).toContain(word);
};

const localIPv4 = () =>
  Object.values(networkInterfaces())
    .flatMap((addresses) => addresses ?? [])
    .find((address) => address.family === "IPv4" && !address.internal)?.address;

describe("outputs that would feed an input of this host", () => {
  it("are refused in words: loopback, a local address, 0.0.0.0, a multicast group, an FEC port", async () => {
    app = await makeTestApp();
    const [own, everywhere, group, fec] = [
      await freeUdpPort(),
      await freeUdpPort(),
      await freeUdpPort(),
      await freeUdpPort(),
    ];
    expect((await channel("news", "127.0.0.1", own)).status).toBe(201);
    expect((await channel("sport", "0.0.0.0", everywhere)).status).toBe(201);
    expect((await channel("multi", "239.255.10.20", group)).status).toBe(201);
    expect((await channel("fec", "127.0.0.1", fec, { redundancy: { fec: true } })).status).toBe(201);

    expectLoop(
      await addOutput("news", `udp://127.0.0.1:${own}`),
      `udp://127.0.0.1:${own} is the primary input of channel 'NEWS' (news) on this host`,
    );
    expectLoop(await addOutput("news", `rtp://localhost:${own}`), "channel 'NEWS'");
    const local = localIPv4();
    if (local !== undefined)
      expectLoop(await addOutput("news", `udp://${local}:${everywhere}`), "channel 'SPORT'");
    expectLoop(await addOutput("news", `udp://127.0.0.5:${everywhere}`), "channel 'SPORT'");
    expectLoop(await addOutput("news", `udp://0.0.0.0:${everywhere}`), "channel 'SPORT'");
    expectLoop(await addOutput("news", `udp://0.0.0.0:${own}`), "channel 'NEWS'");
    expectLoop(
      await addOutput("news", `rtp://239.255.10.20:${group}?ttl=1`),
      "primary input of channel 'MULTI'",
    );
    expectLoop(
      await addOutput("news", `udp://127.0.0.1:${fec + 2}`),
      "primary FEC column stream of channel 'FEC'",
    );
    expectLoop(
      await addOutput("news", `udp://127.0.0.1:${fec + 4}`),
      "primary FEC row stream of channel 'FEC'",
    );

    // Creating a channel with such an output, and changing an output into one, are refused the same way.
    expectLoop(
      await channel("relay", "127.0.0.1", await freeUdpPort(), {
        outputs: [{ protocol: "udp", url: `udp://127.0.0.1:${own}` }],
      }),
      "channel 'NEWS'",
    );
    const fine = await addOutput("news", `udp://127.0.0.1:${await freeUdpPort()}`);
    expect(fine.status).toBe(201);
    const outputId = String(fine.body.id);
    expectLoop(
      await call("PATCH", `/api/channels/news/outputs/${outputId}`, { url: `udp://127.0.0.1:${own}` }),
      "channel 'NEWS'",
    );
    expectLoop(
      await call("PUT", `/api/channels/news/outputs/${outputId}`, {
        protocol: "udp",
        url: `udp://127.0.0.1:${everywhere}`,
      }),
      "channel 'SPORT'",
    );
    // Another group, another port, another host: no loop.
    for (const url of [
      `udp://239.255.10.21:${group}`,
      `udp://127.0.0.1:${group}`,
      `udp://192.0.2.77:${own}`,
      `udp://127.0.0.1:${fec + 1}`,
    ])
      expect((await addOutput("sport", url)).status, url).toBe(201);
    const stored = await call("GET", "/api/channels/news");
    expect(JSON.stringify(stored.body)).not.toContain(`:${own}"`);
  });

  it("an input moved to where an output sends is refused, on create, change and import", async () => {
    app = await makeTestApp();
    const [target, input] = [await freeUdpPort(), await freeUdpPort()];
    expect(
      (
        await channel("relay", "127.0.0.1", input, {
          outputs: [{ name: "to the encoder", protocol: "rtp", url: `rtp://127.0.0.1:${target}` }],
        })
      ).status,
    ).toBe(201);
    expectLoop(
      await channel("late", "127.0.0.1", target),
      `the primary input 127.0.0.1:${target} is where output 'to the encoder' of channel 'RELAY' (relay) sends`,
    );
    expectLoop(await channel("wide", "0.0.0.0", target), "output 'to the encoder'");
    expect((await channel("other", "127.0.0.1", await freeUdpPort())).status).toBe(201);
    expectLoop(await call("PATCH", "/api/channels/other", { rtp_port: target }), "output 'to the encoder'");
    expectLoop(await call("PATCH", "/api/channels/other", { backup_rtp_port: target }), "the backup input");
    const imported = await call("POST", "/api/config", {
      version: 1,
      channels: [{ id: "imported", name: "Imported", rtp_ip: "127.0.0.1", rtp_port: target, outputs: [] }],
    });
    expectLoop(imported, "output 'to the encoder'");
    expect((await call("GET", "/api/channels/imported")).status).toBe(404);
  });
});

/** Counts what arrives; keeps the first datagrams only, so a storm cannot fill the test's memory. */
const countingSink = async () => {
  const socket = createSocket("udp4");
  const kept: Buffer[] = [];
  let datagrams = 0;
  socket.on("message", (message) => {
    datagrams += 1;
    if (kept.length < 1000) kept.push(message);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  socket.setRecvBufferSize(8 * 1024 * 1024);
  cleanups.push(() => socket.close());
  return { port: socket.address().port, datagrams: () => datagrams, bytes: () => Buffer.concat(kept) };
};

describe("a loop the API cannot see", () => {
  it("is cut at the input: own_output counts it, the other outputs get the input's bytes exactly", async () => {
    app = await makeTestApp();
    const [portA, portB] = [await freeUdpPort(), await freeUdpPort()];
    const sinkA = await countingSink();
    // 127.1 is 127.0.0.1 to the resolver, but not an address the API compares: the loop forms.
    expect(
      (
        await channel("a", "127.0.0.1", portA, {
          outputs: [
            { name: "playout", protocol: "udp", url: `udp://127.0.0.1:${sinkA.port}` },
            { name: "to b", protocol: "udp", url: `udp://127.1:${portB}` },
          ],
        })
      ).status,
    ).toBe(201);
    expect(
      (
        await channel("b", "127.0.0.1", portB, {
          outputs: [{ name: "back to a", protocol: "udp", url: `udp://127.1:${portA}` }],
        })
      ).status,
    ).toBe(201);
    const a = await call("POST", "/api/channels/a/start");
    const b = await call("POST", "/api/channels/b/start");
    expect([a.status, b.status]).toEqual([200, 200]);
    // On two forwarding threads, the outputs of one and the inputs of the other see the same registry: b is
    // moved to a second thread (one thread takes both while it has room).
    const moved = await call("POST", "/api/channels/b/move", { worker: a.body.worker === 0 ? 1 : 0 });
    expect(moved.status).toBe(200);
    expect(moved.body.worker).not.toBe(a.body.worker);
    await eventually("both outputs connected", async () => {
      const outputs = [
        ...((await call("GET", "/api/channels/a")).body.outputs as Array<{ state: string }>),
        ...((await call("GET", "/api/channels/b")).body.outputs as Array<{ state: string }>),
      ];
      return outputs.every((output) => output.state === "connected") ? true : undefined;
    });

    const sent = chunkTs(new TsGenerator({ seed: 7, bitrate: 2_000_000 }).packets(7 * 100));
    const sender = createSocket("udp4");
    cleanups.push(() => sender.close());
    for (const datagram of sent) {
      await new Promise<void>((resolve) => sender.send(datagram, portA, "127.0.0.1", () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const rejected = async (id: string) =>
      (
        (await call("GET", `/api/channels/${id}/stats`)).body.inputs as Array<{
          rejected: Record<string, number>;
        }>
      )[0]?.rejected ?? {};
    // B hears A's output (one of ours) and drops every datagram of it: nothing comes back to A.
    await eventually(
      "B's input to drop what A's output sent",
      async () => ((await rejected("b")).own_output === sent.length ? true : undefined),
      2_000,
    );
    await eventually("A's playout to get every datagram", () =>
      sinkA.datagrams() >= sent.length ? true : undefined,
    );
    // A's own counters settle: what it took is what was sent, nothing more arrives.
    const takenA = async () =>
      (await call("GET", "/api/channels/a/stats")).body.inputs as Array<{ datagrams: number }>;
    await eventually("A's input to have taken what was sent", async () =>
      (await takenA())[0]?.datagrams === sent.length ? true : undefined,
    );
    expect(sinkA.datagrams()).toBe(sent.length);
    expect(sinkA.bytes().equals(Buffer.concat(sent))).toBe(true);
    expect((await rejected("a")).own_output).toBe(0);
    const metrics = await (await (app as TestApp).request("/metrics")).text();
    expect(metrics).toMatch(
      new RegExp(
        `distributary_input_rejected_datagrams_total\\{channel="b",input="primary",reason="own_output"\\} ${sent.length}`,
      ),
    );
  });
});
