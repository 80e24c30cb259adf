/**
 * An HLS output through a channel, read as a player would: a stream with SCTE-35 cues sent to the channel's
 * UDP input, the playlist and segments fetched from /hls/<channel>/<output>/, one EXT-X-DATERANGE per cue
 * with the section's bytes; who may read (a token in a header, a viewer token in the URL; never an admin
 * token in a URL, which is refused as an unknown one is, nobody without one).
 */
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { bytesToHex, encodeSection } from "../../src/core/scte35/index.ts";
import { eventually, freeUdpPort, json, loginSession, makeTestApp, useTestApp } from "../support/app.ts";
import { immediateSpliceOut } from "../support/cues.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { spliceNull, TsGenerator } from "../support/ts-generator.ts";

const app = useTestApp();

const send = (method: string, path: string, body?: unknown) =>
  app.request(path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

const pidOf = (packet: Uint8Array) => (((packet[1] ?? 0) & 0x1f) << 8) | (packet[2] ?? 0);

describe("hls through a channel", () => {
  it("serves the playlist and segments; each cue sent is one DATERANGE with its bytes; only allowed readers", async () => {
    const input = await freeUdpPort();
    await send("POST", "/api/channels", { id: "hlsch", name: "HLS", rtp_ip: "127.0.0.1", rtp_port: input });
    const added = await send("POST", "/api/channels/hlsch/outputs", {
      id: "web",
      protocol: "hls",
      url: "hls://?target=4&window=10",
    });
    expect(added.status).toBe(201);
    expect((await send("POST", "/api/channels/hlsch/start")).status).toBe(200);

    const generator = new TsGenerator({ seed: 11, bitrate: 1_000_000 });
    const cues = [
      { atMs: 1500, section: encodeSection(immediateSpliceOut(7)), attribute: "SCTE35-OUT" },
      { atMs: 5200, section: spliceNull(), attribute: "SCTE35-CMD" },
    ];
    for (const cue of cues) generator.insertScte35(cue.section, cue.atMs);
    await Effect.runPromise(sendPaced(chunkTs(generator.packets(10_700)), input));

    const base = "/hls/hlsch/web";
    const playlist = await eventually("a playlist with both cues", async () => {
      const response = await app.request(`${base}/index.m3u8`);
      const text = response.status === 200 ? await response.text() : "";
      return text.includes("SCTE35-CMD") ? { text, type: response.headers.get("content-type") } : undefined;
    });
    expect(playlist.type).toBe("application/vnd.apple.mpegurl");
    const ranges = playlist.text.split("\n").filter((line) => line.startsWith("#EXT-X-DATERANGE:"));
    expect(ranges).toHaveLength(cues.length);
    cues.forEach((cue, index) => {
      expect(ranges[index]).toContain(`${cue.attribute}=0x${bytesToHex(cue.section)}`);
    });

    const names = playlist.text.split("\n").filter((line) => line.endsWith(".ts"));
    expect(names.length).toBeGreaterThanOrEqual(2);
    for (const name of names) {
      const response = await app.request(`${base}/${name}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("video/mp2t");
      const bytes = new Uint8Array(await response.arrayBuffer());
      expect(bytes.length % 188).toBe(0);
      expect([pidOf(bytes), pidOf(bytes.subarray(188)), pidOf(bytes.subarray(376))]).toEqual([
        0,
        generator.pmtPid,
        generator.videoPid,
      ]);
    }

    // Who may read.
    const nobody = await app.request(`${base}/index.m3u8`, { token: null });
    expect(nobody.status).toBe(401);
    expect((await json(nobody)).detail).toContain("viewer token as ?token=");
    const viewer = String(
      (await json(await send("POST", "/api/tokens", { name: "player", role: "viewer" }))).token,
    );
    const admin = String(
      (await json(await send("POST", "/api/tokens", { name: "ops", role: "admin" }))).token,
    );
    const inUrl = await app.request(`${base}/index.m3u8?token=${viewer}`, { token: null });
    expect(inUrl.status).toBe(200);
    const withToken = await inUrl.text();
    const firstSegment = withToken.split("\n").find((line) => line.includes(".ts?token="));
    expect(firstSegment).toBe(`${names[0]}?token=${viewer}`);
    expect((await app.request(`${base}/${firstSegment}`, { token: null })).status).toBe(200);
    // An admin token in a URL is refused as an unknown token is: the answer tells a guesser nothing.
    const adminInUrl = await app.request(`${base}/index.m3u8?token=${admin}`, { token: null });
    expect(adminInUrl.status).toBe(401);
    const refusal = JSON.stringify(await json(adminInUrl));
    expect(refusal).toContain("only a read-only token may travel in a URL");
    expect(refusal).not.toContain(admin);
    expect(refusal).not.toContain("ops");
    const unknown = await app.request(`${base}/index.m3u8?token=not-a-token`, { token: null });
    expect(JSON.stringify(await json(unknown))).toBe(refusal);
    // A page session reads it too, and the channel page links the playlist.
    const cookie = await loginSession(app, viewer);
    const page = await app.request("/channels/hlsch", { token: null, headers: { cookie } });
    expect(await page.text()).toContain(`href="${base}/index.m3u8"`);
    expect((await app.request(`${base}/index.m3u8`, { token: null, headers: { cookie } })).status).toBe(200);
    expect((await app.request(`${base}/segment-99999.ts`)).status).toBe(404);
    expect((await app.request("/hls/hlsch/nothing/index.m3u8")).status).toBe(404);
  }, 30_000);

  it("refuses a push to a loopback, link-local, unspecified or private address when saved, in words", async () => {
    await send("POST", "/api/channels", {
      id: "hlspush",
      name: "Push",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
    });
    const refused = [
      ["http://169.254.169.254/latest/meta-data", "http://169.254.169.254/**** is a link-local address"],
      ["http://127.0.0.1:8000/api", "http://127.0.0.1:8000/**** is a loopback address"],
      ["http://0.0.0.0:8000/x", "http://0.0.0.0:8000/**** is an unspecified address"],
      ["http://10.1.2.3/live", "http://10.1.2.3/**** is a private address"],
      ["http://2130706433:8000/api", "http://127.0.0.1:8000/**** is a loopback address"],
    ] as const;
    for (const [push, words] of refused) {
      const response = await send("POST", "/api/channels/hlspush/outputs", {
        protocol: "hls",
        url: `hls://?target=4&push=${push}`,
      });
      expect(response.status, push).toBe(400);
      expect(response.headers.get("content-type")).toContain("application/problem+json");
      const detail = String((await json(response)).detail);
      expect(detail).toContain(`the push origin ${words}: HLS push goes to public addresses only`);
      if (push.includes("10.1.2.3")) expect(detail).toContain("DISTRIBUTARY_HLS_PUSH_ALLOW_PRIVATE=true");
    }
    expect(await app.storeText()).not.toContain("meta-data");
  });

  it("takes a literal private push origin only with DISTRIBUTARY_HLS_PUSH_ALLOW_PRIVATE=true, never a loopback or link-local one", async () => {
    const push = "hls://?target=4&push=http://10.20.30.40/live/x";
    const withSetting = await makeTestApp(undefined, undefined, {
      DISTRIBUTARY_HLS_PUSH_ALLOW_PRIVATE: "true",
    });
    try {
      const taken = await withSetting.request("/api/channels", {
        method: "POST",
        body: JSON.stringify({
          id: "private",
          name: "Private",
          rtp_ip: "127.0.0.1",
          rtp_port: await freeUdpPort(),
          outputs: [{ protocol: "hls", url: push }],
        }),
      });
      expect(taken.status, await taken.clone().text()).toBe(201);
      expect((await json(taken)).outputs).toMatchObject([
        { url: "hls://?target=4&push=http://10.20.30.40/****" },
      ]);
      for (const [origin, words] of [
        ["http://127.0.0.1:8000/x", "http://127.0.0.1:8000/**** is a loopback address"],
        ["http://169.254.169.254/latest", "http://169.254.169.254/**** is a link-local address"],
        ["http://0.0.0.0:8000/x", "http://0.0.0.0:8000/**** is an unspecified address"],
      ] as const) {
        const refused = await withSetting.request("/api/channels/private/outputs", {
          method: "POST",
          body: JSON.stringify({ protocol: "hls", url: `hls://?target=4&push=${origin}` }),
        });
        expect(refused.status, origin).toBe(400);
        expect(refused.headers.get("content-type")).toContain("application/problem+json");
        expect(String((await json(refused)).detail), origin).toContain(words);
      }
    } finally {
      await withSetting.close();
    }

    const refused = await send("POST", "/api/channels", {
      id: "private",
      name: "private",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
      outputs: [{ protocol: "hls", url: push }],
    });
    expect(refused.status).toBe(400);
    const detail = String((await json(refused)).detail);
    expect(detail).toContain("the push origin http://10.20.30.40/**** is a private address");
    expect(detail).toContain("DISTRIBUTARY_HLS_PUSH_ALLOW_PRIVATE=true");
  });

  it("refuses a bad hls URL with a problem that says what to change", async () => {
    await send("POST", "/api/channels", {
      id: "hlsbad",
      name: "Bad",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
    });
    const response = await send("POST", "/api/channels/hlsbad/outputs", {
      id: "web",
      protocol: "hls",
      url: "hls://?target=4&mode=event",
    });
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toContain("application/problem+json");
    expect(JSON.stringify(await json(response))).toContain("give a dir or a push origin");
  });
});
