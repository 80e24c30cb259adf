/**
 * A masked value sent back means "unchanged": scripts that GET an output and PUT or PATCH it back (with its
 * `****`) keep the stream key and passphrase the server holds; a masked URL that stands for nothing stored is
 * refused, naming the field.
 */
import { afterEach, describe, expect, it } from "vitest";
import { json, makeTestApp, type TestApp } from "../support/app.ts";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const KEY = "abcd-efgh-ijkl-mnop-qrst";
const PASSPHRASE = "a-passphrase-of-some-length";

describe("masked values sent back", () => {
  it("PUT and PATCH with the masked URL keep the stored key and passphrase", async () => {
    app = await makeTestApp();
    const test = app;
    const created = await json(
      await test.request("/api/channels", {
        method: "POST",
        body: JSON.stringify({
          id: "masked",
          name: "Masked",
          rtp_ip: "127.0.0.1",
          rtp_port: 5400,
          outputs: [
            { id: "yt", name: "YouTube", protocol: "rtmp", url: `rtmp://a.rtmp.youtube.com/live2/${KEY}` },
            {
              id: "srt",
              name: "Partner",
              protocol: "srt",
              url: `srt://192.0.2.10:9000?mode=caller&passphrase=${PASSPHRASE}`,
            },
          ],
        }),
      }),
    );
    const outputs = created.outputs as Array<{ id: string; name: string; protocol: string; url: string }>;
    const youtube = outputs.find((output) => output.id === "yt");
    const srt = outputs.find((output) => output.id === "srt");
    expect(youtube?.url).toBe("rtmp://a.rtmp.youtube.com/live2/****");

    // PUT back what GET gave, with a new name.
    const put = await test.request("/api/channels/masked/outputs/yt", {
      method: "PUT",
      body: JSON.stringify({ name: "YouTube main", protocol: youtube?.protocol, url: youtube?.url }),
    });
    expect(put.status).toBe(200);
    // PATCH the masked SRT URL back.
    const patch = await test.request("/api/channels/masked/outputs/srt", {
      method: "PATCH",
      body: JSON.stringify({ url: srt?.url }),
    });
    expect(patch.status).toBe(200);
    const stored = (await test.storeText()) ?? "";
    expect(stored).toContain(KEY);
    expect(stored).toContain(PASSPHRASE);
    expect(stored).not.toContain("****");
    expect(((await json(put)).url as string).includes(KEY)).toBe(false);
  });

  it("a masked URL that stands for nothing stored is a 400 on the url field, and nothing changes", async () => {
    app = await makeTestApp();
    await app.request("/api/channels", {
      method: "POST",
      body: JSON.stringify({
        id: "m2",
        name: "M2",
        rtp_ip: "127.0.0.1",
        rtp_port: 5402,
        outputs: [{ id: "yt", protocol: "rtmp", url: `rtmp://a.rtmp.youtube.com/live2/${KEY}` }],
      }),
    });
    const before = await app.storeText();
    for (const [method, path, body] of [
      [
        "PUT",
        "/api/channels/m2/outputs/yt",
        { protocol: "rtmp", url: "rtmp://b.rtmp.youtube.com/live2/****" },
      ],
      ["PATCH", "/api/channels/m2/outputs/yt", { url: "rtmp://b.rtmp.youtube.com/live2/****" }],
      ["POST", "/api/channels/m2/outputs", { protocol: "rtmp", url: "rtmp://a.rtmp.youtube.com/live2/****" }],
    ] as const) {
      const response = await app.request(path, { method, body: JSON.stringify(body) });
      expect(response.status, `${method} ${path}`).toBe(400);
      const problem = await json(response);
      expect(problem.errors).toMatchObject([{ field: "url" }]);
      expect(String(problem.detail)).toContain("masked");
    }
    expect(await app.storeText()).toBe(before);
  });
});
