/**
 * A RIST listener's srpfile through the real service (domain/url/rist.ts, config/config-state.ts,
 * runtime/links/rist-srp.ts): only the node's admin may name one — a desk's admin gets a 403 in words, on a new channel
 * and on a change, while a change that leaves the srpfile as it is still goes through; only a path under
 * DISTRIBUTARY_RIST_SRP_DIR, and `/dev/zero`, `/etc/shadow`, a file that does not exist and a path that climbs out
 * get one answer, word for word, that tells nothing of them; a listening output whose srpfile (a link to
 * /etc/shadow inside the directory) may not be read fails its attempt in that answer; a node with no such
 * directory names the setting.
 * A caller EAP-SRP turns away (ristsender with a wrong password, or a name the file lacks) is a
 * `rist_auth_failed` event on the channel, with the name it gave and never the password.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Exit, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, eventually, freeUdpPort, json, makeTestApp, useTestApp } from "../support/app.ts";
import { ristSenderPeer } from "../support/rist-peers.ts";
import { ristStreamWithCues } from "../support/rist-stream.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";

const dir = mkdtempSync(join(tmpdir(), "distributary-srp-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const PASSWORD = "srp-right-password-63";
const users = join(dir, "studio.srp");
writeFileSync(
  users,
  `${execFileSync("ristsrppasswd", ["encoder-7", PASSWORD], { encoding: "utf8" })
    .split("\n")
    .find((line) => line.startsWith("encoder-7:"))}\n`,
);

const app = useTestApp(() => ({ settings: { DISTRIBUTARY_RIST_SRP_DIR: dir } }));
let deskAdmin = "";

beforeAll(async () => {
  const created = await app.request("/api/tokens", {
    method: "POST",
    body: JSON.stringify({ name: "eu admin", role: "admin", channels: { tags: ["eu"] } }),
  });
  expect(created.status).toBe(201);
  deskAdmin = String((await json(created)).token);
});

const listener = (port: number, file: string) => `rist://@127.0.0.1:${port}?srpfile=${file}`;

const create = async (body: Record<string, unknown>, token = ADMIN_TOKEN) =>
  app.request("/api/channels", {
    method: "POST",
    token,
    body: JSON.stringify({ rtp_ip: "127.0.0.1", rtp_port: await freeUdpPort(), ...body }),
  });

const refusal = (path: string) =>
  `input_url: srpfile=${path} is not an allowed srpfile: name a regular file of ristsrppasswd lines, at most 1 MiB, in ${dir} (DISTRIBUTARY_RIST_SRP_DIR) or below`;

describe("who may name an srpfile", () => {
  it("a desk's admin may not, on a new channel or a change (403 in words); the node's admin may, and the desk may then change the rest", async () => {
    const port = await freeUdpPort();
    const fifo = join(dir, "desk.fifo");
    execFileSync("mkfifo", [fifo]);
    for (const file of [users, fifo, "/etc/shadow"]) {
      const refused = await create(
        { name: "desk", tags: ["eu"], input_url: listener(port, file) },
        deskAdmin,
      );
      expect(refused.status).toBe(403);
      expect(refused.headers.get("content-type")).toContain("application/problem+json");
      expect(String((await json(refused)).detail)).toBe(
        "input_url: srpfile names a file on this node's disk, so only the node's admin (the admin role over every channel) may set or change it; the caller's grants reach only some channels",
      );
    }
    // Without an srpfile the desk's admin makes its RIST channel as before, and may not add one to it.
    const own = await create(
      { id: "eu-rist", name: "eu rist", tags: ["eu"], input_url: `rist://@127.0.0.1:${port}` },
      deskAdmin,
    );
    expect(own.status, await own.clone().text()).toBe(201);
    const patched = await app.request("/api/channels/eu-rist", {
      method: "PATCH",
      token: deskAdmin,
      body: JSON.stringify({ input_url: listener(port, users) }),
    });
    expect(patched.status).toBe(403);
    expect(String((await json(patched)).detail)).toContain("only the node's admin");
    expect(String((await json(await app.request("/api/channels/eu-rist"))).input_url)).toBe(
      `rist://@127.0.0.1:${port}`,
    );
    // The node's admin sets it; the desk then renames its channel, the srpfile as it is.
    const set = await app.request("/api/channels/eu-rist", {
      method: "PATCH",
      body: JSON.stringify({ input_url: listener(port, users) }),
    });
    expect(set.status, await set.clone().text()).toBe(200);
    const renamed = await app.request("/api/channels/eu-rist", {
      method: "PATCH",
      token: deskAdmin,
      body: JSON.stringify({ name: "eu rist renamed" }),
    });
    expect(renamed.status, await renamed.clone().text()).toBe(200);
    // A listening output's srpfile is a file on the disk too (one the channel does not name yet).
    const output = await app.request("/api/channels/eu-rist/outputs", {
      method: "POST",
      token: deskAdmin,
      body: JSON.stringify({
        name: "out",
        protocol: "rist",
        url: listener(await freeUdpPort(), join(dir, "players.srp")),
      }),
    });
    expect(output.status).toBe(403);
    expect(String((await json(output)).detail)).toContain(
      "outputs[0].url: srpfile names a file on this node's disk",
    );
  });

  it("/dev/zero, /etc/shadow, no such file and a path out of the directory: one answer, word for word, that tells nothing of them", async () => {
    const port = await freeUdpPort();
    const paths = ["/dev/zero", "/etc/shadow", "/etc/distributary-no-such-file", `${dir}/../studio.srp`, dir];
    for (const path of paths) {
      const refused = await create({ name: "node", input_url: listener(port, path) });
      expect(refused.status).toBe(400);
      const body = await json(refused);
      expect(body.detail).toBe(refusal(path));
      expect(body.errors).toEqual([
        { field: "input_url", message: refusal(path).replace("input_url: ", "") },
      ]);
    }
  });
});

describe("a listening output whose srpfile may not be read", () => {
  it("fails its attempt in the one wording, naming the path and the setting, and tries again", async () => {
    const link = join(dir, "output-shadow.srp");
    symlinkSync("/etc/shadow", link);
    const created = await create({
      id: "srp-output",
      name: "srp output",
      outputs: [{ id: "out", name: "out", protocol: "rist", url: listener(await freeUdpPort(), link) }],
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await app.request("/api/channels/srp-output/start", { method: "POST" })).status).toBe(200);
    const output = await eventually("the output's error", async () => {
      const view = await json(await app.request("/api/channels/srp-output/outputs/out"));
      return view.last_error === null ? undefined : view;
    });
    expect(output.last_error).toBe(refusal(link).replace("input_url: ", ""));
    expect((await app.request("/api/channels/srp-output/stop", { method: "POST" })).status).toBe(200);
  });
});

describe("an srpfile on a node without DISTRIBUTARY_RIST_SRP_DIR", () => {
  it("is refused, naming the setting", async () => {
    const bare = await makeTestApp();
    try {
      const refused = await bare.request("/api/channels", {
        method: "POST",
        body: JSON.stringify({
          name: "bare",
          rtp_ip: "127.0.0.1",
          rtp_port: await freeUdpPort(),
          input_url: listener(await freeUdpPort(), users),
        }),
      });
      expect(refused.status).toBe(400);
      expect((await json(refused)).detail).toBe(
        "input_url: srpfile is off on this node: its operator names the directory of the ristsrppasswd files listeners may use with DISTRIBUTARY_RIST_SRP_DIR",
      );
    } finally {
      await bare.close();
    }
  });
});

describe("a caller EAP-SRP turns away", () => {
  /** A ristsender calling `port` as `username`, the stream going to it, until `until` says it is done. */
  const calling = async <A>(port: number, username: string, password: string, until: () => Promise<A>) => {
    const scope = Effect.runSync(Scope.make());
    const sender = await Effect.runPromise(
      Scope.extend(ristSenderPeer({ mode: "connect", port, username, password }), scope),
    );
    const sending = setInterval(
      () => void Effect.runPromise(sendPaced(chunkTs(ristStreamWithCues(63)).slice(0, 20), sender.udpPort)),
      100,
    );
    try {
      return await until();
    } finally {
      clearInterval(sending);
      await Effect.runPromise(Scope.close(scope, Exit.void));
    }
  };

  const authEvents = async (channel: string) =>
    (
      (await json(await app.request(`/api/events?type=rist_auth_failed&channel=${channel}`))).events as Array<
        Record<string, unknown>
      >
    ).filter((event) => event.channel === channel);

  it("a wrong password and an unknown name are each a rist_auth_failed event on the channel, with the name and no password", async () => {
    for (const [id, username, password, reason, words, input] of [
      [
        "srp-wrong",
        "encoder-7",
        "not-the-password-63",
        "wrong_password",
        "RIST primary input: EAP-SRP turned the caller 'encoder-7' away: its password was refused",
      ],
      [
        "srp-unknown",
        "intruder",
        PASSWORD,
        "unknown_user",
        "RIST primary input: EAP-SRP turned the caller 'intruder' away: the name is not in the input's srpfile",
      ],
      // A listener with one user of its own (no srpfile): librist's check, told by its log.
      [
        "srp-single",
        "encoder-8",
        "not-the-password-64",
        "wrong_password",
        "RIST primary input: EAP-SRP turned the caller 'encoder-8' away: its password was refused",
        (port: number) => `rist://@127.0.0.1:${port}?username=encoder-8&password=${PASSWORD}`,
      ],
    ] as const) {
      const port = await freeUdpPort();
      const created = await create({ id, name: id, input_url: input?.(port) ?? listener(port, users) });
      expect(created.status, await created.clone().text()).toBe(201);
      expect((await app.request(`/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
      const [event] = await calling(port, username, password, () =>
        eventually(`a rist_auth_failed event on ${id}`, async () => {
          const events = await authEvents(id);
          return events.length > 0 ? events : undefined;
        }),
      );
      expect(event).toMatchObject({ type: "rist_auth_failed", input: "primary", user: username, reason });
      expect(String(event?.message).replace(/ \(\d+ refusals? since the last such event\)/, "")).toBe(words);
      expect(Number(event?.refusals)).toBeGreaterThanOrEqual(1);
      // The input's status counts them too.
      const inputs = (await json(await app.request(`/api/channels/${id}`))).inputs as Array<{
        rist: { srp_refusals: number };
      }>;
      expect(inputs[0]?.rist.srp_refusals).toBeGreaterThanOrEqual(Number(event?.refusals));
      const everything = await (await app.request("/api/events")).text();
      expect(everything).not.toContain("not-the-password-63");
      expect(everything).not.toContain(PASSWORD);
      expect((await app.request(`/api/channels/${id}/stop`, { method: "POST" })).status).toBe(200);
    }
  });
});
