/**
 * Beyond the original API: PATCH of channels and outputs, enable/disable, the operator input switch, stats,
 * cues, readiness, OpenAPI, and export/import of the whole configuration (ours and the original format).
 */
import { describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, udpSink, udpSource, useTestApp } from "../support/app.ts";

const app = useTestApp();

const send = (method: string, path: string, body?: unknown) =>
  app.request(path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

describe("beyond the original API", () => {
  it("patches, disables and enables outputs of a running channel; switches inputs; reports stats", async () => {
    const [primary, backup] = [await freeUdpPort(), await freeUdpPort()];
    const [kept, changed] = [await udpSink(), await udpSink()];
    const source = udpSource(primary);
    try {
      const channel = await json(
        await send("POST", "/api/channels", {
          id: "extras",
          name: "Extras",
          rtp_ip: "127.0.0.1",
          rtp_port: primary,
          backup_rtp_ip: "127.0.0.1",
          backup_rtp_port: backup,
          outputs: [
            { id: "kept", protocol: "udp", url: `udp://127.0.0.1:${kept.port}` },
            { id: "changed", protocol: "udp", url: `udp://127.0.0.1:${changed.port}`, enabled: false },
          ],
        }),
      );
      expect(channel.redundancy).toMatchObject({ mode: "failover", failover_after_ms: 500 });
      expect((await send("POST", "/api/channels/extras/start")).status).toBe(200);
      await eventually("the enabled output to flow", () => (kept.bytes() > 0 ? true : undefined));
      expect(changed.bytes()).toBe(0);
      expect(await json(await app.request("/api/channels/extras/outputs/changed"))).toMatchObject({
        status: "stopped",
        state: "disabled",
        enabled: false,
      });

      expect(await json(await send("POST", "/api/channels/extras/outputs/changed/enable"))).toMatchObject({
        enabled: true,
      });
      await eventually("the enabled output to flow", () => (changed.bytes() > 0 ? true : undefined));
      await send("POST", "/api/channels/extras/outputs/changed/disable");
      const patched = await json(
        await send("PATCH", "/api/channels/extras/outputs/kept", { name: "Renamed" }),
      );
      expect(patched).toMatchObject({ name: "Renamed", url: `udp://127.0.0.1:${kept.port}` });

      const switched = await send("POST", "/api/channels/extras/input", { active: "backup" });
      expect(switched.status).toBe(200);
      expect((await json(await app.request("/api/channels/extras"))).active_input).toBe("backup");
      await send("POST", "/api/channels/extras/input", { active: "primary" });

      const stats = await eventually("stats with a bitrate", async () => {
        const body = await json(await app.request("/api/channels/extras/stats"));
        const inputs = body.inputs as Array<{ role: string; bitrate_bps: number }>;
        return inputs.some((input) => input.role === "primary" && input.bitrate_bps > 0) ? body : undefined;
      });
      const input = (stats.inputs as Array<Record<string, unknown>>).find(
        (entry) => entry.role === "primary",
      );
      // The source loops its stream, so continuity errors are expected at each wrap; they are counted.
      // Plain UDP TS: no RTP figures.
      expect(input).toMatchObject({ continuity_errors: expect.any(Number), input_kind: "udp-ts", rtp: null });
      expect(input?.pids).toEqual(
        expect.arrayContaining([expect.objectContaining({ pid: expect.any(Number) })]),
      );
      expect(input?.programs).toEqual([expect.objectContaining({ program: expect.any(Number) })]);
      expect(stats.outputs).toEqual(expect.arrayContaining([expect.objectContaining({ id: "kept" })]));
      expect(await json(await app.request("/api/channels/extras/cues"))).toEqual({ cues: expect.any(Array) });

      // A changed input restarts the channel on the new port.
      const newPort = await freeUdpPort();
      const moved = await json(await send("PATCH", "/api/channels/extras", { rtp_port: newPort }));
      expect(moved).toMatchObject({ rtp_port: newPort, status: "running" });
      await send("POST", "/api/channels/extras/stop");
    } finally {
      await source.close();
      await kept.close();
      await changed.close();
    }
  });

  it("exports with secrets masked and imports it back keeping them; imports the original channels.json", async () => {
    await send("POST", "/api/channels/extras/outputs", {
      id: "yt",
      protocol: "rtmp",
      url: "rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl",
    });
    const exported = await json(await app.request("/api/config"));
    expect(JSON.stringify(exported)).toContain("rtmp://a.rtmp.youtube.com/live2/****");
    expect(JSON.stringify(exported)).not.toContain("abcd-efgh-ijkl");
    expect((await send("POST", "/api/config", exported)).status).toBe(200);
    expect(await app.storeText()).toContain("abcd-efgh-ijkl");

    const original = {
      "4f1c2a3b-0000-4000-8000-000000000001": {
        config: {
          name: "Channel Name",
          rtp_ip: "192.168.1.100",
          rtp_port: 5000,
          outputs: [{ name: "Output 1", protocol: "srt", url: "srt://destination:9000?streamid=publish" }],
        },
        created_at: "2025-10-30T12:00:00",
      },
    };
    expect(await json(await send("POST", "/api/config?mode=replace", original))).toEqual({
      mode: "replace",
      dry_run: false,
      created: ["4f1c2a3b-0000-4000-8000-000000000001"],
      changed: [],
      unchanged: [],
      deleted: ["extras"],
      channels: 1,
      report: [
        {
          id: "4f1c2a3b-0000-4000-8000-000000000001",
          taken: true,
          outputs_taken: 1,
          not_taken: [],
          warnings: [],
        },
      ],
    });
    const list = await json(await app.request("/api/channels"));
    expect(list.channels).toEqual([
      expect.objectContaining({
        id: "4f1c2a3b-0000-4000-8000-000000000001",
        name: "Channel Name",
        status: "stopped",
        outputs: [expect.objectContaining({ name: "Output 1", protocol: "srt" })],
      }),
    ]);
  });

  it("lists just the channels asked for with ids=a,b, leaving out ids it does not know", async () => {
    for (const id of ["list-a", "list-b", "list-c"])
      expect(
        (
          await send("POST", "/api/channels", {
            id,
            name: id,
            rtp_ip: "127.0.0.1",
            rtp_port: await freeUdpPort(),
          })
        ).status,
      ).toBe(201);
    const listed = async (query: string) =>
      ((await json(await app.request(`/api/channels${query}`))).channels as Array<{ id: string }>).map(
        (channel) => channel.id,
      );
    expect(await listed("?ids=list-c,list-a,unknown")).toEqual(["list-a", "list-c"]);
    expect(await listed("?ids=unknown")).toEqual([]);
    expect(await listed("")).toEqual(expect.arrayContaining(["list-a", "list-b", "list-c"]));
  });

  it("answers readiness and publishes the OpenAPI document from the Schemas", async () => {
    expect(await json(await app.request("/api/ready", { token: null }))).toEqual({
      status: "ready",
      not_resumed: [],
    });
    const document = await json(await app.request("/api/openapi.json", { token: null }));
    const schemas = (document.components as { schemas: Record<string, unknown> }).schemas;
    expect(Object.keys(schemas)).toEqual(
      expect.arrayContaining(["ChannelBody", "OutputBody", "Channel", "Problem"]),
    );
  });
});
