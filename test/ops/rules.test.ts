/**
 * The alerting configuration as the tools that load it see it: promtool checks the rules and runs their unit
 * tests (each alert firing and not firing), checks the scrape configuration, and amtool checks the
 * Alertmanager routes.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

describe("alerting configuration", () => {
  it("promtool check rules: every rule parses, with severity, summary, description and runbook", async () => {
    const { stdout } = await run("promtool", ["check", "rules", "prometheus/alerts.yml"]);
    expect(stdout).toContain("SUCCESS: 24 rules found");
    const text = await readFile("prometheus/alerts.yml", "utf8");
    const alerts = text.split("- alert: ").slice(1);
    expect(alerts).toHaveLength(24);
    for (const alert of alerts) {
      for (const field of ["severity:", "summary:", "description:", "runbook:"])
        expect(alert).toContain(field);
    }
  });

  it("promtool test rules: each alert fires where it should and stays silent where it should not", async () => {
    const { stdout } = await run("promtool", ["test", "rules", "prometheus/alerts.test.yml"]);
    expect(stdout).toContain("SUCCESS");
    // Every alert of the rule file has a test.
    const rules = await readFile("prometheus/alerts.yml", "utf8");
    const tests = await readFile("prometheus/alerts.test.yml", "utf8");
    for (const [, name] of rules.matchAll(/- alert: (\w+)/g)) expect(tests).toContain(`alertname: ${name}`);
  });

  it("promtool check config: the scrape configuration loads, with its rule file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "distributary-promconfig-"));
    try {
      // As docker-compose.yml mounts it: the rules under /etc/prometheus.
      const config = (await readFile("prometheus/prometheus.yml", "utf8")).replace(
        "/etc/prometheus/alerts.yml",
        join(process.cwd(), "prometheus/alerts.yml"),
      );
      await writeFile(join(dir, "prometheus.yml"), config);
      const { stdout } = await run("promtool", ["check", "config", join(dir, "prometheus.yml")]);
      expect(stdout).toContain("SUCCESS");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("amtool check-config: the Alertmanager routes load", async () => {
    const { stdout } = await run("amtool", ["check-config", "alertmanager/alertmanager.yml"]);
    expect(stdout).toContain("SUCCESS");
    expect(stdout).toContain("3 receivers");
  });
});
