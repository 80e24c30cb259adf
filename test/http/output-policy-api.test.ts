/**
 * An output's policy through the API, in process (no stream): stored and shown as given, changed by PATCH and
 * removed with null, kept by a PUT that does not mention it (the original API's scripts know nothing of it),
 * carried by the export and the import; what is wrong in words on the field to fix; the
 * OpenAPI document.
 */
import { describe, expect, it } from "vitest";
import { json, useTestApp } from "../support/app.ts";

const app = useTestApp();

type Json = Record<string, unknown>;
type Issue = { field: string; message: string };

let nextPort = 6700;
const channelBody = (id: string, outputs: ReadonlyArray<Json>): Json => {
  const port = nextPort;
  nextPort += 10;
  return { id, name: `Policy ${id}`, rtp_ip: "127.0.0.1", rtp_port: port, outputs };
};
const send = (method: string, path: string, body: unknown) =>
  app.request(path, { method, body: JSON.stringify(body) });
const udp = (port: number, extra: Json = {}): Json => ({
  name: `udp ${port}`,
  protocol: "udp",
  url: `udp://127.0.0.1:${port}`,
  ...extra,
});

/** A 400 problem+json's field issues. */
const issues = async (response: Response): Promise<Issue[]> => {
  expect(response.status).toBe(400);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  return ((await json(response)).errors ?? []) as Issue[];
};

const outputsOf = async (id: string) =>
  ((await json(await app.request(`/api/channels/${id}`))).outputs as Json[]).map((output) => ({
    name: output.name,
    policy: output.policy,
  }));

describe("an output's policy through the API", () => {
  it("is stored and shown as given, changed by PATCH, kept by a PUT that leaves it out, removed by null", async () => {
    const filter = { scte35: { segmentation_types: [52, 54], drop_regional_blackout: true } };
    const created = await send(
      "POST",
      "/api/channels",
      channelBody("stored", [udp(7001, { policy: filter }), udp(7002), udp(7003, { policy: null })]),
    );
    expect(created.status).toBe(201);
    expect(await outputsOf("stored")).toEqual([
      { name: "udp 7001", policy: filter },
      { name: "udp 7002", policy: null },
      { name: "udp 7003", policy: null },
    ]);
    const [first] = (await json(await app.request("/api/channels/stored"))).outputs as Json[];
    const path = `/api/channels/stored/outputs/${String(first?.id)}`;

    const remap = { remap: { "0x101": 259 }, pids: { drop: [258] }, program: 1 };
    expect((await send("PATCH", path, { policy: remap })).status).toBe(200);
    expect((await outputsOf("stored"))[0]?.policy).toEqual(remap);

    // The original API's PUT of an output, which knows no policy: the policy stays.
    expect(
      (await send("PUT", path, { name: "renamed", protocol: "udp", url: "udp://127.0.0.1:7004" })).status,
    ).toBe(200);
    expect((await outputsOf("stored"))[0]).toEqual({ name: "renamed", policy: remap });

    expect((await send("PATCH", path, { policy: null })).status).toBe(200);
    expect((await outputsOf("stored"))[0]?.policy).toBeNull();
  });

  it("travels with the export and the import", async () => {
    const policy = { scte35: "strip", pids: { keep: [256, 257] } };
    expect(
      (await send("POST", "/api/channels", channelBody("exported", [udp(7011, { policy })]))).status,
    ).toBe(201);
    const document = await json(await app.request("/api/config"));
    const exported = (document.channels as Json[]).find((channel) => channel.id === "exported");
    expect(((exported?.outputs ?? []) as Json[])[0]?.policy).toEqual(policy);
    expect((await send("DELETE", "/api/channels/exported", undefined)).status).toBe(200);
    const imported = await send("POST", "/api/config", { version: 1, channels: [exported] });
    expect(imported.status).toBe(200);
    expect((await outputsOf("exported"))[0]?.policy).toEqual(policy);
  });

  it("says what is wrong in words, on the field to fix", async () => {
    const refused = async (policy: unknown, protocol = "udp", url = "udp://127.0.0.1:7021") =>
      issues(
        await send("POST", "/api/channels", channelBody("refused", [{ name: "x", protocol, url, policy }])),
      );
    /** Every message on `field`, one after another; and nothing about a field that was right. */
    const message = (found: Issue[], field: string) => {
      for (const issue of found) expect(issue.field.startsWith(field)).toBe(true);
      return found
        .filter((issue) => issue.field === field)
        .map((issue) => issue.message)
        .join("; ");
    };

    expect(
      message(await refused({ remap: { "256": 300, "257": 300 } }), "outputs[0].policy.remap"),
    ).toContain("PIDs 256 and 257 would both become 300");
    expect(
      message(await refused({ remap: { "256": 258 }, pids: { drop: [256] } }), "outputs[0].policy.remap"),
    ).toBe("PID 256 is both dropped (pids.drop) and remapped: drop it or remap it");
    expect(message(await refused({ pids: { keep: [5] } }), "outputs[0].policy.pids.keep[0]")).toBe(
      "must be an integer from 16 to 8190, got 5",
    );
    expect(message(await refused({ pids: { keep: [256], drop: [257] } }), "outputs[0].policy.pids")).toBe(
      'give exactly one of keep and drop, e.g. {"keep": [256, 257]} or {"drop": [258]}',
    );
    expect(message(await refused({ scte35: {} }), "outputs[0].policy.scte35")).toContain("at least one rule");
    expect(message(await refused({ program: 0 }), "outputs[0].policy.program")).toBe(
      "must be an integer from 1 to 65535, got 0",
    );
    expect(
      message(
        await refused({ program: 1 }, "rtmp", "rtmp://127.0.0.1/live/key"),
        "outputs[0].policy.program",
      ),
    ).toContain("an RTMP output carries FLV");
    // An RTMP output takes the SCTE-35 part.
    const rtmp = await send(
      "POST",
      "/api/channels",
      channelBody("rtmp-strip", [
        { name: "yt", protocol: "rtmp", url: "rtmp://127.0.0.1/live/key", policy: { scte35: "strip" } },
      ]),
    );
    expect(rtmp.status).toBe(201);
    expect((await app.request("/api/channels/refused")).status).toBe(404);
  });

  it("refuses a key that names no PID, a PID named twice, and the PAT's PID, in words; an import the same", async () => {
    // Written as raw JSON: an object literal's "__proto__" would set its prototype instead of a key.
    const raw = async (policyJson: string) =>
      issues(
        await app.request("/api/channels", {
          method: "POST",
          body: `{"name": "Keys", "rtp_ip": "127.0.0.1", "rtp_port": 6990, "outputs": [{"name": "x", "protocol": "udp", "url": "udp://127.0.0.1:7031", "policy": ${policyJson}}]}`,
        }),
      );
    for (const key of ["__proto__", "constructor", "prototype"])
      expect(await raw(`{"remap": {"${key}": 300}}`)).toEqual([
        {
          field: `outputs[0].policy.remap.${key}`,
          message: "is not a key any map here takes (every JavaScript object has it): remove it",
        },
      ]);
    expect(await raw('{"remap": {"0x100": 300, "256": 301}}')).toEqual([
      {
        field: "outputs[0].policy.remap",
        message: 'PID 256 is named twice ("256" and "0x100"): name each PID once',
      },
    ]);
    const pat = await raw('{"remap": {"0": 300}}');
    expect(pat.map((issue) => issue.message).join()).toContain(
      "the PAT's, 0, and the other tables' below 16 are never remapped",
    );
    expect(await raw('{"pids": {"drop": [0]}}')).toEqual([
      { field: "outputs[0].policy.pids.drop[0]", message: "must be an integer from 16 to 8190, got 0" },
    ]);
    // The same document through the import: refused whole, nothing created.
    const imported = await app.request("/api/config", {
      method: "POST",
      body: `{"version": 1, "channels": [{"id": "keys", "name": "Keys", "rtp_ip": "127.0.0.1", "rtp_port": 6990, "outputs": [{"name": "x", "protocol": "udp", "url": "udp://127.0.0.1:7031", "policy": {"remap": {"__proto__": 300}}}]}]}`,
    });
    expect(imported.status).toBe(400);
    expect(JSON.stringify(await json(imported))).toContain("remap.__proto__");
    expect((await app.request("/api/channels/keys")).status).toBe(404);
  });

  it("is in the OpenAPI document, with the insert-a-break route", async () => {
    const document = await json(await app.request("/api/openapi.json"));
    const text = JSON.stringify(document);
    expect(text).toContain("segmentation_types");
    expect(text).toContain("drop_web_delivery_restricted");
    const paths = document.paths as Record<string, Record<string, unknown>>;
    expect(Object.keys(paths["/api/channels/{id}/cues"] ?? {}).sort()).toEqual(["get", "post"]);
  });
});
