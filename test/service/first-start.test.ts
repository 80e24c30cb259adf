/**
 * The admin token at the first start, as a new user meets it: printed once with the address the service
 * really listens on; an admin token from the environment must be long enough, and stops being valid when the
 * service starts without it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/app.ts";
import { servicePort, spawnService } from "../support/service.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "distributary-first-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const serve = async (port: number, env: Record<string, string> = {}) => {
  const service = spawnService({
    port,
    after: ["--config-dir", join(dir, "config")],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
  });
  return {
    ...service,
    stop: async () => {
      service.process.kill("SIGTERM");
      return service.exited;
    },
  };
};

const status = (port: number, token: string) =>
  fetch(`http://127.0.0.1:${port}/api/channels`, { headers: { authorization: `Bearer ${token}` } }).then(
    (r) => r.status,
  );

describe("the first start", () => {
  it("prints the admin token with the port it listens on; an environment token lasts only while it is set", async () => {
    const port = await servicePort();
    const first = await serve(port);
    await first.ready();
    await eventually("the token to be printed", () =>
      first.output().includes("Bearer dst_") ? true : undefined,
    );
    expect(first.output()).toContain(`http://localhost:${port}/api/channels`);
    const printed = /Bearer (dst_[A-Za-z0-9_-]+)/.exec(first.output())?.[1] ?? "";
    expect(await status(port, printed)).toBe(200);
    expect(await first.stop()).toBe(0);

    // An environment token: valid while set...
    const fromEnv = "environment-admin-token-0123456789abcdef";
    const second = await serve(port, { DISTRIBUTARY_ADMIN_TOKEN: fromEnv });
    await second.ready();
    expect(await status(port, fromEnv)).toBe(200);
    expect(second.output()).not.toContain("Bearer dst_");
    expect(await second.stop()).toBe(0);

    // ...and no longer once the service starts without it; the first admin token still works.
    const third = await serve(port);
    await third.ready();
    expect(await status(port, fromEnv)).toBe(401);
    expect(await status(port, printed)).toBe(200);
    expect(await third.stop()).toBe(0);
  }, 90_000);

  it("refuses a short admin token from the environment, saying why", async () => {
    const short = await serve(await servicePort(), { DISTRIBUTARY_ADMIN_TOKEN: "only-16-chars-ab" });
    expect(await short.exited).not.toBe(0);
    expect(short.output()).toContain("at least 32 characters");
  }, 30_000);
});
