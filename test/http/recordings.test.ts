/**
 * Recording through the service, as a person or a script uses it: a file:// output under the recordings
 * directory (DISTRIBUTARY_RECORDINGS_DIR) records a channel's UDP input; its recordings are listed and
 * downloaded through the API with a viewer token (the bytes those the channel received, byte for byte) and
 * from the channel page in Chromium; a directory outside the recordings directory is a 400 in words, and no
 * name that is not a recording of that output (a path, an escape, another file) is ever served.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { launchChromium, login, newContext, screenshot } from "../support/browser.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";
import { TsGenerator } from "../support/ts-generator.ts";

let root: string;
let viewerToken: string;
// The directory outlives the app: made before it, removed after it (Vitest runs afterAll hooks as a stack).
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "distributary-recordings-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
const app = useTestApp(() => ({ settings: { DISTRIBUTARY_RECORDINGS_DIR: root } }));
beforeAll(async () => {
  const created = await json(
    await app.request("/api/tokens", {
      method: "POST",
      body: JSON.stringify({ name: "wall", role: "viewer" }),
    }),
  );
  viewerToken = String(created.token);
});

const send = (method: string, path: string, body?: unknown, token?: string) =>
  app.request(path, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(token === undefined ? {} : { token }),
  });

/** Names that are not recordings of the output: escapes (encoded so they reach the route), paths, others. */
const traversals = [
  "..%2Fsecret.ts",
  "..%2F..%2Fetc%2Fpasswd",
  "%2Fetc%2Fpasswd",
  "notes.txt",
  "2026-01-01T00-00-00Z.ts%2F..%2F..%2Fsecret.ts",
  "2099-01-01T00-00-00Z.ts",
  "2001-01-01T00-00-00Z.ts",
];

interface Listed {
  readonly name: string;
  readonly bytes: number;
}

describe("recordings through the API and the pages", () => {
  it("record the channel's stream byte for byte, listed and downloaded with a viewer token and from the page", async () => {
    const input = await freeUdpPort();
    expect(
      (await send("POST", "/api/channels", { id: "rec", name: "Rec", rtp_ip: "127.0.0.1", rtp_port: input }))
        .status,
    ).toBe(201);
    const added = await send("POST", "/api/channels/rec/outputs", {
      id: "archive",
      name: "Archive",
      protocol: "file",
      url: `file://${root}/rec?rotate=2&keep_hours=48&max_gb=1`,
    });
    expect(added.status).toBe(201);
    expect((await send("POST", "/api/channels/rec/start")).status).toBe(200);
    await eventually("recording", async () => {
      const output = await json(await app.request("/api/channels/rec/outputs/archive"));
      return output.state === "connected" ? true : undefined;
    });

    // About 3 s of 2 Mbit/s TS: two rotations at least.
    const ts = new TsGenerator({ seed: 21, bitrate: 2_000_000 }).packets(7 * 600);
    await Effect.runPromise(sendPaced(chunkTs(ts), input, 0.2));
    await eventually("every byte recorded", async () => {
      const output = await json(await app.request("/api/channels/rec/outputs/archive"));
      return Number(output.bytes_sent ?? output.sent_bytes ?? -1) >= ts.length ? true : undefined;
    });

    const listing = await send("GET", "/api/channels/rec/outputs/archive/recordings", undefined, viewerToken);
    expect(listing.status).toBe(200);
    const { recordings } = (await listing.json()) as { recordings: ReadonlyArray<Listed> };
    expect(recordings.length).toBeGreaterThanOrEqual(2);
    const downloads: Buffer[] = [];
    for (const recording of recordings) {
      const response = await send(
        "GET",
        `/api/channels/rec/outputs/archive/recordings/${recording.name}`,
        undefined,
        viewerToken,
      );
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("video/mp2t");
      const bytes = Buffer.from(await response.arrayBuffer());
      expect(bytes.length).toBe(recording.bytes);
      downloads.push(bytes);
    }
    expect(Buffer.concat(downloads).equals(Buffer.from(ts))).toBe(true);

    // The channel page lists them, and its link downloads the same bytes with the page's session.
    const browser: Browser = await launchChromium();
    try {
      const base = `http://127.0.0.1:${await app.listen()}`;
      const { context, offsite } = await newContext(browser);
      const page = await context.newPage();
      await login(page, base, viewerToken);
      await page.goto(`${base}/channels/rec`);
      const section = page.locator("#ch-recordings");
      await expect.poll(() => section.isVisible()).toBe(true);
      const first = recordings[0]?.name ?? "";
      const link = section.getByRole("link", { name: first });
      expect(await link.count()).toBe(1);
      await section.scrollIntoViewIfNeeded();
      await screenshot(page, "recordings-light-1280");
      const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
      const saved = await download.path();
      expect((await readFile(saved)).equals(downloads[0] ?? Buffer.alloc(0))).toBe(true);
      // The page's download route serves no other name either.
      await writeFile(join(root, "secret.ts"), "not for you");
      for (const name of traversals) {
        const response = await page.request.get(`${base}/channels/rec/outputs/archive/recordings/${name}`);
        expect(response.status()).toBe(404);
        expect(await response.text()).not.toContain("not for you");
      }
      expect(offsite).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it("refuses a recording directory outside the recordings directory with a 400 in words", async () => {
    const input = await freeUdpPort();
    await send("POST", "/api/channels", {
      id: "outside",
      name: "Outside",
      rtp_ip: "127.0.0.1",
      rtp_port: input,
    });
    for (const url of ["file:///etc/distributary", `file://${root}`, `file://${root}-other/x`]) {
      const response = await send("POST", "/api/channels/outside/outputs", { protocol: "file", url });
      expect(response.status).toBe(400);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      const problem = await json(response);
      expect(String(problem.detail)).toContain(`is outside the recordings directory ${root}`);
    }
    const escaped = await send("POST", "/api/channels/outside/outputs", {
      protocol: "file",
      url: `file://${root}/../../etc`,
    });
    expect(escaped.status).toBe(400);
    expect(String((await json(escaped)).detail)).toContain("'.' or '..' segments");
    // Another output in the directory the first one records in would have its files deleted by either.
    const twice = await send("POST", "/api/channels/outside/outputs", {
      protocol: "file",
      url: `file://${root}/rec?rotate=60`,
    });
    expect(twice.status).toBe(400);
    expect(String((await json(twice)).detail)).toContain(`another output already records in ${root}/rec`);
    // Changing the first one's own settings is not a clash with itself.
    const same = await send("PATCH", "/api/channels/rec/outputs/archive", {
      url: `file://${root}/rec?rotate=2&keep_hours=48&max_gb=2`,
    });
    expect(same.status).toBe(200);
    // A whole channel with such an output is refused the same way, and nothing is stored.
    const channel = await send("POST", "/api/channels", {
      name: "Sneaky",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
      outputs: [{ protocol: "file", url: "file:///tmp/anywhere" }],
    });
    expect(channel.status).toBe(400);
    expect(String((await json(channel)).detail)).toContain("outputs[0].url");
    expect(await app.storeText()).not.toContain("/tmp/anywhere");
    // An HLS output writes its segments under the same rule, and into no recording's directory.
    const hlsOutside = await send("POST", "/api/channels/outside/outputs", {
      protocol: "hls",
      url: "hls://?dir=/etc/cron.d",
    });
    expect(hlsOutside.status).toBe(400);
    expect(String((await json(hlsOutside)).detail)).toContain(`is outside the recordings directory ${root}`);
    const hlsOnRecording = await send("POST", "/api/channels/outside/outputs", {
      protocol: "hls",
      url: `hls://?dir=${root}/rec`,
    });
    expect(hlsOnRecording.status).toBe(400);
    expect(String((await json(hlsOnRecording)).detail)).toContain(
      `another output already records in ${root}/rec`,
    );
    const hlsInside = await send("POST", "/api/channels/outside/outputs", {
      protocol: "hls",
      url: `hls://?dir=${root}/outside-hls`,
    });
    expect(hlsInside.status).toBe(201);
  });

  it("compares directories once normalised: the recordings directory itself, and one directory spelt two ways", async () => {
    await send("POST", "/api/channels", {
      id: "spelt",
      name: "Spelt",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
    });
    const add = (url: string) => send("POST", "/api/channels/spelt/outputs", { protocol: "hls", url });
    for (const dir of [`${root}/.`, `${root}/`, `${root}//`]) {
      const response = await add(`hls://?dir=${dir}`);
      expect(response.status, dir).toBe(400);
      expect(String((await json(response)).detail)).toContain(`is outside the recordings directory ${root}`);
    }
    expect((await add(`hls://?dir=${root}/h1`)).status).toBe(201);
    for (const dir of [`${root}/h1/`, `${root}/h1/./`, `${root}//h1`]) {
      const response = await add(`hls://?dir=${dir}`);
      expect(response.status, dir).toBe(400);
      expect(String((await json(response)).detail)).toContain(`another output already records in ${root}/h1`);
    }
    expect(
      (await send("POST", "/api/channels/spelt/outputs", { protocol: "file", url: `file://${root}/ok1` }))
        .status,
    ).toBe(201);
    const slipped = await add(`hls://?dir=${root}/ok1/`);
    expect(slipped.status).toBe(400);
    expect(String((await json(slipped)).detail)).toContain(`another output already records in ${root}/ok1`);
  });

  it("refuses a directory whose symbolic link leads out of the recordings directory with a 400 in words", async () => {
    const elsewhere = await mkdtemp(join(tmpdir(), "distributary-elsewhere-"));
    try {
      await symlink(elsewhere, join(root, "evil"));
      await symlink(root, join(root, "loop"));
      const made = await send("POST", "/api/channels", {
        id: "linked",
        name: "Linked",
        rtp_ip: "127.0.0.1",
        rtp_port: await freeUdpPort(),
      });
      expect(made.status).toBe(201);
      for (const [protocol, url, dir] of [
        ["file", `file://${root}/evil`, `${root}/evil`],
        ["file", `file://${root}/evil/deeper/still`, `${root}/evil/deeper/still`],
        ["hls", `hls://?dir=${root}/evil/hls`, `${root}/evil/hls`],
        ["hls", `hls://?dir=${root}/loop`, `${root}/loop`],
      ] as const) {
        const response = await send("POST", "/api/channels/linked/outputs", { protocol, url });
        expect(response.status, url).toBe(400);
        expect(response.headers.get("content-type")).toBe("application/problem+json");
        expect(String((await json(response)).detail)).toContain(
          `${dir} leads outside the recordings directory ${root} through a symbolic link`,
        );
      }
      expect(await readdir(elsewhere)).toEqual([]);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it("compares directories by where they really are: a symbolic link to another output's directory is that directory", async () => {
    await mkdir(join(root, "real-a"));
    await symlink(join(root, "real-a"), join(root, "link-b"));
    await mkdir(join(root, "sub"));
    await symlink(join(root, "sub"), join(root, "link-sub"));
    const made = await send("POST", "/api/channels", {
      id: "realdup",
      name: "Real",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
      outputs: [
        { id: "a", protocol: "file", url: `file://${root}/real-a` },
        // Not made yet: where it will be is where its nearest existing ancestor really is, and the rest.
        { id: "x", protocol: "hls", url: `hls://?dir=${root}/sub/x` },
      ],
    });
    expect(made.status, await made.clone().text()).toBe(201);
    for (const [protocol, url, taken] of [
      ["hls", `hls://?dir=${root}/link-b`, `${root}/real-a`],
      ["file", `file://${root}/link-b/`, `${root}/real-a`],
      ["file", `file://${root}/link-sub/x`, `${root}/sub/x`],
    ] as const) {
      const response = await send("POST", "/api/channels/realdup/outputs", { protocol, url });
      expect(response.status, url).toBe(400);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      expect(String((await json(response)).detail), url).toContain(
        `another output already records in ${taken}`,
      );
    }
    // Two outputs of one new channel, one through the link, are refused the same way and nothing is stored.
    const both = await send("POST", "/api/channels", {
      name: "Both",
      rtp_ip: "127.0.0.1",
      rtp_port: await freeUdpPort(),
      outputs: [
        { protocol: "file", url: `file://${root}/sub/both` },
        { protocol: "hls", url: `hls://?dir=${root}/link-sub/both` },
      ],
    });
    expect(both.status).toBe(400);
    expect(String((await json(both)).detail)).toContain(
      `outputs[1].url: another output already records in ${root}/sub/both`,
    );
    expect(await app.storeText()).not.toContain("link-sub/both");
  });

  it("serves no name that is not one of the output's recordings: no path traversal", async () => {
    await writeFile(join(root, "secret.ts"), "not for you");
    await writeFile(join(root, "rec", "notes.txt"), "not a recording");
    // A link named as a recording, pointing out of the directory, is not one of its recordings.
    await symlink(join(root, "secret.ts"), join(root, "rec", "2001-01-01T00-00-00Z.ts"));
    for (const name of traversals) {
      const response = await send("GET", `/api/channels/rec/outputs/archive/recordings/${name}`);
      expect(response.status).toBe(404);
      expect(await response.text()).not.toContain("not for you");
    }
    // Dot segments, plain or encoded, are resolved by the URL itself before any route sees them.
    for (const path of ["../../../secret.ts", "%2E%2E/%2E%2E/%2E%2E/secret.ts", "%2E%2E"]) {
      const raw = await send("GET", `/api/channels/rec/outputs/archive/recordings/${path}`);
      expect(raw.status).not.toBe(200);
      expect(await raw.text()).not.toContain("not for you");
    }
    // Only a file:// output has recordings.
    await send("POST", "/api/channels/rec/outputs", { id: "udp", protocol: "udp", url: "udp://127.0.0.1:9" });
    const notFile = await send("GET", "/api/channels/rec/outputs/udp/recordings");
    expect(notFile.status).toBe(404);
    expect(String((await json(notFile)).detail)).toContain("is not a file:// output");
  });
});
