/**
 * Every call of the original MediaLive Distributor API (original-api.md), with its documented bodies, gives
 * the documented shapes — against real channels on loopback, feeding UDP outputs into local sinks.
 */
import { describe, expect, it } from "vitest";
import {
  eventually,
  freeUdpPort,
  json,
  type UdpSink,
  udpSink,
  udpSource,
  useTestApp,
} from "../support/app.ts";

const app = useTestApp();

const post = (path: string, body?: unknown) =>
  app.request(path, { method: "POST", ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

const channelFields = [
  "id",
  "name",
  "rtp_ip",
  "rtp_port",
  "backup_rtp_ip",
  "backup_rtp_port",
  "status",
  "uptime",
  "outputs",
];
const outputFields = [
  "id",
  "name",
  "protocol",
  "url",
  "status",
  "uptime",
  "error_count",
  "last_error",
  "enabled",
];

describe("the original API", () => {
  it("health answers without a token", async () => {
    const response = await app.request("/api/health", { token: null });
    expect(response.status).toBe(200);
    expect(await json(response)).toMatchObject({
      status: "ok",
      version: expect.any(String),
      uptime: expect.any(Number),
    });
  });

  it("creates channels in the full and the short form, lists and gets them", async () => {
    const full = await post("/api/channels", {
      name: "New Channel",
      rtp_ip: "192.168.1.100",
      rtp_port: 5000,
      backup_rtp_ip: "192.168.1.101",
      backup_rtp_port: 5001,
      outputs: [],
    });
    expect(full.status).toBe(201);
    const created = await json(full);
    for (const field of channelFields) expect(created).toHaveProperty(field);
    expect(created).toMatchObject({
      name: "New Channel",
      rtp_ip: "192.168.1.100",
      rtp_port: 5000,
      backup_rtp_ip: "192.168.1.101",
      backup_rtp_port: 5001,
      status: "stopped",
      uptime: 0,
      outputs: [],
    });

    const short = await json(
      await post("/api/channels", { name: "Short", rtp_ip: "0.0.0.0", rtp_port: 5100 }),
    );
    expect(short).toMatchObject({ name: "Short", backup_rtp_ip: null, backup_rtp_port: null });

    const list = await json(await app.request("/api/channels"));
    const ids = (list.channels as Array<{ id: string }>).map((channel) => channel.id);
    expect(ids).toEqual(expect.arrayContaining([created.id, short.id]));
    const one = await json(await app.request(`/api/channels/${String(created.id)}`));
    expect(one).toMatchObject({ id: created.id, name: "New Channel" });

    for (const id of [created.id, short.id]) {
      const deleted = await app.request(`/api/channels/${String(id)}`, { method: "DELETE" });
      expect(deleted.status).toBe(200);
      expect((await app.request(`/api/channels/${String(id)}`)).status).toBe(404);
    }
  });

  it("starts, adds, updates and removes outputs on a running channel, stops and deletes it", async () => {
    const inputPort = await freeUdpPort();
    const sinks: UdpSink[] = await Promise.all([udpSink(), udpSink(), udpSink()]);
    const [first, second, third] = sinks as [UdpSink, UdpSink, UdpSink];
    const source = udpSource(inputPort);
    try {
      const channel = await json(
        await post("/api/channels", {
          name: "Main Event",
          rtp_ip: "127.0.0.1",
          rtp_port: inputPort,
          outputs: [{ name: "Output 1", protocol: "udp", url: `udp://127.0.0.1:${first.port}` }],
        }),
      );
      const id = String(channel.id);
      const outputs = channel.outputs as Array<Record<string, unknown>>;
      expect(outputs).toHaveLength(1);
      for (const field of outputFields) expect(outputs[0]).toHaveProperty(field);

      const started = await json(await post(`/api/channels/${id}/start`));
      expect(started.status).toBe("running");
      await eventually("the first output to carry the input", () => (first.bytes() > 0 ? true : undefined));

      // Added while running, without a name: it gets one and starts at once.
      const added = await post(`/api/channels/${id}/outputs`, {
        protocol: "udp",
        url: `udp://127.0.0.1:${second.port}`,
      });
      expect(added.status).toBe(201);
      const addedOutput = await json(added);
      expect(addedOutput).toMatchObject({ name: "Output 2", protocol: "udp", enabled: true });
      await eventually("the added output to carry the input", () => (second.bytes() > 0 ? true : undefined));

      // PUT moves the second output to the third sink; the first keeps flowing.
      const updated = await app.request(`/api/channels/${id}/outputs/${String(addedOutput.id)}`, {
        method: "PUT",
        body: JSON.stringify({ name: "Moved", protocol: "udp", url: `udp://127.0.0.1:${third.port}` }),
      });
      expect(updated.status).toBe(200);
      expect(await json(updated)).toMatchObject({
        id: addedOutput.id,
        name: "Moved",
        url: `udp://127.0.0.1:${third.port}`,
      });
      await eventually("the updated output to carry the input", () => (third.bytes() > 0 ? true : undefined));

      const removed = await app.request(`/api/channels/${id}/outputs/${String(addedOutput.id)}`, {
        method: "DELETE",
      });
      expect(removed.status).toBe(200);
      const beforeFirst = first.bytes();
      await eventually("the first output to keep flowing", () =>
        first.bytes() > beforeFirst ? true : undefined,
      );

      const running = await json(await app.request(`/api/channels/${id}`));
      expect(running).toMatchObject({
        status: "running",
        outputs: [{ name: "Output 1", status: "running" }],
      });
      expect(running.uptime).toEqual(expect.any(Number));

      const stopped = await json(await post(`/api/channels/${id}/stop`));
      expect(stopped.status).toBe("stopped");
      expect((await app.request(`/api/channels/${id}`, { method: "DELETE" })).status).toBe(200);
    } finally {
      await source.close();
      for (const sink of sinks) await sink.close();
    }
  });

  it("the WebSocket sends {channels:[...]} with the same channel objects", async () => {
    const created = await json(
      await post("/api/channels", { name: "WS", rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort() }),
    );
    const port = await app.listen();
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { authorization: "Bearer test-admin-token-0123456789abcdef" },
    });
    try {
      const message = await new Promise<Record<string, unknown>>((resolve, reject) => {
        socket.onmessage = (event) => resolve(JSON.parse(String(event.data)) as Record<string, unknown>);
        socket.onerror = () => reject(new Error("WebSocket failed"));
      });
      const channels = message.channels as Array<Record<string, unknown>>;
      const listed = await json(await app.request("/api/channels"));
      expect(channels.map((channel) => channel.id)).toEqual(
        (listed.channels as Array<{ id: string }>).map((channel) => channel.id),
      );
      const mine = channels.find((channel) => channel.id === created.id);
      for (const field of channelFields) expect(mine).toHaveProperty(field);
    } finally {
      socket.close();
    }
  });

  it("a failover reaches WebSocket clients as the channel's last_switch, with its reason", async () => {
    const created = await json(
      await post("/api/channels", {
        name: "WS failover",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        backup_rtp_ip: "127.0.0.1",
        backup_rtp_port: await freeUdpPort(),
      }),
    );
    const id = String(created.id);
    expect((await post(`/api/channels/${id}/start`)).status).toBe(200);
    const port = await app.listen();
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { authorization: "Bearer test-admin-token-0123456789abcdef" },
    });
    try {
      const switched = new Promise<Record<string, unknown>>((resolve, reject) => {
        socket.onmessage = (event) => {
          const { channels } = JSON.parse(String(event.data)) as { channels: Array<Record<string, unknown>> };
          const mine = channels.find((channel) => channel.id === id);
          if (mine?.last_switch !== null && mine?.last_switch !== undefined) resolve(mine);
        };
        socket.onerror = () => reject(new Error("WebSocket failed"));
      });
      await new Promise<void>((open) => {
        socket.onopen = () => open();
      });
      expect((await post(`/api/channels/${id}/input`, { active: "backup" })).status).toBe(200);
      const channel = await switched;
      expect(channel).toMatchObject({
        active_input: "backup",
        failovers: 1,
        last_switch: { from: "primary", to: "backup", reason: "operator", at: expect.any(String) },
      });
      // Nothing is sent to either input here: the channel says so instead of pretending to be healthy.
      expect(channel.input).toBe("lost");
    } finally {
      socket.close();
      await post(`/api/channels/${id}/stop`);
    }
  });
});

describe("what the original API accepted is accepted", () => {
  it("unknown fields are ignored and named in warnings; empty optional strings count as absent", async () => {
    const response = await post("/api/channels", {
      name: "Described",
      description: "studio feed",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
      backup_rtp_ip: "",
      backup_rtp_port: "",
      outputs: [{ name: "", protocol: "udp", url: "udp://127.0.0.1:7400", status: "running", uptime: 12.5 }],
    });
    const created = await json(response);
    expect(response.status, JSON.stringify(created)).toBe(201);
    expect(created).toMatchObject({ name: "Described", backup_rtp_ip: null, backup_rtp_port: null });
    expect(created).not.toHaveProperty("description");
    expect(created.outputs).toMatchObject([{ name: "Output 1", protocol: "udp" }]);
    expect(created.warnings).toEqual(
      expect.arrayContaining([
        { field: "description", message: "is not a known field; ignored" },
        { field: "backup_rtp_ip", message: "is empty; treated as absent" },
        { field: "backup_rtp_port", message: "is empty; treated as absent" },
        { field: "outputs[0].name", message: "is empty; treated as absent" },
        { field: "outputs[0].status", message: "is not a known field; ignored" },
        { field: "outputs[0].uptime", message: "is not a known field; ignored" },
      ]),
    );
    expect(created.warnings).toHaveLength(6);
    expect(await app.storeText()).not.toContain("studio feed");

    // An output's own POST and PUT read the same way; an answer without ignored fields has no warnings.
    const id = String(created.id);
    const added = await json(
      await post(`/api/channels/${id}/outputs`, {
        protocol: "udp",
        url: "udp://127.0.0.1:7401",
        status: "x",
      }),
    );
    expect(added.warnings).toEqual([{ field: "status", message: "is not a known field; ignored" }]);
    const clean = await json(
      await post(`/api/channels/${id}/outputs`, { protocol: "udp", url: "udp://127.0.0.1:7402" }),
    );
    expect(clean).not.toHaveProperty("warnings");
    await app.request(`/api/channels/${id}`, { method: "DELETE" });
  });

  it("protocol rtmp takes an rtmps:// URL (RTMP over TLS), and its key stays secret", async () => {
    const created = await json(
      await post("/api/channels", { name: "TLS", rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort() }),
    );
    const key = "FB-1234567890-0-AbCdEfGhIjKlMnOp";
    const response = await post(`/api/channels/${String(created.id)}/outputs`, {
      name: "Facebook",
      protocol: "rtmp",
      url: `rtmps://live-api-s.facebook.com:443/rtmp/${key}`,
      enabled: false,
      note: key,
    });
    const output = await json(response);
    expect(response.status, JSON.stringify(output)).toBe(201);
    expect(output).toMatchObject({ protocol: "rtmp", url: "rtmps://live-api-s.facebook.com:443/rtmp/****" });
    expect(JSON.stringify(output)).not.toContain(key);
    await app.request(`/api/channels/${String(created.id)}`, { method: "DELETE" });
  });
});

describe("URLs survive a round trip", () => {
  it("GET gives an SRT URL as PUT took it, and PUTting the GET answer back changes nothing", async () => {
    const created = await json(
      await post("/api/channels", { name: "Round trip", rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort() }),
    );
    const id = String(created.id);
    const urls = [
      "srt://127.0.0.1:9000?streamid=%23!::r=live/x,m=publish",
      "srt://127.0.0.1:9001?latency=200&streamid=publish%2Flive%2Fx&passphrase=0123456789abcdef",
      "srt://:9002?mode=listener",
      "udp://127.0.0.1:7500/?ttl=4",
    ];
    for (const url of urls) {
      const protocol = url.slice(0, url.indexOf(":"));
      const added = await json(await post(`/api/channels/${id}/outputs`, { protocol, url }));
      const path = `/api/channels/${id}/outputs/${String(added.id)}`;
      const got = await json(await app.request(path));
      const shown = url.replace("0123456789abcdef", "****");
      expect(got.url).toBe(shown);
      expect((await json(await app.request(`/api/channels/${id}`))).outputs).toEqual(
        expect.arrayContaining([expect.objectContaining({ url: shown })]),
      );
      const stored = await app.storeText();
      const put = await app.request(path, { method: "PUT", body: JSON.stringify(got) });
      const answer = await json(put);
      expect(put.status, JSON.stringify(answer)).toBe(200);
      expect(answer.url).toBe(got.url);
      expect(await app.storeText()).toBe(stored);
    }
    await app.request(`/api/channels/${id}`, { method: "DELETE" });
  });
});

describe("the OpenAPI document", () => {
  it("says that unknown fields are ignored and reported, and what an import reports", async () => {
    const document = await json(await app.request("/api/openapi.json", { token: null }));
    const schemas = (document.components as { schemas: Record<string, Record<string, unknown>> }).schemas;
    for (const name of ["ChannelBody", "OutputBody", "ConfigImport", "OriginalConfigFile"]) {
      expect(String(schemas[name]?.description)).toContain("Unknown fields are ignored");
    }
    const answer = schemas.ChannelAnswer?.properties as Record<string, { description?: string }>;
    expect(answer.warnings?.description).toContain("ignored");
    const result = schemas.ImportResult?.properties as Record<string, { description?: string }>;
    expect(result.report?.description).toContain("not taken and why");
  });
});

describe("the WebSocket for the original API's clients", () => {
  const closeOf = (url: string) =>
    new Promise<{ code: number; reason: string }>((resolve) => {
      const socket = new WebSocket(url);
      socket.onclose = (event) => resolve({ code: event.code, reason: event.reason });
    });

  it("the original snippet, with no token, is closed with 4401 and a reason that says to add one", async () => {
    const port = await app.listen();
    // The original README's snippet, unchanged but for the address.
    const closed = await closeOf(`ws://127.0.0.1:${port}/ws`);
    expect(closed.code).toBe(4401);
    expect(closed.reason).toContain("/ws?token=");
    expect(closed.reason).toContain("add a token");
    const wrong = await closeOf(`ws://127.0.0.1:${port}/ws?token=not-a-token-at-all`);
    expect(wrong.code).toBe(4401);
    expect(wrong.reason).toContain("not valid");
    expect(wrong.reason).not.toContain("not-a-token-at-all");
    // A plain HTTP request still gets its 401 problem.
    expect((await app.request("/ws", { token: null })).status).toBe(401);
  });

  it("each snapshot carries the channel's input bitrate and every output's bitrate", async () => {
    const inputPort = await freeUdpPort();
    const sink = await udpSink();
    const source = udpSource(inputPort);
    const created = await json(
      await post("/api/channels", {
        name: "Rates",
        rtp_ip: "127.0.0.1",
        rtp_port: inputPort,
        outputs: [{ protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
      }),
    );
    const id = String(created.id);
    expect((await post(`/api/channels/${id}/start`)).status).toBe(200);
    const port = await app.listen();
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
      headers: { authorization: "Bearer test-admin-token-0123456789abcdef" },
    });
    try {
      let latest: Record<string, unknown> | undefined;
      socket.onmessage = (event) => {
        const { channels } = JSON.parse(String(event.data)) as { channels: Array<Record<string, unknown>> };
        latest = channels.find((candidate) => candidate.id === id);
      };
      const channel = await eventually("a WebSocket snapshot with input and output bitrates", () => {
        const outputs = (latest?.outputs ?? []) as Array<{ bitrate_bps: number }>;
        return Number(latest?.input_bitrate_bps) > 0 && (outputs[0]?.bitrate_bps ?? 0) > 0
          ? latest
          : undefined;
      });
      // udpSource sends 7 packets every 5 ms: at most about 2.1 Mbit/s (less when its timer runs late).
      expect(channel.input_bitrate_bps).toBeLessThan(4_000_000);
    } finally {
      socket.close();
      await post(`/api/channels/${id}/stop`);
      await source.close();
      await sink.close();
    }
  });
});
