/**
 * A running channel's health rules through the API: each input's health in its status (each rule's state and
 * figure, the content watcher running with its cost and the GOP it measured), rules changed live by PATCH,
 * a frozen rule shorter than 1.5 of the measured GOPs refused in words, the picture and sound rules suspended
 * while the channel is on its slate, and the watcher gone with the rules.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, freeUdpPort, json, useTestApp } from "../support/app.ts";
import { encodeContentStream } from "../support/media.ts";
import { chunkTs, sendPaced } from "../support/sender.ts";

const app = useTestApp();
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

interface HealthView {
  readonly state: string;
  readonly rules: Record<string, { readonly state: boolean | null; readonly figure: string }>;
  readonly watcher: {
    readonly running: boolean;
    readonly cpu_percent: number | null;
    readonly dropped_chunks: number;
    readonly gop_ms: number | null;
  } | null;
}

const send = (path: string, method: string, body?: unknown) =>
  app.request(path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
const healthOf = async (channel: string) => {
  const view = (await json(await app.request(`/api/channels/${channel}`))) as {
    inputs: ReadonlyArray<{ health: HealthView | null }>;
  };
  return view.inputs[0]?.health ?? null;
};

describe("health rules on a running channel", () => {
  it("shows each rule and the watcher, takes new rules live, refuses a frozen rule under 1.5 GOPs, and stops the watcher with the rules", async () => {
    const dir = await mkdtemp(join(tmpdir(), "health-live-"));
    dirs.push(dir);
    const file = join(dir, "programme.ts");
    await Effect.runPromise(encodeContentStream(file, [{ kind: "programme", seconds: 14 }]));
    const ts = await readFile(file);
    const port = await freeUdpPort();
    const rules = {
      frozen: { frozen: { noise_db: -60 }, for_ms: 6000 },
      no_video: { pid_missing: "video", for_ms: 1000 },
    };
    const created = await send("/api/channels", "POST", {
      id: "judged",
      name: "Judged",
      rtp_ip: "127.0.0.1",
      rtp_port: port,
      redundancy: { health: { rules, unhealthy_when: "frozen || no_video" } },
      slate: { after_ms: 1000 },
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await send("/api/channels/judged/start", "POST")).status).toBe(200);
    // 14 s of a 1 GOP/s programme at its own pace, in the background.
    const datagrams = chunkTs(ts);
    const sending = Effect.runPromise(sendPaced(datagrams, port, datagrams.length / 14_000));

    const measured = await eventually(
      "the watcher's GOP",
      async () => {
        const health = await healthOf("judged");
        return health?.watcher?.gop_ms != null && health.rules.frozen?.state === false ? health : undefined;
      },
      15_000,
    );
    console.log(
      `a running channel's health: ${JSON.stringify(measured.rules)}; watcher ${JSON.stringify(measured.watcher)}`,
    );
    expect(measured.state).toBe("healthy");
    expect(measured.rules.no_video).toMatchObject({ state: false });
    expect(measured.rules.no_video?.figure).toMatch(/ms since its last packet/);
    expect(measured.watcher).toMatchObject({ running: true, dropped_chunks: 0 });
    expect(measured.watcher?.gop_ms).toBeGreaterThan(900);
    expect(measured.watcher?.gop_ms).toBeLessThan(1100);

    // On its slate by hand while the input still comes: the picture and sound rules are suspended (unknown),
    // the TS rules go on; off again, they judge again.
    expect((await send("/api/channels/judged/slate", "POST", { on: true })).status).toBe(200);
    const slated = await eventually(
      "the frozen rule suspended on the slate",
      async () => {
        const health = await healthOf("judged");
        return health?.rules.frozen?.state === null ? health : undefined;
      },
      10_000,
    );
    expect(slated.rules.frozen?.figure).toBe("suspended while the channel is on its slate");
    expect(slated.rules.no_video?.state).toBe(false);
    expect(slated.state).toBe("healthy");
    expect((await send("/api/channels/judged/slate", "POST", { on: false })).status).toBe(200);
    await eventually("the frozen rule judged again", async () =>
      (await healthOf("judged"))?.rules.frozen?.state === false ? true : undefined,
    );

    // A frozen rule of 1 s: shorter than 1.5 of the 1 s GOPs the watcher decodes.
    const short = await send("/api/channels/judged", "PATCH", {
      redundancy: {
        health: {
          rules: { ...rules, frozen: { frozen: { noise_db: -60 }, for_ms: 1000 } },
          unhealthy_when: "frozen",
        },
      },
    });
    const problem = (await json(short)) as {
      detail: string;
      errors: ReadonlyArray<{ field: string; message: string }>;
    };
    expect(short.status).toBe(400);
    expect(problem.errors).toEqual([
      {
        field: "redundancy.health.rules.frozen.for_ms",
        message: expect.stringMatching(/at least 1\.5 GOPs \(\d{4} ms\), not 1000 \(the primary input\)$/),
      },
    ]);
    expect((await healthOf("judged"))?.rules.frozen).toBeDefined();

    // New rules live: a PID the stream does not carry, missing at once.
    const changed = await send("/api/channels/judged", "PATCH", {
      redundancy: {
        health: { rules: { gone: { pid_missing: 0x1ff0, for_ms: 100 } }, unhealthy_when: "gone" },
      },
    });
    expect(changed.status, await changed.clone().text()).toBe(200);
    const gone = await eventually("the new rule judged", async () => {
      const health = await healthOf("judged");
      return health?.state === "unhealthy" ? health : undefined;
    });
    expect(Object.keys(gone.rules)).toEqual(["gone"]);
    expect(gone.rules.gone?.state).toBe(true);
    expect(gone.watcher).toBeNull();

    // No rules: no health.
    const removed = await send("/api/channels/judged", "PATCH", { redundancy: { health: null } });
    expect(removed.status).toBe(200);
    expect(await healthOf("judged")).toBeNull();
    await sending;
  }, 60_000);
});
