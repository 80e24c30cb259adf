/**
 * The event bus from the outside: a channel's life — API changes with the token's name, a cue, a failover,
 * an output that cannot connect and reconnects — reaches a WebSocket client as it happens and
 * `GET /api/events`, in the same order, numbered without gaps.
 */
import { Layer } from "effect";
import { afterEach, describe, expect, it } from "vitest";
import { encodeSection } from "../../src/core/scte35/index.ts";
import { OutputDefaults } from "../../src/effects/channel/channels.ts";
import { ADMIN_TOKEN, eventually, freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { chunkTs } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

/** The name the service gives the admin token taken from the environment. */
const ADMIN_NAME = "admin (DISTRIBUTARY_ADMIN_TOKEN)";

interface Event {
  readonly seq: number;
  readonly type: string;
  readonly channel: string | null;
  readonly [field: string]: unknown;
}

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** Sends datagrams to 127.0.0.1:port every 2 ms until `stop` is called. */
const stream = async (port: number, datagrams: ReadonlyArray<Uint8Array>) => {
  const { createSocket } = await import("node:dgram");
  const socket = createSocket("udp4");
  let next = 0;
  const timer = setInterval(() => {
    const datagram = datagrams[next++];
    if (datagram !== undefined) socket.send(datagram, port, "127.0.0.1");
  }, 2);
  return () =>
    new Promise<void>((resolve) => {
      clearInterval(timer);
      socket.close(() => resolve());
    });
};

describe("the event bus", () => {
  it("delivers audit, cue, switch and reconnect events in order to the WebSocket and to /api/events", async () => {
    const quickReconnect = Layer.succeed(OutputDefaults, {
      reconnect: { firstDelay: "100 millis", maxDelay: "200 millis" },
    });
    app = await makeTestApp(undefined, quickReconnect);
    const test = app;
    const port = await test.listen();
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const received: Event[] = [];
    let messages = 0;
    socket.onmessage = (message) => {
      const data = JSON.parse(String(message.data)) as { channels: unknown[]; events?: Event[] };
      expect(Array.isArray(data.channels)).toBe(true);
      messages += 1;
      received.push(...(data.events ?? []));
    };
    await eventually("the first WebSocket message", () => (messages > 0 ? true : undefined));

    const [primaryPort, backupPort] = await Promise.all([freeUdpPort(), freeUdpPort()]);
    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "evented",
        name: "Evented",
        rtp_ip: "127.0.0.1",
        rtp_port: primaryPort,
        backup_rtp_ip: "127.0.0.1",
        backup_rtp_port: backupPort,
        redundancy: { failover_after_ms: 200, revert: "sticky" },
      }),
    });
    expect(created.status).toBe(201);
    expect((await test.request("/api/channels/evented/start", { method: "POST" })).status).toBe(200);

    // A cue on the primary.
    const generator = new TsGenerator({ seed: 9, bitrate: 3_000_000 });
    const cue = encodeSection(immediateSpliceOut(4242));
    generator.insertScte35(cue, 50);
    const stopPrimary = await stream(primaryPort, chunkTs(generator.packets(7 * 2000)));
    await eventually("the cue", async () => {
      const events = await json(await test.request("/api/events?channel=evented&type=scte35_cue"));
      return (events.events as Event[]).length > 0 ? true : undefined;
    });

    // The primary goes silent while the backup sends: a failover.
    // It keeps sending, so that the RTMP output below has data to remux and tries to connect.
    const stopBackup = await stream(backupPort, chunkTs(generator.packets(7 * 10_000)));
    await stopPrimary();
    await eventually("the failover", async () => {
      const events = await json(await test.request("/api/events?channel=evented&type=input_switched"));
      return (events.events as Event[]).length > 0 ? true : undefined;
    });

    // An SRT caller to a port where nobody listens: it times out and reconnects.
    const closedPort = await freeUdpPort();
    const added = await test.request("/api/channels/evented/outputs", {
      method: "POST",
      body: JSON.stringify({
        id: "nowhere",
        name: "Nowhere",
        protocol: "srt",
        url: `srt://127.0.0.1:${closedPort}?mode=caller&passphrase=never-in-an-event-0123`,
      }),
    });
    expect(added.status).toBe(201);
    await eventually(
      "a reconnect",
      async () => {
        const events = await json(await test.request("/api/events?channel=evented&type=output_reconnect"));
        return (events.events as Event[]).length > 0 ? true : undefined;
      },
      20_000,
    );
    await stopBackup();

    const fromApi = (await json(await test.request("/api/events?channel=evented&limit=2000")))
      .events as Event[];
    const fromSocket = await eventually("the WebSocket to catch up", () => {
      const mine = received.filter((event) => event.channel === "evented");
      return mine.length >= fromApi.length ? mine : undefined;
    });
    socket.close();

    // Same events, same order, on both paths.
    expect(fromSocket.slice(0, fromApi.length).map((event) => event.seq)).toEqual(
      fromApi.map((event) => event.seq),
    );
    const seqs = received.map((event) => event.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);

    const story = fromApi.map((event) =>
      event.type === "api_change"
        ? `${event.type}:${String(event.action)}:${String(event.actor)}`
        : event.type,
    );
    const order = [
      `api_change:channel.create:${ADMIN_NAME}`,
      `api_change:channel.start:${ADMIN_NAME}`,
      "scte35_cue",
      "input_switched",
      `api_change:output.create:${ADMIN_NAME}`,
      "output_reconnect",
    ];
    const positions = order.map((step) => story.indexOf(step));
    expect(positions.every((position) => position >= 0)).toBe(true);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));

    const cueEvent = fromApi.find((event) => event.type === "scte35_cue");
    expect(cueEvent).toMatchObject({
      command: "splice_insert",
      event_id: 4242,
      section_base64: Buffer.from(cue).toString("base64"),
    });
    const switched = fromApi.find((event) => event.type === "input_switched");
    expect(switched).toMatchObject({ from: "primary", to: "backup", reason: "silence" });
    const reconnect = fromApi.find((event) => event.type === "output_reconnect");
    expect(reconnect).toMatchObject({ output: "nowhere", reconnects: 1 });
    expect(JSON.stringify(fromApi)).not.toContain("never-in-an-event");

    // Filters: by type, and `after`.
    const onlyAudit = (await json(await test.request("/api/events?type=api_change"))).events as Event[];
    expect(onlyAudit.every((event) => event.type === "api_change")).toBe(true);
    const last = fromApi.at(-1)?.seq ?? 0;
    const after = (await json(await test.request(`/api/events?channel=evented&after=${last - 1}`)))
      .events as Event[];
    // Only events newer than the one given, from the next one on (the failing output may have added more).
    expect(after[0]?.seq).toBe(last);
    expect(after.every((event) => event.seq >= last)).toBe(true);
    const bad = await test.request("/api/events?type=nonsense");
    expect(bad.status).toBe(400);
    expect(String((await json(bad)).detail)).toContain("unknown event type 'nonsense'");
  }, 60_000);
});
