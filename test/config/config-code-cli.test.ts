/**
 * `distributary plan`, `apply` and `export` against a real service on 127.0.0.1: the exit codes of plan
 * (0 no changes, 2 changes, 1 an error), an error naming the file, line and column, apply's confirmation.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, useTestApp } from "../support/app.ts";
import { DOCUMENT, HOOK, PD_KEY, ref, SRT_PASS, TEAMS_URL, YT_KEY } from "../support/config-code.ts";

const cli = fileURLToPath(new URL("../../bin/distributary", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "h13-cli-"));
const app = useTestApp();
let server = "";

beforeAll(async () => {
  process.env.DISTRIBUTARY_SECRET_H13_YT_KEY = YT_KEY;
  process.env.DISTRIBUTARY_SECRET_H13_PD_KEY = PD_KEY;
  process.env.DISTRIBUTARY_SECRET_H13_HOOK = HOOK;
  process.env.DISTRIBUTARY_SECRET_H13_TEAMS_URL = TEAMS_URL;
  process.env.DISTRIBUTARY_SECRET_H13_SRT_PASS = SRT_PASS;
  server = `http://127.0.0.1:${await app.listen()}`;
});
afterAll(() => {
  for (const name of ["YT_KEY", "PD_KEY", "HOOK", "SRT_PASS", "TEAMS_URL"])
    delete process.env[`DISTRIBUTARY_SECRET_H13_${name}`];
  rmSync(dir, { recursive: true, force: true });
});

const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
/** The CLI with the server and token from the environment, as a pipeline would give them. */
const run = (args: ReadonlyArray<string>) =>
  execa(cli, [...args], {
    reject: false,
    env: { DISTRIBUTARY_SERVER: server, DISTRIBUTARY_TOKEN: ADMIN_TOKEN },
    stdin: "ignore",
  });

describe("distributary plan, apply, export", () => {
  it("plan exits 2 with changes, apply applies, plan then exits 0; export writes the references", async () => {
    const path = file("channels.yaml", DOCUMENT);
    const planned = await run(["plan", "-f", path]);
    expect(planned.exitCode, planned.stderr).toBe(2);
    expect(planned.stdout).toContain("+ channel evening-news");
    expect(planned.stdout).toContain("plan: 11 to create, 1 to change, 0 to delete");

    // Without a terminal, apply needs --auto-approve.
    const unconfirmed = await run(["apply", "-f", path]);
    expect(unconfirmed.exitCode).toBe(1);
    expect(unconfirmed.stderr).toContain("not applied: confirm at a terminal, or give --auto-approve");
    expect((await app.request("/api/channels/sports")).status).toBe(404);

    const applied = await run(["apply", "-f", path, "--auto-approve"]);
    expect(applied.exitCode, applied.stderr).toBe(0);
    expect(applied.stdout).toContain("applied: 11 created, 1 changed, 0 deleted");
    expect((await app.request("/api/channels/sports")).status).toBe(200);

    const again = await run(["plan", "-f", path]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toBe("no changes: the configuration matches the document");

    const exported = await run(["export", "--format", "yaml", "--server", server, "--token", ADMIN_TOKEN]);
    expect(exported.exitCode).toBe(0);
    expect(exported.stdout).toContain(`rtmp://127.0.0.1:47126/live/${ref("H13_YT_KEY")}`);
    expect(exported.stdout).not.toContain(YT_KEY);
    const roundTrip = await run(["plan", "-f", file("exported.yaml", exported.stdout)]);
    expect(roundTrip.exitCode, roundTrip.stdout + roundTrip.stderr).toBe(0);
  });

  it("plan exits 1 naming the file, line and column of an error; a server it cannot reach is an error too", async () => {
    const lines = DOCUMENT.split("\n");
    const path = file(
      "broken.yaml",
      [...lines.slice(0, 36), "        protocol: carrier-pigeon", ...lines.slice(37)].join("\n"),
    );
    const refused = await run(["plan", "-f", path]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(
      new RegExp(
        `^distributary: ${path}:37:\\d+: .*\\(channels\\.evening-news\\.outputs\\.contribution\\.protocol\\)`,
      ),
    );
    const missing = await run(["plan", "-f", join(dir, "none.yaml")]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain("none.yaml: cannot be read (ENOENT)");
    const away = await execa(cli, ["plan", "-f", path, "--server", "http://127.0.0.1:9"], {
      reject: false,
      stdin: "ignore",
    });
    expect(away.exitCode).toBe(1);
    expect(away.stderr).toContain("cannot reach http://127.0.0.1:9");
  });
});
