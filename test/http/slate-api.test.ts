/**
 * A channel's slate through the API, in process (no stream): its times on POST and PATCH (checked against the
 * failover time, strict), the hand switch, the picture's PUT/GET/DELETE (PNG and JPEG made with ffmpeg; the
 * channel's JSON never carries the picture's bytes), roles, the audit trail, the export/import round trip
 * (a picture that is not one is refused), the original API's shape, and the OpenAPI document.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, useTestApp } from "../support/app.ts";

const app = useTestApp();
const tokens: Record<"viewer" | "operator", string> = { viewer: "", operator: "" };
const TOKEN_NAMES = { viewer: "slate-viewer", operator: "slate-operator" } as const;
const ADMIN_NAME = "admin (DISTRIBUTARY_ADMIN_TOKEN)";

let dir = "";
let png = new Uint8Array();
let jpeg = new Uint8Array();

beforeAll(async () => {
  for (const role of ["viewer", "operator"] as const) {
    const created = await json(
      await app.request("/api/tokens", {
        method: "POST",
        body: JSON.stringify({ name: TOKEN_NAMES[role], role }),
      }),
    );
    tokens[role] = String(created.token);
  }
  dir = mkdtempSync(join(tmpdir(), "slate-api-"));
  for (const name of ["x.png", "x.jpg"]) {
    execFileSync(
      "ffmpeg",
      ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x180", "-frames:v", "1", join(dir, name)],
      { stdio: "ignore" },
    );
  }
  png = new Uint8Array(readFileSync(join(dir, "x.png")));
  jpeg = new Uint8Array(readFileSync(join(dir, "x.jpg")));
});

afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

type Json = Record<string, unknown>;
type Issue = { field: string; message: string };

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

let nextPort = 6400;
const channelBody = (id: string, extra: Json = {}): Json => {
  const port = nextPort;
  nextPort += 10;
  return { id, name: `Slate ${id}`, rtp_ip: "127.0.0.1", rtp_port: port, outputs: [], ...extra };
};

const post = (path: string, body: unknown, token?: string) =>
  app.request(path, {
    method: "POST",
    body: JSON.stringify(body),
    ...(token === undefined ? {} : { token }),
  });
const patch = (path: string, body: unknown) =>
  app.request(path, { method: "PATCH", body: JSON.stringify(body) });
const putImage = (id: string, bytes: Uint8Array | string, type: string, token?: string) =>
  app.request(`/api/channels/${id}/slate/image`, {
    method: "PUT",
    body: bytes,
    headers: { "content-type": type },
    ...(token === undefined ? {} : { token }),
  });

const create = async (id: string, extra: Json = {}) => {
  const response = await post("/api/channels", channelBody(id, extra));
  expect(response.status, `create ${id}`).toBe(201);
  return json(response);
};

const channel = async (id: string) => {
  const response = await app.request(`/api/channels/${id}`);
  expect(response.status).toBe(200);
  return json(response);
};

/** A 400 problem+json; its field issues. */
const refused = async (response: Response, status = 400): Promise<{ detail: string; errors: Issue[] }> => {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const problem = await json(response);
  return { detail: String(problem.detail), errors: (problem.errors ?? []) as Issue[] };
};

const auditOf = async (channelId: string) =>
  ((await json(await app.request("/api/events?type=api_change"))).events as Json[]).filter(
    (event) => event.channel_id === channelId || String(event.detail).includes(`channel ${channelId} `),
  );

describe("the slate's times on POST and PATCH", () => {
  it("a POST with a slate shows it with its defaults; a channel without one shows null", async () => {
    const created = await create("times", { slate: { after_ms: 1000 } });
    const expected = { after_ms: 1000, alert_after_s: 300, manual: false, image: null, on: false };
    expect(created.slate).toMatchObject(expected);
    expect((await channel("times")).slate).toMatchObject(expected);
    const listed = (await json(await app.request("/api/channels"))).channels as Json[];
    expect(listed.find((c) => c.id === "times")?.slate).toMatchObject(expected);

    const plain = await create("plain");
    expect(plain.slate).toBeNull();
    expect((await channel("plain")).slate).toBeNull();
  });

  it("a PATCH changes the times and keeps the picture and the hand switch; null removes the slate", async () => {
    await create("patched", { slate: { after_ms: 1000 } });
    expect((await putImage("patched", png, "image/png")).status).toBe(200);
    expect((await post("/api/channels/patched/slate", { on: true })).status).toBe(200);

    const changed = await patch("/api/channels/patched", { slate: { after_ms: 2000, alert_after_s: 60 } });
    expect(changed.status).toBe(200);
    const slate = (await json(changed)).slate as Json;
    expect(slate).toMatchObject({ after_ms: 2000, alert_after_s: 60, manual: true });
    expect(slate.image).toMatchObject({ type: "image/png", sha256: sha256(png) });
    expect((await channel("patched")).slate).toMatchObject({
      after_ms: 2000,
      alert_after_s: 60,
      manual: true,
    });

    const removed = await patch("/api/channels/patched", { slate: null });
    expect(removed.status).toBe(200);
    expect((await json(removed)).slate).toBeNull();
    expect((await channel("patched")).slate).toBeNull();
    // Gone with it: the picture.
    expect((await app.request("/api/channels/patched/slate/image")).status).toBe(404);
  });

  it("after_ms below the failover time is refused, naming the field and the failover time", async () => {
    const low = await refused(await post("/api/channels", channelBody("low", { slate: { after_ms: 100 } })));
    const field = low.errors.find((issue) => issue.field === "slate.after_ms");
    expect(field?.message).toContain("failover time");
    expect(field?.message).toContain("500 ms");

    const withBackup = (after_ms: number) =>
      channelBody("backed", {
        backup_rtp_ip: "127.0.0.1",
        backup_rtp_port: nextPort - 5,
        redundancy: { failover_after_ms: 800 },
        slate: { after_ms },
      });
    const under = await refused(await post("/api/channels", withBackup(600)));
    const message = under.errors.find((issue) => issue.field === "slate.after_ms")?.message;
    expect(message).toContain("failover time");
    expect(message).toContain("800 ms");
    expect((await post("/api/channels", withBackup(800))).status).toBe(201);

    // A PATCH is checked the same way, and changes nothing when refused.
    await create("lowpatch", { slate: { after_ms: 1000 } });
    const patched = await refused(await patch("/api/channels/lowpatch", { slate: { after_ms: 499 } }));
    expect(patched.errors.map((issue) => issue.field)).toContain("slate.after_ms");
    expect(((await channel("lowpatch")).slate as Json).after_ms).toBe(1000);
    // Raising the failover time above the slate's start is refused too.
    const raised = await refused(
      await patch("/api/channels/lowpatch", { redundancy: { failover_after_ms: 2000 } }),
    );
    expect(raised.errors.map((issue) => issue.field)).toContain("slate.after_ms");
  });

  it("after_ms not an integer or out of range, and unknown fields in slate, are refused naming the field", async () => {
    for (const after_ms of [1000.5, "1000", 10, 3_600_001, -1, null]) {
      const problem = await refused(await post("/api/channels", channelBody("bad", { slate: { after_ms } })));
      expect(
        problem.errors.some((issue) => issue.field.startsWith("slate")),
        `after_ms ${String(after_ms)}: ${JSON.stringify(problem.errors)}`,
      ).toBe(true);
      if (after_ms !== null) expect(problem.errors.map((issue) => issue.field)).toContain("slate.after_ms");
    }
    const alert = await refused(
      await post("/api/channels", channelBody("bad", { slate: { after_ms: 1000, alert_after_s: 5 } })),
    );
    expect(alert.errors.map((issue) => issue.field)).toContain("slate.alert_after_s");

    const unknown = await refused(
      await post("/api/channels", channelBody("bad", { slate: { after_ms: 1000, colour: "red" } })),
    );
    expect(unknown.errors.map((issue) => issue.field)).toContain("slate.colour");
    // The picture and the hand switch come by their own routes, not in the body.
    const manual = await refused(
      await post("/api/channels", channelBody("bad", { slate: { after_ms: 1000, manual: true } })),
    );
    expect(manual.errors.map((issue) => issue.field)).toContain("slate.manual");
    const patched = await refused(
      await patch("/api/channels/plain", { slate: { after_ms: 1000, image: null } }),
    );
    expect(patched.errors.map((issue) => issue.field)).toContain("slate.image");
    expect((await app.request("/api/channels/bad")).status).toBe(404);
    expect((await channel("plain")).slate).toBeNull();
  });
});

describe("the hand switch: POST /api/channels/{id}/slate", () => {
  it("needs a slate: 409 in words telling how to turn one on", async () => {
    const problem = await refused(await post("/api/channels/plain/slate", { on: true }), 409);
    expect(problem.detail).toContain("has no slate");
    expect(problem.detail).toContain('PATCH /api/channels/plain {"slate": {"after_ms": 1000}}');
    expect((await channel("plain")).slate).toBeNull();
    await refused(await post("/api/channels/nowhere/slate", { on: true }), 404);
  });

  it("puts the channel on the slate and takes it off; a body that is not a boolean is refused", async () => {
    await create("switch", { slate: { after_ms: 1000 } });
    const on = await post("/api/channels/switch/slate", { on: true });
    expect(on.status).toBe(200);
    expect(((await json(on)).slate as Json).manual).toBe(true);
    expect(((await channel("switch")).slate as Json).manual).toBe(true);

    const off = await post("/api/channels/switch/slate", { on: false });
    expect(off.status).toBe(200);
    expect(((await json(off)).slate as Json).manual).toBe(false);

    const yes = await refused(await post("/api/channels/switch/slate", { on: "yes" }));
    expect(yes.errors.map((issue) => issue.field)).toContain("on");
    const extra = await refused(await post("/api/channels/switch/slate", { on: true, for_s: 60 }));
    expect(extra.errors.map((issue) => issue.field)).toContain("for_s");
    await refused(await post("/api/channels/switch/slate", {}));
    expect(((await channel("switch")).slate as Json).manual).toBe(false);
  });

  it("roles: a viewer may do none of it; an operator may switch but not change the picture", async () => {
    await create("roles", { slate: { after_ms: 1000 } });
    const viewer = tokens.viewer;
    expect((await post("/api/channels/roles/slate", { on: true }, viewer)).status).toBe(403);
    expect((await putImage("roles", png, "image/png", viewer)).status).toBe(403);
    expect(
      (await app.request("/api/channels/roles/slate/image", { method: "DELETE", token: viewer })).status,
    ).toBe(403);
    // A viewer may look.
    expect((await app.request("/api/channels/roles", { token: viewer })).status).toBe(200);
    expect((await app.request("/api/channels/roles/slate/image", { token: viewer })).status).toBe(404);

    const operator = tokens.operator;
    const on = await post("/api/channels/roles/slate", { on: true }, operator);
    expect(on.status).toBe(200);
    expect(((await json(on)).slate as Json).manual).toBe(true);
    expect((await putImage("roles", png, "image/png", operator)).status).toBe(403);
    expect(
      (await app.request("/api/channels/roles/slate/image", { method: "DELETE", token: operator })).status,
    ).toBe(403);
    expect(((await channel("roles")).slate as Json).image).toBeNull();
    expect((await post("/api/channels/roles/slate", { on: false }, operator)).status).toBe(200);

    const audit = await auditOf("roles");
    expect(audit.map((event) => `${String(event.action)}:${String(event.actor)}`)).toEqual(
      expect.arrayContaining([`slate.on:${TOKEN_NAMES.operator}`, `slate.off:${TOKEN_NAMES.operator}`]),
    );
    expect(audit.some((event) => event.actor === TOKEN_NAMES.viewer)).toBe(false);
  });
});

describe("the slate's picture", () => {
  it("a PNG: kept, shown without its bytes, served back whole", async () => {
    await create("picture", { slate: { after_ms: 1000 } });
    const head = base64(png).slice(0, 40);
    const put = await putImage("picture", png, "image/png");
    expect(put.status).toBe(200);
    const putText = await put.text();
    expect(putText).not.toContain(head);
    const image = {
      type: "image/png",
      width: 320,
      height: 180,
      bytes: png.length,
      sha256: sha256(png),
      url: "/api/channels/picture/slate/image",
    };
    expect((JSON.parse(putText) as Json).slate).toMatchObject({ image });

    const got = await app.request("/api/channels/picture");
    const gotText = await got.text();
    expect(gotText).not.toContain(head);
    expect((JSON.parse(gotText) as Json).slate).toMatchObject({ image });
    expect(await (await app.request("/api/channels")).text()).not.toContain(head);

    const served = await app.request("/api/channels/picture/slate/image", { token: tokens.viewer });
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toBe("image/png");
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(png);
  });

  it("a JPEG likewise", async () => {
    const put = await putImage("picture", jpeg, "image/jpeg");
    expect(put.status).toBe(200);
    expect(await put.clone().text()).not.toContain(base64(jpeg).slice(0, 40));
    expect(((await json(put)).slate as Json).image).toMatchObject({
      type: "image/jpeg",
      width: 320,
      height: 180,
      bytes: jpeg.length,
      sha256: sha256(jpeg),
    });
    const served = await app.request("/api/channels/picture/slate/image");
    expect(served.headers.get("content-type")).toBe("image/jpeg");
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(jpeg);
  });

  it("what is not a picture is refused in words, and changes nothing; over 2 MiB is 413", async () => {
    const before = await app.storeText();
    const text = await refused(await putImage("picture", "hello, this is not a picture", "text/plain"));
    expect(text.detail).toMatch(/PNG|JPEG/);
    expect(text.detail.length).toBeGreaterThan(30);
    const empty = await refused(await putImage("picture", new Uint8Array(), "image/png"));
    expect(empty.detail).toMatch(/PNG|JPEG|empty/);
    // A PNG cut short.
    const cut = await refused(await putImage("picture", png.subarray(0, png.length / 2), "image/png"));
    expect(cut.detail.length).toBeGreaterThan(20);

    const large = new Uint8Array(2 * 1024 * 1024 + 1);
    large.set(png);
    const tooLarge = await refused(await putImage("picture", large, "image/png"), 413);
    expect(tooLarge.detail).toContain("2 MiB");
    // A viewer's or an operator's try leaves nothing either.
    expect((await putImage("picture", png, "image/png", tokens.operator)).status).toBe(403);
    expect(await app.storeText()).toBe(before);
    expect(((await channel("picture")).slate as Json).image).toMatchObject({ type: "image/jpeg" });
  });

  it("a channel without a slate takes no picture (409); DELETE goes back to the generated card", async () => {
    const none = await refused(await putImage("plain", png, "image/png"), 409);
    expect(none.detail).toContain("has no slate");

    const deleted = await app.request("/api/channels/picture/slate/image", { method: "DELETE" });
    expect(deleted.status).toBe(200);
    expect(((await json(deleted)).slate as Json).image).toBeNull();
    expect(((await channel("picture")).slate as Json).image).toBeNull();
    const gone = await refused(await app.request("/api/channels/picture/slate/image"), 404);
    expect(gone.detail).toContain("has no slate picture");
  });

  it("every change is in the audit trail with the token's name", async () => {
    const audit = await auditOf("picture");
    const story = audit.map((event) => `${String(event.action)}:${String(event.actor)}`);
    expect(story.filter((line) => line === `slate.image:${ADMIN_NAME}`)).toHaveLength(3);
    const details = audit.filter((event) => event.action === "slate.image").map((event) => event.detail);
    expect(details).toEqual(
      expect.arrayContaining([
        expect.stringContaining("320×180 PNG"),
        expect.stringContaining("320×180 JPEG"),
        expect.stringContaining("generated card"),
      ]),
    );
    // The picture itself is not in the trail.
    expect(JSON.stringify(audit)).not.toContain(base64(png).slice(0, 40));
    const switched = await auditOf("switch");
    expect(switched.map((event) => `${String(event.action)}:${String(event.actor)}`)).toEqual(
      expect.arrayContaining([`slate.on:${ADMIN_NAME}`, `slate.off:${ADMIN_NAME}`]),
    );
  });
});

describe("export and import", () => {
  it("the export carries the slate with its picture; importing it brings both back", async () => {
    await create("trip", { slate: { after_ms: 1500, alert_after_s: 90 } });
    expect((await putImage("trip", png, "image/png")).status).toBe(200);
    expect((await post("/api/channels/trip/slate", { on: true })).status).toBe(200);

    const exported = await json(await app.request("/api/config"));
    const mine = (exported.channels as Json[]).find((c) => c.id === "trip");
    expect(mine?.slate).toEqual({
      after_ms: 1500,
      alert_after_s: 90,
      manual: true,
      image: {
        type: "image/png",
        width: 320,
        height: 180,
        bytes: png.length,
        sha256: sha256(png),
        data: base64(png),
      },
    });

    expect((await app.request("/api/channels/trip", { method: "DELETE" })).status).toBe(200);
    expect((await app.request("/api/channels/trip")).status).toBe(404);
    const imported = await post("/api/config", { version: 1, channels: [mine] });
    expect(imported.status).toBe(200);
    expect(await json(imported)).toMatchObject({ created: ["trip"] });

    expect((await channel("trip")).slate).toMatchObject({
      after_ms: 1500,
      alert_after_s: 90,
      manual: true,
      image: { type: "image/png", width: 320, height: 180, bytes: png.length, sha256: sha256(png) },
    });
    const served = await app.request("/api/channels/trip/slate/image");
    expect(served.headers.get("content-type")).toBe("image/png");
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(png);
  });

  it("a slate image whose data is not a PNG or JPEG is refused, naming the channel and field", async () => {
    const exported = await json(await app.request("/api/config"));
    const trip = (exported.channels as Json[]).find((c) => c.id === "trip") as Json;
    const slate = trip.slate as Json;
    const before = await app.storeText();
    const bogus = {
      ...trip,
      id: "bogus",
      rtp_port: nextPort,
      slate: {
        ...slate,
        image: { ...(slate.image as Json), data: base64(new TextEncoder().encode("hello")) },
      },
    };
    const problem = await refused(await post("/api/config", { version: 1, channels: [trip, bogus] }));
    const issue = problem.errors.find((entry) => entry.field === "channels[1].slate.image");
    expect(issue, JSON.stringify(problem)).toBeDefined();
    expect(issue?.message).toMatch(/PNG|JPEG/);
    expect(await app.storeText()).toBe(before);
    expect((await app.request("/api/channels/bogus")).status).toBe(404);
    // Not base64 at all.
    const garbled = { ...bogus, slate: { ...slate, image: { ...(slate.image as Json), data: "!!!" } } };
    const notBase64 = await refused(await post("/api/config", { version: 1, channels: [garbled] }));
    expect(notBase64.errors.map((entry) => entry.field)).toContain("channels[0].slate.image");
    // A dry run says the same.
    await refused(await post("/api/config?dry_run=true", { version: 1, channels: [bogus] }));
  });

  it("an imported picture's size, length and hash are those of its data, whatever the document says", async () => {
    const exported = await json(await app.request("/api/config"));
    const trip = (exported.channels as Json[]).find((c) => c.id === "trip") as Json;
    const slate = trip.slate as Json;
    const lying = {
      ...trip,
      id: "lying",
      rtp_port: nextPort + 20,
      slate: {
        ...slate,
        image: { type: "image/jpeg", width: 1, height: 2, bytes: 3, sha256: "00", data: base64(png) },
      },
    };
    expect((await post("/api/config", { version: 1, channels: [lying] })).status).toBe(200);
    expect(((await channel("lying")).slate as Json).image).toMatchObject({
      type: "image/png",
      width: 320,
      height: 180,
      bytes: png.length,
      sha256: sha256(png),
    });
    const served = await app.request("/api/channels/lying/slate/image");
    expect(served.headers.get("content-type")).toBe("image/png");
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(png);
  });
});

describe("the original API", () => {
  it("a POST in its shape answers as before, with slate null; an unknown field gets warnings", async () => {
    const original = await post("/api/channels", {
      name: "Original",
      rtp_ip: "127.0.0.1",
      rtp_port: 6990,
      backup_rtp_ip: "127.0.0.1",
      backup_rtp_port: 6992,
      outputs: [],
    });
    expect(original.status).toBe(201);
    const created = await json(original);
    expect(created).toMatchObject({ name: "Original", rtp_port: 6990, status: "stopped", slate: null });
    expect(created).not.toHaveProperty("warnings");

    const unknown = await post("/api/channels", {
      name: "Original extra",
      rtp_ip: "127.0.0.1",
      rtp_port: 6994,
      colour: "blue",
    });
    expect(unknown.status).toBe(201);
    const answer = await json(unknown);
    expect(answer.slate).toBeNull();
    expect(answer.warnings).toEqual(expect.arrayContaining([expect.objectContaining({ field: "colour" })]));
  });
});

describe("the OpenAPI document", () => {
  it("lists the slate's routes, with their bodies", async () => {
    const document = await json(await app.request("/api/openapi.json", { token: null }));
    const paths = document.paths as Record<string, Record<string, Json>>;
    const slate = paths["/api/channels/{id}/slate"];
    const image = paths["/api/channels/{id}/slate/image"];
    expect(Object.keys(slate ?? {})).toEqual(["post"]);
    expect(Object.keys(image ?? {}).sort()).toEqual(["delete", "get", "put"]);
    expect(slate?.post?.["x-required-role"]).toBe("operator");
    expect(JSON.stringify(slate?.post?.requestBody)).toContain("SlateSwitchBody");
    expect(image?.put?.["x-required-role"]).toBe("admin");
    expect(image?.delete?.["x-required-role"]).toBe("admin");
    expect(image?.get?.["x-required-role"]).toBe("viewer");
    // The PUT takes the picture itself, not JSON.
    const content = (image?.put?.requestBody as { content?: Record<string, unknown> } | undefined)?.content;
    expect(Object.keys(content ?? {}).sort()).toEqual(["image/jpeg", "image/png"]);
    expect(Object.keys(image?.put?.responses as Json)).toEqual(expect.arrayContaining(["400", "413"]));
    const schemas = (document.components as { schemas: Json }).schemas;
    expect(JSON.stringify(schemas.ChannelBody)).toContain("SlateBody");
  });
});
