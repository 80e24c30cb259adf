/**
 * The API over the PostgreSQL store: changes land as rows with audit rows naming the token, a restart reads
 * them back, a stale node's change is a 409, and while the database is down a change is a 503 in words and
 * reads keep working.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, makeTestApp, type TestApp } from "../support/app.ts";
import { nodeStore, type Postgres, startPostgres } from "../support/postgres.ts";

let pg: Postgres;
beforeAll(async () => {
  pg = await startPostgres({ port: 18704 });
});
afterAll(() => pg?.close());
beforeEach(() => pg.dropAndCreate());

const apps: TestApp[] = [];
const node = async (id: string) => {
  const app = await makeTestApp(nodeStore(pg.url), undefined, {
    DISTRIBUTARY_NODE_ID: id,
  });
  apps.push(app);
  return app;
};
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

const createChannel = async (app: TestApp, id: string, name: string) =>
  app.request("/api/channels", {
    method: "POST",
    body: JSON.stringify({ id, name, rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort() }),
  });
const rename = (app: TestApp, id: string, name: string) =>
  app.request(`/api/channels/${id}`, { method: "PATCH", body: JSON.stringify({ name }) });

describe("the API over PostgreSQL", () => {
  it("stores changes as rows with audit rows naming the token, and reads them back after a restart", async () => {
    const a = await node("a");
    expect((await createChannel(a, "news", "News")).status).toBe(201);
    const token = await json(
      await a.request("/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: "ops", role: "operator" }),
      }),
    );
    expect((await a.request(`/api/tokens/${token.id}`, { method: "DELETE" })).status).toBeLessThan(300);

    expect(await pg.admin("select id, body->>'name' as name from channels")).toEqual([
      { id: "news", name: "News" },
    ]);
    const trail = await pg.admin<{ node: string; actor: string; action: string; detail: string }>(
      "select node, actor, action, detail from audit order by id",
    );
    const actor = "admin (DISTRIBUTARY_ADMIN_TOKEN)";
    expect(trail.filter((row) => row.actor === actor).map((row) => [row.node, row.action])).toEqual([
      ["a", "channel.create"],
      ["a", "token.create"],
      ["a", "token.revoke"],
    ]);
    expect(trail.find((row) => row.actor === actor && row.action === "token.create")?.detail).toBe(
      `token ops (${String(token.id)}) created (operator)`,
    );
    // Only a token's hash is stored, never the token.
    expect(JSON.stringify(await pg.admin("select body from tokens"))).not.toContain(String(token.token));

    await a.close();
    apps.splice(0);
    const again = await node("a");
    const channels = await json(await again.request("/api/channels"));
    expect(JSON.stringify(channels)).toContain('"name":"News"');
  });

  it("answers 409 to a change another node made meanwhile, and keeps the other node's change", async () => {
    const a = await node("a");
    expect((await createChannel(a, "shared", "Shared")).status).toBe(201);
    const b = await node("b");
    expect((await rename(a, "shared", "By a")).status).toBe(200);
    const stale = await rename(b, "shared", "By b");
    expect(stale.status).toBe(409);
    expect((await json(stale)).detail).toBe(
      "channel By b (shared) was changed on another node meanwhile: reload and try again",
    );
    expect(await pg.admin("select body->>'name' as name from channels")).toEqual([{ name: "By a" }]);
  });

  it("answers 503 in words while the database is down, keeps reads working, and takes changes again after", async () => {
    const a = await node("a");
    expect((await createChannel(a, "kept", "Kept")).status).toBe(201);
    await pg.stop({ mode: "immediate" });
    const refused = await rename(a, "kept", "Changed");
    expect(refused.status).toBe(503);
    const problem = await json(refused);
    expect(problem.detail).toContain(
      "the database cannot be reached: changes are refused until it is back; reads keep working",
    );
    expect(JSON.stringify(problem)).not.toContain(pg.password);
    expect(a.logs.join("")).not.toContain(pg.password);
    const read = await a.request("/api/channels/kept");
    expect(read.status).toBe(200);
    expect((await json(read)).name).toBe("Kept");

    await pg.start();
    await eventually("a change to go through again", async () =>
      (await rename(a, "kept", "Changed")).status === 200 ? true : undefined,
    );
    expect(await pg.admin("select body->>'name' as name from channels")).toEqual([{ name: "Changed" }]);
  });

  it("starts two nodes together on an empty database with the same DISTRIBUTARY_ADMIN_TOKEN", async () => {
    const [a, b] = await Promise.all([node("a"), node("b")]);
    expect((await a.request("/api/channels")).status).toBe(200);
    expect((await b.request("/api/channels")).status).toBe(200);
    // Each node's admin from the environment is its own: nothing of it is stored.
    expect(await pg.admin("select id from tokens")).toEqual([]);
  });
});
