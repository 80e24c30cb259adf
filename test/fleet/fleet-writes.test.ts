/**
 * What an operator of a two-node fleet behind a load balancer meets: a token login on one node is a session
 * on the other too (and a logout on either ends it on both); the audit row of a change names only the fields
 * it changed; a second drain while one runs says what it waits for.
 */
import { describe, expect, it } from "vitest";
import { freeUdpPort, json } from "../support/app.ts";
import { FLEET_ADMIN, useFleetNodes } from "../support/fleet-nodes.ts";

const fleet = useFleetNodes({
  dbPort: 24851,
  ports: { a: 24801, b: 24802 },
  env: { DISTRIBUTARY_LEASE_MS: "6000", DISTRIBUTARY_THUMBNAILS: "off" },
});
const { api, fleetOf, until } = fleet;

/** A page of node `id` with `cookie`: its status and where it sends the browser. */
const page = async (id: string, path: string, cookie: string) => {
  const answer = await fetch(`${fleet.base(id)}${path}`, { headers: { cookie }, redirect: "manual" });
  return { status: answer.status, location: answer.headers.get("location"), text: await answer.text() };
};

/** Channel `id` made and started through node `via`, first in its `nodes`, and held by it as the other sees. */
const runningOn = async (via: string, id: string, name: string, nodes: ReadonlyArray<string>) => {
  const body = JSON.stringify({ id, name, rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort(), nodes });
  expect((await api(via, "/api/channels", { method: "POST", body })).status).toBe(201);
  expect((await api(via, `/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
  const other = via === "a" ? "b" : "a";
  await until(`${via} to hold ${name}`, async () => (await fleetOf(other, id))?.holder === via, 20_000);
};

describe("a fleet of two nodes behind a load balancer", () => {
  it("starts, with a channel held by a", async () => {
    await fleet.start("a");
    await fleet.start("b");
    await runningOn("a", "news", "News", ["a", "b"]);
  }, 60_000);

  it("a token login on a is a session on b; a logout on b ends it on a", async () => {
    const login = await fetch(`${fleet.base("a")}/login`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        origin: fleet.base("a"),
      },
      body: new URLSearchParams({ token: FLEET_ADMIN, next: "/" }).toString(),
      redirect: "manual",
    });
    expect(login.status).toBe(303);
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    expect(cookie).toMatch(/^dst_session=/);
    for (const id of ["a", "b", "a", "b"]) {
      const seen = await page(id, "/", cookie);
      expect(seen.status, `${id}: ${seen.location}`).toBe(200);
      expect(seen.text).toContain("News");
    }
    // The session's id and the token are not in the database; the token's hash is, as the token list has it.
    const stored = await fleet
      .pg()
      .admin<{ id_hash: string; token_sha256: string }>("select id_hash, token_sha256 from token_sessions");
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(FLEET_ADMIN);
    expect(JSON.stringify(stored)).not.toContain(cookie.split("=")[1]);
    const out = await fetch(`${fleet.base("b")}/logout`, {
      method: "POST",
      headers: { cookie, origin: fleet.base("b") },
      redirect: "manual",
    });
    expect(out.status).toBe(303);
    for (const id of ["a", "b"]) {
      const seen = await page(id, "/", cookie);
      expect(seen.status).toBe(302);
      expect(seen.location).toMatch(/^\/login/);
    }
  }, 30_000);

  it("a name-only PATCH, sent to b and carried out by a, is audited as changing the name alone", async () => {
    const answer = await api("b", "/api/channels/news", {
      method: "PATCH",
      body: JSON.stringify({ name: "News at Six" }),
    });
    expect(answer.status, await answer.clone().text()).toBe(200);
    const entries = (await json(await api("b", "/api/audit?limit=20"))).entries as Array<{
      action: string;
      channel: string | null;
      detail: string;
      node: string;
    }>;
    const update = entries.find((entry) => entry.action === "channel.update" && entry.channel === "news");
    expect(update).toMatchObject({ node: "a", detail: "channel News at Six (news) changed: name" });
  });

  it("a second drain while one runs answers in words what it waits for", async () => {
    // b holds a channel of its own, so that draining it has something to hand over.
    await runningOn("b", "sport", "Sport", ["b", "a"]);
    // Stopped like a process that hangs, b cannot hand Sport over: its drain runs until it wakes.
    fleet.process("b").process.kill("SIGSTOP");
    try {
      const first = await api("a", "/api/nodes/b/drain", { method: "POST" });
      expect(first.status, await first.clone().text()).toBe(200);
      expect(await json(first)).toEqual({ node: "b", released: 1 });
      const second = await api("a", "/api/nodes/b/drain", { method: "POST" });
      expect(second.status).toBe(409);
      expect(String((await json(second)).detail)).toBe(
        "node b is already draining: it waits for 1 channel to be handed to their standbys; GET /api/nodes shows it drained once they are",
      );
    } finally {
      fleet.process("b").process.kill("SIGCONT");
    }
    await until("a to hold Sport", async () => (await fleetOf("a", "sport"))?.holder === "a", 20_000);
  }, 60_000);
});
