/**
 * Importing a configuration adds to what is there unless told otherwise: merge by default, `mode=replace` to
 * delete what the document does not name, `dry_run=true` to see what would change without changing anything.
 */
import { afterEach, describe, expect, it } from "vitest";
import { json, makeTestApp, type TestApp } from "../support/app.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const channel = (id: string, name: string, port: number) => ({
  id,
  name,
  rtp_ip: "127.0.0.1",
  rtp_port: port,
});

describe("configuration import", () => {
  it("merges by default, previews with dry_run, replaces only when asked", async () => {
    app = await makeTestApp();
    const test = app;
    for (const [id, port] of [
      ["alpha", 5600],
      ["bravo", 5602],
    ] as const) {
      expect(
        (await test.request("/api/channels", { method: "POST", body: JSON.stringify(channel(id, id, port)) }))
          .status,
      ).toBe(201);
    }
    const document = {
      version: 1,
      channels: [channel("alpha", "Alpha renamed", 5600), channel("charlie", "charlie", 5604)],
    };
    const ids = async () =>
      ((await json(await test.request("/api/channels"))).channels as Array<{ id: string }>)
        .map((c) => c.id)
        .sort();

    // A dry run of a replace: it says what it would delete, and deletes nothing.
    const before = await test.storeText();
    const preview = await json(
      await test.request("/api/config?mode=replace&dry_run=true", {
        method: "POST",
        body: JSON.stringify(document),
      }),
    );
    expect(preview).toEqual({
      mode: "replace",
      dry_run: true,
      created: ["charlie"],
      changed: ["alpha"],
      unchanged: [],
      deleted: ["bravo"],
      channels: 2,
    });
    expect(await test.storeText()).toBe(before);
    expect(await ids()).toEqual(["alpha", "bravo"]);

    // The default merges: bravo stays.
    const merged = await json(
      await test.request("/api/config", { method: "POST", body: JSON.stringify(document) }),
    );
    expect(merged).toMatchObject({
      mode: "merge",
      created: ["charlie"],
      changed: ["alpha"],
      deleted: [],
      channels: 3,
    });
    expect(await ids()).toEqual(["alpha", "bravo", "charlie"]);
    expect((await json(await test.request("/api/channels/alpha"))).name).toBe("Alpha renamed");

    // An empty document is refused and deletes nothing.
    const empty = await test.request("/api/config?mode=replace", { method: "POST", body: "{}" });
    expect(empty.status).toBe(400);
    expect(await ids()).toEqual(["alpha", "bravo", "charlie"]);

    // Replace, asked for, deletes what the document does not name.
    const replaced = await json(
      await test.request("/api/config", {
        method: "POST",
        body: JSON.stringify({ ...document, mode: "replace" }),
      }),
    );
    expect(replaced).toMatchObject({ mode: "replace", deleted: ["bravo"], channels: 2 });
    expect(await ids()).toEqual(["alpha", "charlie"]);
    const audit = (await json(await test.request("/api/events?type=api_change"))).events as Array<{
      action: string;
    }>;
    expect(audit.filter((event) => event.action === "config.import")).toHaveLength(2);
  });
});
