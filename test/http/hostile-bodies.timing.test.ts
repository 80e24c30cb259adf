/**
 * A hostile body costs the service nothing it would notice: `bin/distributary serve` as a process, an
 * operator's policy listing 100,000 invalid PIDs (400 KB, within the body limit) and a remap of 100,000 keys,
 * each sent four at a time while `/api/health` is asked beside them. Every answer is a problem that says what to
 * fix in a few lines (under 64 KiB), and health answers within 100 ms throughout (a frozen API took seconds;
 * parsing four 400 KB bodies and the collection after them take 20–60 ms on a loaded 2-core machine, printed):
 * validation checks the sizes before the items, and names at most a few problems a field. `npm run bench:validation` prints what each
 * body costs to validate.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServiceProcess, servicePort, spawnService } from "../support/service.ts";

const TOKEN = "hostile-bodies-admin-token-0123456789abcdef";
const dir = mkdtempSync(join(tmpdir(), "distributary-hostile-"));
let port = 0;
let service: ServiceProcess | undefined;

const api = (path: string, init: RequestInit = {}) =>
  fetch(`http://127.0.0.1:${port}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
  });

beforeAll(async () => {
  port = await servicePort();
  service = spawnService({
    port,
    after: ["--host", "127.0.0.1", "--config-dir", join(dir, "config")],
    env: { ...process.env, DISTRIBUTARY_ADMIN_TOKEN: TOKEN },
  });
  await service.ready();
  const created = await api("/api/channels", {
    method: "POST",
    body: JSON.stringify({
      id: "target",
      name: "Target",
      rtp_ip: "127.0.0.1",
      rtp_port: 6900,
      outputs: [{ id: "o", name: "O", protocol: "udp", url: "udp://127.0.0.1:6901" }],
    }),
  });
  expect(created.status).toBe(201);
  // The output is changed once as an operator would, so the route is warm when the hostile bodies come.
  const policy = await api("/api/channels/target/outputs/o", {
    method: "PATCH",
    body: JSON.stringify({ policy: { pids: { drop: [258] } } }),
  });
  expect(policy.status).toBe(200);
}, 60_000);

afterAll(async () => {
  if (service !== undefined && service.process.exitCode === null) {
    service.process.kill("SIGTERM");
    await service.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

/** `/api/health` asked every 10 ms until `done`: the slowest answer, in ms. */
const healthWhile = async (done: Promise<unknown>): Promise<number> => {
  let finished = false;
  void done.finally(() => {
    finished = true;
  });
  let slowest = 0;
  while (!finished) {
    const started = performance.now();
    expect((await fetch(`http://127.0.0.1:${port}/api/health`)).status).toBe(200);
    slowest = Math.max(slowest, performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return slowest;
};

/** 100,000 PIDs, each wrong (below 16 or negative), in about 400 KB: what one output's body may hold. */
const wrong = Array.from({ length: 100_000 }, (_, i) => (i % 2 === 0 ? i % 16 : -(i % 1000)));

describe("a hostile body", () => {
  it.each([
    ["a policy dropping 100,000 invalid PIDs", { pids: { drop: wrong } }, "policy.pids.drop"],
    [
      "a remap of 30,000 keys",
      { remap: Object.fromEntries(Array.from({ length: 30_000 }, (_, i) => [String(i), 300])) },
      "policy.remap",
    ],
  ])("%s is answered in a few lines while /api/health stays within 100 ms", async (_, policy, field) => {
    const body = JSON.stringify({ policy });
    expect(body.length).toBeGreaterThan(300_000);
    const answers = Promise.all(
      Array.from({ length: 4 }, async () => {
        const response = await api("/api/channels/target/outputs/o", { method: "PATCH", body });
        return {
          status: response.status,
          type: response.headers.get("content-type"),
          text: await response.text(),
        };
      }),
    );
    const slowest = await healthWhile(answers);
    for (const answer of await answers) {
      expect(answer.status).toBe(400);
      expect(answer.type).toBe("application/problem+json");
      expect(answer.text.length).toBeLessThan(64 * 1024);
      const problem = JSON.parse(answer.text) as { errors: Array<{ field: string; message: string }> };
      expect(problem.errors).toEqual([
        {
          field,
          message: expect.stringMatching(/^must have at most 64 (items|entries), got (100000|30000)$/),
        },
      ]);
    }
    console.log(`${field}: the slowest /api/health beside four such requests took ${slowest.toFixed(1)} ms`);
    expect(slowest).toBeLessThan(100);
  });

  it("with 60 wrong items in a list that may hold 64 names a few and counts the rest", async () => {
    // A channel's list of allowed senders takes 64; each of 60 wrong entries is a problem of its own.
    const sources = Array.from({ length: 60 }, (_, i) => `not-an-address-${i}`);
    const response = await api("/api/channels/target", {
      method: "PATCH",
      body: JSON.stringify({ rtp_allowed_sources: sources }),
    });
    expect(response.status).toBe(400);
    const problem = (await response.json()) as { errors: Array<{ field: string; message: string }> };
    expect(problem.errors.length).toBeLessThanOrEqual(6);
    expect(problem.errors.at(-1)).toEqual({
      field: "rtp_allowed_sources[]",
      message: "and 55 more problems like these",
    });
  });
});
