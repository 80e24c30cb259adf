/**
 * The deployment files refer only to what exists: every path docker-compose.yml mounts, every file the
 * Dockerfile copies, the command the systemd unit runs. No Docker engine runs here, so these are read as the
 * engine would read them (compose's variables filled in as `docker compose config` fills them); the monitoring
 * stack listens on loopback unless told otherwise and asks for Grafana's admin password; the Dockerfile is
 * also held to the usual lint rules (a pinned base image, apt lists removed, a non-root user, a health check
 * on /api/health).
 */
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

interface Compose {
  readonly services: Record<
    string,
    {
      readonly image?: string;
      readonly build?: string;
      readonly volumes?: ReadonlyArray<string>;
      readonly network_mode?: string;
    }
  >;
  readonly volumes: Record<string, unknown>;
}

/**
 * Compose's interpolation, as the compose specification gives it (`$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`), over every string of the parsed file: what
 * `docker compose config` renders with `env` as the environment and `.env`.
 */
const interpolate = (value: unknown, env: Readonly<Record<string, string>>): unknown => {
  if (typeof value === "string")
    return value.replace(
      /\$\$|\$\{([A-Za-z_]\w*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_]\w*)/g,
      (
        whole,
        braced: string | undefined,
        operator: string | undefined,
        argument: string,
        bare: string | undefined,
      ) => {
        if (whole === "$$") return "$";
        const name = braced ?? bare ?? "";
        const given = env[name];
        const missing = operator?.startsWith(":") ? given === undefined || given === "" : given === undefined;
        if (operator?.endsWith("?") && missing)
          throw new Error(`required variable ${name} is missing a value: ${argument}`);
        return missing && operator?.endsWith("-") ? argument : (given ?? "");
      },
    );
  if (Array.isArray(value)) return value.map((item) => interpolate(item, env));
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolate(item, env)]));
  return value;
};

interface Rendered {
  readonly services: Record<
    string,
    { readonly command?: ReadonlyArray<string>; readonly environment?: Record<string, string> }
  >;
}

describe("deployment files", () => {
  it("docker-compose.yml mounts files that exist, pins every image, and declares its named volumes", async () => {
    const compose = parse(await readFile("docker-compose.yml", "utf8")) as Compose;
    // distributary runs as the image's ordinary user: compose neither names another nor adds privileges.
    const service = (compose.services as Record<string, Record<string, unknown>>).distributary ?? {};
    for (const key of ["user", "privileged", "cap_add"]) expect(service[key], key).toBeUndefined();
    expect(Object.keys(compose.services).sort()).toEqual([
      "alertmanager",
      "distributary",
      "grafana",
      "prometheus",
    ]);
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.network_mode, name).toBe("host");
      if (service.build !== undefined) expect(existsSync(`${service.build}/Dockerfile`)).toBe(true);
      else expect(service.image, name).toMatch(/:v?\d+\.\d+\.\d+$/);
      for (const volume of service.volumes ?? []) {
        const [source] = volume.split(":");
        if (source === undefined) continue;
        if (source.startsWith("./")) {
          expect(existsSync(source), `${name} mounts ${source}`).toBe(true);
        } else {
          expect(Object.keys(compose.volumes), `${name} uses volume ${source}`).toContain(source);
        }
      }
    }
  });

  it("on the host network the stack finds itself on localhost: Grafana's datasource, Prometheus's targets, no token file", async () => {
    const datasources = parse(await readFile("grafana/provisioning/datasources/prometheus.yml", "utf8")) as {
      datasources: Array<{ url: string }>;
    };
    for (const source of datasources.datasources) expect(new URL(source.url).hostname).toBe("localhost");
    const prometheus = parse(await readFile("prometheus/prometheus.yml", "utf8")) as {
      scrape_configs: Array<{ authorization?: unknown; static_configs: Array<{ targets: string[] }> }>;
    };
    for (const job of prometheus.scrape_configs) {
      // A credentials file nobody writes would fail every scrape: the compose stack scrapes over loopback.
      expect(job.authorization).toBeUndefined();
      for (const target of job.static_configs.flatMap((config) => config.targets))
        expect(target).toMatch(/^localhost:/);
    }
    const compose = parse(await readFile("docker-compose.yml", "utf8")) as {
      services: { distributary: { environment: Record<string, string> } };
    };
    expect(compose.services.distributary.environment.DISTRIBUTARY_METRICS_AUTH).toBe("loopback");
  });

  it("docker-compose.yml keeps Prometheus, Alertmanager and Grafana on 127.0.0.1 unless told, and asks for Grafana's admin password", async () => {
    const file = parse(await readFile("docker-compose.yml", "utf8"));
    // No default password to fall back on: rendering without one stops, saying what to set.
    expect(() => interpolate(file, {})).toThrow(
      /^required variable GRAFANA_ADMIN_PASSWORD is missing a value: set GRAFANA_ADMIN_PASSWORD in \.env/,
    );
    const password = "the-operators-own-grafana-password";
    const flag = (rendered: Rendered, service: string, name: string) =>
      rendered.services[service]?.command
        ?.find((argument) => argument.startsWith(`--${name}=`))
        ?.slice(name.length + 3);
    const local = interpolate(file, { GRAFANA_ADMIN_PASSWORD: password }) as Rendered;
    expect(flag(local, "prometheus", "web.listen-address")).toBe("127.0.0.1:9090");
    expect(flag(local, "alertmanager", "web.listen-address")).toBe("127.0.0.1:9093");
    // Alertmanager's cluster port would otherwise listen on every interface.
    expect(flag(local, "alertmanager", "cluster.listen-address")).toBe("");
    expect(local.services.grafana?.environment).toMatchObject({
      GF_SERVER_HTTP_ADDR: "127.0.0.1",
      GF_SECURITY_ADMIN_PASSWORD: password,
      GF_AUTH_ANONYMOUS_ENABLED: "false",
    });
    // Another address only when asked for.
    const wide = interpolate(file, { GRAFANA_ADMIN_PASSWORD: password, MONITORING_ADDRESS: "198.18.0.1" });
    expect(flag(wide as Rendered, "prometheus", "web.listen-address")).toBe("198.18.0.1:9090");
    expect((wide as Rendered).services.grafana?.environment?.GF_SERVER_HTTP_ADDR).toBe("198.18.0.1");
  });

  it("the Dockerfile copies what exists, pins its default base, runs as a non-root user and checks /api/health", async () => {
    const lines = (await readFile("Dockerfile", "utf8")).split("\n").filter((line) => !line.startsWith("#"));
    const froms = lines.filter((line) => line.startsWith("FROM "));
    expect(froms.length).toBeGreaterThan(0);
    // Every stage starts from BASE, whose default is a pinned image (a build may name another Debian base).
    for (const from of froms) expect(from).toMatch(/^FROM \$\{BASE\}( AS \w+)?$/);
    expect(lines.find((line) => line.startsWith("ARG BASE="))).toMatch(
      /^ARG BASE=[\w./-]+:\d+\.\d+\.\d+-[\w-]+$/,
    );
    for (const copy of lines.filter((line) => line.startsWith("COPY ") && !line.includes("--from="))) {
      const sources = copy.split(/\s+/).slice(1, -1);
      for (const source of sources) expect(existsSync(source), `COPY ${source}`).toBe(true);
    }
    const text = lines.join("\n");
    expect(text).toMatch(/apt-get install -y --no-install-recommends[^\n]*\\\n?[^\n]*/);
    expect(text).toContain("rm -rf /var/lib/apt/lists/*");
    expect(text).toMatch(/\nUSER distributary\n/);
    // That user is an ordinary one (never uid 0), and RIST srpfiles are taken only from the directory set for them.
    expect(text).toMatch(/useradd --system --uid 10001 --gid 10001 /);
    expect(text).toMatch(/\n\s+DISTRIBUTARY_RIST_SRP_DIR=\/rist-srp\n/);
    expect(text).toContain("mkdir -p /config /rist-srp");
    expect(text).toContain("/api/health");
    expect(text).toMatch(/HEALTHCHECK /);
    expect(text).toMatch(/ENTRYPOINT \["bin\/distributary"\]/);
    // What the service reads at run time is in the image: the code (built in the first stage), the page
    // templates and assets, and the launcher.
    expect(text).toMatch(/\nCOPY --from=build \/opt\/distributary\/src \.\/src\n/);
    expect(text).toMatch(/\nCOPY views \.\/views\n/);
    expect(text).toMatch(/\nCOPY bin \.\/bin\n/);
    expect(statSync("bin/distributary").mode & 0o111).not.toBe(0);
    expect(existsSync("scripts/build-core.sh")).toBe(true);
  });

  it("the systemd unit runs the CLI from the install path, as a service user, with hardening", async () => {
    const unit = await readFile("deploy/distributary.service", "utf8");
    const exec = /^ExecStart=(\S+) (.*)$/m.exec(unit);
    expect(exec?.[1]).toBe("/opt/distributary/bin/distributary");
    // The unit installs a clone at /opt/distributary: the command it runs is this repository's.
    expect(existsSync("bin/distributary")).toBe(true);
    expect(exec?.[2]).toMatch(/^serve --config-dir \/var\/lib\/distributary$/);
    // A dynamic user, never root: no User=root, no capability, the priority through limits instead.
    expect(unit).not.toMatch(/^User=/m);
    for (const directive of [
      "DynamicUser=yes",
      "CapabilityBoundingSet=",
      "LimitNICE=-10",
      "LimitRTPRIO=10",
      "StateDirectory=distributary distributary/rist-srp",
      "Environment=DISTRIBUTARY_RIST_SRP_DIR=/var/lib/distributary/rist-srp",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "Restart=always",
    ]) {
      expect(unit).toContain(`\n${directive}\n`);
    }
  });
});
