/**
 * Importing a configuration adds to what is there unless told otherwise: merge by default, `mode=replace` to
 * delete what the document does not name, `dry_run=true` to see what would change without changing anything.
 */
import { afterEach, describe, expect, it } from "vitest";
import { MAX_OUTPUTS } from "../../src/domain/channel/channel.ts";
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
      "3f0c8e4a-3333-4c2b-9a51-0c7d2b1e0003": {
        config: { name: "Same port", rtp_ip: "0.0.0.0", rtp_port: 5000 },
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
              "unknown parameter 'foo' for srt (accepted: mode, latency, passphrase, pbkeylen, streamid, maxbw, oheadbw, payloadsize, maxreceivers, allowstreamid)",
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
      {
        id: "3f0c8e4a-3333-4c2b-9a51-0c7d2b1e0003",
        taken: false,
        outputs_taken: 0,
        not_taken: [
          {
            field: "rtp_port",
            message: expect.stringContaining("is already used by channel 'Main'"),
          },
        ],
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

describe("an original channel with an output aimed at an input of this host", () => {
  it("is taken without that output, which the report names with the reason", async () => {
    app = await makeTestApp();
    const test = app;
    // The second channel's UDP output aims at the first channel's input; the first's own output at itself.
    const original = {
      "loop-b": {
        config: {
          name: "B",
          rtp_ip: "0.0.0.0",
          rtp_port: 5912,
          outputs: [
            { id: "to-a", name: "Into A", protocol: "udp", url: "udp://127.0.0.1:5910" },
            { id: "away", name: "Away", protocol: "udp", url: "udp://192.0.2.7:6000" },
          ],
        },
      },
      "loop-a": {
        config: {
          name: "A",
          rtp_ip: "0.0.0.0",
          rtp_port: 5910,
          outputs: [
            { id: "bad", name: "Bad", protocol: "srt", url: "srt://dest:9000?foo=1" },
            {
              id: "yt",
              name: "YouTube",
              protocol: "rtmp",
              url: "rtmp://a.rtmp.youtube.com/live2/k-0123456789",
            },
            { id: "self", name: "Self", protocol: "udp", url: "udp://127.0.0.1:5910" },
          ],
        },
      },
    };
    const response = await test.request("/api/config", { method: "POST", body: JSON.stringify(original) });
    const result = await json(response);
    expect(response.status, JSON.stringify(result)).toBe(200);
    expect(result).toMatchObject({ created: ["loop-b", "loop-a"], channels: 2 });
    const report = result.report as Array<{
      id: string;
      not_taken: Array<{ field: string; message: string }>;
    }>;
    expect(report).toEqual([
      {
        id: "loop-b",
        taken: true,
        outputs_taken: 1,
        not_taken: [
          {
            field: "config.outputs[0].url",
            message: expect.stringContaining(
              "udp://127.0.0.1:5910 is the primary input of channel 'A' (loop-a) on this host: an output sent " +
                "there would feed the stream back into the service",
            ),
          },
        ],
        warnings: [],
      },
      {
        id: "loop-a",
        taken: true,
        outputs_taken: 1,
        not_taken: [
          { field: "config.outputs[0].url", message: expect.stringContaining("unknown parameter 'foo'") },
          {
            field: "config.outputs[2].url",
            message: expect.stringContaining("is the primary input of channel 'A' (loop-a) on this host"),
          },
        ],
        warnings: [],
      },
    ]);
    const b = await json(await test.request("/api/channels/loop-b"));
    expect((b.outputs as Array<{ id: string }>).map((output) => output.id)).toEqual(["away"]);
    const a = await json(await test.request("/api/channels/loop-a"));
    expect((a.outputs as Array<{ id: string }>).map((output) => output.id)).toEqual(["yt"]);
  });

  it("our own format still refuses the whole import", async () => {
    app = await makeTestApp();
    const response = await app.request("/api/config", {
      method: "POST",
      body: JSON.stringify({
        version: 1,
        channels: [
          {
            ...channel("own", "Own", 5914),
            outputs: [{ protocol: "udp", url: "udp://127.0.0.1:5914" }],
          },
        ],
      }),
    });
    expect(response.status).toBe(400);
    expect(String((await json(response)).detail)).toContain("channels[0].outputs[0].url");
  });
});

describe("backups", () => {
  it("an export of 200 channels with 64 outputs each imports whole into another server", async () => {
    app = await makeTestApp();
    const channels = Array.from({ length: 200 }, (_, c) => ({
      id: `ch${c}`,
      name: `Channel ${c}`,
      rtp_ip: "127.0.0.1",
      rtp_port: 10_000 + c * 2,
      outputs: Array.from({ length: MAX_OUTPUTS }, (_, o) => ({
        id: `o${o}`,
        name: `Output ${o} of channel ${c}`,
        protocol: "srt",
        url: `srt://dest-${o}.example.net:${9000 + o}?streamid=%23!::r=live/ch${c}-${o},m=publish&passphrase=pass-${c}-${o}-0123456789`,
      })),
    }));
    const loaded = await app.request("/api/config", {
      method: "POST",
      body: JSON.stringify({ version: 1, channels }),
    });
    expect(loaded.status, JSON.stringify(await loaded.clone().json())).toBe(200);

    const backup = await app.request("/api/config?secrets=true");
    const text = await backup.text();
    expect(backup.headers.get("cache-control")).toBe("no-store");
    expect(text.length).toBeGreaterThan(1024 * 1024);
    await app.close();

    app = await makeTestApp();
    const restored = await app.request("/api/config", { method: "POST", body: text });
    expect(restored.status, await restored.clone().text()).toBe(200);
    const plan = await json(restored);
    expect(plan).toMatchObject({ channels: 200, deleted: [] });
    // Our own export holds nothing to ignore.
    expect(plan).not.toHaveProperty("warnings");
    const again = await app.request("/api/config?secrets=true");
    expect(await again.text()).toBe(text);
  }, 60_000);

  it("the backup export carries secrets for admins only and is audited; the shared export masks them", async () => {
    app = await makeTestApp();
    const test = app;
    const passphrase = "backup-passphrase-0123";
    const key = "live_0123456789abcdefghij";
    const created = await test.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        ...channel("bk", "Backup", 5700),
        outputs: [
          { protocol: "srt", url: `srt://h:9000?streamid=%23!::r=live/x,m=publish&passphrase=${passphrase}` },
          { protocol: "rtmp", url: `rtmp://a.rtmp.youtube.com/live2/${key}` },
        ],
      }),
    });
    expect(created.status).toBe(201);

    const shared = await test.request("/api/config");
    const sharedText = await shared.text();
    expect(sharedText).not.toContain(passphrase);
    expect(sharedText).not.toContain(key);
    // A streamid that carries no secret is not one: the shared export keeps it, as written.
    expect(sharedText).toContain("streamid=%23!::r=live/x,m=publish&passphrase=****");

    const backup = await test.request("/api/config?secrets=true");
    const backupText = await backup.text();
    expect(backup.status).toBe(200);
    expect(backupText).toContain(passphrase);
    expect(backupText).toContain(key);

    for (const role of ["operator", "viewer"]) {
      const token = await json(
        await test.request("/api/tokens", { method: "POST", body: JSON.stringify({ name: role, role }) }),
      );
      const refused = await test.request("/api/config?secrets=true", { token: String(token.token) });
      expect(refused.status).toBe(403);
      expect(await refused.text()).not.toContain(passphrase);
    }
    expect((await test.request("/api/config?secrets=yes")).status).toBe(400);

    const audit = (await json(await test.request("/api/events?type=api_change"))).events as Array<{
      action: string;
      actor: string;
    }>;
    expect(audit.filter((event) => event.action === "config.export")).toHaveLength(1);
    expect(JSON.stringify(audit)).not.toContain(passphrase);
    expect(test.logs.join("")).not.toContain(passphrase);
  });

  it("a channel with 64 outputs of the longest URLs fits in one request", async () => {
    app = await makeTestApp();
    const outputs = Array.from({ length: MAX_OUTPUTS }, (_, o) => {
      const prefix = `rtmp://ingest-${o}.example.net/live/`;
      return { protocol: "rtmp", url: prefix + "k".repeat(2048 - prefix.length) };
    });
    const body = JSON.stringify({ ...channel("long", "Long URLs", 5800), outputs });
    expect(body.length).toBeGreaterThan(128 * 1024);
    const response = await app.request("/api/channels", { method: "POST", body });
    expect(response.status, await response.clone().text()).toBe(201);
  });
});
