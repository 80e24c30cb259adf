/**
 * Each node's admin from `DISTRIBUTARY_ADMIN_TOKEN` is its own, on three real nodes sharing one PostgreSQL: a
 * node started without the variable, then again with another value, takes nothing from the others — the
 * shared token keeps opening their API and their pages' login — and nothing of any variable is stored. The
 * node without it makes the fleet's first admin, valid everywhere; the record an older version stored for the
 * variable is neither honoured nor removed. Fails on a version that stored the variable's token as one shared
 * record, which the node without it deleted and the one with another value replaced.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { json, loginForm } from "../support/app.ts";
import { FLEET_ADMIN, useFleetNodes } from "../support/fleet-nodes.ts";

const fleet = useFleetNodes({
  dbPort: 21851,
  ports: { a: 21801, b: 21802, c: 21803 },
  env: { DISTRIBUTARY_THUMBNAILS: "off" },
});
const { api, until } = fleet;
const OTHER = "another-admin-token-for-node-b-5d0c8e2f71a4";
const sha256 = (secret: string) => createHash("sha256").update(secret).digest("hex");

const status = async (id: string, token: string) => (await api(id, "/api/channels", { token })).status;
/** The pages' login with `token` on node `id`: the page it leads to, or the status that refused it. */
const pagesLogin = async (id: string, token: string) => {
  const { method, body, redirect } = loginForm({ token });
  const login = await fetch(`${fleet.base(id)}/login`, {
    method,
    body,
    redirect,
    headers: { origin: fleet.base(id), "content-type": "application/x-www-form-urlencoded" },
  });
  if (login.status !== 303) return login.status;
  const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  return (await fetch(`${fleet.base(id)}/`, { headers: { cookie }, redirect: "manual" })).status;
};
const listed = async (id: string, token: string) =>
  (
    (await json(await api(id, "/api/tokens", { token }))).tokens as Array<{
      id: string;
      name: string;
      source: string;
    }>
  ).map((token) => [token.id, token.source]);

describe("each node's admin from the environment", () => {
  it("stays valid on the other nodes when one starts without the variable, or with another value", async () => {
    await fleet.start("a");
    // What a version before this one left: the variable's token stored as one record for the whole fleet (such
    // a version's node a has just written the same).
    const [legacy] = await fleet.pg().admin<{ revision: string }>(
      `insert into tokens (id, body, revision) values ('admin-from-env', $1, nextval('config_revision'))
       on conflict (id) do update set body = excluded.body, revision = excluded.revision returning revision`,
      [
        JSON.stringify({
          id: "admin-from-env",
          name: "admin (DISTRIBUTARY_ADMIN_TOKEN)",
          role: "admin",
          sha256: sha256(FLEET_ADMIN),
          created_at: new Date().toISOString(),
        }),
      ],
    );
    await fleet.start("c");
    await fleet.start("b", { DISTRIBUTARY_ADMIN_TOKEN: undefined });
    // b has no admin of its own, and finds no token stored that this version honours (the old record is not
    // one): it makes the fleet's first admin.
    await until("b to print the first admin token", async () =>
      /Bearer dst_/.test(fleet.process("b").output()),
    );
    const first = /Bearer (dst_[A-Za-z0-9_-]+)/.exec(fleet.process("b").output())?.[1] ?? "";
    for (const id of ["a", "c"])
      await until(`${id} to know b's first admin`, async () => (await status(id, first)) === 200);

    for (const id of ["a", "c"]) {
      expect(await status(id, FLEET_ADMIN), `the admin token on ${id}`).toBe(200);
      expect(await pagesLogin(id, FLEET_ADMIN), `the login with the admin token on ${id}`).toBe(200);
    }
    expect(await status("b", FLEET_ADMIN)).toBe(401);
    expect(await pagesLogin("b", FLEET_ADMIN)).toBe(401);
    expect(await status("b", first)).toBe(200);
    // The listing shows a node's own admin as such, beside the stored ones, and never on another node.
    expect(await listed("a", FLEET_ADMIN)).toEqual([
      ["first-admin", "stored"],
      ["admin-from-env", "environment"],
    ]);
    expect(await listed("b", first)).toEqual([["first-admin", "stored"]]);
    const refused = await api("a", "/api/tokens/admin-from-env", { method: "DELETE" });
    expect(refused.status).toBe(409);
    expect((await json(refused)).detail).toBe(
      "this is this node's DISTRIBUTARY_ADMIN_TOKEN, which is not stored: it is valid on this node while the " +
        "variable is set; unset it and restart the node to remove it",
    );

    // b again, with another value: its own admin, and still nothing taken from a and c.
    fleet.process("b").process.kill("SIGTERM");
    await fleet.process("b").exited;
    await fleet.start("b", { DISTRIBUTARY_ADMIN_TOKEN: OTHER });
    // A change made on b after its start reaches a and c after anything its start stored.
    const made = await json(
      await api("b", "/api/tokens", {
        token: OTHER,
        method: "POST",
        body: JSON.stringify({ name: "wall", role: "viewer" }),
      }),
    );
    for (const id of ["a", "c"])
      await until(`${id} to know b's new token`, async () => (await status(id, String(made.token))) === 200);
    for (const id of ["a", "c"]) {
      expect(await status(id, FLEET_ADMIN), `the admin token on ${id}`).toBe(200);
      expect(await pagesLogin(id, FLEET_ADMIN), `the login with the admin token on ${id}`).toBe(200);
      expect(await status(id, OTHER), `b's admin token on ${id}`).toBe(401);
    }
    expect(await status("b", OTHER)).toBe(200);
    expect(await pagesLogin("b", OTHER)).toBe(200);
    expect(await status("b", FLEET_ADMIN)).toBe(401);

    // Nothing of either variable was stored, and the old record is as it was left: no node removed it, since
    // nodes of the older version still running in an upgrade authenticate through it.
    const rows = await fleet
      .pg()
      .admin<{ id: string; sha256: string; revision: string }>(
        "select id, body->>'sha256' as sha256, revision from tokens order by id",
      );
    expect(rows.map((row) => row.id).sort()).toEqual(
      ["admin-from-env", "first-admin", String(made.id)].sort(),
    );
    expect(rows.find((row) => row.id === "admin-from-env")).toEqual({
      id: "admin-from-env",
      sha256: sha256(FLEET_ADMIN),
      revision: legacy?.revision,
    });
    const hashes = rows.filter((row) => row.id !== "admin-from-env").map((row) => row.sha256);
    for (const secret of [FLEET_ADMIN, OTHER]) expect(hashes).not.toContain(sha256(secret));
  }, 120_000);
});
