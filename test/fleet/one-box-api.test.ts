/**
 * The fleet's API, pages and metrics on one box (no DISTRIBUTARY_DATABASE_URL): every fleet route says in
 * words that there is no fleet, behind the same role checks as in a fleet; a move takes exactly one of worker
 * and node; the menu has no Nodes link and /metrics has no fleet series.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { freeUdpPort, json, loginSession, useTestApp } from "../support/app.ts";

const SCRAPE_TOKEN = "scrape-only-token-5f0c2a9d";
const app = useTestApp({ settings: { DISTRIBUTARY_METRICS_TOKEN: SCRAPE_TOKEN } });
let viewer = "";
let operator = "";

const problem = async (response: Response) => {
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  return String((await json(response)).detail);
};
const NO_FLEET = "this service runs alone (no DISTRIBUTARY_DATABASE_URL): it has no fleet of nodes";

beforeAll(async () => {
  for (const role of ["viewer", "operator"]) {
    const created = await json(
      await app.request("/api/tokens", { method: "POST", body: JSON.stringify({ name: role, role }) }),
    );
    if (role === "viewer") viewer = String(created.token);
    else operator = String(created.token);
  }
  await app.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({ id: "news", name: "News", rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort() }),
  });
});

describe("the fleet's routes on one box", () => {
  it("GET /api/nodes and /api/cluster/database: a viewer's token, then 404 saying there is no fleet", async () => {
    for (const path of ["/api/nodes", "/api/cluster/database"]) {
      expect((await app.request(path, { token: null })).status, path).toBe(401);
      const answer = await app.request(path, { token: viewer });
      expect(answer.status, path).toBe(404);
      expect(await problem(answer)).toBe(NO_FLEET);
    }
  });

  it("POST /api/nodes/{id}/drain needs an admin, then says there is no fleet", async () => {
    const asOperator = await app.request("/api/nodes/a/drain", { method: "POST", token: operator });
    expect(asOperator.status).toBe(403);
    const asAdmin = await app.request("/api/nodes/a/drain", { method: "POST" });
    expect(asAdmin.status).toBe(404);
    expect(await problem(asAdmin)).toBe(NO_FLEET);
  });

  it("GET /api/audit needs an admin, then says where one box keeps its audit trail", async () => {
    expect((await app.request("/api/audit", { token: operator })).status).toBe(403);
    const answer = await app.request("/api/audit");
    expect(answer.status).toBe(404);
    expect(await problem(answer)).toBe(
      "this service runs alone (no DISTRIBUTARY_DATABASE_URL): its audit trail is GET /api/events?type=api_change",
    );
    const bad = await app.request("/api/audit?limit=5000");
    expect(bad.status).toBe(400);
    expect(await problem(bad)).toBe('limit: must be a whole number from 1 to 1000, got "5000"');
  });

  it("GET /api/cluster/sd is guarded as /metrics is: a viewer's or the scrape token, or loopback", async () => {
    expect((await app.request("/api/cluster/sd", { token: null })).status).toBe(401);
    for (const token of [viewer, SCRAPE_TOKEN]) {
      const answer = await app.request("/api/cluster/sd", { token });
      expect(answer.status).toBe(404);
      expect(await problem(answer)).toBe(NO_FLEET);
    }
    // The scrape token opens discovery and /metrics, nothing else.
    expect((await app.request("/api/nodes", { token: SCRAPE_TOKEN })).status).toBe(401);
  });

  it("the OpenAPI document lists the fleet's routes with their roles and schemas", async () => {
    const document = await json(await app.request("/api/openapi.json", { token: null }));
    const paths = document.paths as Record<string, Record<string, { "x-required-role": string }>>;
    expect(paths["/api/nodes"]?.get?.["x-required-role"]).toBe("viewer");
    expect(paths["/api/nodes/{id}/drain"]?.post?.["x-required-role"]).toBe("admin");
    expect(paths["/api/cluster/sd"]?.get?.["x-required-role"]).toBe("viewer");
    expect(paths["/api/cluster/database"]?.get?.["x-required-role"]).toBe("viewer");
    const schemas = (document.components as { schemas: Record<string, unknown> }).schemas;
    expect(Object.keys(schemas)).toEqual(expect.arrayContaining(["Node", "NodeList", "DatabaseReach"]));
  });
});

describe("a move names a worker or a node, not both", () => {
  const move = (body: unknown) =>
    app.request("/api/channels/news/move", { method: "POST", body: JSON.stringify(body), token: operator });

  it("a node on one box: 404 saying there is no fleet", async () => {
    const answer = await move({ node: "b" });
    expect(answer.status).toBe(404);
    expect(await problem(answer)).toBe(NO_FLEET);
  });

  it("both, neither, or a node id that cannot be one: 400 saying what to send", async () => {
    for (const body of [{ worker: 0, node: "b" }, {}]) {
      const answer = await move(body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(await problem(answer)).toContain("give exactly one of worker");
    }
    const bad = await move({ node: "no such node!" });
    expect(bad.status).toBe(400);
    const errors = (await json(bad)).errors as Array<{ field: string }>;
    expect(errors.map((issue) => issue.field)).toEqual(["node"]);
    const extra = await move({ node: "b", nodes: ["b"] });
    expect(extra.status).toBe(400);
    expect(JSON.stringify(await json(extra))).toContain("nodes");
  });
});

describe("a channel received on several nodes", () => {
  const create = async (body: Record<string, unknown>) =>
    app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({ name: "Two nodes", rtp_port: await freeUdpPort(), nodes: ["a", "b"], ...body }),
    });

  it("refuses an input address only one host has, saying what to give instead; on create and on patch", async () => {
    const refused = await create({ rtp_ip: "198.18.0.5" });
    expect(refused.status).toBe(400);
    expect(await problem(refused)).toBe(
      "rtp_ip: the channel is received on nodes a, b, and each binds 198.18.0.5, an address only one host has: " +
        "give 0.0.0.0 (or ::) to listen on every address of each node, or a multicast group",
    );
    const backup = await create({ rtp_ip: "0.0.0.0", backup_rtp_ip: "10.1.2.3", backup_rtp_port: 7001 });
    expect(backup.status).toBe(400);
    expect(((await json(backup)).errors as Array<{ field: string }>).map((issue) => issue.field)).toEqual([
      "backup_rtp_ip",
    ]);
    // One node may bind whatever address it has; a second node listed makes the same address a problem.
    const one = await create({ id: "one-node", rtp_ip: "198.18.0.5", nodes: ["a"] });
    expect(one.status, await one.clone().text()).toBe(201);
    const widened = await app.request("/api/channels/one-node", {
      method: "PATCH",
      body: JSON.stringify({ nodes: ["a", "b"] }),
    });
    expect(widened.status).toBe(400);
    expect(await problem(widened)).toContain("each binds 198.18.0.5");
  });

  it("takes every address each node has: the wildcard, a multicast group, loopback", async () => {
    for (const rtp_ip of ["0.0.0.0", "::", "239.18.0.9", "127.0.0.1"]) {
      const answer = await create({ rtp_ip });
      expect(answer.status, `${rtp_ip}: ${await answer.clone().text()}`).toBe(201);
    }
  });
});

describe("pages and metrics on one box", () => {
  it("no Nodes link in the menu, and /nodes says there is no fleet", async () => {
    const cookie = await loginSession(app, viewer);
    const overview = await app.request("http://127.0.0.1/", { token: null, headers: { cookie } });
    const text = await overview.text();
    expect(text).toContain('href="/events"');
    expect(text).not.toContain('href="/nodes"');
    expect(text).not.toContain("fleet-line");
    const nodes = await app.request("http://127.0.0.1/nodes", { token: null, headers: { cookie } });
    expect(nodes.status).toBe(404);
    expect(await nodes.text()).toContain("no fleet of nodes");
  });

  it("/metrics has none of the fleet's series", async () => {
    const text = await (await app.request("/metrics")).text();
    expect(text).toContain("distributary_ready 1");
    expect(text).not.toMatch(/distributary_(cluster|node|lease|channels_without|takeovers)_/);
  });
});
