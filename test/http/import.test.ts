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

describe("the original project's channels.json", () => {
  it("is taken channel by channel: what cannot be taken is reported with its reason, the rest imported", async () => {
    app = await makeTestApp();
    const test = app;
    const key = "live_sk_0123456789abcdefXYZ";
    const original = {
      "3f0c8e4a-1111-4c2b-9a51-0c7d2b1e0001": {
        config: {
          name: "Main",
          rtp_ip: "0.0.0.0",
          rtp_port: 5000,
          backup_rtp_ip: "",
          description: "the main feed",
          outputs: [
            {
              id: "o1",
              name: "YouTube",
              protocol: "rtmp",
              url: `rtmp://a.rtmp.youtube.com/live2/${key}`,
              status: "running",
            },
            {
              id: "o2",
              name: "Facebook",
              protocol: "rtmp",
              url: `rtmps://live-api-s.facebook.com:443/rtmp/${key}`,
            },
            { id: "o3", name: "Broken", protocol: "srt", url: `srt://dest:9000?passphrase=${key}&foo=1` },
          ],
        },
        created_at: "2025-10-30T12:00:00",
      },
      "3f0c8e4a-2222-4c2b-9a51-0c7d2b1e0002": {
        config: { name: "Bad port", rtp_ip: "0.0.0.0", rtp_port: 70000, outputs: [] },
      },
    };
    const response = await test.request("/api/config", { method: "POST", body: JSON.stringify(original) });
    const result = await json(response);
    expect(response.status, JSON.stringify(result)).toBe(200);
    expect(result).toMatchObject({ created: ["3f0c8e4a-1111-4c2b-9a51-0c7d2b1e0001"], channels: 1 });
    expect(result.report).toEqual([
      {
        id: "3f0c8e4a-1111-4c2b-9a51-0c7d2b1e0001",
        taken: true,
        outputs_taken: 2,
        not_taken: [
          {
            field: "config.outputs[2].url",
            message:
              "unknown parameter 'foo' for srt (accepted: mode, latency, passphrase, pbkeylen, streamid)",
          },
        ],
        warnings: [
          { field: "config.backup_rtp_ip", message: "is empty; treated as absent" },
          { field: "config.description", message: "is not a known field; ignored" },
          { field: "config.outputs[0].status", message: "is not a known field; ignored" },
        ],
      },
      {
        id: "3f0c8e4a-2222-4c2b-9a51-0c7d2b1e0002",
        taken: false,
        outputs_taken: 0,
        not_taken: [{ field: "config.rtp_port", message: "must be an integer from 1 to 65535, got 70000" }],
        warnings: [],
      },
    ]);
    expect(JSON.stringify(result)).not.toContain(key);
    const main = await json(await test.request("/api/channels/3f0c8e4a-1111-4c2b-9a51-0c7d2b1e0001"));
    expect(main.outputs).toMatchObject([
      { id: "o1", protocol: "rtmp" },
      { id: "o2", protocol: "rtmp", url: "rtmps://live-api-s.facebook.com:443/rtmp/****" },
    ]);

    // A file of which nothing can be taken is a 400 naming every reason, and changes nothing.
    const before = await test.storeText();
    const none = await test.request("/api/config", {
      method: "POST",
      body: JSON.stringify({ "only-bad": { config: { name: "x", rtp_ip: "nowhere", rtp_port: 5010 } } }),
    });
    expect(none.status).toBe(400);
    expect(String((await json(none)).detail)).toContain('"only-bad".config.rtp_ip');
    expect(await test.storeText()).toBe(before);
  });
});
