/**
 * Channel tags and scoped tokens as the API keeps them: tags set at creation, changed and removed by PATCH,
 * carried through export and import, refused in words when malformed; a token's `channels` scope stored,
 * listed and refused in words when malformed, "*" for a token made without one.
 */
import { describe, expect, it } from "vitest";
import { json, useTestApp } from "../support/app.ts";

const app = useTestApp();

const channel = (id: string, port: number, tags?: ReadonlyArray<string>) => ({
  method: "POST",
  body: JSON.stringify({
    id,
    name: id,
    rtp_ip: "127.0.0.1",
    rtp_port: port,
    ...(tags === undefined ? {} : { tags }),
  }),
});

describe("channel tags", () => {
  it("are kept from creation, changed and removed by PATCH, and absent when none", async () => {
    const created = await app.request("/api/channels", channel("tagged", 6301, ["eu", "news"]));
    expect(created.status).toBe(201);
    expect((await json(created)).tags).toEqual(["eu", "news"]);
    const untagged = await json(await app.request("/api/channels", channel("plain", 6302)));
    expect(untagged.tags).toBeUndefined();

    const patched = await app.request("/api/channels/tagged", {
      method: "PATCH",
      body: JSON.stringify({ tags: ["us"] }),
    });
    expect((await json(patched)).tags).toEqual(["us"]);
    const listed = (await json(await app.request("/api/channels"))).channels as Array<
      Record<string, unknown>
    >;
    expect(listed.find((one) => one.id === "tagged")?.tags).toEqual(["us"]);

    const cleared = await app.request("/api/channels/tagged", {
      method: "PATCH",
      body: JSON.stringify({ tags: [] }),
    });
    expect((await json(cleared)).tags).toBeUndefined();
    expect(await app.storeText()).not.toContain('"tags"');
  });

  it("a malformed tag is a 400 that names the field and says what a tag is", async () => {
    const refused = await app.request("/api/channels", channel("bad-tag", 6303, ["EU desk"]));
    expect(refused.status).toBe(400);
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    const problem = await json(refused);
    const errors = problem.errors as Array<{ field: string; message: string }>;
    expect(errors[0]?.field).toMatch(/^tags/);
    expect(errors[0]?.message).toContain("lower-case letters");
    const twice = await app.request("/api/channels", channel("twice", 6304, ["eu", "eu"]));
    expect(twice.status).toBe(400);
    expect(JSON.stringify(await json(twice))).toContain("must not name a tag twice");
  });

  it("travel with the channel through export and import", async () => {
    await app.request("/api/channels", channel("exported", 6305, ["sports-uk"]));
    const exported = await json(await app.request("/api/config"));
    const channels = exported.channels as Array<Record<string, unknown>>;
    expect(channels.find((one) => one.id === "exported")?.tags).toEqual(["sports-uk"]);
    const imported = await app.request("/api/config", {
      method: "POST",
      body: JSON.stringify({
        version: 1,
        channels: [{ id: "imported", name: "Imported", rtp_ip: "127.0.0.1", rtp_port: 6306, tags: ["asia"] }],
      }),
    });
    expect(imported.status).toBe(200);
    expect((await json(await app.request("/api/channels/imported"))).tags).toEqual(["asia"]);
  });
});

describe("scoped tokens", () => {
  it("keep their channel scope; a token made without one reaches every channel", async () => {
    const scoped = await app.request("/api/tokens", {
      method: "POST",
      body: JSON.stringify({ name: "eu desk", role: "operator", channels: { tags: ["eu"] } }),
    });
    expect(scoped.status).toBe(201);
    expect((await json(scoped)).channels).toEqual({ tags: ["eu"] });
    const everywhere = await json(
      await app.request("/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: "all", role: "viewer" }),
      }),
    );
    expect(everywhere.channels).toBe("*");
    const tokens = (await json(await app.request("/api/tokens"))).tokens as Array<Record<string, unknown>>;
    expect(tokens.find((token) => token.name === "eu desk")?.channels).toEqual({ tags: ["eu"] });
    expect(tokens.find((token) => token.name === "all")?.channels).toBe("*");
    const events = JSON.stringify(await json(await app.request("/api/events?type=api_change")));
    expect(events).toContain("operator on tags eu");
  });

  it("a malformed scope is a 400 in words", async () => {
    const refused = await app.request("/api/tokens", {
      method: "POST",
      body: JSON.stringify({ name: "bad", role: "viewer", channels: { tags: ["Not A Tag"] } }),
    });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(await json(refused))).toContain("a tag is 1 to 40 lower-case letters");
    const unknown = await app.request("/api/tokens", {
      method: "POST",
      body: JSON.stringify({ name: "bad", role: "viewer", channels: { regions: ["eu"] } }),
    });
    expect(unknown.status).toBe(400);
    expect((await json(unknown)).errors).toEqual([
      { field: "channels", message: "regions: is not a known field (tags, ids)" },
    ]);
    const empty = await app.request("/api/tokens", {
      method: "POST",
      body: JSON.stringify({ name: "bad", role: "viewer", channels: { tags: [] } }),
    });
    expect(empty.status).toBe(400);
    expect(JSON.stringify(await json(empty))).toContain("must name at least one tag or id");
  });
});
