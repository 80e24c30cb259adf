/**
 * Rights per channel through the real service: an operator token scoped to the `eu` channels runs them and
 * nothing else — a `us` channel, node-wide routes and unknown channels are 403 in words; the channel list,
 * the events, the WebSocket and HLS show only its channels; an admin of the eu channels is no node admin and
 * cannot take a channel out of (or create one beyond) its reach; an unscoped admin sees everything; refusals
 * are audited, one row a minute per caller.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, eventually, json, useTestApp } from "../support/app.ts";

const app = useTestApp();
const tokens: Record<string, string> = {};

const makeToken = async (name: string, role: string, channels?: unknown) => {
  const created = await app.request("/api/tokens", {
    method: "POST",
    body: JSON.stringify({ name, role, ...(channels === undefined ? {} : { channels }) }),
  });
  expect(created.status).toBe(201);
  tokens[name] = String((await json(created)).token);
};

const ids = (body: Record<string, unknown>) =>
  (body.channels as Array<{ id: string }>).map((channel) => channel.id).sort();

beforeAll(async () => {
  for (const [id, tags, port] of [
    ["eu-1", ["eu"], 6401],
    ["eu-2", ["eu", "news"], 6402],
    ["us-1", ["us"], 6403],
  ] as const) {
    const created = await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id,
        name: id,
        tags,
        rtp_ip: "127.0.0.1",
        rtp_port: port,
        outputs: [{ id: "hls", protocol: "hls", url: "hls://?target=4&window=10" }],
      }),
    });
    expect(created.status, JSON.stringify(await created.clone().json())).toBe(201);
  }
  await makeToken("eu operator", "operator", { tags: ["eu"] });
  await makeToken("eu viewer", "viewer", { tags: ["eu"] });
  await makeToken("eu admin", "admin", { tags: ["eu"] });
  await makeToken("us-1 only", "viewer", { ids: ["us-1"] });
});

describe("an operator of the eu channels", () => {
  it("runs an eu channel and gets 403 in words on a us channel and on /api/tokens", async () => {
    const token = tokens["eu operator"];
    expect((await app.request("/api/channels/eu-1", { token })).status).toBe(200);
    expect((await app.request("/api/channels/eu-1/stop", { method: "POST", token })).status).toBe(200);

    const us = await app.request("/api/channels/us-1/stop", { method: "POST", token });
    expect(us.status).toBe(403);
    expect(us.headers.get("content-type")).toBe("application/problem+json");
    expect((await json(us)).detail).toBe(
      "channel 'us-1' needs the operator role; the token 'eu operator' holds operator on tags eu",
    );
    expect((await app.request("/api/channels/us-1", { token })).status).toBe(403);
    expect((await app.request("/api/channels/us-1/events", { token })).status).toBe(403);
    expect((await app.request("/api/channels/us-1/cues", { token })).status).toBe(403);
    // A channel that does not exist is no more theirs: the same 403, so that nothing tells what exists.
    expect((await app.request("/api/channels/nowhere", { token })).status).toBe(403);

    const node = await app.request("/api/tokens", { token });
    expect(node.status).toBe(403);
    const detail = String((await json(node)).detail);
    expect(detail).toContain("over every channel");
    expect(detail).toContain("operator on tags eu");
    expect(detail).not.toContain(token ?? "unset");
    for (const path of ["/api/config", "/api/notifiers", "/api/access/rules", "/metrics"])
      expect((await app.request(path, { token })).status, path).toBe(403);
  });

  it("lists, reads events of and streams only the eu channels", async () => {
    const token = tokens["eu operator"];
    expect(ids(await json(await app.request("/api/channels", { token })))).toEqual(["eu-1", "eu-2"]);
    expect(ids(await json(await app.request("/api/channels?ids=eu-1,us-1", { token })))).toEqual(["eu-1"]);
    expect(ids(await json(await app.request("/api/channels", { token: ADMIN_TOKEN })))).toEqual([
      "eu-1",
      "eu-2",
      "us-1",
    ]);

    const events = (await json(await app.request("/api/events?limit=2000", { token }))).events as Array<{
      channel: string | null;
    }>;
    expect(events.length).toBeGreaterThan(0);
    expect(new Set(events.map((event) => event.channel))).toEqual(new Set(["eu-1", "eu-2"]));
    const all = (await json(await app.request("/api/events?limit=2000"))).events as Array<{
      channel: string | null;
    }>;
    expect(all.some((event) => event.channel === "us-1")).toBe(true);
    expect(all.some((event) => event.channel === null)).toBe(true);
    // Asking for a us channel's events by the query gets none.
    const asked = (await json(await app.request("/api/events?channel=us-1", { token }))).events;
    expect(asked).toEqual([]);

    const port = await app.listen();
    const seen = async (headers: Record<string, string>, query = "") => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/ws${query}`, { headers });
      const messages: Array<{ channels: Array<{ id: string }>; events?: Array<{ channel: string | null }> }> =
        [];
      socket.onmessage = (message) => messages.push(JSON.parse(String(message.data)));
      await eventually("a first message", () => (messages.length > 0 ? true : undefined));
      return { socket, messages };
    };
    const scoped = await seen({ authorization: `Bearer ${token}` });
    const everything = await seen({ authorization: `Bearer ${ADMIN_TOKEN}` });
    const byUrl = await seen({}, `?token=${encodeURIComponent(tokens["eu viewer"] ?? "")}`);
    // A change on each side: the us one reaches only the unscoped socket.
    await app.request("/api/channels/us-1", { method: "PATCH", body: JSON.stringify({ name: "US one" }) });
    await app.request("/api/channels/eu-2", { method: "PATCH", body: JSON.stringify({ name: "EU two" }) });
    const eventsOf = (messages: typeof scoped.messages) =>
      messages.flatMap((message) => message.events ?? []).map((event) => event.channel);
    await eventually("the eu change on the scoped socket", () =>
      eventsOf(scoped.messages).includes("eu-2") ? true : undefined,
    );
    await eventually("both changes on the unscoped socket", () =>
      eventsOf(everything.messages).includes("eu-2") && eventsOf(everything.messages).includes("us-1")
        ? true
        : undefined,
    );
    await eventually("the eu change on the viewer's socket", () =>
      eventsOf(byUrl.messages).includes("eu-2") ? true : undefined,
    );
    for (const { messages } of [scoped, byUrl]) {
      expect(new Set(messages.flatMap((message) => message.channels.map((channel) => channel.id)))).toEqual(
        new Set(["eu-1", "eu-2"]),
      );
      expect(eventsOf(messages).every((channel) => channel === "eu-1" || channel === "eu-2")).toBe(true);
    }
    expect(everything.messages[0]?.channels.map((channel) => channel.id).sort()).toEqual([
      "eu-1",
      "eu-2",
      "us-1",
    ]);
    for (const { socket } of [scoped, everything, byUrl]) socket.close();
  });

  it("reads HLS of an eu channel only", async () => {
    const token = tokens["eu operator"];
    const us = await app.request("/hls/us-1/hls/index.m3u8", { token });
    expect(us.status).toBe(403);
    expect((await json(us)).detail).toContain("channel 'us-1'");
    // Past the check: the channel is stopped, so it serves no playlist.
    const eu = await app.request("/hls/eu-1/hls/index.m3u8", { token });
    expect(eu.status).toBe(404);
    const byUrl = await app.request(`/hls/us-1/hls/index.m3u8?token=${tokens["eu viewer"]}`, { token: null });
    expect(byUrl.status).toBe(403);
  });
});

describe("scopes by id and scoped admins", () => {
  it("a token scoped to one channel id sees that channel only", async () => {
    const token = tokens["us-1 only"];
    expect(ids(await json(await app.request("/api/channels", { token })))).toEqual(["us-1"]);
    expect((await app.request("/api/channels/eu-1", { token })).status).toBe(403);
  });

  it("an admin of the eu channels changes them, but is no node admin and cannot move a channel out of reach", async () => {
    const token = tokens["eu admin"];
    const renamed = await app.request("/api/channels/eu-1", {
      method: "PATCH",
      token,
      body: JSON.stringify({ name: "EU one" }),
    });
    expect(renamed.status).toBe(200);
    const moved = await app.request("/api/channels/eu-1", {
      method: "PATCH",
      token,
      body: JSON.stringify({ tags: ["us"] }),
    });
    expect(moved.status).toBe(403);
    expect((await json(moved)).detail).toContain("channel 'eu-1' needs the admin role");
    expect((await json(await app.request("/api/channels/eu-1"))).tags).toEqual(["eu"]);

    const create = (id: string, tags: ReadonlyArray<string>, port: number) =>
      app.request("/api/channels", {
        method: "POST",
        token,
        body: JSON.stringify({ id, name: id, tags, rtp_ip: "127.0.0.1", rtp_port: port }),
      });
    expect((await create("eu-3", ["eu"], 6404)).status).toBe(201);
    const beyond = await create("us-2", ["us"], 6405);
    expect(beyond.status).toBe(403);
    expect((await app.request("/api/channels/us-2")).status).toBe(404);

    for (const [path, method] of [
      ["/api/tokens", "GET"],
      ["/api/config", "GET"],
      ["/api/config", "POST"],
      ["/api/access/rules", "PUT"],
    ] as const) {
      const refused = await app.request(path, {
        method,
        token,
        ...(method === "GET" ? {} : { body: "{}" }),
      });
      expect(refused.status, `${method} ${path}`).toBe(403);
    }
  });

  it("refusals are audited with the caller, at most one row a minute each", async () => {
    const events = (await json(await app.request("/api/events?type=api_change&limit=2000"))).events as Array<{
      action: string;
      actor: string;
      actor_via?: string;
      detail: string;
    }>;
    // Every audit row says how its actor proved who it is.
    const created = events.find(
      (event) => event.action === "channel.create" && event.detail.includes("eu-3"),
    );
    expect(created).toMatchObject({ actor: "eu admin", actor_via: "token" });
    const refusals = events.filter((event) => event.action === "access.refused");
    const byActor = new Map<string, number>();
    for (const event of refusals) byActor.set(event.actor, (byActor.get(event.actor) ?? 0) + 1);
    expect(byActor.get("eu operator")).toBe(1);
    expect(byActor.get("eu admin")).toBe(1);
    const first = refusals.find((event) => event.actor === "eu operator");
    expect(first?.actor_via).toBe("token");
    expect(first?.detail).toBe(
      "refused POST /api/channels/us-1/stop: channel 'us-1' needs the operator role; the token 'eu operator' holds operator on tags eu",
    );
  });
});
