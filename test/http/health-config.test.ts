/**
 * A channel's input health rules (`redundancy.health`) through the API as an operator writes them: taken as
 * given, shown back by GET with the clear time filled in, changed and removed (null) by PATCH, and carried whole
 * through an export and an import.
 */
import { describe, expect, it } from "vitest";
import { json, useTestApp } from "../support/app.ts";
import { exampleHealth } from "../support/health-example.ts";

const app = useTestApp();

const health = exampleHealth;

const send = (path: string, method: string, body: unknown) =>
  app.request(path, { method, body: JSON.stringify(body) });

describe("health rules through the API", () => {
  it("are stored as given, shown with clear_after_ms filled, changed by PATCH, survive an export and import, and PATCH null removes them", async () => {
    const created = await send("/api/channels", "POST", {
      id: "healthy",
      name: "Healthy",
      rtp_ip: "127.0.0.1",
      rtp_port: 6800,
      backup_rtp_ip: "127.0.0.1",
      backup_rtp_port: 6802,
      redundancy: { health },
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const shown = (await json(await app.request("/api/channels/healthy"))) as {
      redundancy: { mode: string; health: unknown };
    };
    expect(shown.redundancy.mode).toBe("failover");
    expect(shown.redundancy.health).toEqual({ ...health, clear_after_ms: 3000, decode: "key_frames" });

    const patched = await send("/api/channels/healthy", "PATCH", {
      redundancy: {
        health: { ...health, unhealthy_when: "no_pcr && !low", clear_after_ms: 5000, decode: "all_frames" },
      },
    });
    expect(patched.status, await patched.clone().text()).toBe(200);
    const after = (await json(await app.request("/api/channels/healthy"))) as {
      redundancy: { health: unknown };
    };
    expect(after.redundancy.health).toEqual({
      ...health,
      unhealthy_when: "no_pcr && !low",
      clear_after_ms: 5000,
      decode: "all_frames",
    });

    const exported = await json(await app.request("/api/config"));
    const deleted = await app.request("/api/channels/healthy", { method: "DELETE" });
    expect(deleted.status).toBeLessThan(300);
    const imported = await send("/api/config", "POST", exported);
    expect(imported.status, await imported.clone().text()).toBeLessThan(300);
    const back = (await json(await app.request("/api/channels/healthy"))) as {
      redundancy: { health: unknown };
    };
    expect(back.redundancy.health).toEqual(after.redundancy.health);

    const removed = await send("/api/channels/healthy", "PATCH", { redundancy: { health: null } });
    expect(removed.status, await removed.clone().text()).toBe(200);
    const plain = (await json(await app.request("/api/channels/healthy"))) as {
      redundancy: { health: unknown };
    };
    expect(plain.redundancy.health).toBeNull();
  });
});
