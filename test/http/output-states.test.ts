/**
 * Statuses that tell the truth, read through the API as a person or a script would: an output's `state` in
 * words beside the original `status`, `error_count` rising once per failure (and not on a successful
 * connect), a listener waiting for its first caller not counted as dropping, whole-number counters, and a
 * channel's input health beside its `status`.
 */
import { Effect, Exit, Layer, Scope } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OutputDefaults } from "../../src/effects/channel/channels.ts";
import { eventually, freeUdpPort, json, udpSink, udpSource, useTestApp } from "../support/app.ts";
import { srtCallerPeer } from "../support/peers.ts";

// A small queue fills within a second of input; a long first delay keeps a failed output waiting.
const app = useTestApp({
  extra: Layer.succeed(OutputDefaults, {
    queueBytes: 64 * 1024,
    reconnect: { firstDelay: "30 seconds", maxDelay: "30 seconds" },
  }),
});
let scope: Scope.CloseableScope;
beforeAll(async () => {
  scope = await Effect.runPromise(Scope.make());
});
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void));
});

const send = (method: string, path: string, body?: unknown) =>
  app.request(path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
const output = async (id: string) => json(await app.request(`/api/channels/truth/outputs/${id}`));
const channel = async () => json(await app.request("/api/channels/truth"));

describe("output states and counters", () => {
  it("say what happens: starting, connecting, reconnecting, connected; errors once; waiting is not dropping", async () => {
    const input = await freeUdpPort();
    const [listenPort, nobody] = [await freeUdpPort(), await freeUdpPort()];
    const sink = await udpSink();
    try {
      await send("POST", "/api/channels", {
        id: "truth",
        name: "Truth",
        rtp_ip: "127.0.0.1",
        rtp_port: input,
      });
      expect((await send("POST", "/api/channels/truth/start")).status).toBe(200);
      // Running, but nothing arrives: the input's health is beside the compatible status.
      expect(await channel()).toMatchObject({ status: "running", input: "lost" });

      // The answer to POST shows the output on its way, in both fields.
      const added = await json(
        await send("POST", "/api/channels/truth/outputs", {
          id: "lonely",
          protocol: "srt",
          url: `srt://127.0.0.1:${listenPort}?mode=listener`,
        }),
      );
      expect(added.status).toBe("running");
      expect(["starting", "connecting"]).toContain(added.state);
      const down = await json(
        await send("POST", "/api/channels/truth/outputs", {
          id: "down",
          protocol: "srt",
          url: `srt://127.0.0.1:${nobody}?mode=caller`,
        }),
      );
      expect(down.status).toBe("running");

      // No SRT listener answers: one failure, counted at once, while it waits 30 s to try again.
      const failed = await eventually(
        "the caller's first failure",
        async () => {
          const now = await output("down");
          return now.last_error === null ? undefined : now;
        },
        15_000,
      );
      expect(failed).toMatchObject({ state: "reconnecting", status: "error", error_count: 1, reconnects: 0 });
      // Changed, it starts over: the answer to PUT shows it on its way again, not stopped.
      const changed = await json(
        await send("PUT", "/api/channels/truth/outputs/down", {
          protocol: "srt",
          url: `srt://127.0.0.1:${nobody}?mode=caller&latency=300`,
        }),
      );
      expect(changed.status).toBe("running");
      expect(["starting", "connecting"]).toContain(changed.state);
      const refailed = await eventually(
        "the changed caller's first failure",
        async () => {
          const now = await output("down");
          return now.last_error === null ? undefined : now;
        },
        15_000,
      );
      expect(refailed).toMatchObject({ state: "reconnecting", error_count: 1 });

      // Input flows; the listener's small queue overflows many times while nobody calls.
      const source = udpSource(input);
      try {
        await eventually("the input", async () => ((await channel()).input === "ok" ? true : undefined));
        await eventually(
          "more input than the listener's queue holds",
          async () => {
            const view = await channel();
            const bytes = (view.inputs as Array<{ bytes: number }>)[0]?.bytes ?? 0;
            return bytes > 4 * 64 * 1024 ? true : undefined;
          },
          15_000,
        );
        expect(await output("lonely")).toMatchObject({
          state: "connecting",
          status: "running",
          queue_drops: 0,
          bytes_sent: 0,
          error_count: 0,
        });

        // The first caller arrives: connected, data flows, still nothing counted as an error or a drop.
        await Effect.runPromise(
          Scope.extend(srtCallerPeer({ port: listenPort, forwardTo: sink.port }), scope),
        );
        await eventually(
          "the caller's data at the sink",
          () => (sink.bytes() > 0 ? true : undefined),
          15_000,
        );
        const connected = await eventually("the listener connected", async () => {
          const now = await output("lonely");
          return now.state === "connected" ? now : undefined;
        });
        expect(connected).toMatchObject({ status: "running", error_count: 0, queue_drops: 0, reconnects: 0 });
      } finally {
        await source.close();
      }

      // Input gone: the channel still runs, and says its input is lost.
      await eventually("the input lost", async () => ((await channel()).input === "lost" ? true : undefined));
      const view = await channel();
      expect(view.status).toBe("running");
      for (const each of view.outputs as Array<Record<string, unknown>>) {
        for (const field of ["bytes_sent", "packets_sent", "queue_drops", "error_count", "reconnects"])
          expect(Number.isInteger(each[field]), `${String(each.id)}.${field}`).toBe(true);
      }
      expect(await output("down")).toMatchObject({ error_count: 1 });
    } finally {
      await sink.close();
    }
  });
});
