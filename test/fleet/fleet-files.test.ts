/**
 * The fleet's deployment and monitoring files as their tools read them: the compose file (no Docker Compose
 * here, so as the engine would parse it: anchors merged, images pinned, both nodes on one database with their
 * own ids and URLs, no password written in it), and the nodes dashboard, whose every expression names only
 * series a fleet's node exports.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

interface Service {
  readonly image?: string;
  readonly build?: string;
  readonly environment?: Record<string, string>;
  readonly depends_on?: Record<string, { condition: string }>;
  readonly ports?: ReadonlyArray<string>;
  readonly volumes?: ReadonlyArray<string>;
  readonly healthcheck?: { test: ReadonlyArray<string> };
}

/** Every series a node of a fleet exports that a one-box service does not (src/effects/fleet/fleet-metrics.ts). */
const FLEET_SERIES = [
  "distributary_cluster_isolated",
  "distributary_cluster_database_reachable",
  "distributary_node_up",
  "distributary_lease_held",
  "distributary_lease_term",
  "distributary_channels_without_holder",
  "distributary_takeovers_total",
];

describe("deploy/fleet-compose.yml", () => {
  it("PostgreSQL and two nodes on it, each with its own id and URL, started once the database is healthy", async () => {
    const text = await readFile("deploy/fleet-compose.yml", "utf8");
    const compose = parse(text, { merge: true }) as {
      services: Record<string, Service>;
      volumes: Record<string, unknown>;
    };
    expect(Object.keys(compose.services).sort()).toEqual(["node-a", "node-b", "postgres"]);
    const postgres = compose.services.postgres as Service;
    expect(postgres.image).toMatch(/^postgres:\d+\.\d+$/);
    expect(postgres.healthcheck?.test).toContain("pg_isready");
    const nodes = ["node-a", "node-b"].map((name) => compose.services[name] as Service);
    for (const node of nodes) {
      expect(existsSync(`deploy/${node.build}/Dockerfile`)).toBe(true);
      expect(node.depends_on?.postgres?.condition).toBe("service_healthy");
      expect(node.environment?.DISTRIBUTARY_DATABASE_URL).toMatch(
        /^postgres:\/\/distributary:\$\{DISTRIBUTARY_DB_PASSWORD:\?[^}]+\}@postgres:5432\/distributary$/,
      );
      expect(node.environment?.DISTRIBUTARY_ADMIN_TOKEN).toMatch(/^\$\{DISTRIBUTARY_ADMIN_TOKEN:\?/);
    }
    const [a, b] = nodes;
    expect([a?.environment?.DISTRIBUTARY_NODE_ID, b?.environment?.DISTRIBUTARY_NODE_ID]).toEqual(["a", "b"]);
    expect(new URL(a?.environment?.DISTRIBUTARY_NODE_URL ?? "").host).toBe("172.30.0.11:8000");
    expect(new URL(b?.environment?.DISTRIBUTARY_NODE_URL ?? "").host).toBe("172.30.0.12:8000");
    // The same channel port on both nodes inside, two ports on the host: pipeline 0 → 5000, pipeline 1 → 6000.
    expect(a?.ports).toContain("5000-5009:5000-5009/udp");
    expect(b?.ports).toContain("6000-6009:5000-5009/udp");
    expect(Object.keys(compose.volumes)).toEqual(["fleet-postgres"]);
    // The password is the operator's, in an .env file: never written here.
    expect(postgres.environment?.POSTGRES_PASSWORD).toMatch(/^\$\{DISTRIBUTARY_DB_PASSWORD:\?/);
    expect(text).not.toMatch(/PASSWORD: (?!\$\{)/);
  });
});

describe("grafana/dashboards/nodes.json", () => {
  it("each panel reads a fleet's series, says what it shows, and the dashboard has its own uid", async () => {
    const dashboard = JSON.parse(await readFile("grafana/dashboards/nodes.json", "utf8")) as {
      uid: string;
      panels: Array<{ type: string; title: string; description?: string; targets?: Array<{ expr: string }> }>;
    };
    expect(dashboard.uid).toBe("distributary-nodes");
    const used = new Set<string>();
    for (const panel of dashboard.panels.filter((candidate) => candidate.type !== "row")) {
      expect(panel.description, panel.title).toBeTruthy();
      for (const target of panel.targets ?? []) {
        const names = target.expr.match(/distributary_[a-z_]+/g) ?? [];
        expect(names.length, `${panel.title}: ${target.expr}`).toBeGreaterThan(0);
        for (const name of names) {
          expect(FLEET_SERIES, `${panel.title}: ${name}`).toContain(name);
          used.add(name);
        }
      }
    }
    expect([...used].sort()).toEqual([...FLEET_SERIES].sort());
  });
});
