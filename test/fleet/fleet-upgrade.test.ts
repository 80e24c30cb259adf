/**
 * The one-box upgrade (SIGUSR2, `distributary upgrade`, `systemctl reload`) asked of a fleet node: refused at
 * once, in words that say what to do instead, no new process started (a second process cannot run as the node
 * while this one holds its lock in the database, src/effects/config/postgres/node-lock.ts, and its leases). The
 * running node keeps its channel, its lease and its boot. A fleet node is upgraded by moving its channels away
 * (or draining it), stopping it and starting the new code (docs/upgrades.md); this test keeps that true.
 */
import { join } from "node:path";
import { execa } from "execa";
import { expect, it } from "vitest";
import { FLEET_ADMIN, useFleetNodes } from "../support/fleet-nodes.ts";

const ROOT = join(import.meta.dirname, "../..");
const fleet = useFleetNodes({ dbPort: 22_712, ports: { a: 22_713 }, env: { DISTRIBUTARY_LEASE_MS: "3000" } });

it("SIGUSR2 and distributary upgrade to a fleet node are refused in words; the node keeps its channel, lease and boot", async () => {
  await fleet.start("a");
  const created = await fleet.api("a", "/api/channels", {
    method: "POST",
    body: JSON.stringify({ name: "kept", rtp_ip: "127.0.0.1", rtp_port: 22_714, nodes: ["a"], outputs: [] }),
  });
  expect(created.status, await created.clone().text()).toBe(201);
  const { id } = (await created.json()) as { id: string };
  expect((await fleet.api("a", `/api/channels/${id}/start`, { method: "POST" })).status).toBe(200);
  await fleet.until("a to hold the channel", async () => (await fleet.fleetOf("a", id))?.holder === "a");
  const before = await fleet.pg().admin<{ boot_id: string }>("select boot_id from nodes where id = 'a'");
  const term = (await fleet.fleetOf("a", id))?.term;
  const node = fleet.process("a");

  // The CLI (systemd's reload runs it): exit code 1 and the reason, at once.
  const cli = await execa(join(ROOT, "bin/distributary"), ["upgrade", "--config-dir", fleet.configDir("a")], {
    reject: false,
  });
  console.log(`distributary upgrade on fleet node a: ${cli.stderr}`);
  expect(cli.exitCode, cli.stdout).toBe(1);
  expect(cli.stderr).toContain("distributary: failed: node a is part of a fleet");
  expect(cli.stderr).toContain("move its channels to an upgraded node or drain it");
  expect(cli.stderr).toMatch(/keeps every channel$/m);

  // SIGUSR2: the same, in the node's log.
  node.process.kill("SIGUSR2");
  await fleet.until(
    "the upgrade's outcome in a's log",
    async () => /upgrade \(SIGUSR2\) failed: /.test(node.output()),
    30_000,
  );
  const outcome = /upgrade \(SIGUSR2\) failed: [^"]*/.exec(node.output())?.[0] ?? "";
  console.log(`SIGUSR2 to fleet node a: ${outcome}`);
  expect(outcome).toContain("node a is part of a fleet, whose nodes are upgraded one at a time");
  expect(outcome).toContain("keeps every channel");
  // No new process was started: none said it found the node's lock held.
  expect(node.output()).not.toContain("another process is running as node a");

  // The node runs on as it was, and says so on /api/nodes.
  expect(node.process.exitCode).toBe(null);
  expect((await fleet.api("a", "/api/ready", { token: FLEET_ADMIN })).status).toBe(200);
  expect(await fleet.fleetOf("a", id)).toMatchObject({ holder: "a", term });
  expect(await fleet.pg().admin("select boot_id from nodes where id = 'a'")).toEqual(before);
  const nodes = (await (await fleet.api("a", "/api/nodes", { token: FLEET_ADMIN })).json()) as {
    nodes: Array<{
      id: string;
      upgrade?: { upgrading: unknown; last: { outcome: string; reason: string } | null };
    }>;
  };
  expect(nodes.nodes.find((entry) => entry.id === "a")?.upgrade).toMatchObject({
    upgrading: null,
    last: { outcome: "failed", reason: expect.stringContaining("node a is part of a fleet") },
  });
}, 120_000);
