/**
 * Scope-blind answers: an admin of the eu channels who asks for an id, a port or a destination that a us
 * channel holds is told it is taken by "a channel you cannot see" — never that channel's id, name, tags or
 * outputs (nor the directory one records in) — and may not put a channel into another desk's list by a tag
 * beyond its grants. The node's admin still reads which channel holds what.
 */
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, useTestApp } from "../support/app.ts";

let root = "";
// The recordings directory outlives the app: made before it, removed after it.
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "distributary-h4-"));
  await mkdir(join(root, "us-vault-recordings"));
  await symlink(join(root, "us-vault-recordings"), join(root, "eu-link"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
const app = useTestApp(() => ({ settings: { DISTRIBUTARY_RECORDINGS_DIR: root } }));
let euAdmin = "";

// The us channel's secrets: none of these may reach the eu admin.
const HIDDEN = ["us-vault", "US Vault Desk", "vault-feed", "Vault Feed Out", '"us"'];
const US_PORT = 6521;
const US_OUTPUT_PORT = 6522;

const post = (path: string, body: unknown, token?: string) =>
  app.request(path, {
    method: "POST",
    body: JSON.stringify(body),
    ...(token === undefined ? {} : { token }),
  });

/** A channel of the eu desk listening on `port`. */
const euChannel = (id: string, port: number) => ({
  id,
  name: id,
  tags: ["eu"],
  rtp_ip: "127.0.0.1",
  rtp_port: port,
});

const expectBlind = async (response: Response, status: number) => {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  for (const secret of HIDDEN) expect(text).not.toContain(secret);
  return JSON.parse(text) as Record<string, unknown>;
};

beforeAll(async () => {
  const us = await post("/api/channels", {
    id: "us-vault",
    name: "US Vault Desk",
    tags: ["us"],
    rtp_ip: "127.0.0.1",
    rtp_port: US_PORT,
    outputs: [
      { id: "vault-feed", name: "Vault Feed Out", protocol: "udp", url: `udp://127.0.0.1:${US_OUTPUT_PORT}` },
      {
        id: "vault-rec",
        name: "Vault Recording",
        protocol: "file",
        url: `file://${root}/us-vault-recordings`,
      },
    ],
  });
  expect(us.status, await us.clone().text()).toBe(201);
  const eu = await post("/api/channels", {
    id: "eu-news",
    name: "EU News",
    tags: ["eu"],
    rtp_ip: "127.0.0.1",
    rtp_port: 6523,
  });
  expect(eu.status).toBe(201);
  const token = await post("/api/tokens", {
    name: "eu desk admin",
    role: "admin",
    channels: { tags: ["eu"] },
  });
  expect(token.status).toBe(201);
  euAdmin = String((await json(token)).token);
});

describe("a desk admin asking for what another desk's channel holds", () => {
  it("an id taken: 409 that it is not available, naming no channel", async () => {
    const problem = await expectBlind(await post("/api/channels", euChannel("us-vault", 6524), euAdmin), 409);
    expect(problem.detail).toContain("a channel you cannot see");
    expect(problem.detail).not.toContain("already exists");
  });

  it("a port taken: 409 that a channel you cannot see listens there", async () => {
    const problem = await expectBlind(
      await post("/api/channels", euChannel("eu-sport", US_PORT), euAdmin),
      409,
    );
    expect(problem.detail).toContain(`127.0.0.1:${US_PORT}`);
    expect(problem.detail).toContain("a channel you cannot see");
    const patched = await expectBlind(
      await app.request("/api/channels/eu-news", {
        method: "PATCH",
        body: JSON.stringify({ rtp_port: US_PORT }),
        token: euAdmin,
      }),
      409,
    );
    expect(patched.detail).toContain("a channel you cannot see");
  });

  it("an output into its input, or an input where its output sends: 400 naming neither channel nor output", async () => {
    const output = await expectBlind(
      await post(
        "/api/channels/eu-news/outputs",
        { protocol: "udp", url: `udp://127.0.0.1:${US_PORT}` },
        euAdmin,
      ),
      400,
    );
    expect(output.detail).toContain("a channel you cannot see");
    expect(output.detail).toContain("loop");
    const input = await expectBlind(
      await post("/api/channels", euChannel("eu-loop", US_OUTPUT_PORT), euAdmin),
      400,
    );
    expect(input.detail).toContain("a channel you cannot see");
    expect(input.detail).not.toContain(`udp://127.0.0.1:${US_OUTPUT_PORT} `);
  });

  it("a recording directory another desk records in (through a link): 400 naming neither it nor its channel", async () => {
    const problem = await expectBlind(
      await post(
        "/api/channels/eu-news/outputs",
        { protocol: "file", url: `file://${root}/eu-link` },
        euAdmin,
      ),
      400,
    );
    expect(problem.detail).toContain("an output of a channel you cannot see already records where");
    expect(problem.detail).toContain(`${root}/eu-link`);
  });

  it("a tag beyond its grants: 403 naming the tag, at creation and by PATCH", async () => {
    const created = await post(
      "/api/channels",
      { id: "eu-shared", name: "EU Shared", tags: ["eu", "us"], rtp_ip: "127.0.0.1", rtp_port: 6525 },
      euAdmin,
    );
    expect(created.status).toBe(403);
    expect(created.headers.get("content-type")).toBe("application/problem+json");
    expect((await json(created)).detail).toMatch(/tag 'us'.*outside/);
    const patched = await app.request("/api/channels/eu-news", {
      method: "PATCH",
      body: JSON.stringify({ tags: ["eu", "us"] }),
      token: euAdmin,
    });
    expect(patched.status).toBe(403);
    expect((await json(patched)).detail).toMatch(/tag 'us'.*outside/);
    // Nothing changed: the us desk's list does not hold it.
    expect((await json(await app.request("/api/channels/eu-news"))).tags).toEqual(["eu"]);
    // Its own tags it may still set.
    const own = await app.request("/api/channels/eu-news", {
      method: "PATCH",
      body: JSON.stringify({ tags: ["eu"], name: "EU News 2" }),
      token: euAdmin,
    });
    expect(own.status).toBe(200);
  });
});

describe("the node's admin", () => {
  it("still reads which channel holds the id, the port and the destination", async () => {
    const detail = async (response: Response, status: number) => {
      expect(response.status).toBe(status);
      return String((await json(response)).detail);
    };
    const onPort = (id: string, port: number) => ({ id, name: id, rtp_ip: "127.0.0.1", rtp_port: port });
    expect(await detail(await post("/api/channels", onPort("us-vault", 6526)), 409)).toContain(
      "channel 'us-vault' already exists",
    );
    expect(await detail(await post("/api/channels", onPort("node-1", US_PORT)), 409)).toContain(
      "channel 'US Vault Desk' (us-vault)",
    );
    const loop = { protocol: "udp", url: `udp://127.0.0.1:${US_PORT}` };
    expect(await detail(await post("/api/channels/eu-news/outputs", loop), 400)).toContain(
      "channel 'US Vault Desk' (us-vault)",
    );
    expect(await detail(await post("/api/channels", onPort("node-2", US_OUTPUT_PORT)), 400)).toContain(
      "output 'Vault Feed Out' of channel 'US Vault Desk' (us-vault)",
    );
    const recording = { protocol: "file", url: `file://${root}/eu-link` };
    expect(await detail(await post("/api/channels/eu-news/outputs", recording), 400)).toContain(
      `another output already records in ${root}/us-vault-recordings, where ${root}/eu-link leads`,
    );
    const tagged = await app.request("/api/channels/eu-news", {
      method: "PATCH",
      body: JSON.stringify({ tags: ["eu", "us"] }),
    });
    expect(tagged.status).toBe(200);
  });
});
