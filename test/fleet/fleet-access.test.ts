/**
 * Rights per channel in a fleet of two real nodes on one PostgreSQL: a token scoped to the eu channels gets
 * 403 on a us channel through either node — through b, whose request goes on to the holder a with the caller's
 * own credential, the holder refuses it and its audit row names the token — and its change of an eu channel
 * sent to b is carried out by a in its name, the audit row saying it came by a token. Channel tags and the
 * access rules written on one node are what the other grants by at once.
 */
import { describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json } from "../support/app.ts";
import { useFleetNodes } from "../support/fleet-nodes.ts";

const fleet = useFleetNodes({
  dbPort: 21951,
  ports: { a: 21901, b: 21902 },
  env: { DISTRIBUTARY_THUMBNAILS: "off" },
});
const { api, until } = fleet;

interface AuditRow {
  readonly node: string | null;
  readonly actor: string;
  readonly actor_via: string | null;
  readonly action: string;
  readonly detail: string;
}
const audit = async (id: string) =>
  (await json(await api(id, "/api/audit?limit=1000"))).entries as ReadonlyArray<AuditRow>;

let desk = "";

describe("rights per channel in a fleet", () => {
  it("two nodes, an eu and a us channel held by a, an eu desk token known to both", async () => {
    await fleet.start("a");
    await fleet.start("b");
    for (const [id, tags] of [
      ["eu-1", ["eu"]],
      ["us-1", ["us"]],
    ] as const) {
      const body = JSON.stringify({
        id,
        name: id,
        tags,
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
        nodes: ["a"],
      });
      const created = await api("a", "/api/channels", { method: "POST", body });
      expect(created.status, await created.clone().text()).toBe(201);
      expect((await api("a", `/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
    }
    await until("b to see both channels held by a", async () => {
      const list = (await json(await api("b", "/api/channels"))).channels as Array<{
        id: string;
        tags?: string[];
        fleet?: { holder: string | null };
      }>;
      return (
        list.length === 2 &&
        list.every((channel) => channel.fleet?.holder === "a" && channel.tags?.length === 1)
      );
    });
    desk = String(
      (
        await json(
          await api("a", "/api/tokens", {
            method: "POST",
            body: JSON.stringify({ name: "eu desk", role: "operator", channels: { tags: ["eu"] } }),
          }),
        )
      ).token,
    );
    await until(
      "b to know the eu desk token",
      async () => (await api("b", "/api/channels", { token: desk })).ok,
    );
  }, 60_000);

  it("a us channel is 403 through either node, refused and audited by the holder", async () => {
    // Through b first: b holds nothing, and hands the request to a with the caller's own token.
    const viaB = await api("b", "/api/channels/us-1/stop", { method: "POST", token: desk });
    expect(viaB.status).toBe(403);
    expect((await json(viaB)).detail).toBe(
      "channel 'us-1' needs the operator role; the token 'eu desk' holds operator on tags eu",
    );
    const onA = await api("a", "/api/channels/us-1", { token: desk });
    expect(onA.status).toBe(403);
    expect((await api("b", "/api/tokens", { token: desk })).status).toBe(403);
    expect((await api("a", "/api/access/rules", { token: desk })).status).toBe(403);
    // Lists on either node keep to the eu channel.
    for (const id of ["a", "b"]) {
      const list = (await json(await api(id, "/api/channels", { token: desk }))).channels as Array<{
        id: string;
      }>;
      expect(list.map((channel) => channel.id)).toEqual(["eu-1"]);
    }

    let refusal: AuditRow | undefined;
    await eventually("the holder's audit row of the refusal", async () => {
      refusal = (await audit("b")).find(
        (row) => row.action === "access.refused" && row.detail.includes("/api/channels/us-1"),
      );
      return refusal;
    });
    expect(refusal).toMatchObject({ node: "a", actor: "eu desk", actor_via: "token" });
    expect(refusal?.detail).toContain(
      "refused POST /api/channels/us-1/stop: channel 'us-1' needs the operator role",
    );
    // b refused nothing of the channel itself: it passed the request on (its own refusal is of /api/tokens).
    const onB = (await json(await api("b", "/api/events?type=api_change&limit=2000"))).events as Array<{
      action: string;
      detail: string;
    }>;
    const refusedOnB = onB.filter((event) => event.action === "access.refused");
    expect(refusedOnB.map((event) => event.detail.split(":")[0])).toEqual(["refused GET /api/tokens"]);
  }, 30_000);

  it("an eu channel's change sent to b is carried out by the holder in the token's name", async () => {
    const stopped = await api("b", "/api/channels/eu-1/stop", { method: "POST", token: desk });
    expect(stopped.status, await stopped.clone().text()).toBe(200);
    expect((await json(stopped)).status).toBe("stopped");
    const row = (await audit("a")).find(
      (entry) => entry.detail.includes("eu-1") && entry.actor === "eu desk",
    );
    expect(row).toMatchObject({ node: "a", actor: "eu desk", actor_via: "token" });
  }, 30_000);

  it("access rules written on one node are read on the other at once", async () => {
    const rules = [{ claim: "groups", equals: "tv-ops-eu", role: "operator", channels: { tags: ["eu"] } }];
    const put = await api("a", "/api/access/rules", { method: "PUT", body: JSON.stringify({ rules }) });
    expect(put.status).toBe(200);
    await until("b to read the new rules", async () => {
      const seen = await json(await api("b", "/api/access/rules"));
      return JSON.stringify(seen.rules) === JSON.stringify(rules);
    });
    const row = (await audit("b")).find((entry) => entry.action === "access.rules");
    expect(row).toMatchObject({ node: "a", actor_via: "token", detail: "access rules replaced: 1 now" });
  }, 30_000);
});
