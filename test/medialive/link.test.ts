/**
 * A channel linked to an AWS MediaLive channel, against a real moto_server driven through the AWS SDK: the
 * link and the state it shows, start and stop through the API (audited, with their outcome as events), the
 * start that follows our channel's, destinations that match our inputs and ones that do not, an unknown
 * channel or region in words, egress endpoints as the inputs' allowed senders over real sockets, the metric —
 * and a credential planted in the environment, found in no answer, page, log line or metric.
 */
import { createSocket } from "node:dgram";
import { readFile } from "node:fs/promises";
import { DescribeChannelCommand, M2tsScte35Control, StartChannelCommand } from "@aws-sdk/client-medialive";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  ADMIN_TOKEN,
  eventually,
  freeUdpPort,
  json,
  loginSession,
  makeTestApp,
  type TestApp,
  udpSink,
} from "../support/app.ts";
import { createMediaLiveChannel, type Moto, motoMissing, startMoto } from "../support/moto.ts";
import { chunkTs } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

const missing = motoMissing();
// Planted where the AWS SDK's standard chain looks first; moto takes any credentials.
const PLANTED = {
  AWS_ACCESS_KEY_ID: "AKIAPLANTEDKEY7Q3ZX",
  AWS_SECRET_ACCESS_KEY: `planted-secret-${crypto.randomUUID()}`,
  AWS_SESSION_TOKEN: `planted-session-${crypto.randomUUID()}`,
};
const planted = Object.values(PLANTED);

let moto: Moto;
let app: TestApp;
/** Every text the service gave: answers, pages, metrics. */
const seen: string[] = [];
const request = async (path: string, init?: Parameters<TestApp["request"]>[1]) => {
  const response = await app.request(path, init);
  seen.push(await response.clone().text());
  return response;
};
const post = (path: string, body?: unknown) =>
  request(path, { method: "POST", ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

beforeAll(async () => {
  if (missing !== null) return;
  Object.assign(process.env, PLANTED);
  moto = await startMoto();
  app = await makeTestApp(undefined, undefined, { DISTRIBUTARY_AWS_ENDPOINT: moto.endpoint });
}, 60_000);

afterAll(async () => {
  for (const name of Object.keys(PLANTED)) delete process.env[name];
  await app?.close();
  await moto?.stop();
});

interface View {
  state: string | null;
  pipelines_running: number | null;
  running_s: number | null;
  warnings: string[];
  destinations: Array<{ pipeline: number; url: string; matches: boolean }>;
  scte35_passthrough: boolean | null;
  egress_endpoints: string[];
  error: string | null;
}

const view = async (id: string) =>
  (await json(await request(`/api/channels/${id}/medialive`))) as unknown as View;
const until = (id: string, check: (view: View) => boolean, timeoutMs?: number) =>
  eventually(
    `channel ${id}'s MediaLive view to change`,
    async () => {
      const current = await view(id);
      return check(current) ? current : undefined;
    },
    timeoutMs,
  );

/** Our channel on two free ports, linked to a new MediaLive channel that sends to `destinations(ports)`. */
const linked = async (options: {
  readonly id: string;
  readonly destinations?: (primary: number, backup: number) => ReadonlyArray<string>;
  readonly scte35?: M2tsScte35Control;
  readonly egress?: ReadonlyArray<string>;
  readonly link?: Record<string, unknown>;
  readonly outputs?: ReadonlyArray<unknown>;
}) => {
  const [primary, backup] = [await freeUdpPort(), await freeUdpPort()];
  const medialiveId = await createMediaLiveChannel(moto.client(), {
    name: options.id,
    destinations: (options.destinations ?? ((p, b) => [`rtp://127.0.0.1:${p}`, `rtp://127.0.0.1:${b}`]))(
      primary,
      backup,
    ),
    ...(options.scte35 === undefined ? {} : { scte35: options.scte35 }),
    ...(options.egress === undefined ? {} : { egress: options.egress }),
  });
  const created = await post("/api/channels", {
    id: options.id,
    name: options.id,
    rtp_ip: "127.0.0.1",
    rtp_port: primary,
    backup_rtp_port: backup,
    outputs: options.outputs ?? [],
    medialive: { channel_id: medialiveId, region: "eu-west-1", ...options.link },
  });
  expect(created.status).toBe(201);
  return { medialiveId, primary, backup };
};

const mlState = async (id: string) =>
  (await moto.client().send(new DescribeChannelCommand({ ChannelId: id }))).State;

describe.skipIf(missing !== null)("a channel linked to MediaLive (moto)", () => {
  it("shows MediaLive's state and its destinations, matched against our inputs, on the API and the channel", async () => {
    await linked({ id: "news" });
    const idle = await until("news", (current) => current.state === "IDLE");
    expect(idle).toMatchObject({ warnings: [], scte35_passthrough: true, error: null, running_s: null });
    expect(idle.destinations.map((d) => [d.pipeline, d.matches])).toEqual([
      [0, true],
      [1, true],
    ]);
    // The channel's own view shows it from the read model's next snapshot (each second).
    const channel = await eventually("the channel's view to show MediaLive", async () => {
      const current = await json(await request("/api/channels/news"));
      return (current.medialive as View | undefined)?.state === "IDLE" ? current : undefined;
    });
    expect(channel.medialive).toMatchObject({
      region: "eu-west-1",
      console_url: expect.stringContaining("eu-west-1"),
    });
    // Stored as given, and exported as stored: an import elsewhere links the same channel.
    const exported = await json(await request("/api/config"));
    const stored = (exported.channels as Array<Record<string, unknown>>).find((c) => c.id === "news");
    expect(stored?.medialive).toMatchObject({ region: "eu-west-1" });
    const imported = await post("/api/config", {
      version: 1,
      channels: [
        {
          ...stored,
          id: "news-copy",
          name: "news copy",
          rtp_port: await freeUdpPort(),
          backup_rtp_port: await freeUdpPort(),
        },
      ],
    });
    expect(imported.status).toBe(200);
    expect((await until("news-copy", (current) => current.state === "IDLE")).destinations).toHaveLength(2);
  });

  it("starts and stops it through the API, audited, each outcome an event; a state that forbids says why", async () => {
    const { medialiveId } = await linked({ id: "sport" });
    await until("sport", (current) => current.state === "IDLE");
    const started = await post("/api/channels/sport/medialive/start");
    expect(started.status).toBe(200);
    expect(((await json(started)) as unknown as View).state).toBe("STARTING");
    const running = await until("sport", (current) => current.state === "RUNNING");
    expect(running.pipelines_running).toBe(2);
    expect(running.running_s).toBeGreaterThanOrEqual(0);
    expect(await mlState(medialiveId)).toBe("RUNNING");

    const again = await post("/api/channels/sport/medialive/start");
    expect(again.status).toBe(409);
    expect((await json(again)).detail).toBe("the MediaLive channel is already RUNNING");

    expect((await post("/api/channels/sport/medialive/stop")).status).toBe(200);
    await until("sport", (current) => current.state === "IDLE");
    expect(await mlState(medialiveId)).toBe("IDLE");

    const events = (await json(await request("/api/channels/sport/events"))).events as Array<
      Record<string, unknown>
    >;
    const actions = events.filter((event) => event.type === "medialive_action");
    expect(actions.map((event) => [event.action, event.by, event.ok])).toEqual([
      ["start", "operator", true],
      ["start", "operator", false],
      ["stop", "operator", true],
    ]);
    expect(String(actions[1]?.message)).toContain("already RUNNING");
    const audited = events.filter((event) => event.type === "api_change").map((event) => event.action);
    expect(audited).toEqual(expect.arrayContaining(["medialive.start", "medialive.stop"]));
    expect(events.some((event) => event.type === "medialive_state" && event.state === "RUNNING")).toBe(true);
  });

  it("a viewer may look but not start; an unlinked channel has nothing to start", async () => {
    const token = await json(await post("/api/tokens", { name: "watcher", role: "viewer" }));
    const asViewer = await request("/api/channels/news/medialive/start", {
      method: "POST",
      token: String(token.token),
    });
    expect(asViewer.status).toBe(403);
    expect((await request("/api/channels/news/medialive", { token: String(token.token) })).status).toBe(200);
    const plain = await post("/api/channels", {
      id: "plain",
      name: "plain",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
    });
    expect(plain.status).toBe(201);
    const refused = await post("/api/channels/plain/medialive/stop");
    expect(refused.status).toBe(409);
    expect((await json(refused)).detail).toContain("is not linked to a MediaLive channel");
  });

  it("starts MediaLive when an operator starts our channel, if the link says so", async () => {
    const { medialiveId } = await linked({ id: "morning", link: { start_with_channel: true } });
    await until("morning", (current) => current.state === "IDLE");
    expect((await post("/api/channels/morning/start")).status).toBe(200);
    await until("morning", (current) => current.state === "RUNNING");
    expect(await mlState(medialiveId)).toBe("RUNNING");
    const events = (await json(await request("/api/channels/morning/events"))).events as Array<
      Record<string, unknown>
    >;
    expect(events.find((event) => event.type === "medialive_action")).toMatchObject({
      action: "start",
      by: "channel_start",
      ok: true,
    });
    expect((await post("/api/channels/morning/stop")).status).toBe(200);
  });

  it("warns in words when its destinations miss our inputs or SCTE-35 is removed", async () => {
    await linked({
      id: "crossed",
      destinations: (primary, backup) => [`rtp://127.0.0.1:${backup}`, `udp://127.0.0.1:${primary + 100}`],
      scte35: M2tsScte35Control.NONE,
    });
    const described = await until("crossed", (current) => current.state !== null);
    expect(described.scte35_passthrough).toBe(false);
    expect(described.destinations.map((d) => d.matches)).toEqual([false, false]);
    expect(described.warnings).toHaveLength(3);
    expect(described.warnings[0]).toContain("removes SCTE-35: set its SCTE-35 control to PASSTHROUGH");
    expect(described.warnings[1]).toMatch(
      /^output 'ts' pipeline 0 sends to rtp:\/\/127\.0\.0\.1:\d+, not to the primary input/,
    );
  });

  it("an unknown channel or a wrong region is said in words, and a start of it is refused (502)", async () => {
    const port = await freeUdpPort();
    const created = await post("/api/channels", {
      id: "ghost",
      name: "ghost",
      rtp_ip: "127.0.0.1",
      rtp_port: port,
      medialive: { channel_id: "9999999", region: "eu-west-1" },
    });
    expect(created.status).toBe(201);
    const ghost = await until("ghost", (current) => current.error !== null);
    expect(ghost.error).toMatch(
      /^MediaLive has no channel '9999999' in eu-west-1 \(\d+ others? there\): check the channel id and the region$/,
    );
    const start = await post("/api/channels/ghost/medialive/start");
    expect(start.status).toBe(502);
    expect((await json(start)).detail).toContain("MediaLive has no channel '9999999' in eu-west-1");

    // The right id in the wrong region.
    const { medialiveId } = await linked({ id: "lost" });
    expect(
      (
        await request("/api/channels/lost", {
          method: "PATCH",
          body: JSON.stringify({ medialive: { channel_id: medialiveId, region: "us-east-1" } }),
        })
      ).status,
    ).toBe(200);
    const wrong = await until("lost", (current) => current.error?.includes("us-east-1") === true);
    expect(wrong.error).toContain(`MediaLive has no channel '${medialiveId}' in us-east-1`);

    const bad = await request("/api/channels/lost", {
      method: "PATCH",
      body: JSON.stringify({ medialive: { channel_id: "x/y", region: "Europe", idle_minutes: 5 } }),
    });
    expect(bad.status).toBe(400);
    const fields = ((await json(bad)).errors as Array<{ field: string; message: string }>).map(
      (e) => e.field,
    );
    expect(fields).toEqual(
      expect.arrayContaining(["medialive.channel_id", "medialive.region", "medialive.idle_minutes"]),
    );
  });

  it("takes MediaLive's egress endpoints as the inputs' allowed senders: others are dropped and counted", async () => {
    const sink = await udpSink();
    try {
      const { primary } = await linked({
        id: "trusted",
        egress: ["127.0.0.2"],
        link: { egress_allowlist: true },
        outputs: [{ name: "sink", protocol: "udp", url: `udp://127.0.0.1:${sink.port}` }],
      });
      expect((await post("/api/channels/trusted/start")).status).toBe(200);
      await until("trusted", (current) => current.egress_endpoints.join() === "127.0.0.2");
      const datagrams = chunkTs(new TsGenerator({ seed: 3, bitrate: 1_000_000 }).packets(7 * 50));
      const sendFrom = async (address: string) => {
        const socket = createSocket("udp4");
        await new Promise<void>((resolve) => socket.bind(0, address, resolve));
        for (const datagram of datagrams) socket.send(datagram, primary, "127.0.0.1");
        await new Promise((resolve) => setTimeout(resolve, 50));
        socket.close();
      };
      // Read live (the detail is built when asked), not from the once-a-second snapshot.
      const rejected = async () => {
        const stats = await json(await request("/api/channels/trusted/stats"));
        const inputs = stats.inputs as Array<{ role: string; rejected: { sender_not_allowed: number } }>;
        return inputs.find((input) => input.role === "primary")?.rejected.sender_not_allowed ?? 0;
      };
      // The allow-list reaches the running input once the first answer brought the egress endpoints.
      let foreignSends = 0;
      await eventually("a foreign sender to be dropped", async () => {
        await sendFrom("127.0.0.3");
        foreignSends += 1;
        return (await rejected()) > 0 ? true : undefined;
      });
      const before = sink.bytes();
      await sendFrom("127.0.0.2");
      await eventually("MediaLive's address to get through", () =>
        sink.bytes() > before ? true : undefined,
      );
      // Every datagram of the last foreign send was dropped, and none of MediaLive's.
      const dropped = await rejected();
      expect(dropped % datagrams.length).toBe(0);
      expect(dropped).toBeGreaterThanOrEqual(datagrams.length);
      expect(dropped).toBeLessThanOrEqual(foreignSends * datagrams.length);
      expect((await post("/api/channels/trusted/stop")).status).toBe(200);
    } finally {
      await sink.close();
    }
  });

  it("exports the state as distributary_medialive_channel_state", async () => {
    await moto
      .client()
      .send(new StartChannelCommand({ ChannelId: (await linked({ id: "metered" })).medialiveId }));
    // Started behind the service's back: if its first look came before the start, it sees the change at its
    // next steady look, 15 s later.
    await until("metered", (current) => current.state === "RUNNING", 20_000);
    const metrics = await (await request("/metrics")).text();
    expect(metrics).toContain('distributary_medialive_channel_state{channel="metered",state="RUNNING"} 1');
    expect(metrics).toContain('distributary_medialive_channel_state{channel="metered",state="IDLE"} 0');
    // What the channel dashboard's MediaLive panel and the MediaLive alerts read is all there.
    const dashboard = JSON.parse(await readFile("grafana/dashboards/channel.json", "utf8")) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
    };
    const rules = parse(await readFile("prometheus/alerts.yml", "utf8")) as {
      groups: Array<{ name: string; rules: Array<{ expr: string }> }>;
    };
    const exprs = [
      ...dashboard.panels
        .filter((panel) => panel.title.startsWith("MediaLive"))
        .flatMap((panel) => (panel.targets ?? []).map((target) => target.expr)),
      ...(rules.groups.find((group) => group.name === "distributary-medialive")?.rules ?? []).map(
        (rule) => rule.expr,
      ),
    ];
    const names = new Set(exprs.flatMap((expr) => expr.match(/distributary_[a-z_]+/g) ?? []));
    expect([...names].sort()).toEqual([
      "distributary_channel_desired_running",
      "distributary_medialive_channel_state",
      "distributary_output_up",
    ]);
    for (const name of ["distributary_channel_desired_running", "distributary_medialive_channel_state"])
      expect(metrics, name).toMatch(new RegExp(`^${name}\\{channel="metered"[^}]*\\} `, "m"));
  });

  it("the channel form links, shows and unlinks a MediaLive channel, and says what is wrong beside the field", async () => {
    const cookie = await loginSession(app, ADMIN_TOKEN, "/");
    const form = (path: string, fields: Record<string, string>) =>
      request(`http://127.0.0.1${path}`, {
        method: "POST",
        token: null,
        redirect: "manual",
        headers: {
          cookie,
          host: "127.0.0.1",
          origin: "http://127.0.0.1",
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams(fields).toString(),
      });
    const port = String(await freeUdpPort());
    const fields = { name: "Formed", rtp_ip: "127.0.0.1", rtp_port: port, revert: "auto" };
    const refused = await form("/channels/new", {
      ...fields,
      medialive_channel_id: "1234567",
      medialive_region: "Ireland",
    });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain("must be an AWS region such as &quot;eu-west-1&quot;");
    const created = await form("/channels/new", {
      ...fields,
      medialive_channel_id: "1234567",
      medialive_region: "eu-west-1",
      medialive_stop_when_idle: "on",
      medialive_idle_minutes: "20",
    });
    expect(created.status).toBe(303);
    const id = String(created.headers.get("location")).split("/").pop();
    const stored = (await json(await request("/api/config"))).channels as Array<Record<string, unknown>>;
    expect(stored.find((channel) => channel.id === id)?.medialive).toEqual({
      channel_id: "1234567",
      region: "eu-west-1",
      start_with_channel: false,
      stop_when_idle: true,
      idle_minutes: 20,
      egress_allowlist: false,
    });
    const edit = await request(`http://127.0.0.1/channels/${id}/edit`, { token: null, headers: { cookie } });
    expect(await edit.text()).toMatch(/name="medialive_stop_when_idle" value="on"\s+checked/);
    expect((await form(`/channels/${id}/edit`, fields)).status).toBe(303);
    const unlinked = (await json(await request("/api/config"))).channels as Array<Record<string, unknown>>;
    expect(unlinked.find((channel) => channel.id === id)?.medialive).toBeNull();
  });

  it("no planted credential appears in any answer, page, log line or metric", async () => {
    const cookie = await loginSession(app, ADMIN_TOKEN, "/");
    for (const path of ["/", "/channels/sport", "/channels/ghost", "/events"]) {
      const page = await request(`http://127.0.0.1${path}`, { token: null, headers: { cookie } });
      expect(page.status).toBe(200);
    }
    await request("/metrics");
    await request("/api/events?limit=1000");
    expect(seen.length).toBeGreaterThan(30);
    const everything = [...seen, ...app.logs].join("\n");
    expect(everything).toContain("MediaLive");
    for (const secret of planted) expect(everything).not.toContain(secret);
  });
});
